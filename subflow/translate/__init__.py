"""Translation: cues in other languages, on exactly the original's timing.

What this subpackage owns: the translators (one small interface, ``base.py``;
image translation by HunyuanOCR from the cue's own crop, ``image.py``; text
translation through an OpenAI-compatible chat endpoint, ``text.py``), the
stage that runs them after the merger (``stage.py``), glossaries
(``glossary.py``), reading their answers (``parse.py``), language tags
(``lang.py``), reading subtitle files back (``readers.py``) and the
``subflow translate`` command (``cli.py``). Stages before it know nothing of
it; it only adds ``translations`` and ``flags`` to final cues.
"""

from __future__ import annotations

from ..config import Config
from ..engines import Engine
from .base import TranslateError, Translation, TranslationStats, Translator, Usage
from .glossary import Glossary, load_glossaries
from .image import HUNYUAN_ENGINES, ImageTranslator, image_serves
from .lang import normalize_tag, parse_languages
from .stage import TranslationStage
from .text import TextTranslator

TRANSLATORS = ("auto", "image", "openai")


def no_translator(lang: str, why: str) -> TranslateError:
    """The one line for a translation request nothing configured can serve: it names the two ways to get one."""
    return TranslateError(
        f"cannot translate into {lang}: {why}. Either read with a HunyuanOCR engine, which translates into en and zh "
        "(--engine hunyuan, hunyuan-api or hunyuan-transformers), or give an OpenAI-compatible endpoint for any "
        "language (--translator-endpoint http://HOST:8000/v1, e.g. vllm serve tencent/Hunyuan-MT-7B)"
    )


def plan_translation(config: Config, images: bool = True) -> dict[str, str]:
    """Which translator serves each target language (``"image"`` or ``"openai"``), checked before any work.

    ``images`` is False when the cues come from a file (no crops to look at).
    ``auto`` takes the endpoint when one is configured, else HunyuanOCR.
    """
    settings = config.translate
    languages = parse_languages(settings.languages)
    if not languages:
        return {}
    if settings.translator not in TRANSLATORS:
        raise TranslateError(f"unknown translator {settings.translator!r}; choose one of: {', '.join(TRANSLATORS)}")
    if config.recognizer.task == "translate":
        raise TranslateError("--translate keeps the original and adds translations; drop --task translate "
                             "(it replaces the original text)")
    engine = config.recognizer.engine
    plan = {}
    for lang in languages:
        if settings.translator == "openai" or (settings.translator == "auto" and settings.endpoint):
            if not settings.endpoint:
                raise no_translator(lang, "--translator openai needs an endpoint")
            plan[lang] = "openai"
        elif not images:
            raise no_translator(lang, "cues read from a file have no image for HunyuanOCR")
        elif engine not in HUNYUAN_ENGINES:
            raise no_translator(lang, f"the {engine!r} engine reads but does not translate, and no offline "
                                      "translation model ships with subflow")
        elif not image_serves(lang):
            raise no_translator(lang, "HunyuanOCR translates into en and zh only")
        else:
            plan[lang] = "image"
    return plan


def build_translators(config: Config, plan: dict[str, str], engine: Engine | None) -> dict[str, Translator]:
    """One translator object per kind in ``plan``, shared by its languages."""
    made: dict[str, Translator] = {}
    out = {}
    for lang, kind in plan.items():
        if kind not in made:
            if kind == "image":
                assert engine is not None
                made[kind] = ImageTranslator(engine)
            else:
                made[kind] = TextTranslator(config.translate)
        out[lang] = made[kind]
    return out


__all__ = [
    "Glossary", "ImageTranslator", "TextTranslator", "TranslateError", "Translation", "TranslationStage",
    "TranslationStats", "Translator", "Usage", "build_translators", "load_glossaries", "normalize_tag",
    "no_translator", "parse_languages", "plan_translation",
]
