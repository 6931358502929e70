"""Decode stage: frames with real timestamps, and cheap access to their pixels.

Times come from each frame's pts minus the container's start time, never from
``frame_number / fps``, so variable frame rate and non-zero start offsets are
exact. The detector reads the luma plane of the subtitle band straight from
the decoded frame (no colour conversion of the whole picture); only the crops
that go to OCR are converted to RGB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .config import SourceConfig
from .records import Box

log = logging.getLogger(__name__)

# Pixel formats whose first plane is 8-bit luma we can read directly.
_LUMA8 = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray", "yuv411p", "yuv440p"}
_LUMA16 = {"yuv420p10le", "yuv422p10le", "yuv444p10le", "p010le", "yuv420p12le", "gray10le", "gray12le"}
_I420 = {"yuv420p", "yuvj420p"}
# source.skip -> FFmpeg's skip_frame: decode fewer frames (times snap to the frames decoded).
_SKIP = {"bidir": "BIDIR", "nonref": "NONREF"}
# Give up on a file after this many unreadable packets in a row.
_MAX_CONSECUTIVE_ERRORS = 50
# Leading frames without a timestamp held back until a timed frame says where they belong.
_MAX_UNTIMED = 8


class SourceError(RuntimeError):
    """The input cannot be read; the message is one line for the user."""


@dataclass
class Frame:
    """One decoded video frame and when it is shown."""

    index: int  # decode-order number within this source (or live session)
    time: float  # seconds from the container start (monotonic across reconnects for live sources)
    wall: float  # time.time() when it was decoded
    image: av.VideoFrame


@dataclass
class StreamBreak:
    """A live source lost its stream here: what was on screen ends after the last frame received."""

    time: float  # session time just after the last frame received


def luma_rows(image: av.VideoFrame, y0: int, y1: int, x0: int = 0, x1: int | None = None, step: int = 1) -> np.ndarray:
    """The 8-bit luma of rows ``y0:y1`` (and columns ``x0:x1``), every ``step``-th pixel.

    Reads the decoder's own plane buffer; only the band is copied.
    """
    fmt = image.format.name
    x1 = image.width if x1 is None else x1
    if fmt in _LUMA8 or fmt in _LUMA16:
        plane = image.planes[0]
        dtype = np.uint16 if fmt in _LUMA16 else np.uint8
        stride = plane.line_size // np.dtype(dtype).itemsize
        rows = np.frombuffer(plane, dtype=dtype).reshape(-1, stride)
        band = rows[y0:y1:step, x0:x1:step]
        if dtype is np.uint16:
            shift = 4 if "12" in fmt else 2
            return (band >> shift).astype(np.uint8)
        return np.ascontiguousarray(band)
    # Rare formats (RGB, palettes): convert the frame; slower but correct.
    gray = image.reformat(format="gray").to_ndarray()
    return np.ascontiguousarray(gray[y0:y1:step, x0:x1:step])


def rgb_crop(image: av.VideoFrame, box: Box) -> np.ndarray:
    """RGB ``uint8`` pixels of ``box``, converting only that part of the frame when possible."""
    if image.format.name in _I420:
        y0, y1 = box.y0 & ~1, (box.y1 + 1) & ~1
        x0, x1 = box.x0 & ~1, (box.x1 + 1) & ~1
        y1, x1 = min(y1, image.height & ~1), min(x1, image.width & ~1)
        planes = []
        for index, (r0, r1, c0, c1) in enumerate(((y0, y1, x0, x1), (y0 // 2, y1 // 2, x0 // 2, x1 // 2), (y0 // 2, y1 // 2, x0 // 2, x1 // 2))):
            plane = image.planes[index]
            data = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
            planes.append(data[r0:r1, c0:c1].ravel())
        i420 = np.concatenate(planes).reshape((y1 - y0) * 3 // 2, x1 - x0)
        rgb = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
        return rgb[box.y0 - y0 : box.y0 - y0 + box.height, box.x0 - x0 : box.x0 - x0 + box.width]
    rgb = image.to_ndarray(format="rgb24")
    return np.ascontiguousarray(rgb[box.y0 : box.y1, box.x0 : box.x1])


class VideoSource:
    """A video file or URL opened with PyAV, yielding :class:`Frame` objects in display order."""

    def __init__(
        self, spec: str | Path, config: SourceConfig | None = None, *, timeout: tuple[float, float] | None = None
    ) -> None:
        self.spec = str(spec)
        self.config = config or SourceConfig()
        self.errors = 0  # packets that could not be read or decoded
        self._container = self._open(timeout)
        streams = self._container.streams.video
        if not streams:
            self._container.close()
            raise SourceError(f"{self.spec}: no video stream (is it an audio file?)")
        self._stream = streams[0]
        self._time_base: Fraction = self._stream.time_base or Fraction(1, 90000)
        ctx = self._stream.codec_context
        if self.config.thread_type.upper() != "NONE":
            ctx.thread_type = self.config.thread_type.upper()
        if self.config.threads:
            ctx.thread_count = self.config.threads
        if self.config.skip:
            skip = _SKIP.get(self.config.skip.lower())
            if skip is None:
                self._container.close()
                raise SourceError(f"source.skip must be one of {', '.join(repr(k) for k in _SKIP)}, got {self.config.skip!r}")
            ctx.skip_frame = skip
        if self.config.fast_decode:
            ctx.options = {**ctx.options, "skip_loop_filter": "all"}
        self.width: int = ctx.width
        self.height: int = ctx.height
        if not self.width or not self.height:
            self._container.close()
            raise SourceError(f"{self.spec}: the video stream has no picture size (corrupt or unsupported)")
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps: float = float(rate) if rate else 25.0
        self.format_name: str = self._container.format.name  # the demuxer FFmpeg chose ("mov,mp4,...", "png_pipe")
        self.start_offset: float = self._start_offset()
        self.duration: float | None = self._duration()

    def _open(self, timeout: tuple[float, float] | None) -> av.container.InputContainer:
        """Open the input; ``timeout`` = (seconds to open, seconds per read) bounds network waits."""
        is_url = "://" in self.spec
        if not is_url:
            path = Path(self.spec)
            if not path.exists():
                raise SourceError(f"{self.spec}: no such file")
            if path.is_dir():
                raise SourceError(f"{self.spec}: is a directory, not a video file")
        try:
            if self.config.hwaccel:
                opened = _open_hw(self.spec, self.config, timeout)
                if opened is not None:
                    return opened
            return av.open(self.spec, options=dict(self.config.options), timeout=timeout)
        except av.error.InvalidDataError:
            raise SourceError(f"{self.spec}: not a video FFmpeg can read") from None
        except PermissionError:
            raise SourceError(f"{self.spec}: permission denied") from None
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.spec}: cannot open ({_reason(exc)})") from None

    def _start_offset(self) -> float:
        """The container start: what players subtract from pts to show time 0."""
        if self._container.start_time is not None:
            return self._container.start_time / av.time_base
        stream = self._stream
        if stream.start_time is not None and stream.time_base is not None:
            return float(stream.start_time * stream.time_base)
        return 0.0

    def _duration(self) -> float | None:
        if self._container.duration:
            return self._container.duration / av.time_base
        stream = self._stream
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return None

    def frames(self) -> Iterator[Frame]:
        """Decode every frame; unreadable packets are counted, logged and skipped."""
        for index, (image, t) in enumerate(self._timed()):
            yield Frame(index=index, time=t, wall=time.time(), image=image)

    def _timed(self) -> Iterator[tuple[av.VideoFrame, float]]:
        """Decoded pictures with their times: pts minus the container start, kept monotonic."""
        step = 1.0 / self.fps
        last_time: float | None = None
        untimed: list[av.VideoFrame] = []  # leading frames without a timestamp, until one has it
        for image in self._decoded():
            if image.pts is not None:
                t = self._seconds(image.pts)
            elif last_time is not None:  # a gap in the timestamps: continue from the last one
                t = last_time + step
            elif len(untimed) < _MAX_UNTIMED:
                # Seen at the start of RTSP streams: the first frame comes before the first
                # timestamp. It is placed one frame before the next timed one, not at a guess.
                untimed.append(image)
                continue
            else:
                t = 0.0
            yield from _placed_before(untimed, t, step)
            if last_time is not None and t <= last_time:  # out of order or duplicate pts after corruption
                t = last_time + 1e-6
            last_time = t
            yield image, t
        yield from _placed_before(untimed, len(untimed) * step, step)  # a tiny input without any timestamp

    def _decoded(self) -> Iterator[av.VideoFrame]:
        consecutive = 0
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.EOFError:
                return
            except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
                consecutive = self._bad_packet(exc, consecutive)
                packets = self._container.demux(self._stream)
                continue
            try:
                decoded = packet.decode()
            except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
                consecutive = self._bad_packet(exc, consecutive)
                continue
            consecutive = 0
            yield from decoded

    def _bad_packet(self, exc: Exception, consecutive: int) -> int:
        self.errors += 1
        if self.errors <= 5:
            log.warning("%s: skipped an unreadable packet (%s)", self.spec, _reason(exc))
        if consecutive + 1 >= _MAX_CONSECUTIVE_ERRORS:
            raise SourceError(f"{self.spec}: too many unreadable packets in a row; the file is badly damaged")
        return consecutive + 1

    def _seconds(self, pts: int) -> float:
        """A timestamp of this stream as a time in the video: pts minus the container's start."""
        return float(pts * self._time_base) - self.start_offset

    def _seek_before(self, position: float) -> None:
        """Seek to the keyframe at or before ``position`` seconds."""
        self._container.seek(int((position + self.start_offset) * av.time_base), any_frame=False, backward=True)

    def keyframe_before(self, position: float) -> float | None:
        """The time of the keyframe that seeking to ``position`` lands on (demuxed, not decoded:
        a few milliseconds), so that samplers can skip positions that land on the same frame."""
        self._seek_before(position)
        for packet in self._container.demux(self._stream):
            return None if packet.pts is None else self._seconds(packet.pts)
        return None

    def decode_from(self, position: float, nonref: bool = False) -> Iterator[tuple[av.VideoFrame, float]]:
        """Seek near ``position`` seconds (to the keyframe before it) and decode on from there, with
        each picture's time (for sampling a file). ``nonref``: skip the frames no other frame refers
        to (B-frames mostly: 1.3-1.6x faster), for decoding forward to a time further on."""
        self._seek_before(position)
        context = self._stream.codec_context
        skip = context.skip_frame
        context.skip_frame = "NONREF" if nonref else skip
        try:
            for image in self._container.decode(self._stream):
                if image.pts is not None:
                    yield image, self._seconds(image.pts)
        finally:
            context.skip_frame = skip

    def frame_times(self) -> list[float]:
        """Every frame's time (pts minus the container start), in display order, read from the
        packets without decoding: what stepping a cue boundary by one frame steps through."""
        times = {
            self._seconds(packet.pts)
            for packet in self._container.demux(self._stream)
            if packet.pts is not None and packet.size
        }
        self._container.seek(0)
        return sorted(times)

    def frame_at(self, t: float) -> tuple[av.VideoFrame, float]:
        """The frame on screen at time ``t`` (the last one at or before it) and its exact time."""
        target = max(0.0, t + self.start_offset)
        self._container.seek(int(target / self._time_base), stream=self._stream, backward=True, any_frame=False)
        found: tuple[av.VideoFrame, float] | None = None
        for image in self._container.decode(self._stream):
            if image.pts is None:
                continue
            when = self._seconds(image.pts)
            if found is not None and when > t + 1e-6:
                break
            found = (image, when)
        if found is None:
            raise SourceError(f"{self.spec}: no frame at {t:.3f} s")
        return found

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(spec: str | Path, config: SourceConfig | None = None) -> VideoSource:
    """Open a file or URL; raises :class:`SourceError` with a one-line reason."""
    return VideoSource(spec, config)


_hw_unavailable: set[str] = set()  # device types that failed here (said once per process, then skipped)


def _open_hw(spec: str, config: SourceConfig, timeout: tuple[float, float] | None) -> av.container.InputContainer | None:
    """Open with FFmpeg's hardware decoder ``config.hwaccel`` (e.g. "cuda": NVDEC); None when this machine
    has no such device: the caller decodes on the CPU, and the reason is logged once."""
    kind = config.hwaccel.lower()
    if kind in _hw_unavailable:
        return None
    from av.codec.hwaccel import HWAccel, hwdevices_available

    if kind not in hwdevices_available():
        reason = f"this FFmpeg has no {kind!r} decoder; it has: {', '.join(hwdevices_available()) or 'none'}"
    else:
        try:
            hw = HWAccel(device_type=kind, allow_software_fallback=True)
            return av.open(spec, options=dict(config.options), timeout=timeout, hwaccel=hw)
        except av.error.InvalidDataError:
            raise  # the input's fault, not the device's: reported as usual
        except (av.error.FFmpegError, OSError) as exc:
            reason = _reason(exc)
    _hw_unavailable.add(kind)
    log.warning("hardware decoding (%s) is not available here (%s); decoding on the CPU", kind, reason)
    return None


def _placed_before(untimed: list[av.VideoFrame], t: float, step: float) -> Iterator[tuple[av.VideoFrame, float]]:
    """The held untimed frames, one ``step`` apart, ending one step before ``t``; the list is emptied."""
    for k, image in enumerate(untimed):
        yield image, t - (len(untimed) - k) * step
    untimed.clear()


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
