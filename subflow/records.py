"""Records that flow between the pipeline stages.

Times are seconds of media time, measured from the container's start (so the
first frame of a file is at 0.0 even when its first pts is not zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

Position = Literal["bottom", "top", "custom"]


@dataclass(frozen=True)
class Box:
    """A pixel rectangle, x1/y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class Task:
    """What the OCR engine is asked to do with a crop.

    ``recognize`` reads the text as it is; ``translate`` reads it and returns it
    translated into ``target`` (an ISO 639-1 code, e.g. "en" or "zh").
    """

    kind: Literal["recognize", "translate"] = "recognize"
    target: str = "en"


RECOGNIZE = Task()


@dataclass(frozen=True)
class Recognition:
    """One engine answer for one crop: text lines top to bottom, and a 0..1 confidence.

    An empty ``lines`` tuple means the engine saw no text.
    """

    lines: tuple[str, ...]
    confidence: float

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Cue:
    """A timed subtitle: the unit every consumer (files, sockets, Ray) receives.

    ``start`` is the time of the first frame showing the text, ``end`` the time
    of the first frame without it. ``region`` names the band it was read from
    and ``box`` is where its text sat in the frame (pixels), so writers can keep
    the position (ASS alignment, JSON). ``wall_start``/``wall_end`` are the
    wall-clock times (Unix seconds) at which the frames were decoded; they
    matter for live sources.

    ``translations`` maps a language tag to the cue's text in that language
    (the timing is the original's, always). ``flags`` are short words saying
    why a cue deserves a look (e.g. "untranslated"). ``image`` is the RGB crop
    whose read won the vote: what a translator or a reviewer looks at; it is
    not part of the JSON shape. ``rejected`` is set on text that was read but judged not to be a
    subtitle (see :mod:`subflow.style`): the reason, kept as evidence in JSON output; subtitle files
    leave such cues out. ``dropped`` holds the lines of a sign read in one crop with the subtitle,
    taken out of its text, with the reason (JSON output keeps them too).
    """

    index: int
    start: float
    end: float
    lines: list[str]
    confidence: float = 1.0
    region: Position = "bottom"
    box: Box | None = None
    wall_start: float | None = None
    wall_end: float | None = None
    translations: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    image_box: Box | None = field(default=None, repr=False, compare=False)  # where ``image`` sits in the frame
    rejected: str = ""  # why this is not a subtitle (scene text, a logo): the style check's evidence
    dropped: list[tuple[str, str]] = field(default_factory=list)  # lines read with it that are not subtitle text, and why

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        """The JSON shape used by the JSON Lines sink and the WebSocket protocol."""
        out: dict = {
            "index": self.index,
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "text": self.text,
            "lines": list(self.lines),
            "confidence": round(self.confidence, 4),
            "region": self.region,
        }
        if self.box is not None:
            out["box"] = [self.box.x0, self.box.y0, self.box.x1, self.box.y1]
        if self.wall_start is not None:
            out["wall_start"] = self.wall_start
        if self.wall_end is not None:
            out["wall_end"] = self.wall_end
        if self.translations:
            out["translations"] = dict(self.translations)
        if self.flags:
            out["flags"] = list(self.flags)
        if self.rejected:
            out["rejected"] = self.rejected
        if self.dropped:
            out["dropped"] = [{"text": text, "rejected": reason} for text, reason in self.dropped]
        return out

    def __str__(self) -> str:
        return f"[{self.start:9.3f} -> {self.end:9.3f}] {self.text!r}"


@dataclass
class CueUpdate:
    """What the merger emits: a cue that is still open (``final=False``, text may
    still change, end not known yet) or closed for good (``final=True``).

    ``extract()`` yields only finals; live consumers also show partials.
    A ``clear`` update (``cue is None``) says the band went blank.
    """

    cue: Cue | None
    final: bool
    revision: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def standing(self) -> bool:
        """A final cue that stands: not a clear, not retracted by a later stage (the style check)."""
        return self.final and self.cue is not None and not self.meta.get("retracted")
