"""Reading subtitle files back into cues (for ``subflow translate``): SRT, WebVTT, ASS and JSON Lines.

What the writers in ``subflow.sinks`` put in is read back: top cues (``{\\an8}``
in SRT and ASS, ``line:0%`` in WebVTT), ASS's play resolution, and for JSON
Lines every field (translations and flags included). Other tools' styling
tags are dropped: a translator gets plain text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import srt

from ..records import Box, Cue
from ..sinks import SinkError, format_for

_ASS_TAGS = re.compile(r"\{[^}]*\}")
_SRT_TAGS = re.compile(r"\{\\[^}]*\}")  # {\an8} and the like; other braces are text
_HTML_TAGS = re.compile(r"</?[a-zA-Z][^>]*>")
_VTT_TIME = re.compile(r"^\s*((?:\d+:)?\d{1,2}:\d{2}\.\d{3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}\.\d{3})(.*)$")


class ReadError(SinkError):
    """A subtitle file that cannot be read; the message names it and says why."""


def read_cues(path: str | Path) -> tuple[list[Cue], str, tuple[int, int] | None]:
    """The cues of a subtitle file, its format name, and (ASS) its play resolution."""
    path = Path(path)
    try:
        fmt = format_for(path)
    except SinkError:
        raise ReadError(f"{path}: not a subtitle file subflow reads (.srt, .vtt, .ass, .jsonl)") from None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from None
    reader = {"srt": _read_srt, "vtt": _read_vtt, "ass": _read_ass, "jsonl": _read_jsonl}[fmt]
    try:
        cues, size = reader(text)
    except (ValueError, KeyError, TypeError, srt.SRTParseError) as exc:
        raise ReadError(f"{path} is not a valid {fmt.upper()} file: {exc}") from None
    return cues, fmt, size


def _cue(index: int, start: float, end: float, text: str, region: str = "bottom") -> Cue:
    lines = [line.strip() for line in text.replace("\u200b", "").split("\n") if line.strip()]
    return Cue(index=index, start=start, end=end, lines=lines, region=region)  # type: ignore[arg-type]


def _region(text: str) -> str:
    """``top`` for text that starts with an ``{\\an8}`` override (SRT as players read it, ASS)."""
    return "top" if re.match(r"^\s*\{[^}]*\\an8", text) else "bottom"


def _read_srt(text: str) -> tuple[list[Cue], None]:
    cues = []
    for number, sub in enumerate(srt.parse(text, ignore_errors=False), 1):
        cues.append(_cue(number, sub.start.total_seconds(), sub.end.total_seconds(),
                         _HTML_TAGS.sub("", _SRT_TAGS.sub("", sub.content)), _region(sub.content)))
    return cues, None


def _seconds(stamp: str) -> float:
    parts = stamp.split(":")
    return sum(float(part) * 60 ** i for i, part in enumerate(reversed(parts)))


def _read_vtt(text: str) -> tuple[list[Cue], None]:
    if not text.lstrip().startswith("WEBVTT"):
        raise ValueError("no WEBVTT header")
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = block.strip("\n").split("\n")
        for i, line in enumerate(lines):
            match = _VTT_TIME.match(line)
            if match:
                start, end, settings = match.groups()
                body = "\n".join(lines[i + 1 :])
                body = _HTML_TAGS.sub("", body).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                region = "top" if re.search(r"\bline:0%", settings) else "bottom"
                cues.append(_cue(len(cues) + 1, _seconds(start), _seconds(end), body, region))
                break
    return cues, None


def _ass_time(stamp: str) -> float:
    hours, minutes, seconds = stamp.strip().split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _ass_text(raw: str) -> str:
    text = raw.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")
    text = _ASS_TAGS.sub("", text.replace("\\{", "\x00").replace("\\}", "\x01"))
    return text.replace("\x00", "{").replace("\x01", "}").replace("\\\u200b", "\\")


def _read_ass(text: str) -> tuple[list[Cue], tuple[int, int] | None]:
    size: dict[str, int] = {}
    fields: list[str] | None = None
    section = ""
    cues = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped.lower()
            continue
        key, _, value = stripped.partition(":")
        if section == "[script info]" and key in ("PlayResX", "PlayResY"):
            size[key] = int(value)
        elif section == "[events]" and key == "Format":
            fields = [name.strip().lower() for name in value.split(",")]
        elif section == "[events]" and key == "Dialogue":
            if fields is None:
                raise ValueError("a Dialogue line before the [Events] Format line")
            values = value.strip().split(",", len(fields) - 1)
            event = dict(zip(fields, values))
            raw = event["text"]
            cues.append(_cue(len(cues) + 1, _ass_time(event["start"]), _ass_time(event["end"]), _ass_text(raw), _region(raw)))
    if fields is None:
        raise ValueError("no [Events] section with a Format line")
    cues.sort(key=lambda cue: cue.start)
    for number, cue in enumerate(cues, 1):
        cue.index = number
    resolution = (size["PlayResX"], size["PlayResY"]) if len(size) == 2 else None
    return cues, resolution


def _read_jsonl(text: str) -> tuple[list[Cue], None]:
    """Every cue record; a translation revision (``"translation": true``, written by ``subflow live``)
    replaces the latest earlier record of its ``index``."""
    cues: list[Cue] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        lines = data.get("lines") or [part for part in str(data.get("text", "")).split("\n")]
        box = data.get("box")
        index = int(data.get("index", number))
        cue = Cue(
            index=index,
            start=float(data["start"]),
            end=float(data["end"]),
            lines=[str(part) for part in lines if str(part).strip()],
            confidence=float(data.get("confidence", 1.0)),
            region=data.get("region", "bottom"),
            box=Box(*box) if box else None,
            wall_start=data.get("wall_start"),
            wall_end=data.get("wall_end"),
            translations=dict(data.get("translations") or {}),
            flags=list(data.get("flags") or []),
        )
        revised = _latest(cues, index) if data.get("translation") else None
        if revised is None:
            cues.append(cue)
        else:
            cues[revised] = cue  # in its place: a revision comes after later cues
    return cues, None


def _latest(cues: list[Cue], index: int) -> int | None:
    """Where in ``cues`` the latest cue numbered ``index`` is (None: not there)."""
    return next((i for i in range(len(cues) - 1, -1, -1) if cues[i].index == index), None)
