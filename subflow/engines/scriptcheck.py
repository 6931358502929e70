"""Noticing, cheaply, that the subtitles are in a script the rapid engine's model cannot read.

The rapid model has no Cyrillic, Hangul, Arabic or Thai characters. Shown such a line, it reads
nothing, a few characters ("?" for "Где ты был всю ночь?"), or, for capitals, Latin look-alikes
("KPACOTA B A3AX" for "КРАСОТА В ГЛАЗАХ") at a confidence it rarely gives a clean Latin or
Chinese line. So every read of a line of several characters is scored: *unread* when the text
covers far less of the line than its width holds (any script fills at least one character per
line height), or when it is a weak read made only of letters that Cyrillic shares with Latin
capitals. When most lines of a run are unread, the engine says so once, with the ``--lang`` to
pass; where Tesseract language data is installed, a few of the unread lines are tried with each
language, so the message can name the one that reads them; the rapid engine then reads on with
that language (``switch_script``). Otherwise it drops what it reads without near certainty and all
Latin text, so look-alikes ("Het!" for "Нет!") are not written as cues.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..records import Box
from .base import EngineError
from .languages import LANGUAGES, UNREAD_BY_RAPID, Language, installed_tesseract

# Capitals (and digits) that Cyrillic shares with Latin in shape: what an all-caps Russian line becomes.
_LOOKALIKE = re.compile(r"[ABCEHKMOPTXY3460 .,!?:;\-–—'\"]+")


def _lookalike(text: str) -> bool:
    return bool(_LOOKALIKE.fullmatch(text)) and any(ch.isalpha() for ch in text)


@dataclass
class ScriptCheck:
    """Counts unread lines; :meth:`add` returns the warning, once, when most lines are unread."""

    min_lines: int = 4  # lines of several characters seen before judging
    unread_share: float = 0.75  # share of them unread that triggers the warning
    min_confidence: float = 0.6  # reads below this are garbage (the engine drops them)
    min_coverage: float = 0.3  # a read covers at least this many characters per line height of width
    weak_lookalike: float = 0.95  # look-alike reads below this confidence count as unread
    min_ratio: float = 4.0  # lines at least this many heights wide count (a few characters or more)
    keep: int = 4  # unread line images kept for naming the language
    name_confidence: float = 0.75  # a Tesseract language names the script when it reads them this well
    switch: bool = False  # the engine goes on with the named language (the message says so)
    language: Language | None = None  # the language named when the warning went out
    lines: int = 0
    unread: int = 0
    warned: bool = False
    samples: list[np.ndarray] = field(default_factory=list)

    def add(self, box: Box, image: np.ndarray, text: str, score: float) -> str | None:
        """Score one read line; returns the one-line warning the first time the verdict is reached."""
        if self.warned or not self.wide(box):
            return None
        self.lines += 1
        if self.unreadable(box, text, score):
            self.unread += 1
            if len(self.samples) < self.keep:
                self.samples.append(image)
        if self.lines >= self.min_lines and self.suspicious:
            self.warned = True
            self.language = self.name_language()
            return self.message(self.language)
        return None

    @property
    def suspicious(self) -> bool:
        """Most lines seen so far were unread (always, once the warning is out)."""
        return self.unread > 0 and self.unread >= self.unread_share * self.lines

    def wide(self, box: Box) -> bool:
        return box.height > 0 and box.width >= self.min_ratio * box.height

    def unreadable(self, box: Box, text: str, score: float) -> bool:
        """A wide line the model could not read: garbage, too few characters for its width, or weak look-alikes."""
        letters = text.replace(" ", "")
        if score < self.min_confidence or len(letters) < self.min_coverage * box.width / box.height:
            return True
        return _lookalike(text) and score < self.weak_lookalike

    def doubted(self, box: Box, text: str, score: float) -> bool:
        """Should the engine drop this read? Only while most lines are unread: then Latin text is taken for
        look-alikes of the script on screen ("Het!" for "Нет!"), and other text must be near-certain."""
        if not self.suspicious:
            return False
        latin = text.isascii() and any(ch.isalpha() for ch in text)
        return latin or score < self.weak_lookalike or (self.wide(box) and self.unreadable(box, text, score))

    def name_language(self) -> Language | None:
        """The installed Tesseract language that reads the kept unread lines best, if one reads them well
        (the median confidence over the lines: one line cut badly does not spoil the verdict)."""
        from .tesseract import TesseractEngine  # the tesseract engine imports the rapid one, which imports this

        found = installed_tesseract()
        best, best_score = None, 0.0
        for language in LANGUAGES.values():
            if language.rapid or language.tesseract not in found or not self.samples:
                continue
            engine = TesseractEngine(lang=language.code)
            try:
                reads = engine.read(self.samples)
            except EngineError:  # tesserocr missing or unloadable: nothing to name the language with
                return None
            finally:
                engine.close()
            score = float(np.median([r.confidence for r in reads]))
            if score > best_score:
                best, best_score = language, score
        return best if best_score >= self.name_confidence else None

    def message(self, language: Language | None) -> str:
        share = f"{self.unread} of {self.lines} subtitle lines"
        if language is not None:
            name = language.name if language.name == language.script else f"{language.name} ({language.script})"
            if self.switch:
                return (f"{share} could not be read: they look like {name}, which the rapid engine's model does not "
                        f"read; reading on with --lang {language.code} (pass it to read the first lines too)")
            return (f"{share} could not be read: they look like {name}, which the rapid engine's model does not "
                    f"read; rerun with --lang {language.code}")
        return (f"{share} could not be read: the script on screen is likely one the rapid engine's model does not "
                f"read (it reads Chinese, Japanese and Latin script; not {', '.join(UNREAD_BY_RAPID)}); pass --lang "
                f"with the language, and install its data if `subflow doctor` does not list it")
