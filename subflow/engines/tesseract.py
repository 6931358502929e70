"""Tesseract's LSTM recogniser (via tesserocr), on the CPU, offline: the scripts the rapid model lacks.

Cyrillic, Korean, Arabic, Thai (and Japanese, Chinese, Latin) subtitles are read with Debian's
Tesseract language data (``tesseract-ocr-rus`` and so on; nothing is downloaded at run time).
As in the rapid engine, the lines come from the stroke mask (:mod:`subflow.lines`), not from
Tesseract's page layout analysis: each text line is cut out with a margin, inverted (subtitles
are bright on dark; Tesseract was trained on dark print on paper) and read as one line
(page segmentation mode 7). Stroke rows that belong to one line (Thai marks above and below,
Arabic dots) are joined before reading, so their marks stay on the line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..config import NON_NEGATIVE, SHARE
from ..lines import LineParams, find_lines, union_box
from ..records import Box, Recognition
from ..textmask import stroke_mask
from .base import CPUEngine, EngineError, parse_options
from .languages import LanguageError, installed_tesseract, parse_langs
from .rapid import _blank


TESSERACT_LIMITS = {"min_line_confidence": SHARE, "min_short_confidence": SHARE, "margin": NON_NEGATIVE}


@dataclass(frozen=True)
class TesseractOptions:
    """``[engines.tesseract]`` settings."""

    lang: str = ""  # languages on screen, e.g. "ru" or "ru+en"; "" = recognizer.lang (--lang)
    tessdata: str = ""  # folder of *.traineddata; "" = $TESSDATA_PREFIX or the system's
    min_line_confidence: float = 0.6  # lines read below this are dropped (clutter reads as short garbage)
    min_short_confidence: float = 0.8  # and lines of one or two characters below this
    margin: float = 0.35  # the line is cut out with this much margin, x its height (Tesseract needs white space)

    @classmethod
    def parse(cls, options: dict[str, Any]) -> "TesseractOptions":
        return parse_options(cls, options, "engines.tesseract", TESSERACT_LIMITS)


class TesseractEngine(CPUEngine):
    """Tesseract LSTM recognition of the lines found by the stroke mask."""

    name = "tesseract"
    max_batch = 8
    max_inflight = 1  # one Tesseract instance; it is not thread-safe

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.settings = TesseractOptions.parse(options)
        if not self.settings.lang:
            raise EngineError("the tesseract engine needs the language on screen: pass --lang (e.g. --lang ru)")
        try:
            self.languages = parse_langs(self.settings.lang)
        except LanguageError as exc:
            raise EngineError(str(exc)) from None
        self.line_params = LineParams()
        self._api = None
        self._lock = threading.Lock()  # one call at a time; also guards the lazy load

    def read(self, crops: list[np.ndarray]) -> list[Recognition]:
        with self._lock:
            api = self._load()
            results = []
            for crop in crops:
                lines = [(text, score) for text, score in self._read_crop(api, crop) if self._plausible(text, score)]
                if lines:
                    results.append(Recognition(tuple(t for t, _ in lines), min(s for _, s in lines)))
                else:
                    results.append(Recognition((), 0.0))
            return results

    def describe(self) -> str:
        return f"tesseract ({'+'.join(l.tesseract for l in self.languages)}, LSTM)"

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Synchronous :meth:`aclose`."""
        with self._lock:
            if self._api is not None:
                self._api.End()
                self._api = None

    def _lines(self, crop: np.ndarray) -> list[Box]:
        """Text lines of a crop: the stroke finder's rows, with rows that overlap in height joined."""
        if _blank(crop):
            return []
        rows = sorted(find_lines(crop, self.line_params), key=lambda b: b.y0)
        lines: list[list[Box]] = []
        for row in rows:
            if lines and _same_line(union_box(lines[-1]), row):
                lines[-1].append(row)
            else:
                lines.append([row])
        return [union_box(group) for group in lines]

    def _read_crop(self, api: Any, crop: np.ndarray) -> list[tuple[str, float]]:
        """Each line of the crop as black strokes on white (the stroke mask: no outline, shadow or
        background left for Tesseract to misread), cut with a margin that stops halfway to the
        neighbouring lines, and read as one line."""
        boxes = self._lines(crop)
        if not boxes:
            return []
        luma = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        ink = np.where(stroke_mask(luma, self.line_params.mask), 0, 255).astype(np.uint8)
        height, width = ink.shape
        reads = []
        for i, box in enumerate(boxes):
            pad = max(4, round(self.settings.margin * box.height))
            top = max(0, box.y0 - pad, (boxes[i - 1].y1 + box.y0) // 2 if i else 0)
            bottom = min(height, box.y1 + pad, (box.y1 + boxes[i + 1].y0 + 1) // 2 if i + 1 < len(boxes) else height)
            piece = ink[top:bottom, max(0, box.x0 - pad) : min(width, box.x1 + pad)]
            piece = cv2.copyMakeBorder(piece, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
            api.SetImageBytes(piece.tobytes(), piece.shape[1], piece.shape[0], 1, piece.shape[1])
            reads.append((" ".join(api.GetUTF8Text().split()).strip("|_ "), api.MeanTextConf() / 100.0))
        return reads

    def _plausible(self, text: str, score: float) -> bool:
        floor = self.settings.min_short_confidence if len(text) <= 2 else self.settings.min_line_confidence
        return bool(text) and score >= floor

    def _load(self) -> Any:
        if self._api is None:
            self._api = _build(self.settings, [language.tesseract for language in self.languages])
        return self._api


def _same_line(line: Box, row: Box) -> bool:
    """Does ``row`` belong to ``line``: overlapping it in height, or a thin strip of marks touching it?"""
    overlap = min(line.y1, row.y1) - max(line.y0, row.y0)
    if overlap > 0.6 * min(line.height, row.height):  # rows come padded by a quarter line above and below
        return True
    return row.height < 0.5 * line.height and row.y0 - line.y1 < 0.2 * line.height


def _build(settings: TesseractOptions, names: list[str]) -> Any:
    try:
        import tesserocr
    except ImportError as exc:
        raise EngineError(f"the tesseract engine needs tesserocr: pip install 'subflow[scripts]' ({exc})") from None
    found = installed_tesseract(settings.tessdata)
    missing = [name for name in names if name not in found]
    if missing:
        packages = " ".join("tesseract-ocr-" + name.replace("_", "-") for name in missing)
        raise EngineError(f"no Tesseract language data for {', '.join(missing)}: apt-get install {packages} "
                          f"(or set [engines.tesseract] tessdata to a folder with {missing[0]}.traineddata)")
    folder = found[names[0]]
    try:
        return tesserocr.PyTessBaseAPI(path=str(folder), lang="+".join(names), psm=tesserocr.PSM.SINGLE_LINE,
                                       oem=tesserocr.OEM.LSTM_ONLY)
    except RuntimeError as exc:
        raise EngineError(f"Tesseract cannot load {'+'.join(names)} from {folder}: {exc}") from None
