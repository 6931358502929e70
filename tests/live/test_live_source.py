"""LiveSource on files: realtime pacing, newest-first dropping for a slow consumer, nothing dropped otherwise."""

from __future__ import annotations

import collections
import time

from subflow.config import LiveConfig
from subflow.live.source import LiveSource, drop_stale, is_network, live_options
from subflow.source import Frame, StreamBreak


def test_network_detection_and_options():
    assert is_network("rtsp://cam/stream") and is_network("HTTPS://host/live.m3u8") and not is_network("/videos/a.mp4")
    # FFmpeg's socket timeout bounds the handshake (connect_timeout); stalls are caught by PyAV's read timeout
    rtsp = live_options("rtsp://cam/stream", LiveConfig(transport="udp", timeout=2.5, connect_timeout=8))
    assert rtsp["rtsp_transport"] == "udp" and rtsp["timeout"] == "8000000"
    http = live_options("https://host/live.m3u8", LiveConfig(timeout=3, connect_timeout=1))
    assert http["reconnect_streamed"] == "1" and http["rw_timeout"] == "3000000" and http["live_start_index"] == "-1"
    assert live_options("/videos/a.mp4", LiveConfig()) == {}


def test_realtime_file_is_paced_and_a_slow_consumer_gets_current_frames(live_clip):
    statuses = []
    source = LiveSource(live_clip, live=LiveConfig(max_lag=0.25), realtime=True, on_status=lambda s, d: statuses.append(s))
    started = time.monotonic()
    seen = []
    try:
        for frame in source.frames():
            seen.append((frame.time, time.monotonic() - started))
            time.sleep(0.1)  # recognition slower than the stream: 10 frames a second of 24
            if seen[-1][1] > 2.0:
                break
    finally:
        source.close()
    assert statuses[:2] == ["connecting", "connected"]
    assert source.stats.frames_dropped > 15
    # what the consumer gets is current: media time keeps up with the wall clock instead of falling behind
    assert all(abs(media - wall) < 0.5 for media, wall in seen[3:])
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)


def test_file_without_realtime_drops_nothing_and_ends(live_clip, clip_duration):
    statuses = []
    source = LiveSource(live_clip, live=LiveConfig(queue=2), on_status=lambda s, d: statuses.append(s))
    count = 0
    for count, frame in enumerate(source.frames(), 1):
        if count < 5:
            time.sleep(0.05)  # a slow start must not lose frames of a file
    assert count == round(clip_duration * 24) and source.stats.frames_dropped == 0
    assert statuses[-1] == "ended"
    assert source.duration and abs(source.duration - clip_duration) < 0.1


def test_stale_frames_go_but_a_stream_break_stays_at_the_head():
    def frame(t: float) -> Frame:
        return Frame(index=int(t * 10), time=t, wall=0.0, image=None)  # the queue looks at times only

    # the stream dropped after 1.0 s; the reconnect's first frame comes 3 s later, before the pipeline took
    # the break: every old frame is stale, the break is not dropped and still comes first
    queue = collections.deque([frame(0.9), frame(1.0), StreamBreak(1.04), frame(4.0)])
    assert drop_stale(queue, cap=32, max_lag=0.5) == 2
    assert [type(item).__name__ for item in queue] == ["StreamBreak", "Frame"] and queue[1].time == 4.0
    # the cap (a memory bound on frames) keeps the break too, ahead of the newest frames
    queue = collections.deque([StreamBreak(0.5), *(frame(1 + i / 10) for i in range(5))])
    assert drop_stale(queue, cap=3, max_lag=None) == 2
    assert isinstance(queue[0], StreamBreak) and [f.time for f in list(queue)[1:]] == [1.2, 1.3, 1.4]
    # a file (no lag rule) under its cap keeps everything
    queue = collections.deque([frame(0.0), frame(10.0)])
    assert drop_stale(queue, cap=32, max_lag=None) == 0 and len(queue) == 2

