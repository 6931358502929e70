"""Which pixels of a luma band look like subtitle strokes.

Burned-in subtitles are thin, bright, high-contrast strokes (usually with a
dark outline or shadow). A white top-hat keeps structures thinner than its
kernel that stand out from their surroundings, so flat bright areas (sky,
walls) drop out while letter strokes stay. The detector compares these masks
over time; the line finder projects them to find text lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MaskParams:
    """Thresholds of the stroke mask (see configs/default.toml, [detector])."""

    bright_min: int = 170  # a stroke pixel is at least this bright (0-255)
    contrast_min: int = 50  # and this much brighter than its neighbourhood (top-hat)
    stroke_max: int = 9  # top-hat kernel in pixels, wider than the widest stroke at this scale
    dark_text: bool = False  # also look for dark text on bright plates (black top-hat)


def stroke_mask(luma: np.ndarray, params: MaskParams = MaskParams()) -> np.ndarray:
    """Boolean mask of stroke-like pixels of a 2-D ``uint8`` luma array."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (params.stroke_max, params.stroke_max))
    tophat = cv2.morphologyEx(luma, cv2.MORPH_TOPHAT, kernel)
    mask = (tophat >= params.contrast_min) & (luma >= params.bright_min)
    if params.dark_text:
        blackhat = cv2.morphologyEx(luma, cv2.MORPH_BLACKHAT, kernel)
        mask |= (blackhat >= params.contrast_min) & (luma <= 255 - params.bright_min)
    return mask
