"""How fast the rapid engine reads subtitle band crops, per line-finding mode.

Compares, on the same rendered band crops (720p and 1080p band sizes, plain
and cluttered backgrounds, 1-2 lines):

* ``lines``: the cheap stroke-projection line finder + one batched rec call;
* ``model``: rapidocr's DB text detector on each crop + the same batched rec;
* ``rapidocr``: rapidocr's plain pipeline (det + cls + rec) called per crop.

Also prints the character error rate of each, so speed is not bought with
misreads. Run under the bench lock when the figures are to be reported::

    flock /tmp/subflow-bench.lock .venv/bin/python benchmarks/engine_rapid.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"  # Debian fonts-wqy-zenhei
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # Debian fonts-dejavu-core


def is_cjk(text: str) -> bool:
    return any(unicodedata.east_asian_width(ch) in "WF" for ch in text)


def render_band(
    lines: Sequence[str],
    size: tuple[int, int] = (1280, 180),
    *,
    clutter: bool = False,
    x_center: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """An RGB band crop with ``lines`` burned in the way subtitles are: white, black outline,
    stacked from the bottom, centred on ``x_center`` (share of the width)."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = Image.fromarray(_background(width, height, clutter, rng))
    draw = ImageDraw.Draw(image)
    cjk_px = round(height * 0.2)
    y = height - round(height * 0.1)
    for text in reversed(lines):
        px = cjk_px if is_cjk(text) else round(cjk_px * 0.8)
        font = ImageFont.truetype(CJK_FONT if is_cjk(text) else LATIN_FONT, px)
        outline = max(2, px // 14)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=outline)
        x = round(width * x_center - (right - left) / 2) - left
        y -= bottom - top
        draw.text((x, y - top), text, font=font, fill=(255, 255, 255), stroke_width=outline, stroke_fill=(0, 0, 0))
        y -= round(px * 0.3)
    return np.asarray(image)


def _background(width: int, height: int, clutter: bool, rng: np.random.Generator) -> np.ndarray:
    """A dim gradient, or a busy scene: bright and dark shapes, thin bright lines, noise."""
    ramp = np.linspace(30, 90, width, dtype=np.float32)
    base = np.stack([ramp, ramp * 0.8 + 10, ramp * 0.6 + 20], axis=-1)
    base = np.broadcast_to(base, (height, width, 3)).copy()
    if not clutter:
        return base.astype(np.uint8)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(10, width // 4)), y0 + int(rng.integers(5, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    for _ in range(12):
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
        draw.line(points, fill=(235, 235, 235), width=int(rng.integers(1, 4)))
    noisy = np.asarray(image).astype(np.int16) + rng.normal(0, 12, (height, width, 3)).astype(np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)
