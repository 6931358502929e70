"""LiveSource on files: realtime pacing, newest-first dropping for a slow consumer, nothing dropped otherwise."""

from __future__ import annotations

import time

from subflow.config import LiveConfig
from subflow.live import LiveSource, is_network, live_options


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
