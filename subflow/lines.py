"""Where the text lines of a subtitle band crop are, found cheaply.

A neural text detector costs more than recognising the lines it finds, yet
subtitle lines are easy: horizontal rows of bright, high-contrast strokes,
nearly always with a dark outline or shadow. So the stroke mask
(:mod:`subflow.textmask`) is cut into connected components; components that
cannot be glyph parts are dropped (specks, blobs taller than a line, long thin
lines, and, when outlines are asked for, bright shapes with no dark rim);
the rest are chained into lines by vertical overlap and horizontal proximity,
the way a reader's eye does. Chaining components instead of projecting the
whole crop keeps clutter elsewhere in the band from merging lines or widening
them. Lines whose mass is mostly in strokes too thick for their height (lit
windows, lamps) are dropped, and so are small runs of blobs hanging off a
line's ends. What still slips through is caught downstream by the
recogniser's low confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import cv2
import numpy as np

from .records import Box
from .textmask import MaskParams, stroke_mask


@dataclass(frozen=True)
class LineParams:
    """Tuning of the line finder; lengths in pixels of the crop."""

    mask: MaskParams = field(default_factory=lambda: MaskParams(stroke_max=15))
    min_height: int = 8  # a text line is at least this tall
    max_height: float = 0.7  # glyph parts are at most this share of the crop height
    min_area: int = 4  # stroke components smaller than this are specks
    min_fill: float = 0.12  # components bigger than a glyph fill at least this share of their box
    max_thickness: float = 0.45  # strokes are thinner than this x line height (thicker: lit windows, lamps)
    dark_max: int = 90  # outline pixels are at most this bright; 0 = do not require an outline
    outline_share: float = 0.4  # share of a component's rim that must touch outline pixels
    word_gap: float = 1.5  # components further apart than this x line height are not one line
    min_share: float = 0.1  # lines with less than this share of the richest line's strokes are clutter
    pad_y: float = 0.25  # box padding above and below, x line height (the recogniser wants margins)
    pad_x: float = 0.3  # box padding left and right, x line height


def find_lines(rgb: np.ndarray, params: LineParams = LineParams()) -> list[Box]:
    """Boxes of the text lines in an RGB band crop, top to bottom (empty when none)."""
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return lines_in_mask(stroke_mask(luma, params.mask), params, luma=luma)


def lines_in_mask(mask: np.ndarray, params: LineParams = LineParams(), luma: np.ndarray | None = None) -> list[Box]:
    """Line boxes of a boolean stroke mask; with ``luma``, glyphs must also have a dark rim."""
    height, width = mask.shape
    parts = _glyph_parts(mask, params, luma)
    if not parts:
        return []
    groups = _chain([part.box for part in parts], params.word_gap)
    lines = _join_rows(_stack_fragments([union_box(_trim_ends(group)) for group in groups], params.min_height))
    masses, stroked = [], []
    for line in lines:
        inside = [part for part in parts if _inside(part.box, line)]
        masses.append(sum(part.mass for part in inside))
        # Most of a text line's mass is in thin strokes; lit windows and lamps are solid blobs.
        thin = sum(part.mass for part in inside if part.thickness < params.max_thickness * line.height)
        stroked.append(thin >= 0.5 * masses[-1])
    richest = max(masses)
    kept = [
        line
        for line, mass, strokes in zip(lines, masses, stroked)
        if line.height >= params.min_height and mass >= params.min_share * richest and strokes
    ]
    frame = Box(0, 0, width, height)
    return [padded(line, params, frame) for line in sorted(kept, key=lambda b: (b.y0, b.x0))]


def group_into_lines(boxes: Iterable[Box], word_gap: float = 1.5) -> list[Box]:
    """Join word boxes (e.g. from a text detector) into line boxes, top to bottom."""
    return sorted((union_box(group) for group in _chain(list(boxes), word_gap)), key=lambda b: (b.y0, b.x0))


def wide_gaps(rgb: np.ndarray, params: LineParams = LineParams(), share: float = 0.35) -> list[int]:
    """Columns in the middle of the gaps between a line crop's glyphs that are wider than
    ``share`` x the glyph height: spaces in CJK text, whose glyphs otherwise nearly touch."""
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    line_params = replace(params, max_height=1.0)  # in a line crop, glyphs fill most of the height
    parts = _glyph_parts(stroke_mask(luma, params.mask), line_params, luma)
    if len(parts) < 2:
        return []
    height = float(np.percentile([part.box.height for part in parts], 75))
    columns = np.zeros(luma.shape[1], dtype=np.int8)
    for part in parts:
        columns[part.box.x0 : part.box.x1] = 1
    # Ink narrower than half a glyph (a full-width ？ or ，) sits in a full-width cell whose blank is
    # part of the mark, not a pause: gaps beside such a run do not count.
    runs = _runs(columns)
    wide = [stop - start >= 0.5 * height for start, stop in runs]
    return [
        (stop + start) // 2
        for k, ((_, stop), (start, _)) in enumerate(zip(runs, runs[1:]))
        if start - stop >= share * height and wide[k] and wide[k + 1]
    ]


def _runs(profile: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges where ``profile`` is non-zero."""
    on = np.concatenate([[0], (profile > 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(on))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


class _Part(NamedTuple):
    """A connected component of the stroke mask: its box, pixel count and thickness
    (twice the largest distance from its inside to its edge)."""

    box: Box
    mass: int
    thickness: float


def _glyph_parts(mask: np.ndarray, params: LineParams, luma: np.ndarray | None) -> list[_Part]:
    """The mask's components that can be parts of glyphs."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    x, y, w, h, area = (stats[1:, k] for k in range(5))
    keep = (area >= params.min_area) & (h <= params.max_height * mask.shape[0])
    if not keep.any():
        return []
    glyph = np.median(h[keep])
    keep &= ~((area < params.min_fill * w * h) & (np.maximum(w, h) > 2 * glyph))  # long thin lines
    if luma is not None and params.dark_max > 0:
        keep &= _outlined(mask, labels, count, luma, params)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    deepest = np.zeros(count, dtype=np.float32)
    np.maximum.at(deepest, labels[mask], inside[mask])
    return [
        _Part(Box(int(x[i]), int(y[i]), int(x[i] + w[i]), int(y[i] + h[i])), int(area[i]), 2 * float(deepest[i + 1]))
        for i in np.flatnonzero(keep)
    ]


def _outlined(mask: np.ndarray, labels: np.ndarray, count: int, luma: np.ndarray, params: LineParams) -> np.ndarray:
    """Per component: does enough of its rim touch dark pixels (an outline or shadow)?"""
    near_dark = cv2.dilate((luma <= params.dark_max).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    rim = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    rim_labels = labels[rim]
    total = np.bincount(rim_labels, minlength=count)[1:]
    dark = np.bincount(rim_labels, weights=near_dark[rim], minlength=count)[1:]
    return dark >= params.outline_share * np.maximum(total, 1)


def _chain(boxes: Sequence[Box], word_gap: float) -> list[list[Box]]:
    """Groups of boxes linked by vertical overlap and a small horizontal gap (union-find)."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(boxes)), key=lambda i: boxes[i].x0)
    reach = word_gap * max(box.height for box in boxes)
    for n, i in enumerate(order):
        a = boxes[i]
        for j in order[n + 1 :]:
            b = boxes[j]
            if b.x0 - a.x1 > reach:
                break  # sorted by x0: every later box is further away still
            close = b.x0 - a.x1 <= word_gap * max(a.height, b.height)
            if close and _vertical_overlap(a, b) >= 0.5 * min(a.height, b.height):
                parent[root(j)] = root(i)
    groups: dict[int, list[Box]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(root(i), []).append(box)
    return list(groups.values())


def _trim_ends(parts: list[Box]) -> list[Box]:
    """Drop runs of small blobs hanging off either end of a line after a gap wider than a
    space: lit windows, specks and other debris that chained on. Punctuation sits closer to
    its text, and a dialogue dash is wide and thin, so both stay."""
    core = float(np.percentile([b.height for b in parts], 75))
    clusters: list[list[Box]] = []
    for box in sorted(parts, key=lambda b: b.x0):
        if clusters and box.x0 - max(b.x1 for b in clusters[-1]) <= 0.5 * core:
            clusters[-1].append(box)
        else:
            clusters.append([box])

    def debris(cluster: list[Box]) -> bool:
        return all(b.height < 0.6 * core and b.width <= 1.5 * b.height for b in cluster)

    while len(clusters) > 1 and debris(clusters[0]):
        clusters.pop(0)
    while len(clusters) > 1 and debris(clusters[-1]):
        clusters.pop()
    return [box for cluster in clusters for box in cluster]


def _stack_fragments(lines: list[Box], min_height: int) -> list[Box]:
    """Join lines thinner than ``min_height`` (the strokes of 三, a lone dash) to the nearest line
    above or below that overlaps them horizontally and is close, repeatedly."""
    lines = list(lines)
    while True:
        for i, thin in enumerate(lines):
            if thin.height >= min_height:
                continue
            near = [
                (max(other.y0 - thin.y1, thin.y0 - other.y1), j)
                for j, other in enumerate(lines)
                if j != i and min(thin.x1, other.x1) > max(thin.x0, other.x0)
            ]
            near = [(gap, j) for gap, j in near if gap <= 2 * min_height]
            if near:
                _, j = min(near)
                merged = union_box([thin, lines[j]])
                lines = [line for k, line in enumerate(lines) if k not in (i, j)] + [merged]
                break
        else:
            return lines


def _join_rows(lines: list[Box], reach: float = 3.0) -> list[Box]:
    """Join lines of about the same height that share a row and are less than ``reach`` x their
    height apart: one subtitle row is one line, even where a wide pause (a double space between CJK phrases, the space a
    full-width question mark carries) or a bit of scenery chained to one part split it. Read as
    pieces, a row came out as several lines, its order and spacing lost."""
    lines = sorted(lines, key=lambda b: b.x0)
    joined: list[Box] = []
    for line in lines:
        for k, row in enumerate(joined):
            gap = line.x0 - row.x1
            low, high = sorted((row.height, line.height))
            if gap <= reach * low and low >= 0.75 * high and _vertical_overlap(row, line) >= 0.75 * low:
                joined[k] = union_box([row, line])
                break
        else:
            joined.append(line)
    return joined


def padded(box: Box, params: LineParams, bounds: Box, line_height: float | None = None) -> Box:
    """``box`` with the margins the OCR wants around a line (shares of ``line_height``, by default the
    box's own height), kept inside ``bounds``."""
    height = box.height if line_height is None else line_height
    dy = round(params.pad_y * height)
    dx = round(params.pad_x * height)
    return Box(max(bounds.x0, box.x0 - dx), max(bounds.y0, box.y0 - dy), min(bounds.x1, box.x1 + dx), min(bounds.y1, box.y1 + dy))


def union_box(boxes: Sequence[Box]) -> Box:
    """The smallest box holding all ``boxes``."""
    return Box(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))


def _inside(inner: Box, outer: Box) -> bool:
    return outer.x0 <= inner.x0 and outer.y0 <= inner.y0 and inner.x1 <= outer.x1 and inner.y1 <= outer.y1


def _vertical_overlap(a: Box, b: Box) -> int:
    return max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
