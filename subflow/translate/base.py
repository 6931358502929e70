"""The one interface every translator implements, and what it returns."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import ClassVar

from ..config import ConfigError
from ..records import Cue
from .glossary import Glossary


class TranslateError(ConfigError):
    """A translation request that cannot be served, or a translator that cannot start; one line for the user."""


@dataclass(frozen=True)
class Translation:
    """One cue's text in one language; ``text`` is None when the cue could not be translated (``reason`` says why).

    ``flags`` are short words for the cue's review list: ``unsure`` (the answer
    needed guessing), ``glossary`` (a glossary term is missing).
    """

    text: str | None
    flags: tuple[str, ...] = ()
    reason: str = ""


@dataclass
class Usage:
    """What a translator spent during a run (for the summary)."""

    requests: int = 0  # HTTP requests or engine reads, failed ones included
    failed_requests: int = 0
    bad_replies: int = 0  # replies rejected by the checks (wrong ids, not JSON, empty text)
    splits: int = 0  # batches halved after bad replies
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: "Usage") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class TranslationStats:
    """Per run: how many cue translations came back, which did not, and what they cost."""

    translated: int = 0  # cue x language pairs with a translation
    untranslated: int = 0
    flagged: int = 0  # translated but flagged unsure or missing a glossary term
    seconds: float = 0.0  # translator busy time (summed over overlapping calls)
    usage: Usage = field(default_factory=Usage)
    reasons: dict[str, int] = field(default_factory=dict)  # why cues stayed untranslated

    def summary(self) -> str:
        u = self.usage
        tokens = f", {u.prompt_tokens} + {u.completion_tokens} tokens" if u.prompt_tokens or u.completion_tokens else ""
        out = (f"translate: {self.translated} translated, {self.untranslated} untranslated, {self.flagged} flagged; "
               f"{u.requests} requests ({u.failed_requests} failed, {u.bad_replies} bad replies, {u.splits} splits){tokens}, "
               f"{self.seconds:.1f} s busy")
        if self.reasons:
            top = max(self.reasons, key=self.reasons.get)
            out += f"; untranslated because: {top}"
        return out


class Translator(abc.ABC):
    """Translates batches of cues into one target language.

    ``batch_size`` is how many cues one call should get, ``concurrency`` how
    many calls may run at once. ``translate`` never raises for a bad answer or
    a dead service: those cues come back with ``text=None`` and a reason, so
    the original track is never lost.
    """

    name: ClassVar[str]
    batch_size: int = 10
    concurrency: int = 1

    def __init__(self) -> None:
        self.usage = Usage()

    @abc.abstractmethod
    def serves(self, lang: str) -> bool:
        """Whether this translator can translate into ``lang`` (a BCP 47 tag)."""

    @abc.abstractmethod
    async def translate(self, cues: Sequence[Cue], target: str, context: Sequence[Cue],
                        glossary: Glossary | None) -> list[Translation]:
        """One :class:`Translation` per cue, in order. ``context`` are the cues just before, for meaning only."""

    async def check(self) -> None:
        """Fail now (:class:`TranslateError`) if the translator cannot work at all, e.g. its endpoint is down."""

    async def aclose(self) -> None:
        """Release connections."""

    def describe(self) -> str:
        return self.name
