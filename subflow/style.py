"""Subtitle or scene text: learn the video's subtitle style as it goes, reject cues outside it.

A video's subtitles share a style: their lines sit on the same rows, are about as tall as each
other and are centred (or start at one margin). Signs, logos, sparks and lit windows that the
detector and the OCR take for text do not follow it. This stage sits after the merger: for each
final cue it measures the text lines of the crop its winning read came from (the line finder of
:mod:`subflow.lines`, so geometry comes from the letters, not from the band's scenery), learns the
style from confident cues and rejects a cue that misses it on two counts of three (horizontal
place, rows, line height) against most of them, so a minority of scene text cannot move it. One
miss is allowed (a subtitle may move up to clear a caption, or be left-aligned), except for a cue
that shows little of itself (under 3 letters, under 0.5 s or read unsure: a spark read as "V").

A rejected cue still leaves as a final update, retracted (``meta["retracted"]``) with
``meta["rejected"]`` and ``Cue.rejected`` holding the reason: JSON outputs keep it as evidence,
subtitle files and ``extract()`` leave it out.

Lines are judged too: a sign in the band read in one crop with a subtitle is a line of the cue's
text. The lines found in the crop are grouped into blocks (lines stacked close under each other on
one axis, as a subtitle's lines are); when the cue has several and its text lines pair with the
lines found (as many, top to bottom), a block out of the style is dropped from the text, the
evidence kept in ``Cue.dropped``, and a cue the sign's coming or going split from its neighbour
(same text once the sign is gone, no gap between them) is joined to it again. Only single-block
cues teach the style.

Files: updates are held until ``learn_cues`` confident cues have been seen (or the input ends),
then judged; each cue is judged against the others, so the first cues of a video are judged as
fairly as the last. Live input is never held: cues are judged once the style is learned.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .config import StyleConfig
from .lines import LineParams, find_lines, padded, union_box
from .merger import normalize
from .records import Box, Cue, CueUpdate, Position

_LINES = LineParams(pad_x=0, pad_y=0)
_LINES_NO_OUTLINE = LineParams(pad_x=0, pad_y=0, dark_max=0)


@dataclass(frozen=True)
class Look:
    """Where a cue's text sits and how tall its lines are: the style check's evidence."""

    centre: float  # the text's horizontal centre, as a share of the frame width
    left: float  # its left edge, as a share of the frame width
    anchor: float  # the edge subtitles line up on (bottom band: the lowest line's bottom), share of the height
    line_height: float  # median height of its lines, pixels


def look_of(cue: Cue, width: int, height: int) -> Look | None:
    """The geometry of ``cue``'s text lines in the frame, or None when it cannot be measured."""
    lines = found_lines(cue)
    return _look(lines, cue.region, width, height) if lines else None


def found_lines(cue: Cue) -> list[Box]:
    """The text lines of the crop ``cue``'s winning read came from, in frame pixels, top to bottom
    (the order in which the line finder hands them to the OCR)."""
    if cue.image is None or cue.image_box is None or cue.image.size == 0:
        return []
    lines = find_lines(cue.image, _LINES) or find_lines(cue.image, _LINES_NO_OUTLINE)
    x0, y0 = cue.image_box.x0, cue.image_box.y0
    return [Box(line.x0 + x0, line.y0 + y0, line.x1 + x0, line.y1 + y0) for line in lines]


def _look(lines: list[Box], region: Position, width: int, height: int) -> Look:
    left = min(line.x0 for line in lines)
    right = max(line.x1 for line in lines)
    anchor = min(line.y0 for line in lines) if region == "top" else max(line.y1 for line in lines)
    return Look(
        centre=(left + right) / 2 / width,
        left=left / width,
        anchor=anchor / height,
        line_height=float(statistics.median(line.height for line in lines)),
    )


def blocks_of(lines: list[Box], config: StyleConfig, width: int) -> list[list[int]]:
    """The lines (indices, top to bottom) grouped into blocks: a line joins the block of a line above
    it when it sits clearly lower, at most ``_STACK_GAP`` line heights under it, centred on the same
    axis or starting at the same edge (within ``place_tolerance``), as a subtitle's lines are."""
    tolerance = config.place_tolerance * width
    blocks: list[list[int]] = []
    for k, line in enumerate(lines):
        for block in blocks:
            last = lines[block[-1]]
            lower = line.y0 >= last.y0 + last.height / 2
            close = line.y0 - last.y1 <= _STACK_GAP * max(line.height, last.height)
            aligned = abs((line.x0 + line.x1) - (last.x0 + last.x1)) / 2 <= tolerance or abs(line.x0 - last.x0) <= tolerance
            if lower and close and aligned:
                block.append(k)
                break
        else:
            blocks.append([k])
    return blocks


_STACK_GAP = 0.8  # a subtitle's lines are less than this x their height apart


def judge(look: Look, style: list[Look], config: StyleConfig, height: int, strict: bool = False) -> str:
    """Why ``look`` is not in the style of ``style`` (the looks of known subtitles), or "".

    It is in style when it matches at least half of them one by one (a few signs among the
    references cannot outvote the subtitles); the reason names how it differs from their medians.
    A match allows one difference (a subtitle moved up, a left-aligned one), none when ``strict``:
    a cue that shows little of itself (a character or two, a moment) must sit where subtitles sit;
    its height is not held against it ("no" or "oh" have neither ascenders nor descenders).
    """
    if len(style) < config.min_references:
        return ""
    allowed = 0 if strict else 1
    agree = sum(len(_misses(look, known, config, height, sized=not strict)) <= allowed for known in style)
    if 2 * agree >= len(style):
        return ""
    median = Look(*(statistics.median(getattr(s, name) for s in style) for name in ("centre", "left", "anchor", "line_height")))
    return "; ".join(_misses(look, median, config, height, sized=not strict)) or f"like {agree} of {len(style)} subtitles only"


def _misses(look: Look, known: Look, config: StyleConfig, height: int, sized: bool = True) -> list[str]:
    """How ``look`` differs from ``known``: place, rows and (when ``sized``) line height."""
    misses = []
    if abs(look.centre - known.centre) > config.place_tolerance and abs(look.left - known.left) > config.place_tolerance:
        misses.append(f"centred at {look.centre:.2f} of the width, subtitles at {known.centre:.2f}")
    if abs(look.anchor - known.anchor) * height > config.row_tolerance * known.line_height:
        misses.append(f"lines end at {look.anchor:.2f} of the height, subtitles at {known.anchor:.2f}")
    ratio = look.line_height / max(1.0, known.line_height)
    if sized and not 1 / config.height_ratio <= ratio <= config.height_ratio:
        misses.append(f"lines {look.line_height:.0f} px tall, subtitles {known.line_height:.0f} px")
    return misses


@dataclass
class _Held:
    update: CueUpdate
    look: Look | None = None
    lines: list[Box] | None = None  # the lines found in the cue's crop
    blocks: list[list[int]] | None = None  # ... grouped as subtitle blocks


class StyleFilter:
    """Marks final cues outside the learned subtitle style as rejected, and drops lines out of it
    from the others (see module doc)."""

    def __init__(self, config: StyleConfig, width: int, height: int, hold: bool) -> None:
        self.config = config
        self.width, self.height = width, height
        self.hold = hold
        self.file = hold  # held first: a file, whose finals wait on the next one of their band (``_queued``)
        self.rejected = 0
        self.dropped = 0  # lines dropped from cues' text (signs read with a subtitle)
        self._style: dict[Position, deque[Look]] = {}
        self._held: list[_Held] = []
        self._out: list[CueUpdate] = []  # files: judged updates waiting on the next final of their band

    def process(self, updates: Iterable[CueUpdate]) -> Iterator[CueUpdate]:
        for update in updates:
            if not self.config.enabled:
                yield update
                continue
            held = _Held(update)
            if update.standing:
                held.lines = found_lines(update.cue)
                if held.lines:
                    held.look = _look(held.lines, update.cue.region, self.width, self.height)
                    held.blocks = blocks_of(held.lines, self.config, self.width)
            if self.hold:
                self._held.append(held)
                if self._learned():
                    yield from self._queued(self._release())
            elif self.file:
                yield from self._queued([self._judged(held)])
            else:
                yield self._judged(held)
        yield from self._queued(self._release())
        yield from self._flush()

    def _confident(self, cue: Cue) -> bool:
        letters = sum(char.isalnum() for char in cue.text)
        return cue.confidence >= self.config.learn_confidence and cue.duration >= 0.5 and letters >= 3

    def _teaches(self, held: _Held) -> bool:
        """A confident cue of one block (a cue with a sign in it would teach the sign's place)."""
        cue = held.update.cue
        return held.look is not None and cue is not None and self._confident(cue) and len(held.blocks or ()) == 1

    def _style_of(self, position: Position) -> deque[Look]:
        return self._style.setdefault(position, deque(maxlen=self.config.memory))

    def _learned(self) -> bool:
        """Enough confident cues held to judge them (files)."""
        return sum(1 for held in self._held if self._teaches(held)) >= self.config.learn_cues

    def _release(self) -> Iterator[CueUpdate]:
        """Judge the held cues, each against the confident others, learn from them, hand them on."""
        held, self._held = self._held, []
        self.hold = self.hold and not held  # once learned, later cues are judged as they come
        if not held:
            return
        references = [h for h in held if self._teaches(h)]
        learned = {position: list(style) for position, style in self._style.items()}
        for item in held:
            if item.look is None or item.update.cue is None:
                yield item.update
                continue
            position = item.update.cue.region
            others = [r.look for r in references if r is not item and r.update.cue.region == position]  # type: ignore[union-attr]
            yield self._verdict(item, learned.get(position, []) + others)

    def _judged(self, held: _Held) -> CueUpdate:
        if held.look is None or held.update.cue is None:
            return held.update
        return self._verdict(held, list(self._style_of(held.update.cue.region)))

    def _verdict(self, held: _Held, style: list) -> CueUpdate:
        update, look, cue = held.update, held.look, held.update.cue
        assert look is not None and cue is not None
        strict = not self._confident(cue)
        self._drop_lines(held, style, strict)
        look = held.look  # the kept lines' look, when a sign was dropped
        assert look is not None
        reason = judge(look, style, self.config, self.height, strict=strict)
        if not reason:
            if self._teaches(held):
                self._style_of(cue.region).append(look)
            return update
        self.rejected += 1
        cue.rejected = f"not in the subtitle style: {reason}"
        return CueUpdate(cue, final=True, revision=update.revision, meta={**update.meta, "retracted": True, "rejected": cue.rejected})

    def _drop_lines(self, held: _Held, style: list, strict: bool) -> None:
        """Drop the blocks of a cue's text that are out of the style, when others are in it and the
        text lines pair with the lines found (as many). The cue's look becomes its kept lines'."""
        cue, lines, blocks = held.update.cue, held.lines, held.blocks
        if cue is None or not lines or not blocks or len(blocks) < 2 or len(lines) != len(cue.lines):
            return
        looks = [_look([lines[k] for k in block], cue.region, self.width, self.height) for block in blocks]
        reasons = [judge(look, style, self.config, self.height, strict=strict) for look in looks]
        kept = sorted(k for block, reason in zip(blocks, reasons) if not reason for k in block)
        if not kept or len(kept) == len(lines):
            return
        for block, reason in zip(blocks, reasons):
            if reason:
                cue.dropped.extend((cue.lines[k], f"not in the subtitle style: {reason}") for k in block)
                self.dropped += len(block)
        cue.lines = [cue.lines[k] for k in kept]
        held.lines = [lines[k] for k in kept]
        held.blocks = [list(range(len(kept)))]
        held.look = _look(held.lines, cue.region, self.width, self.height)
        cue.box = union_box(held.lines)  # where the subtitle's text sits, without the sign
        _crop_to(cue, cue.box, held.look.line_height)  # what an image translator or a reviewer sees: the subtitle alone

    def _queued(self, judged: Iterable[CueUpdate]) -> Iterator[CueUpdate]:
        """Files: hold each judged final until the next final of its band, which continues it when a
        dropped sign was all that split them (the same text, no gap between); hand on the rest in order."""
        for update in judged:
            cue = update.cue
            if update.standing:
                assert cue is not None
                last = self._last_final(cue.region)
                if last is not None and _continues(last.cue, cue):  # type: ignore[arg-type]
                    _join(last.cue, cue)  # type: ignore[arg-type]
                    continue
            self._out.append(update)
        while self._out and not self._open(self._out[0]):  # order is kept: nothing passes an open final
            yield self._out.pop(0)

    def _open(self, update: CueUpdate) -> bool:
        """Is ``update`` the last final of its band so far (it may still be continued)?"""
        return update.standing and self._last_final(update.cue.region) is update  # type: ignore[union-attr]

    def _last_final(self, region: Position) -> CueUpdate | None:
        for update in reversed(self._out):
            if update.standing and update.cue.region == region:  # type: ignore[union-attr]
                return update
        return None

    def _flush(self) -> Iterator[CueUpdate]:
        out, self._out = self._out, []
        yield from out


def _crop_to(cue: Cue, box: Box, height: float) -> None:
    """Cut ``cue.image`` down to ``box`` (frame pixels) with the margins the OCR gives line crops
    (shares of the line ``height``)."""
    assert cue.image is not None and cue.image_box is not None
    origin = cue.image_box
    cut = padded(box, LineParams(), origin, line_height=height)
    cue.image = cue.image[cut.y0 - origin.y0 : cut.y1 - origin.y0, cut.x0 - origin.x0 : cut.x1 - origin.x0]
    cue.image_box = cut


def _continues(before: Cue, after: Cue) -> bool:
    """Is ``after`` the rest of ``before``, split off by a sign coming or going with its line?"""
    return (
        (bool(before.dropped) or bool(after.dropped))
        and abs(after.start - before.end) < 1e-6
        and normalize(before.text) == normalize(after.text)
    )


def _join(before: Cue, after: Cue) -> None:
    before.end = after.end
    before.wall_end = after.wall_end
    before.dropped.extend(line for line in after.dropped if line not in before.dropped)
    if before.box is not None and after.box is not None:
        before.box = union_box([before.box, after.box])
