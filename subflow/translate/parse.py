"""Reading translators' answers: HunyuanOCR's free-form translation answers, and JSON replies keyed by cue id.

HunyuanOCR's translation prompt asks it to read the text and then translate
it, and the layout of the answer is not documented: it may repeat the source
before the translation (alone, on a labelled line, or on the same line with
a dash or brackets), wrap it in markdown, or run on. :func:`parse_image_answer`
keeps the translation and says when it is unsure. The engine's own hygiene
(``subflow.engines.hunyuan_common.clean_answer``) has already removed special
tokens and markdown and collapsed repetition; its confidence says whether it
had to.

:func:`parse_reply` checks a text translator's JSON reply against the cue ids
it was asked for: a reply that drops, merges, adds or renames entries is
rejected as a whole, so a bad reply can never shift text onto the wrong cue.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..merger import similarity
from ..records import Recognition
from .lang import uses_cjk

SURE_CONFIDENCE = 0.9  # the engine's hygiene gives 0.95 to a clean answer, less when it had to repair it

_LABEL = re.compile(
    r"^\s*(?:(?P<source>source(?: text)?|original(?: text)?|text|原文|原句|识别结果|文字内容|提取(?:的)?文字)|"
    r"(?:english |chinese )?translat(?:ion|ed)(?: text| result)?|english|chinese|target|"
    r"(?:英文|中文)?(?:翻译|译文)(?:结果|内容)?|英文|中文)\s*[:：]\s*",
    re.IGNORECASE,
)
_SEPARATORS = " \t-–—:：|/→=>()（）[]【】\"'“”‘’"


def _cjk_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    cjk = sum("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in letters)
    return cjk / len(letters)


@dataclass(frozen=True)
class Parsed:
    """A translation (lines joined by newlines; None when nothing usable came back) and whether to trust it."""

    text: str | None
    unsure: bool = False


def parse_image_answer(answer: Recognition, source_lines: list[str], target: str) -> Parsed:
    """The translation in one HunyuanOCR answer to the translation prompt, for a cue reading ``source_lines``."""
    unsure = answer.confidence < SURE_CONFIDENCE
    sources = [line for line in source_lines if line.strip()]
    joined_source = " ".join(sources)
    kept: list[str] = []
    for raw in answer.lines:
        line = raw.strip()
        label = _LABEL.match(line)
        if label:
            if label.group("source"):
                continue  # "原文：..." is the source, read back
            line = line[label.end() :].strip()
        if any(similarity(line, source) >= 0.8 for source in sources) or similarity(line, joined_source) >= 0.8:
            continue  # the source repeated before (or after) its translation
        for source in sorted(sources, key=len, reverse=True):
            if len(source) >= 2 and source in line:  # "source - translation", "source (translation)"
                line = line.replace(source, " ").strip(_SEPARATORS)
        if line and kept and similarity(line, kept[-1]) >= 0.9:
            unsure = True  # the translation run on into itself
            continue
        if line:
            kept.append(line)
    if not kept:
        return Parsed(None, True)
    limit = max(2, 2 * len(sources))
    if len(kept) > limit:  # ran on past the subtitle
        kept, unsure = kept[:limit], True
    text = "\n".join(kept)
    share = _cjk_share(text)
    if (share < 0.5) if uses_cjk(target) else (share > 0.2):
        unsure = True  # not written in the target's script: probably the source, untranslated
    return Parsed(text, unsure)


class ReplyError(ValueError):
    """A reply that cannot be trusted to line up with the cues it was asked for; the message says why."""


_FENCED = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_reply(content: str, ids: list[str]) -> dict[str, str]:
    """``{"12": "text", "13": "text"}`` -> the text for each asked id, or :class:`ReplyError`.

    Exactly the asked ids, each a non-empty string: a reply that merged two
    cues leaves one empty or missing, one that split a cue adds an id.
    """
    fenced = _FENCED.match(content)
    try:
        data = json.loads(fenced.group(1) if fenced else content)
    except ValueError:
        raise ReplyError("the reply is not JSON" + (" (cut off: max_tokens reached?)" if content.strip() else " (empty)")) from None
    if isinstance(data, dict) and set(data) == {"translations"} and isinstance(data["translations"], dict):
        data = data["translations"]
    if not isinstance(data, dict):
        raise ReplyError("the reply is not a JSON object keyed by cue id")
    keys = [str(key) for key in data]
    missing = [i for i in ids if i not in keys]
    extra = [k for k in keys if k not in ids]
    if missing or extra:
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if extra:
            detail.append(f"unexpected {', '.join(extra[:5])}")
        raise ReplyError(f"the reply's cue ids do not match the request ({'; '.join(detail)})")
    out = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise ReplyError(f"cue {key}: the translation is not a string")
        text = "\n".join(line.strip() for line in value.replace("\\n", "\n").splitlines() if line.strip())
        if not text:
            raise ReplyError(f"cue {key}: the translation is empty (lines merged into another cue?)")
        out[str(key)] = text
    return out
