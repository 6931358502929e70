"""The decode stage: real timestamps, damaged input, direct plane reads."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from subflow.records import Box
from subflow.source import SourceError, VideoSource, luma_rows, rgb_crop
from synth import write_audio_only


def write_clip(path: Path, pts: list[int], time_base: Fraction, container: str = "mp4", size=(320, 240)) -> None:
    """Encode frames at the given pts (in ``time_base`` units); frame i has brightness 10*i."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {"bf": "0"}
        for i, p in enumerate(pts):
            image = np.full((size[1], size[0], 3), (10 * i) % 250, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = p, time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_times_are_pts_minus_container_start(tmp_path):
    path = tmp_path / "offset.mp4"
    tb = Fraction(1, 1000)
    write_clip(path, [1400 + 40 * i for i in range(20)], tb)
    with VideoSource(path) as source:
        times = [f.time for f in source.frames()]
        assert source.start_offset == pytest.approx(1.4, abs=1e-3)
    assert times == pytest.approx([0.04 * i for i in range(20)], abs=1e-6)


def test_variable_frame_rate_times_follow_pts(tmp_path):
    path = tmp_path / "vfr.mkv"
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 200, 210, 220, 500, 540]
    write_clip(path, pts, tb, container="matroska")
    with VideoSource(path) as source:
        assert [round(f.time, 3) for f in source.frames()] == [p / 1000 for p in pts]


def test_corrupt_packets_mid_file_are_skipped_and_counted(tmp_path):
    path = tmp_path / "damaged.ts"
    write_clip(path, list(range(0, 90000 * 4, 3600)), Fraction(1, 90000), container="mpegts", size=(640, 360))
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(3)
    middle = len(data) // 2
    data[middle : middle + 6000] = rng.integers(0, 256, 6000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with VideoSource(path) as source:
        frames = list(source.frames())
    assert 60 <= len(frames) < 100  # most frames survive; the damaged ones are gone
    times = [f.time for f in frames]
    assert times == sorted(times) and times[-1] == pytest.approx(99 * 0.04, abs=0.05)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("hello, not a video"), "not a video"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
)
def test_bad_inputs_raise_one_line_errors(tmp_path, make, message):
    path = tmp_path / "input.mp4"
    make(path)
    with pytest.raises(SourceError, match=message) as info:
        VideoSource(path)
    assert "\n" not in str(info.value)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.wav"
    write_audio_only(path)
    with pytest.raises(SourceError, match="no video stream"):
        VideoSource(path)


def test_luma_rows_and_rgb_crop_match_full_conversion():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    assert np.array_equal(luma_rows(frame, 270, 360), frame.to_ndarray()[270:360])  # the Y plane itself
    assert np.array_equal(luma_rows(frame, 270, 360, 10, 610, 2), frame.to_ndarray()[270:360:2, 10:610:2])
    box = Box(31, 271, 601, 349)  # odd edges: the chroma rows must still line up
    crop = rgb_crop(frame, box)
    full = frame.to_ndarray(format="rgb24")[271:349, 31:601]
    assert crop.shape == full.shape
    assert np.abs(crop.astype(int) - full.astype(int)).mean() < 2.0
