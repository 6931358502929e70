"""What the three HunyuanOCR engines share: options, prompts, sampling, crop preparation, output hygiene.

The engines differ only in how an answer is generated (vLLM in-process, an
OpenAI-compatible server, plain transformers); everything that decides *what*
is asked and *how the answer is read* lives here, so the three give the same
answer for the same crop.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import json
import math
import re
import types
import typing
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..config import ConfigError, coerce
from ..lines import find_lines
from ..records import Box, Recognition, Task
from .base import Engine, EngineError

DEFAULT_MODEL = "tencent/HunyuanOCR"

# Official prompt wording (model card). Recognition uses the subtitle prompt; translation the
# "read, then translate into X" prompt, which the model supports for English and Chinese targets only.
PROMPTS: dict[str, str] = {
    "recognize": "提取图片中的字幕。",
    "translate_en": "按照阅读顺序，提取图中文字，公式用latex格式表示，表格用markdown格式表示，再将文字内容翻译为英文。",
    "translate_zh": "按照阅读顺序，提取图中文字，公式用latex格式表示，表格用markdown格式表示，再将文字内容翻译为中文。",
}

# Greedy decoding, every value explicit: servers otherwise fall back to the checkpoint's
# generation_config. 1.0 and 1.5 ship different recommended values.
SAMPLING_DEFAULTS: dict[str, dict[str, float | int]] = {
    "1.0": {"temperature": 0.0, "top_p": 1.0, "top_k": 1, "repetition_penalty": 1.0},
    "1.5": {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.08},
}

GRID = 32  # each image side is a multiple of this (patch 16 x spatial merge 2)
BLANK_STD = 2.0  # a crop whose pixels vary less than this is blank: never sent (VLMs invent text on blanks)

# Confidence the hygiene step gives an answer (the model reports none).
CONFIDENCE_CLEAN = 0.95
CONFIDENCE_SUSPECT = 0.4  # repetition was collapsed or the answer hit max_tokens: likely runaway
CONFIDENCE_NONSENSE = 0.1  # mostly symbols / replacement characters
CONFIDENCE_EMPTY = 0.0


@dataclass
class HunyuanOptions:
    """Options every HunyuanOCR engine takes (``[engines.NAME]`` keys; see configs/default.toml)."""

    model: str = DEFAULT_MODEL  # hub id or local directory
    revision: str = ""  # hub revision (commit hash) to pin; "" = the hub's default branch
    version: str = "1.5"  # model version: picks sampling defaults ("1.0" or "1.5")
    max_tokens: int = 96  # subtitles are short; a cap also stops runaway repetition early
    temperature: float | None = None  # None = the version's default (greedy)
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    prompts: dict[str, str] = field(default_factory=dict)  # overrides of PROMPTS, same keys
    min_pixels: int = 512 * 512  # the model's pixel range; smaller crops are upscaled
    max_pixels: int = 2048 * 2048
    tight: bool = True  # crop to the text lines found in the band (width drives cost)
    max_lines: int = 4  # answers with more lines are cut (a subtitle has 1-3)

    @classmethod
    def from_options(cls, engine: str, options: dict[str, Any]) -> "HunyuanOptions":
        """Build from an ``[engines.NAME]`` table, rejecting unknown keys with a clear message."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise EngineError(
                f"engine {engine!r}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        hints = typing.get_type_hints(cls)
        opts = cls(**{key: _coerce(engine, key, value, hints[key]) for key, value in options.items()})
        if opts.version not in SAMPLING_DEFAULTS:
            raise EngineError(f"engine {engine!r}: version must be one of {', '.join(SAMPLING_DEFAULTS)}, got {opts.version!r}")
        unknown_prompts = sorted(set(opts.prompts) - set(PROMPTS))
        if unknown_prompts:
            raise EngineError(f"engine {engine!r}: unknown prompt key(s) {', '.join(unknown_prompts)}; known: {', '.join(PROMPTS)}")
        if opts.max_tokens < 1 or not 0 < opts.min_pixels <= opts.max_pixels:
            raise EngineError(f"engine {engine!r}: need max_tokens >= 1 and 0 < min_pixels <= max_pixels")
        return opts

    def sampling(self) -> "Sampling":
        base = SAMPLING_DEFAULTS[self.version]
        pick = lambda name: base[name] if getattr(self, name) is None else getattr(self, name)  # noqa: E731
        return Sampling(
            temperature=float(pick("temperature")),
            top_p=float(pick("top_p")),
            top_k=int(pick("top_k")),
            repetition_penalty=float(pick("repetition_penalty")),
            max_tokens=self.max_tokens,
        )

    def prompt(self, task: Task) -> str:
        if task.kind == "recognize":
            key = "recognize"
        elif task.kind == "translate":
            if task.target not in ("en", "zh"):
                raise EngineError(f"HunyuanOCR translates into English or Chinese only (target 'en' or 'zh'), not {task.target!r}")
            key = f"translate_{task.target}"
        else:
            raise EngineError(f"unknown task {task.kind!r}")
        return self.prompts.get(key, PROMPTS[key])


def _coerce(engine: str, key: str, value: Any, hint: Any) -> Any:
    """Give a value from the command line (``--set engines.NAME.KEY=VALUE`` arrives as text) its field's type:
    the config's rules (:func:`subflow.config.coerce`), plus what these options add: ``none`` for the
    optional ones, JSON for tables (``engine_args``)."""
    if not isinstance(value, str):
        return value
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if optional:
        hint = next(k for k in typing.get_args(hint) if k is not type(None))
    kind = typing.get_origin(hint) or hint
    text = value.strip()
    if optional and text.lower() in ("", "none"):
        return None
    if kind is dict:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise EngineError(f"engine {engine!r}: option {key} must be a JSON object, got {value!r}")
        return parsed
    try:
        return coerce(text, kind, key, f"engine {engine!r}")
    except ConfigError as exc:
        raise EngineError(str(exc)) from None


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    top_k: int
    repetition_penalty: float
    max_tokens: int


def chat_messages(prompt: str, image_part: dict[str, Any]) -> list[dict[str, Any]]:
    """The official chat form: an empty system message (the model is sensitive to it), then image + text."""
    return [
        {"role": "system", "content": ""},
        {"role": "user", "content": [image_part, {"type": "text", "text": prompt}]},
    ]


# ---------------------------------------------------------------- crop preparation


def grid_size(height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Target (height, width): each a multiple of 32, total pixels within [min_pixels, max_pixels].

    Same rule as the model's image processor, applied here so that what is sent
    is exactly what is encoded (and costed: ViT patches = H/16 * W/16).
    """
    h = max(GRID, round(height / GRID) * GRID)
    w = max(GRID, round(width / GRID) * GRID)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(GRID, math.floor(height / beta / GRID) * GRID)
        w = max(GRID, math.floor(width / beta / GRID) * GRID)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / GRID) * GRID
        w = math.ceil(width * beta / GRID) * GRID
    # Extreme aspect ratios: the 32-px minimum of one side can push the other past the limit.
    if h * w > max_pixels:
        w = max(GRID, max_pixels // h // GRID * GRID)
        h = max(GRID, min(h, max_pixels // w // GRID * GRID))
    return h, w


def text_box(crop: np.ndarray) -> Box | None:
    """The union of the text lines found in ``crop`` (with the line finder's margins), or None."""
    boxes = find_lines(crop)
    if not boxes:
        return None
    return Box(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))


def prepare_crop(crop: np.ndarray, options: HunyuanOptions) -> np.ndarray | None:
    """The RGB image to send for one band crop, or None when the crop is blank.

    Tight around the text lines when the line finder sees them (else the whole
    crop), resized to the 32-pixel grid within the model's pixel limits.
    """
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] == 0 or crop.shape[1] == 0:
        raise EngineError(f"expected an RGB crop of shape (h, w, 3), got {crop.shape}")
    if float(crop.std()) < BLANK_STD:
        return None
    if options.tight:
        box = text_box(crop)
        if box is not None and box.width >= 8 and box.height >= 8:
            tight = crop[box.y0 : box.y1, box.x0 : box.x1]
            if float(tight.std()) >= BLANK_STD:
                crop = tight
    h, w = grid_size(crop.shape[0], crop.shape[1], options.min_pixels, options.max_pixels)
    if (h, w) == crop.shape[:2]:
        return np.ascontiguousarray(crop)
    shrinking = h * w < crop.shape[0] * crop.shape[1]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


# ---------------------------------------------------------------- output hygiene

_SPECIAL_TOKEN = re.compile(r"<[｜|][^<>]{1,40}[｜|]>")
_HTML_TAG = re.compile(r"</?(?:br|p|div|span|b|i|u|strong|em|sup|sub)\b[^>]*>", re.IGNORECASE)
_COORDS = re.compile(r"\(\s*\d+\s*,\s*\d+\s*\)\s*,?\s*")  # text-spotting boxes, e.g. (12,40),(980,96)
_FENCE = re.compile(r"^\s*```\w*\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_BULLET = re.compile(r"^\s*[-*+•]\s+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|~~)(?=\S)(.+?)(?<=\S)\1")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LATEX_INLINE = re.compile(r"\$+([^$]+)\$+")
# A unit of 1-40 characters repeated back to back: runaway decoding. Single characters need a
# long run (legit "哈哈哈", "!!!"), longer units 4+ copies ("ha ha ha" stays).
_REPEAT_LONG = re.compile(r"(.{2,40}?)(?:\s*\1){3,}", re.DOTALL)
_REPEAT_CHAR = re.compile(r"(.)\1{7,}")


@dataclass(frozen=True)
class Answer:
    """What a backend generated for one crop."""

    text: str
    truncated: bool = False  # stopped by max_tokens rather than end-of-sequence


def _has_cjk(text: str) -> bool:
    return any("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in text)


def _is_wordy(ch: str) -> bool:
    return unicodedata.category(ch)[0] in ("L", "N")


def _strip_markdown(line: str) -> str:
    if _TABLE_RULE.match(line):
        return ""
    line = _HEADING.sub("", line)
    line = _BULLET.sub("", line)
    line = _EMPHASIS.sub(r"\2", line)
    line = _LATEX_INLINE.sub(r"\1", line)
    if line.strip().startswith("|") and line.strip().endswith("|"):
        line = " ".join(cell.strip() for cell in line.strip().strip("|").split("|") if cell.strip())
    return line


def _collapse_repeats(text: str) -> tuple[str, bool]:
    collapsed = _REPEAT_CHAR.sub(r"\1\1\1", text)
    collapsed = _REPEAT_LONG.sub(r"\1", collapsed)
    return collapsed, collapsed != text


def _lines_for_target(lines: list[str], task: Task) -> list[str]:
    """Translation answers may carry the source text too: keep the lines written in the target's script."""
    if task.kind != "translate":
        return lines
    wanted = [line for line in lines if _has_cjk(line) == (task.target == "zh")]
    return wanted or lines


def clean_answer(answer: Answer, prompt: str, task: Task, max_lines: int = 4) -> Recognition:
    """Turn a raw model answer into subtitle lines and a confidence.

    Empty or nonsense answers get a low confidence, so the pipeline reads
    another frame of the same segment instead of trusting them.
    """
    text = _SPECIAL_TOKEN.sub("", answer.text).replace("\r\n", "\n").replace("\\n", "\n")
    text = _HTML_TAG.sub("\n", text)
    text = _COORDS.sub("", text)
    text, repeated = _collapse_repeats(text)
    lines: list[str] = []
    for raw in text.split("\n"):
        if _FENCE.match(raw):
            continue
        line = _strip_markdown(raw).strip()
        if line.startswith(prompt):  # prompt echo
            line = line[len(prompt) :].strip()
        if not line or line == prompt:
            continue
        if lines and lines[-1] == line:  # the same line twice in a row is a repetition, not a subtitle
            repeated = True
            continue
        lines.append(line)
    lines = _lines_for_target(lines, task)
    if len(lines) > max_lines:
        lines, repeated = lines[:max_lines], True
    if not lines:
        return Recognition((), CONFIDENCE_EMPTY)
    joined = "".join(lines)
    wordy = sum(_is_wordy(ch) for ch in joined)
    if "\ufffd" in joined or wordy < 0.5 * len(joined.replace(" ", "")):
        return Recognition(tuple(lines), CONFIDENCE_NONSENSE)
    if repeated or answer.truncated:
        return Recognition(tuple(lines), CONFIDENCE_SUSPECT)
    return Recognition(tuple(lines), CONFIDENCE_CLEAN)


# ---------------------------------------------------------------- the shared engine shape


class HunyuanEngine(Engine):
    """Prepares crops, asks the backend, cleans answers; subclasses implement :meth:`_generate`.

    Blank crops are answered here, empty and with zero confidence, without
    reaching the model.
    """

    options_class: type[HunyuanOptions] = HunyuanOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.settings = self.options_class.from_options(self.name, options)
        self.sampling = self.settings.sampling()

    async def recognize(self, crops: Sequence[np.ndarray], task: Task) -> list[Recognition]:
        prompt = self.settings.prompt(task)
        # Off the event loop: finding the text lines costs milliseconds per crop (seconds on noise-like
        # clutter), and the loop also carries vLLM's output handler and the other calls' requests.
        images = await asyncio.to_thread(self._prepare, crops)
        wanted = [image for image in images if image is not None]
        answers = iter(await self._generate(wanted, prompt) if wanted else [])
        out = []
        for image in images:
            if image is None:
                out.append(Recognition((), CONFIDENCE_EMPTY))
            else:
                out.append(clean_answer(next(answers), prompt, task, self.settings.max_lines))
        return out

    def _prepare(self, crops: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        return [prepare_crop(np.asarray(crop), self.settings) for crop in crops]

    @abc.abstractmethod
    async def _generate(self, images: list[np.ndarray], prompt: str) -> list[Answer]:
        """One answer per image, in order (images are RGB, already on the 32-px grid)."""
