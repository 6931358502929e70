"""Which pixels of a luma band look like subtitle strokes.

Burned-in subtitles are thin, bright, high-contrast strokes (usually with a
dark outline or shadow). A white top-hat keeps structures thinner than its
kernel that stand out from their surroundings, so flat bright areas (sky,
walls) drop out while letter strokes stay. The detector compares these masks
over time; the line finder projects them to find text lines.

On a light background (a grey wall, a pale sky) even white text cannot stand
``contrast_min`` above its surroundings: there is not that much room between
the background and video white. With ``contrast_share`` set, a pixel there is
a stroke when it stands above its background by that share of the room
between its surroundings (the darkest luma within three kernels) and white,
and by at least ``contrast_floor``. Over dark and mid-grey scenery the
way to white is long, so the rule asks ``contrast_min`` there as before; a lit
window or lamp on a night scene counts as dark surroundings, so lines and
specks crossing it pass no more easily than before.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .config import DetectorConfig


@dataclass(frozen=True)
class MaskParams:
    """Thresholds of the stroke mask (see configs/default.toml, [detector])."""

    bright_min: int = 170  # a stroke pixel is at least this bright (0-255)
    contrast_min: int = 50  # and this much brighter than its neighbourhood (top-hat)
    stroke_max: int = 9  # top-hat kernel in pixels, wider than the widest stroke at this scale
    dark_text: bool = False  # also look for dark text on bright plates (black top-hat)
    contrast_share: float = 0.0  # or this share of the way from the surrounding to white (0 = off)
    contrast_floor: int = 0  # but never less contrast than this

    @classmethod
    def for_detector(cls, config: "DetectorConfig", step: int) -> "MaskParams":
        """The detector's thresholds for a mask taken at every ``step``-th pixel (its kernel shrinks with it)."""
        return cls(
            bright_min=config.bright_min,
            contrast_min=config.contrast_min,
            stroke_max=max(3, (config.stroke_max // step) | 1),
            dark_text=config.dark_text,
            contrast_share=config.contrast_share,
            contrast_floor=config.contrast_floor,
        )


WHITE = 235  # video white: the brightest luma a subtitle reaches in limited-range video


@lru_cache(maxsize=16)
def needed_contrast(params: MaskParams) -> np.ndarray:
    """Top-hat a stroke needs over each surrounding level (0-255), as a look-up table:
    ``contrast_min``, or ``contrast_share`` of the way up to white where that is less (a light
    surrounding), never under ``contrast_floor``."""
    surrounding = np.arange(256, dtype=np.float64)
    toward_white = np.maximum(params.contrast_floor, np.ceil(params.contrast_share * (WHITE - surrounding)))
    return np.minimum(params.contrast_min, toward_white).astype(np.uint8)


def stroke_mask(luma: np.ndarray, params: MaskParams = MaskParams()) -> np.ndarray:
    """Boolean mask of stroke-like pixels of a 2-D ``uint8`` luma array."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (params.stroke_max, params.stroke_max))
    tophat = cv2.morphologyEx(luma, cv2.MORPH_TOPHAT, kernel)
    if params.contrast_share > 0:
        # The surrounding is the darkest luma within three kernels: a light grey wall stays light,
        # while a lit window or a lamp on a night scene has the dark sky around it, so a thin
        # bright line crossing the window still needs contrast_min.
        wide = cv2.getStructuringElement(cv2.MORPH_RECT, (3 * params.stroke_max, 3 * params.stroke_max))
        contrast = tophat >= cv2.LUT(cv2.erode(luma, wide), needed_contrast(params))
    else:
        contrast = tophat >= params.contrast_min
    mask = contrast & (luma >= params.bright_min)
    if params.dark_text:
        blackhat = cv2.morphologyEx(luma, cv2.MORPH_BLACKHAT, kernel)
        mask |= (blackhat >= params.contrast_min) & (luma <= 255 - params.bright_min)
    return mask
