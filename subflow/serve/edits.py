"""What an editor can do to cues, as changes for :meth:`Store.edit` (which applies and records them).

Every function here is pure: it takes cue rows (and the video's frame times,
where a time must land on a frame) and returns the rows before and after. A
time an editor gives is snapped to the nearest frame, so cue boundaries stay
frame-exact as the pipeline made them.
"""

from __future__ import annotations

import re
from typing import Any

from .media import ServeError, nearest
from .store import Change

Row = dict[str, Any]


def lines_of(text: str) -> list[str]:
    """An editor's text as cue lines: one per line, padding stripped, blank lines dropped."""
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def _check_times(start: float, end: float) -> None:
    if start < 0:
        raise ServeError(400, "a cue cannot start before the video")
    if end <= start:
        raise ServeError(400, "a cue must end after it starts (at least one frame)")


def snap(times: list[float], t: float) -> float:
    return times[nearest(times, t)] if times else t


def update(row: Row, times: list[float], *, text: str | None = None, start: float | None = None,
           end: float | None = None, translations: dict[str, str] | None = None) -> Change:  # fmt: skip
    """New text, times (snapped to frames) or translations for one cue."""
    after = dict(row)
    if text is not None:
        if not lines_of(text):
            raise ServeError(400, "the text is empty; delete the cue instead")
        after["lines"] = lines_of(text)
    if translations is not None:
        merged = {**row["translations"], **translations}
        after["translations"] = {lang: value for lang, value in merged.items() if value.strip()}
    if start is not None:
        after["start"] = snap(times, start)
    if end is not None:
        after["end"] = snap(times, end)
    _check_times(after["start"], after["end"])
    return Change(row, after)


def nudge(row: Row, times: list[float], edge: str, frames: int) -> Change:
    """Move the start or end by whole frames (the end may reach the end of the video)."""
    if edge not in ("start", "end"):
        raise ServeError(400, f"edge must be start or end, not {edge!r}")
    if not times:
        raise ServeError(409, "the video's frames are not known")
    i = nearest(times, row[edge]) + frames
    if not 0 <= i < len(times):
        raise ServeError(400, "that would move the cue past the video's first or last frame")
    after = {**row, edge: times[i]}
    _check_times(after["start"], after["end"])
    return Change(row, after)


def split(row: Row, times: list[float], next_idx: int, at: float | None = None, caret: int | None = None) -> list[Change]:
    """Two cues from one. The text splits at ``caret`` (a character offset), else between its lines;
    the time at ``at``, else in proportion to the text, else in the middle; always on a frame."""
    text = "\n".join(row["lines"])
    if caret is not None and 0 < caret < len(text):
        first, second = lines_of(text[:caret]), lines_of(text[caret:])
    elif len(row["lines"]) > 1:
        half = len(row["lines"]) // 2
        first, second = row["lines"][:half], row["lines"][half:]
    else:
        first = second = list(row["lines"])
    if not first or not second:
        first = second = list(row["lines"])
    if at is None:
        share = len("".join(first)) / max(1, len("".join(first)) + len("".join(second))) if first != second else 0.5
        at = row["start"] + share * (row["end"] - row["start"])
    at = snap(times, at)
    if not row["start"] < at < row["end"]:
        raise ServeError(400, "a cue splits between its first and last frame; this one is too short")
    head = {**row, "lines": first, "end": at}
    tail = {**row, "lines": second, "start": at, "idx": next_idx}
    tail.pop("id", None)
    return [Change(row, head), Change(None, tail)]


def merge(row: Row, other: Row) -> list[Change]:
    """One cue from two: the earlier one's text then the later one's (once if they are the same)."""
    first, second = sorted((row, other), key=lambda r: (r["start"], r["id"]))
    lines = first["lines"] if first["lines"] == second["lines"] else first["lines"] + second["lines"]
    translations = dict(first["translations"])
    for lang, value in second["translations"].items():
        translations[lang] = value if lang not in translations or translations[lang] == value else f"{translations[lang]}\n{value}"
    merged = {
        **first,
        "lines": lines,
        "start": min(first["start"], second["start"]),
        "end": max(first["end"], second["end"]),
        "confidence": min(first["confidence"], second["confidence"]),
        "translations": translations,
        "flags": sorted(set(first["flags"]) | set(second["flags"])),
    }
    return [Change(first, merged), Change(second, None)]


def add(times: list[float], next_idx: int, start: float, end: float, text: str, region: str = "bottom") -> Change:
    """A new cue the pipeline missed, typed in by the editor."""
    if not lines_of(text):
        raise ServeError(400, "a new cue needs some text")
    if region not in ("bottom", "top", "custom"):
        raise ServeError(400, "region must be bottom, top or custom")
    row = {
        "idx": next_idx,
        "start": snap(times, start),
        "end": snap(times, end),
        "lines": lines_of(text),
        "confidence": 1.0,
        "region": region,
        "box": None,
        "wall_start": None,
        "wall_end": None,
        "translations": {},
        "flags": ["added"],
        "crop": None,
    }
    _check_times(row["start"], row["end"])
    return Change(None, row)


def replace(rows: list[Row], find: str, replacement: str, *, regex: bool = False, case: bool = True,
            lang: str | None = None) -> list[Change]:  # fmt: skip
    """Find and replace in every cue's text (or in its translation into ``lang``)."""
    if not find:
        raise ServeError(400, "nothing to find")
    try:
        pattern = re.compile(find if regex else re.escape(find), 0 if case else re.IGNORECASE)
    except re.error as exc:
        raise ServeError(400, f"bad regular expression: {exc}") from None
    changes = []
    for row in rows:
        if lang is None:
            old = "\n".join(row["lines"])
        elif lang in row["translations"]:
            old = row["translations"][lang]
        else:
            continue
        try:
            new = pattern.sub(replacement if regex else replacement.replace("\\", "\\\\"), old)
        except (re.error, IndexError) as exc:
            raise ServeError(400, f"bad replacement: {exc}") from None
        if new == old:
            continue
        if lang is None:
            if not lines_of(new):
                continue  # a replacement never empties a cue; deleting is its own edit
            changes.append(Change(row, {**row, "lines": lines_of(new)}))
        else:
            changes.append(Change(row, {**row, "translations": {**row["translations"], lang: new}}))
    return changes


def reread(row: Row, lines: list[str], confidence: float, crop: str) -> Change:
    """The text another engine (or another frame) read for this cue, with the crop it read."""
    if not lines:
        raise ServeError(422, "the engine read no text there; try another frame")
    flags = [flag for flag in row["flags"] if flag != "reread"] + ["reread"]
    return Change(row, {**row, "lines": list(lines), "confidence": round(confidence, 4), "crop": crop, "flags": flags})
