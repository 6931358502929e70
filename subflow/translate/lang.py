"""Language tags (BCP 47) as subflow writes them in file names and JSON, and their names for prompts."""

from __future__ import annotations

import re

from ..config import ConfigError

# language[-Script][-REGION | -digits][-variants]: the subset of BCP 47 subtitle tools use.
_TAG = re.compile(r"^([a-zA-Z]{2,3})(?:-([a-zA-Z]{4}))?(?:-([a-zA-Z]{2}|\d{3}))?((?:-[a-zA-Z0-9]{5,8})*)$")

NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish", "fil": "Filipino",
    "fr": "French", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "ms": "Malay",
    "nb": "Norwegian Bokmal", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "yue": "Cantonese",
    "zh": "Chinese",
}
_SCRIPTS = {"Hans": "Simplified Chinese", "Hant": "Traditional Chinese"}
_REGIONS = {"BR": "Brazilian", "PT": "European", "US": "American", "GB": "British", "MX": "Mexican", "TW": "Taiwan",
            "HK": "Hong Kong", "CN": "Mainland China", "CA": "Canadian"}


def normalize_tag(text: str) -> str:
    """``PT_br`` -> ``pt-BR``, ``zh-hans`` -> ``zh-Hans``; a string that is no language tag is a ConfigError."""
    match = _TAG.match(text.strip().replace("_", "-"))
    if not match:
        raise ConfigError(f"{text!r} is not a language tag (BCP 47, e.g. en, fr, pt-BR, zh-Hans)")
    language, script, region, variants = match.groups()
    tag = language.lower()
    if script:
        tag += "-" + script.title()
    if region:
        tag += "-" + region.upper()
    return tag + variants.lower()


def parse_languages(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"fr, de"`` or ``["fr", "de"]`` -> normalised tags, in order, without repeats."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return list(dict.fromkeys(normalize_tag(item) for item in items if str(item).strip()))


def language_name(tag: str) -> str:
    """A name a translation model understands: ``pt-BR`` -> ``Brazilian Portuguese (pt-BR)``."""
    parts = tag.split("-")
    name = NAMES.get(parts[0], parts[0])
    for part in parts[1:]:
        if part in _SCRIPTS:
            name = _SCRIPTS[part]
        elif part in _REGIONS:
            name = f"{_REGIONS[part]} {name}"
    return name if name == tag else f"{name} ({tag})"


def is_chinese_simplified(tag: str) -> bool:
    parts = tag.split("-")
    return parts[0] == "zh" and not ({"Hant", "TW", "HK", "MO"} & set(parts[1:]))


def uses_cjk(tag: str) -> bool:
    """Whether text in this language is written mostly in CJK characters (for answer parsing)."""
    return tag.split("-")[0] in ("zh", "ja", "ko", "yue")
