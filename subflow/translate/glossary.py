"""Glossaries: a TSV of source term, target term and an optional note, sent with each batch and checked.

    # term<TAB>translation<TAB>note (optional)
    林克	Link	the hero; never translate
    海拉鲁	Hyrule

Blank lines and lines starting with ``#`` are skipped. A cue whose source
text holds a term but whose translation lacks the target term is flagged.
Matching is case-insensitive and ignores surrounding whitespace; Latin terms
match whole words only, so "Ann" is not found in "Annual".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError


@dataclass(frozen=True)
class Term:
    source: str
    target: str
    note: str = ""


def _pattern(term: str) -> re.Pattern:
    escaped = re.escape(term.casefold())
    if term[:1].isascii() and term[:1].isalnum():
        escaped = r"(?<!\w)" + escaped
    if term[-1:].isascii() and term[-1:].isalnum():
        escaped += r"(?!\w)"
    return re.compile(escaped)


class Glossary:
    """Terms for one target language."""

    def __init__(self, terms: list[Term]) -> None:
        self.terms = terms
        self._source = [_pattern(t.source) for t in terms]
        self._target = [_pattern(t.target) for t in terms]

    def __len__(self) -> int:
        return len(self.terms)

    @classmethod
    def load(cls, path: str | Path) -> "Glossary":
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(f"glossary not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read glossary {path}: {exc}") from None
        terms = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = [field.strip() for field in line.split("\t")]
            if len(fields) < 2 or not fields[0] or not fields[1] or len(fields) > 3:
                raise ConfigError(f"glossary {path}, line {number}: expected 'term<TAB>translation[<TAB>note]', got {line!r}")
            terms.append(Term(fields[0], fields[1], fields[2] if len(fields) == 3 else ""))
        if not terms:
            raise ConfigError(f"glossary {path} has no terms")
        return cls(terms)

    def found_in(self, source: str) -> list[Term]:
        """The terms that occur in ``source``."""
        folded = source.casefold()
        return [term for term, pattern in zip(self.terms, self._source) if pattern.search(folded)]

    def missing(self, source: str, translation: str) -> list[Term]:
        """Terms of ``source`` whose target term is not in ``translation``."""
        source_folded, folded = source.casefold(), translation.casefold()
        return [
            term
            for term, in_source, in_target in zip(self.terms, self._source, self._target)
            if in_source.search(source_folded) and not in_target.search(folded)
        ]


def load_glossaries(spec: str, languages: list[str]) -> dict[str, Glossary]:
    """``FILE`` (every language) or ``LANG=FILE,LANG=FILE`` -> a glossary per target language."""
    from .lang import normalize_tag

    out: dict[str, Glossary] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        lang, sep, path = item.partition("=")
        if sep and "/" not in lang and "\\" not in lang and len(lang) <= 12:
            tag = normalize_tag(lang)
            if tag not in languages:
                raise ConfigError(f"glossary {path} is for {tag}, which is not a translation target ({', '.join(languages)})")
            out[tag] = Glossary.load(path)
        else:
            glossary = Glossary.load(item)
            for tag in languages:
                out.setdefault(tag, glossary)
    return out
