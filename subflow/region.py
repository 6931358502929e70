"""Where subtitles sit: the bands of the frame the detector watches.

A band is a full-resolution pixel box with a position name ("bottom" or
"top") that writers use to keep placement (ASS alignment, SRT ``{\\an8}``).
``auto`` (the default) samples a file: at evenly spread positions it keeps the
stroke pixels that stay put over three consecutive frames (moving backgrounds
drop out). Seeking lands on keyframes, so a short file with few of them is
decoded forward from its keyframes to the positions instead. Pixels that hold a
stroke in most samples, for longer than a subtitle stays, are a watermark or
logo: their area is masked in the bands (``Band.ignore``). The bottom band is always
watched; the top band is added when centred text shows there in enough samples
and as several different texts (a sign shows one text, however often).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import av
import cv2
import numpy as np

from .config import ConfigError, DetectorConfig, RegionConfig
from .lines import LineParams, lines_in_mask
from .records import Box, Position
from .source import Frame, SourceError, VideoSource, luma_rows
from .textmask import MaskParams, stroke_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Band:
    position: Position
    box: Box
    ignore: tuple[Box, ...] = ()  # watermarks inside the band (full-frame pixels): never text


def parse_bands(spec: str, width: int, height: int, config: RegionConfig) -> list[Band]:
    """Turn a band spec ("bottom", "top", "both", or "x0,y0,x1,y1") into bands.

    Coordinates are fractions of the frame when all are <= 1, else pixels.
    """
    spec = spec.strip().lower()
    bottom = Band("bottom", Box(0, _even(height * (1 - config.bottom)), width, height))
    top = Band("top", Box(0, 0, width, _even(height * config.top)))
    if spec == "bottom":
        return [bottom]
    if spec == "top":
        return [top]
    if spec == "both":
        return [top, bottom]
    parts = spec.split(",")
    if len(parts) != 4:
        raise ConfigError(f"region must be bottom, top, both, auto or x0,y0,x1,y1; got {spec!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"region coordinates must be numbers; got {spec!r}") from None
    if all(0 <= v <= 1 for v in values):
        values = [values[0] * width, values[1] * height, values[2] * width, values[3] * height]
    x0, y0, x1, y1 = (int(round(v)) for v in values)
    x0, x1 = max(0, x0), min(width, x1)
    y0, y1 = max(0, y0), min(height, y1)
    if x1 - x0 < 16 or y1 - y0 < 8:
        raise ConfigError(f"region {spec!r} is empty or too small for a {width}x{height} video")
    position: Position = "top" if (y0 + y1) / 2 < height / 2 else "bottom"
    return [Band(position, Box(x0, y0, x1, y1))]


def auto_bands(source_spec: str, config: RegionConfig, detector: DetectorConfig) -> list[Band]:
    """Find the subtitle bands of a file by sampling it (see module doc)."""
    with VideoSource(source_spec) as source:
        width, height = source.width, source.height
        masks, times = _stable_masks(source, config, detector)
    return bands_from_samples(masks, times, config, width, height)


def bands_from_samples(masks: list[np.ndarray], times: list[float], config: RegionConfig, width: int, height: int) -> list[Band]:
    """The bands that stable stroke masks sampled over a video (at ``times``) call for (see module doc)."""
    step = _SAMPLE_STEP
    if len(masks) >= _MIN_SAMPLES:
        watermark = _watermark(masks, times, config.watermark_share, config.watermark_seconds)
    else:
        watermark = np.zeros(masks[0].shape, bool)
    marks = _boxes(watermark, step, width, height)
    for mark in marks:
        log.info("region auto: a mark stays at %s in most of the video (a watermark): its area is masked", mark)
    bottom, top = parse_bands("both", width, height, config)[::-1]
    bands = [bottom]  # always: no loss on bottom-only material
    if _subtitles_at_top(masks, watermark, top.box.y1 // step, config):
        bands.insert(0, top)
    return [Band(band.position, band.box, tuple(m for m in marks if _intersects(m, band.box))) for band in bands]


class BandLearner:
    """Live input: find the bands in the first ``seconds`` of frames, as ``auto`` does for files.

    A live stream cannot be sampled ahead, so the frames as they come are sampled instead: every
    ``every``-th frame with the two after it gives one stable mask. Until the decision the bottom
    band is watched (so bottom subtitles are never lost); after it, the top band is added when
    subtitles showed there, and watermarks found meanwhile are masked in both.
    """

    def __init__(self, config: RegionConfig, detector: DetectorConfig, width: int, height: int, seconds: float) -> None:
        self.config, self.width, self.height, self.seconds = config, width, height, seconds
        step = _SAMPLE_STEP
        self.params = MaskParams.for_detector(detector, step)
        self.every = 8
        self.masks: list[np.ndarray] = []
        self.times: list[float] = []  # when each sample was taken
        self._run: list[np.ndarray] = []  # the consecutive frames of the sample being taken
        self._run_time = 0.0  # and the time of its first
        self._start: float | None = None
        self._seen = 0

    def push(self, frame: Frame) -> list[Band] | None:
        """Look at one frame; the bands once the learning time is over (then stop calling)."""
        if self._start is None:
            self._start = frame.time
        if self._run or self._seen % self.every == 0:
            if not self._run:
                self._run_time = frame.time
            self._run.append(stroke_mask(luma_rows(frame.image, 0, self.height, step=_SAMPLE_STEP), self.params))
            if len(self._run) == 3:
                self.masks.append(self._run[0] & self._run[1] & self._run[2])
                self.times.append(self._run_time)
                self._run = []
        self._seen += 1
        if frame.time - self._start < self.seconds or not self.masks:
            return None
        return bands_from_samples(self.masks, self.times, self.config, self.width, self.height)


_SAMPLE_STEP = 2  # masks at half resolution, as the detector's default scale
_MIN_SAMPLES = 8  # fewer distinct samples cannot decide (watermarks, top subtitles): keyframes are decoded forward


def _stable_masks(source: VideoSource, config: RegionConfig, detector: DetectorConfig) -> tuple[list[np.ndarray], list[float]]:
    """Per sample, the stroke pixels that stay put over three consecutive frames, and its time.

    Seeking lands on keyframes (cheap: three frames decoded per sample), and positions that land on
    one keyframe are one sample (counted twice, it would count twice as evidence; finding out costs
    one demuxed packet). When that leaves fewer than ``_MIN_SAMPLES`` (a short file, long GOPs:
    ``samples/top.mp4`` has 2 keyframes), each keyframe is decoded forward, skipping non-reference
    frames, to every position that landed on it, at most ``auto_decode_seconds`` of video in all.
    """
    step = _SAMPLE_STEP
    params = MaskParams.for_detector(detector, step)
    duration = source.duration or 0.0
    landings: dict[float | None, list[float]] = {}  # keyframe time -> the positions that land on it
    for position in np.linspace(0.02, 0.98, config.auto_samples) * duration:
        try:
            landings.setdefault(source.keyframe_before(float(position)), []).append(float(position))
        except Exception as exc:  # a damaged spot: sample elsewhere
            log.debug("region auto: seeking to %.2fs failed: %s", position, exc)
    forward = len(landings) < _MIN_SAMPLES
    reach = config.auto_decode_seconds / max(1, len(landings))  # video decoded forward from each keyframe
    masks: list[np.ndarray] = []
    times: list[float] = []
    for key, positions in landings.items():
        targets = [p for p in positions if key is not None and p - key <= reach] if forward else []
        try:
            for when, images in _runs(source, positions[0], targets):
                stable = stroke_mask(luma_rows(images[0], 0, source.height, step=step), params)
                for image in images[1:]:
                    stable &= stroke_mask(luma_rows(image, 0, source.height, step=step), params)
                masks.append(stable)
                times.append(when)
        except Exception as exc:  # a damaged spot: sample elsewhere
            log.debug("region auto: sample at %.2fs failed: %s", positions[0], exc)
    if not masks:
        raise SourceError(f"{source.spec}: no frame could be decoded to find the subtitle region")
    return masks, times


def _runs(source: VideoSource, seek: float, targets: list[float], count: int = 3) -> Iterator[tuple[float, list[av.VideoFrame]]]:
    """Runs of ``count`` consecutive frames, with the time of their first: from the keyframe that
    seeking to ``seek`` lands on; or, given ``targets`` (ascending), decoding forward from it, one
    from the first frame at or after each target (targets inside a run taken are passed)."""
    frames = source.decode_from(seek, nonref=bool(targets))
    pending = list(targets)
    run: list[tuple[av.VideoFrame, float]] = []
    try:
        for image, when in frames:
            if not run and pending and when < pending[0]:
                continue
            run.append((image, when))
            if len(run) < count:
                continue
            yield run[0][1], [image for image, _ in run]
            pending = [target for target in pending if target > when]
            if not pending:
                return
            run = []
    finally:
        frames.close()


def _watermark(masks: list[np.ndarray], times: list[float], share: float, seconds: float) -> np.ndarray:
    """Where one mark stays on screen in at least ``share`` of the samples (taken at ``times``), over at
    least ``seconds``: a logo, a watermark, not one long subtitle of a short file.

    Pixels with a stroke in that many samples are candidates; an area of them is a mark only if,
    in that many samples, the strokes in its box are the mark: 90 % of the mark is present and
    90 % of what is present is the mark (burned-in marks keep >= 99 % of their stroke pixels
    under compression). Different subtitles at one place share pixels, but each of them is
    mostly other strokes.
    """
    kernel = np.ones((3, 3), np.uint8)
    counts = np.zeros(masks[0].shape, np.int32)
    for mask in masks:
        counts += mask
    needed = max(2, share * len(masks))
    candidates = (counts >= needed).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(candidates, kernel, iterations=2), connectivity=8)
    marked = np.zeros(masks[0].shape, np.uint8)
    for label in range(1, count):
        x, y, w, h, _ = stats[label]
        window = (slice(y, y + h), slice(x, x + w))
        area = labels[window] == label
        mark = candidates[window].astype(bool) & area
        size = np.count_nonzero(mark)
        if size < 12:
            continue
        present = []
        for mask, when in zip(masks, times):
            strokes = mask[window]  # the whole box: a glyph's other strokes count against it
            common = np.count_nonzero(mark & strokes)
            if common >= 0.9 * size and common >= 0.9 * np.count_nonzero(strokes):
                present.append(when)
        if len(present) >= needed and max(present) - min(present) >= seconds:
            marked[window][area] = 1
    return cv2.dilate(marked, np.ones((5, 5), np.uint8)) > 0


def _subtitles_at_top(masks: list[np.ndarray], watermark: np.ndarray, rows: int, config: RegionConfig) -> bool:
    """Do subtitles sit at the top? A centred line of text there (the line finder's, so scattered
    scenery strokes do not count) in ``auto_min_share`` of the samples, as ``auto_min_lines``
    different texts in one style (top edge and line height alike, as subtitles are): a sign or a
    title shows one text, however often, and bits of scenery that chain into line-like shapes
    (a wreath of flowers in a real clip) differ in both from shot to shot."""
    params = LineParams(min_height=4, pad_x=0, pad_y=0)
    seen: list[tuple[np.ndarray, int, float]] = []  # a text's strokes, its top edge and line height
    showing = 0
    for mask in masks:
        text = mask[:rows] & ~watermark[:rows]
        width = text.shape[1]
        lines = [
            line
            for line in lines_in_mask(text, params)
            if abs((line.x0 + line.x1) / 2 / width - 0.5) <= config.auto_centre_tolerance and line.width >= 3 * line.height
        ]
        if not lines:
            continue
        showing += 1
        shown = np.zeros_like(text)
        for line in lines:
            shown[line.y0 : line.y1, line.x0 : line.x1] = text[line.y0 : line.y1, line.x0 : line.x1]
        if not any(_same_text(shown, other) for other, _, _ in seen):
            seen.append((shown, min(line.y0 for line in lines), float(np.median([line.height for line in lines]))))
    alike = max((sum(_same_style(look, other) for other in seen) for look in seen), default=0)
    return showing >= config.auto_min_share * len(masks) and alike >= config.auto_min_lines


def _same_style(a: tuple[np.ndarray, int, float], b: tuple[np.ndarray, int, float]) -> bool:
    """Do two texts sit on one row (top edges within a line height) with lines of about one height?"""
    (_, top_a, height_a), (_, top_b, height_b) = a, b
    return abs(top_a - top_b) <= max(height_a, height_b) and max(height_a, height_b) <= 1.4 * min(height_a, height_b)


def _same_text(a: np.ndarray, b: np.ndarray) -> bool:
    """Mostly the same stroke pixels (a different line at the same place shares at most ~half)."""
    union = np.count_nonzero(a | b)
    return union > 0 and np.count_nonzero(a & b) >= 0.6 * union


def _boxes(mask: np.ndarray, step: int, width: int, height: int) -> list[Box]:
    """Full-resolution boxes of the connected areas of a reduced-resolution mask."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return [
        Box(int(x) * step, int(y) * step, min(width, int(x + w) * step), min(height, int(y + h) * step))
        for x, y, w, h, _ in stats[1:count]
    ]


def _intersects(a: Box, b: Box) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


def _even(value: float) -> int:
    return int(value) & ~1
