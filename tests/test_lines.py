"""The cheap line finder: synthetic stroke masks with known lines, plus rendered subtitles."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.engine_rapid import render_band
from subflow.lines import LineParams, find_lines, group_into_lines, lines_in_mask, wide_gaps
from subflow.records import Box

# No padding, so boxes can be compared with what was drawn.
TIGHT = LineParams(pad_x=0, pad_y=0)


def glyph_row(mask: np.ndarray, x: int, y: int, count: int, size: int, stroke: int = 3) -> Box:
    """Draw ``count`` hollow square 'glyphs' of side ``size`` from (x, y); return their extent."""
    step = size + size // 3
    for k in range(count):
        x0 = x + k * step
        mask[y : y + size, x0 : x0 + size] = True
        mask[y + stroke : y + size - stroke, x0 + stroke : x0 + size - stroke] = False
    return Box(x, y, x + (count - 1) * step + size, y + size)


def test_blank_and_specks_give_no_lines():
    mask = np.zeros((180, 1280), dtype=bool)
    assert lines_in_mask(mask) == []
    rng = np.random.default_rng(1)
    mask[rng.integers(0, 180, 300), rng.integers(0, 1280, 300)] = True  # isolated pixels
    assert lines_in_mask(mask) == []


def test_one_line_exact_extent():
    mask = np.zeros((180, 1280), dtype=bool)
    drawn = glyph_row(mask, 300, 120, count=8, size=36)
    assert lines_in_mask(mask, TIGHT) == [drawn]


def test_lines_of_different_heights_top_to_bottom_without_cap():
    mask = np.zeros((270, 1920), dtype=bool)
    drawn = [
        glyph_row(mask, 800, 10, count=3, size=40),
        glyph_row(mask, 700, 62, count=10, size=30),
        glyph_row(mask, 850, 104, count=5, size=44),
        glyph_row(mask, 600, 160, count=14, size=26),
        glyph_row(mask, 900, 200, count=2, size=44),
    ]
    assert lines_in_mask(mask, TIGHT) == drawn


def test_off_centre_and_short_lines():
    mask = np.zeros((180, 1280), dtype=bool)
    drawn = glyph_row(mask, 40, 100, count=1, size=36)  # one glyph at the left edge
    assert lines_in_mask(mask, TIGHT) == [drawn]


def test_stacked_strokes_of_one_glyph_make_one_line():
    """三: three thin bars, each thinner than a line, are one glyph."""
    mask = np.zeros((180, 1280), dtype=bool)
    for y in (100, 115, 130):
        mask[y : y + 4, 600:640] = True
    assert lines_in_mask(mask, TIGHT) == [Box(600, 100, 640, 134)]


def test_clutter_is_kept_out_of_the_line():
    mask = np.zeros((180, 1280), dtype=bool)
    drawn = glyph_row(mask, 400, 120, count=10, size=36)
    mask[0:170, 50:60] = True  # a tall bright pole: taller than any line
    for x in range(200, 1000):  # a long thin diagonal line above the text
        mask[10 + (x - 200) // 10 : 12 + (x - 200) // 10, x] = True
    mask[130:134, 1100:1104] = True  # a small blob far to the right at text height
    assert lines_in_mask(mask, TIGHT) == [drawn]


def test_boxes_are_padded_and_clipped_to_the_crop():
    mask = np.zeros((60, 300), dtype=bool)
    glyph_row(mask, 2, 10, count=3, size=40)
    (box,) = lines_in_mask(mask, LineParams(pad_x=0.5, pad_y=0.25))
    assert box == Box(0, 0, 2 + 2 * 53 + 40 + 20, 60)


def test_group_into_lines_joins_words_and_splits_rows():
    words = [
        Box(500, 10, 560, 40), Box(570, 12, 640, 41), Box(300, 60, 400, 85), Box(410, 61, 470, 84),
        Box(1100, 60, 1150, 85),  # same row, far away: a separate line
    ]
    assert group_into_lines(words) == [Box(500, 10, 640, 41), Box(300, 60, 470, 85), Box(1100, 60, 1150, 85)]


@pytest.mark.parametrize("clutter", [False, True])
def test_rendered_bilingual_subtitle(clutter):
    band = render_band(["我们明天早上八点出发", "We leave at eight tomorrow morning"], clutter=clutter, seed=1)
    boxes = find_lines(band)
    # Both lines found in order (clutter may add small extra boxes, which the recogniser drops).
    wide = [b for b in boxes if b.width > 300]
    assert len(wide) == 2
    top, bottom = wide
    assert 60 <= (top.y0 + top.y1) / 2 <= 110 and top.width > 350
    assert 120 <= (bottom.y0 + bottom.y1) / 2 <= 175 and bottom.width > 500
    if not clutter:
        assert len(boxes) == 2


def test_outline_requirement_rejects_plain_bright_shapes():
    """White strokes with no dark rim on a mid-grey wall are not subtitles; with a rim they are."""
    band = np.full((180, 1280, 3), 120, dtype=np.uint8)
    band[100:140, 400:404] = 255  # bright bars, no outline
    band[100:104, 400:440] = 255
    assert find_lines(band) == []
    band[96:144, 700:748] = 0  # the same shape with a black outline
    band[100:140, 704:708] = 255
    band[100:104, 704:744] = 255
    assert len(find_lines(band)) == 1


def test_debris_at_line_ends_is_trimmed_but_dashes_stay():
    """Lit windows chained onto a line end are cut off; a leading dialogue dash is not."""
    mask = np.zeros((180, 1280), dtype=bool)
    drawn = glyph_row(mask, 400, 100, count=6, size=36)
    mask[110:120, drawn.x1 + 30 : drawn.x1 + 40] = True  # a small square after a wide gap
    mask[130:140, drawn.x1 + 50 : drawn.x1 + 60] = True  # and another, chained to it
    assert lines_in_mask(mask, TIGHT) == [drawn]
    mask[116:121, 340:370] = True  # a dash before the text, a space away
    assert lines_in_mask(mask, TIGHT) == [Box(340, drawn.y0, drawn.x1, drawn.y1)]


def test_wide_gaps_finds_the_space_between_cjk_words_only():
    spaced, plain = render_band(["别担心 一切都会好起来的"]), render_band(["别担心一切都会好起来的"])
    (box,) = find_lines(spaced)
    cuts = wide_gaps(spaced[box.y0 : box.y1, box.x0 : box.x1])
    assert len(cuts) == 1
    assert 0.2 < cuts[0] / box.width < 0.35  # after the third of eleven characters
    (box,) = find_lines(plain)
    assert wide_gaps(plain[box.y0 : box.y1, box.x0 : box.x1]) == []


def night_city(seed: int) -> np.ndarray:
    """Lit windows: solid bright squares on a dark facade, which pass every stroke test but thickness."""
    rng = np.random.default_rng(seed)
    band = np.full((180, 1280, 3), 30, dtype=np.uint8)
    for y in range(4, 170, 18):
        for x in range(2, 1270, 16):
            if rng.random() < 0.55:
                side = int(rng.integers(8, 13))
                band[y : y + side, x : x + side] = int(rng.integers(190, 256))
    return band


def test_lit_windows_are_not_lines():
    assert find_lines(night_city(3)) == []
    band = render_band(["午饭后司机在一家小咖啡馆"], background=night_city(3))
    boxes = find_lines(band)
    assert len(boxes) == 1 and boxes[0].width > 400
