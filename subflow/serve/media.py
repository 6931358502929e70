"""Files on disk: uploads and crops under the data folder, videos under the media roots, frames.

Paths a client names are resolved (symlinks followed) and must land inside a
media root: ``..`` and a symlink pointing out are refused alike. Frames are
decoded by seeking with PyAV and picked by their exact time, the same time
the pipeline gives cues, so a boundary stepped by one frame shows that frame.
"""

from __future__ import annotations

import bisect
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from ..records import Box
from ..source import SourceError, VideoSource, rgb_crop


class ServeError(Exception):
    """A request that cannot be served; ``status`` is the HTTP status, the message is for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def confine(name: str, roots: list[Path]) -> Path:
    """The real path of ``name`` (relative to the first root, or absolute), if it lies inside a root."""
    if not roots:
        raise ServeError(403, "opening files by path is off: start the server with --media-root DIR")
    if "\x00" in name:
        raise ServeError(400, "a path cannot contain a NUL character")
    candidate = Path(name)
    tries = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
    for path in tries:
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if any(real == root or real.is_relative_to(root) for root in roots):
            return real
        raise ServeError(403, f"{name}: outside the media roots")
    raise ServeError(404, f"{name}: no such file under the media roots")


def browse(name: str, roots: list[Path], suffixes: list[str]) -> dict:
    """A folder under a media root: its subfolders and its videos (by suffix), names only."""
    if not name:
        if len(roots) == 1:
            name = str(roots[0])
        else:
            return {"path": "", "folders": [str(root) for root in roots], "videos": []}
    folder = confine(name, roots)
    if not folder.is_dir():
        raise ServeError(400, f"{name}: not a folder")
    folders, videos = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if entry.name.startswith("."):
            continue
        try:
            real = entry.resolve(strict=True)
        except OSError:
            continue
        if not any(real == root or real.is_relative_to(root) for root in roots):
            continue  # a symlink out of the roots is not shown either
        if real.is_dir():
            folders.append(entry.name)
        elif entry.suffix.lower() in suffixes:
            videos.append({"name": entry.name, "size": real.stat().st_size})
    return {"path": str(folder), "folders": folders, "videos": videos}


def probe(path: str) -> dict:
    """Size, rate and length of a video; a file FFmpeg cannot read as a video is a 400."""
    try:
        with VideoSource(path) as source:
            if source.format_name in _IMAGE_FORMATS:
                raise ServeError(400, f"{Path(path).name}: is a still image, not a video")
            return {"width": source.width, "height": source.height, "fps": source.fps, "duration": source.duration}
    except SourceError as exc:
        raise ServeError(400, _short(str(exc), path)) from None


_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "webp_pipe", "tiff_pipe"}


def _short(message: str, path: str) -> str:
    """A source error without the server's own folder names in it."""
    return message.replace(path, Path(path).name)


def png_bytes(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG", optimize=False, compress_level=3)
    return out.getvalue()


def save_png(rgb: np.ndarray, path: Path) -> None:
    """Write a crop atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".part")
    tmp.write_bytes(png_bytes(rgb))
    os.replace(tmp, path)


class Frames:
    """Frame times and frames of the jobs' videos, with small caches (frame lists are a demux pass)."""

    def __init__(self, cache: int = 16) -> None:
        self._times: OrderedDict[str, list[float]] = OrderedDict()
        self._cache = cache
        self._lock = threading.Lock()

    def times(self, media: str) -> list[float]:
        """Every frame's time, and last the end of the video (the time after its last frame)."""
        with self._lock:
            if media in self._times:
                self._times.move_to_end(media)
                return self._times[media]
        try:
            with VideoSource(media) as source:
                times = source.frame_times()
                step = 1.0 / source.fps
        except SourceError as exc:
            raise ServeError(410, _short(str(exc), media)) from None
        if times:
            times.append(times[-1] + step)
        with self._lock:
            self._times[media] = times
            while len(self._times) > self._cache:
                self._times.popitem(last=False)
        return times

    def rgb(self, media: str, t: float, box: Box | None = None) -> tuple[np.ndarray, float]:
        """RGB pixels of the frame on screen at ``t`` (cut to ``box`` if given) and its exact time."""
        try:
            with VideoSource(media) as source:
                image, when = source.frame_at(t)
                if box is None:
                    box = Box(0, 0, source.width, source.height)
                box = Box(max(0, box.x0), max(0, box.y0), min(source.width, box.x1), min(source.height, box.y1))
                if box.width <= 0 or box.height <= 0:
                    raise ServeError(400, "the box is outside the picture")
                return rgb_crop(image, box), when
        except SourceError as exc:
            raise ServeError(410, _short(str(exc), media)) from None

    def jpeg(self, media: str, t: float, box: Box | None = None) -> tuple[bytes, float]:
        rgb, when = self.rgb(media, t, box)
        out = io.BytesIO()
        Image.fromarray(rgb).save(out, format="JPEG", quality=88)
        return out.getvalue(), when


def nearest(times: list[float], t: float) -> int:
    """Index of the frame time closest to ``t``."""
    i = bisect.bisect_left(times, t)
    if i == 0:
        return 0
    if i == len(times):
        return len(times) - 1
    return i if times[i] - t < t - times[i - 1] else i - 1
