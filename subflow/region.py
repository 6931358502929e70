"""Where subtitles sit: the bands of the frame the detector watches.

A band is a full-resolution pixel box with a position name ("bottom" or
"top") that writers use to keep placement (ASS alignment, SRT ``{\\an8}``).
``auto`` samples the video, keeps stroke pixels that stay put over a few
consecutive frames (moving backgrounds drop out), and places a band around the
rows where such text shows up often enough.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from .config import ConfigError, DetectorConfig, RegionConfig
from .records import Box, Position
from .source import SourceError, VideoSource, luma_rows
from .textmask import MaskParams, stroke_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Band:
    position: Position
    box: Box


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
        counts = _text_row_counts(source, config.auto_samples, detector)
    samples = max(1, int(counts[0])) if counts.size else 1
    share = counts[1:] / samples
    rows = np.flatnonzero(share >= config.auto_min_share)
    bands = []
    for position, lo, hi in (("top", 0, int(height * 0.4)), ("bottom", int(height * 0.6), height)):
        inside = rows[(rows >= lo) & (rows < hi)]
        if inside.size == 0:
            continue
        margin = max(8, int(height * 0.03))
        y0 = _even(max(lo, inside.min() - margin))
        y1 = _even(min(hi, inside.max() + 1 + margin))
        bands.append(Band(position, Box(0, y0, width, y1)))
    if not bands:
        log.warning("region auto: no subtitles found in %d sampled frames; using the bottom band", samples)
        return parse_bands("bottom", width, height, config)
    return bands


def _text_row_counts(source: VideoSource, samples: int, detector: DetectorConfig) -> np.ndarray:
    """counts[0] = frames sampled; counts[1 + y] = samples in which row y holds stable text."""
    params = MaskParams(detector.bright_min, detector.contrast_min, detector.stroke_max, detector.dark_text)
    height = source.height
    counts = np.zeros(height + 1, dtype=np.int64)
    duration = source.duration or 0.0
    kernel = np.ones((3, 3), np.uint8)
    for position in np.linspace(0.02, 0.98, samples) * duration:
        try:
            images = source.sample(float(position), 3)
        except Exception as exc:  # a damaged spot: sample elsewhere
            log.debug("region auto: sample at %.2fs failed: %s", position, exc)
            continue
        masks = [stroke_mask(luma_rows(image, 0, height), params) for image in images]
        if not masks:
            continue
        stable = masks[0]
        for mask in masks[1:]:
            stable = stable & cv2.dilate(mask.view(np.uint8), kernel).astype(bool)
        row_share = stable.mean(axis=1)
        counts[0] += 1
        counts[1:] += row_share >= 0.01
    if counts[0] == 0:
        raise SourceError(f"{source.spec}: no frame could be decoded to find the subtitle region")
    return counts


def _even(value: float) -> int:
    return int(value) & ~1
