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
from .lines import LineParams, find_lines
from .records import Cue, CueUpdate, Position

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
    if cue.image is None or cue.image_box is None or cue.image.size == 0:
        return None
    lines = find_lines(cue.image, _LINES) or find_lines(cue.image, _LINES_NO_OUTLINE)
    if not lines:
        return None
    x0, y0 = cue.image_box.x0, cue.image_box.y0
    left = min(line.x0 for line in lines) + x0
    right = max(line.x1 for line in lines) + x0
    anchor = (min(line.y0 for line in lines) if cue.region == "top" else max(line.y1 for line in lines)) + y0
    return Look(
        centre=(left + right) / 2 / width,
        left=left / width,
        anchor=anchor / height,
        line_height=float(statistics.median(line.height for line in lines)),
    )


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


class StyleFilter:
    """Marks final cues outside the learned subtitle style as rejected (see module doc)."""

    def __init__(self, config: StyleConfig, width: int, height: int, hold: bool) -> None:
        self.config = config
        self.width, self.height = width, height
        self.hold = hold
        self.rejected = 0
        self._style: dict[Position, deque[Look]] = {}
        self._held: list[_Held] = []

    def process(self, updates: Iterable[CueUpdate]) -> Iterator[CueUpdate]:
        for update in updates:
            if not self.config.enabled:
                yield update
                continue
            held = _Held(update)
            if update.final and update.cue is not None and not update.meta.get("retracted"):
                held.look = look_of(update.cue, self.width, self.height)
            if self.hold:
                self._held.append(held)
                if self._learned():
                    yield from self._release()
            else:
                yield self._judged(held)
        yield from self._release()

    def _confident(self, cue: Cue) -> bool:
        letters = sum(char.isalnum() for char in cue.text)
        return cue.confidence >= self.config.learn_confidence and cue.duration >= 0.5 and letters >= 3

    def _style_of(self, position: Position) -> deque[Look]:
        return self._style.setdefault(position, deque(maxlen=self.config.memory))

    def _learned(self) -> bool:
        """Enough confident cues held to judge them (files)."""
        count = sum(
            1
            for held in self._held
            if held.look is not None and held.update.cue is not None and self._confident(held.update.cue)
        )
        return count >= self.config.learn_cues

    def _release(self) -> Iterator[CueUpdate]:
        """Judge the held cues, each against the confident others, learn from them, hand them on."""
        held, self._held = self._held, []
        self.hold = self.hold and not held  # once learned, later cues are judged as they come
        if not held:
            return
        references = [h for h in held if h.look is not None and h.update.cue is not None and self._confident(h.update.cue)]
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
        reason = judge(look, style, self.config, self.height, strict=not self._confident(cue))
        if not reason:
            if self._confident(cue):
                self._style_of(cue.region).append(look)
            return update
        self.rejected += 1
        cue.rejected = f"not in the subtitle style: {reason}"
        return CueUpdate(cue, final=True, revision=update.revision, meta={**update.meta, "retracted": True, "rejected": cue.rejected})
