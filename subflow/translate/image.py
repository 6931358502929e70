"""Image translation: HunyuanOCR reads and translates the cue's own crop (English or Chinese targets).

Once per cue, from ``cue.image``: the crop whose read won the merger's vote,
so the translation is of the frame the original text came from. The engine is
the pipeline's own HunyuanOCR engine (``hunyuan``, ``hunyuan-api`` or
``hunyuan-transformers``), asked with the model's official translation prompt;
answers are parsed by :func:`subflow.translate.parse.parse_image_answer`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engines import Engine, EngineError
from ..records import Cue, Task
from .base import Translation, Translator
from .glossary import Glossary
from .lang import is_chinese_simplified
from .parse import parse_image_answer

HUNYUAN_ENGINES = ("hunyuan", "hunyuan-api", "hunyuan-transformers")


def image_serves(lang: str) -> bool:
    """HunyuanOCR translates into English or (simplified) Chinese only."""
    return lang.split("-")[0] == "en" or is_chinese_simplified(lang)


class ImageTranslator(Translator):
    name = "image"

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.batch_size = engine.max_batch
        self.concurrency = max(1, engine.max_inflight)

    def serves(self, lang: str) -> bool:
        return image_serves(lang)

    async def translate(self, cues: Sequence[Cue], target: str, context: Sequence[Cue],
                        glossary: Glossary | None) -> list[Translation]:
        task = Task("translate", "zh" if target.startswith("zh") else "en")
        readable = [cue for cue in cues if cue.image is not None]
        self.usage.requests += len(readable)
        try:
            answers = await self.engine.recognize([cue.image for cue in readable], task) if readable else []
        except EngineError as exc:
            self.usage.failed_requests += len(readable)
            return [Translation(None, reason=f"engine: {exc}") for _ in cues]
        by_cue = dict(zip((id(cue) for cue in readable), answers))
        out = []
        for cue in cues:
            answer = by_cue.get(id(cue))
            if answer is None:
                out.append(Translation(None, reason="no image of the cue (read from a file?)"))
                continue
            parsed = parse_image_answer(answer, cue.lines, target)
            if parsed.text is None:
                out.append(Translation(None, reason="the answer held no translation"))
            else:
                out.append(Translation(parsed.text, ("unsure",) if parsed.unsure else ()))
        return out

    def describe(self) -> str:
        return f"image ({self.engine.name}, HunyuanOCR's translation prompt)"
