"""Which languages each CPU engine reads offline, and how ``--lang`` picks the engine.

The rapid engine's bundled PP-OCRv6 model reads Chinese, Japanese and Latin-script languages:
its embedded dictionary (checked in docs/scripts.md) holds Han, kana, accented Latin and bare
Greek characters, and no Cyrillic, Hangul, Arabic or Thai ones, nor accented Greek. Those scripts are read by the
tesseract engine, with Tesseract's LSTM language data from Debian (``tesseract-ocr-rus`` ...),
one package per language. ``--lang`` names the language on screen; a language the rapid model
cannot read switches the default engine to tesseract.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Language:
    code: str  # what --lang takes (ISO 639-1)
    name: str
    script: str
    tesseract: str  # Tesseract's traineddata name
    rapid: bool  # read by the rapid engine's bundled model

    @property
    def package(self) -> str:
        """The Debian package with this language's Tesseract data."""
        return "tesseract-ocr-" + self.tesseract.replace("_", "-")


LANGUAGES: dict[str, Language] = {
    language.code: language
    for language in (
        Language("en", "English", "Latin", "eng", True),
        Language("zh", "Chinese", "Han", "chi_sim", True),
        Language("ja", "Japanese", "Japanese", "jpn", True),
        Language("fr", "French", "Latin", "fra", True),
        Language("de", "German", "Latin", "deu", True),
        Language("es", "Spanish", "Latin", "spa", True),
        Language("it", "Italian", "Latin", "ita", True),
        Language("pt", "Portuguese", "Latin", "por", True),
        Language("el", "Greek", "Greek", "ell", False),  # the rapid model lacks accented Greek (ά έ ί ό)
        Language("ru", "Russian", "Cyrillic", "rus", False),
        Language("uk", "Ukrainian", "Cyrillic", "ukr", False),
        Language("bg", "Bulgarian", "Cyrillic", "bul", False),
        Language("ko", "Korean", "Hangul", "kor", False),
        Language("ar", "Arabic", "Arabic", "ara", False),
        Language("fa", "Persian", "Arabic", "fas", False),
        Language("th", "Thai", "Thai", "tha", False),
    )
}
# Scripts the rapid model lacks, with the language to suggest for each.
UNREAD_BY_RAPID = ("Cyrillic (--lang ru)", "Hangul (--lang ko)", "Arabic (--lang ar)", "Thai (--lang th)")


class LanguageError(ValueError):
    """A --lang value names no known language; the message lists the known ones."""


def parse_langs(spec: str) -> list[Language]:
    """``"ru"`` or ``"ru+en"`` -> languages; ``""`` -> none (the engine's own default)."""
    codes = [code.strip().lower() for code in spec.replace(",", "+").split("+") if code.strip()]
    unknown = [code for code in codes if code not in LANGUAGES]
    if unknown:
        raise LanguageError(f"unknown language {', '.join(map(repr, unknown))} for --lang; known: {', '.join(LANGUAGES)}")
    return [LANGUAGES[code] for code in codes]


def engine_for(engine: str, spec: str) -> str:
    """The engine that reads ``spec``: the rapid engine gives way to tesseract for scripts its model lacks."""
    langs = parse_langs(spec)
    if engine == "rapid" and any(not language.rapid for language in langs):
        return "tesseract"
    return engine


def tessdata_dirs(configured: str = "") -> list[Path]:
    """Where Tesseract language data may be: the setting, $TESSDATA_PREFIX, then the usual system folders."""
    candidates = [configured, os.environ.get("TESSDATA_PREFIX", ""), "/usr/share/tesseract-ocr/5/tessdata",
                  "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/share/tessdata", "/usr/local/share/tessdata",
                  "/opt/homebrew/share/tessdata"]
    return [Path(c) for c in candidates if c and Path(c).is_dir()]


def installed_tesseract(configured: str = "") -> dict[str, Path]:
    """Tesseract language data found here: traineddata name -> folder (first folder wins)."""
    found: dict[str, Path] = {}
    for folder in tessdata_dirs(configured):
        for path in sorted(folder.glob("*.traineddata")):
            found.setdefault(path.stem, folder)
    return found


def readable(tesseract_ok: bool, traineddata: Iterable[str]) -> list[Language]:
    """Languages readable here: the rapid model's, plus those with Tesseract data (when tesserocr loads)."""
    have = set(traineddata) if tesseract_ok else set()
    return [language for language in LANGUAGES.values() if language.rapid or language.tesseract in have]
