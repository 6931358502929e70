"""Which pixels of a luma band look like subtitle strokes.

Burned-in subtitles are thin, bright, high-contrast strokes (usually with a
dark outline or shadow). A white top-hat keeps structures thinner than its
kernel that stand out from their surroundings, so flat bright areas (sky,
walls) drop out while letter strokes stay. The detector compares these masks
over time; the line finder projects them to find text lines.

On a light background (a grey wall, a pale sky) even white text cannot stand
``contrast_min`` above its surroundings: there is not that much room between
the background and video white. With ``contrast_share`` set, a pixel there is
a stroke when it covers that share of the way from its background up to white
(and stands at least ``contrast_floor`` above it). Over dark and mid-grey
scenery the way to white is long, so the rule asks more than ``contrast_min``
there and changes nothing: lit windows and specks on a night scene pass no
more easily than before.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np


@dataclass(frozen=True)
class MaskParams:
    """Thresholds of the stroke mask (see configs/default.toml, [detector])."""

    bright_min: int = 170  # a stroke pixel is at least this bright (0-255)
    contrast_min: int = 50  # and this much brighter than its neighbourhood (top-hat)
    stroke_max: int = 9  # top-hat kernel in pixels, wider than the widest stroke at this scale
    dark_text: bool = False  # also look for dark text on bright plates (black top-hat)
    contrast_share: float = 0.0  # or this share of the way from the background to white (0 = off)
    contrast_floor: int = 0  # but never less contrast than this


WHITE = 235  # video white: the brightest luma a subtitle reaches in limited-range video


@lru_cache(maxsize=16)
def stroke_floor(params: MaskParams) -> np.ndarray:
    """Per background level (0-255, the top-hat's opening under a pixel): the luma a stroke pixel
    must exceed there. It stands ``contrast_min`` above its background, or on a light background
    ``contrast_share`` of the way up to white if that is less (never under ``contrast_floor``),
    and it is at least ``bright_min``. One table look-up per pixel instead of per-pixel sums."""
    background = np.arange(256, dtype=np.float64)
    need = np.full(256, float(params.contrast_min))
    if params.contrast_share > 0:
        toward_white = np.maximum(params.contrast_floor, np.ceil(params.contrast_share * (WHITE - background)))
        need = np.minimum(need, toward_white)
    lowest = np.maximum(background + need, params.bright_min)  # lowest luma that passes
    return np.minimum(lowest - 1, 255).astype(np.uint8)  # 255: nothing passes over this background


def stroke_mask(luma: np.ndarray, params: MaskParams = MaskParams()) -> np.ndarray:
    """Boolean mask of stroke-like pixels of a 2-D ``uint8`` luma array."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (params.stroke_max, params.stroke_max))
    # The white top-hat is luma minus this opening; comparing luma with a floor looked up from the
    # opening tests the top-hat's contrast and the brightness at once.
    background = cv2.morphologyEx(luma, cv2.MORPH_OPEN, kernel)
    mask = luma > cv2.LUT(background, stroke_floor(params))
    if params.dark_text:
        blackhat = cv2.morphologyEx(luma, cv2.MORPH_BLACKHAT, kernel)
        mask |= (blackhat >= params.contrast_min) & (luma <= 255 - params.bright_min)
    return mask
