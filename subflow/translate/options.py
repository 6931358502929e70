"""Command-line options for translation, shared by ``extract``, ``live`` and ``translate``."""

from __future__ import annotations

import argparse

from . import TRANSLATORS


def add_translate_options(parser: argparse.ArgumentParser, *, required: bool = False, bilingual: bool = True) -> None:
    group = parser.add_argument_group("translation (docs/translation.md)")
    group.add_argument(
        "--to" if required else "--translate",
        dest="translate",
        required=required,
        metavar="LANGS",
        help="target languages as BCP 47 tags, comma-separated (en, fr,de, pt-BR, zh-Hans): each cue keeps its "
        "original and gains a translation on the same timing; files NAME.LANG.EXT are written beside the original",
    )
    group.add_argument(
        "--translator",
        choices=TRANSLATORS,
        help="image: HunyuanOCR reads and translates each cue's crop (hunyuan engines; en and zh); openai: an "
        "OpenAI-compatible chat endpoint translates the text (any engine, any language); auto (default): openai "
        "when an endpoint is given, else image",
    )
    group.add_argument("--translator-endpoint", metavar="URL", help="API base of the text translator, e.g. http://mt:8000/v1")
    group.add_argument("--translator-model", metavar="NAME", help="model name at the endpoint (default: the first it lists)")
    group.add_argument(
        "--glossary",
        metavar="TSV",
        help="terms to translate one way: a TSV of term, translation, optional note (or LANG=FILE,LANG=FILE); "
        "cues whose translation misses a term are flagged",
    )
    if bilingual:
        group.add_argument(
            "--bilingual",
            action="store_true",
            help="also write NAME.bi.ass (original small above the translation) and NAME.bi.srt/.vtt in those formats "
            "(subflow live: NAME.bi.srt/.vtt only)",
        )


def translate_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The ``[translate]`` settings the flags set (None = not given)."""
    flags = {
        "translate.languages": getattr(args, "translate", None),
        "translate.translator": getattr(args, "translator", None),
        "translate.endpoint": getattr(args, "translator_endpoint", None),
        "translate.model": getattr(args, "translator_model", None),
        "translate.glossary": getattr(args, "glossary", None),
        "translate.bilingual": True if getattr(args, "bilingual", False) else None,
    }
    return {key: value for key, value in flags.items() if value is not None}
