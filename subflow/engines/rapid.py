"""The default engine: PP-OCR models run by rapidocr on onnxruntime, on the CPU, offline.

rapidocr's plain pipeline runs a DB text detector on every image, upscaled to
736 px on its short side, then a direction classifier, then the recogniser.
For subtitle bands that is mostly wasted work: the lines are horizontal and
the stroke mask already says where they are. So this engine finds the lines
itself (:mod:`subflow.lines`), cuts them out, and sends all line crops of a
batch to the recogniser in one call. The DB detector is still there, at a
modest resolution, for crops where the cheap finder sees nothing or reads
badly (``detect = "auto"``), or for everything (``detect = "model"``).

Only the models inside the rapidocr wheel are used (PP-OCRv6 small det and
rec; the rec model reads Chinese, English, Japanese and Latin-script
languages, and carries its dictionary), given by path so that rapidocr never
tries to download anything.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config import COUNT, NON_NEGATIVE, SHARE, Limit
from ..lines import LineParams, find_lines, group_into_lines, union_box, wide_gaps
from ..records import Box, Recognition
from .base import CPUEngine, Engine, EngineError, parse_options
from .scriptcheck import ScriptCheck

DETECT_MODES = ("lines", "model", "auto")
RAPID_LIMITS = {
    "threads": NON_NEGATIVE,
    "min_line_confidence": SHARE,
    "min_short_confidence": SHARE,
    "fallback_below": SHARE,
    "det_side": Limit(32),
    "rec_batch": COUNT,
}
log = logging.getLogger("subflow")

# Spaces the rec model puts between CJK characters are artefacts (it never reads the pause
# space of Chinese subtitles; _restore_cjk_spaces puts real ones back from the image).
_CJK = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_CJK_ONLY = re.compile(rf"[{_CJK}0-9]+")
# Japanese lines get no pause spaces: kana such as ま, う, ょ and 。 leave gaps as wide as a pause
# once compression blurs them, and Japanese subtitles rarely part phrases with spaces.
_KANA = re.compile(r"[\u3040-\u30ff]")
_BLOBS = "".join(map(chr, range(0x2580, 0x2600)))  # Unicode block elements and geometric shapes


@dataclass(frozen=True)
class RapidOptions:
    """``[engines.rapid]`` settings."""

    threads: int = 0  # onnxruntime threads per model call; 0 = one per core
    detect: str = "auto"  # "lines" (stroke-mask line finder), "model" (DB detector) or "auto" (lines, model when unsure)
    min_line_confidence: float = 0.6  # lines read below this are dropped (clutter reads as short garbage)
    min_short_confidence: float = 0.9  # and lines of one or two characters below this (clutter's usual read)
    fallback_below: float = 0.85  # auto: crops whose weakest line reads below this are re-detected by the model
    det_side: int = 960  # the DB detector sees crops scaled down to at most this many pixels wide
    rec_batch: int = 8  # line crops per onnxruntime call (similar widths are batched together)
    dark_text: bool = False  # also find dark text on bright plates
    spin: bool = False  # let onnxruntime's threads spin-wait between calls (only faster when OCR has the cores alone)
    rec_model: str = ""  # path of a PP-OCR rec .onnx with an embedded dictionary; "" = the wheel's PP-OCRv6 small
    det_model: str = ""  # path of a PP-OCR det .onnx; "" = the wheel's PP-OCRv6 small
    script_check: bool = True  # warn once when most lines are in a script the model cannot read (Cyrillic ...)
    switch_script: bool = True  # and when Tesseract data reads them, go on with the tesseract engine

    @classmethod
    def parse(cls, options: dict[str, Any]) -> "RapidOptions":
        """Check an ``[engines.rapid]`` table; values from ``--set`` arrive as text and get the field's type."""
        parsed = parse_options(cls, options, "engines.rapid", RAPID_LIMITS)
        if parsed.detect not in DETECT_MODES:
            raise EngineError(f"[engines.rapid] detect must be one of {', '.join(DETECT_MODES)}, got {parsed.detect!r}")
        return parsed


class RapidEngine(CPUEngine):
    """rapidocr recognition on lines found by the stroke mask (or by its DB detector)."""

    name = "rapid"
    max_batch = 8
    max_inflight = 1  # onnxruntime already uses every core; parallel calls would only contend

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.settings = RapidOptions.parse(options)
        self.line_params = LineParams()
        self.script_check = ScriptCheck(switch=self.settings.switch_script)
        self._ocr = None
        self._switched: Engine | None = None  # the tesseract engine the script check switched to
        self._lock = threading.Lock()  # one read at a time (per view, see for_input); also guards the lazy load
        self._det_lock = threading.Lock()  # the DB detector, shared by every view (rapidocr's detector keeps state per call)

    def read(self, crops: list[np.ndarray]) -> list[Recognition]:
        with self._lock:
            if self._switched is not None:
                return self._switched.read(crops)
            mode = self.settings.detect
            boxes = [self._find(crop, "model" if mode == "model" else "lines") for crop in crops]
            results = self._read_lines(crops, boxes, check=True)
            if mode == "auto" and not self.script_check.warned:  # the model cannot read this script: no retries
                unsure = [i for i, r in enumerate(results) if self._worth_detecting(crops[i], boxes[i], r)]
                if unsure:
                    again = self._read_lines([crops[i] for i in unsure], [self._find(crops[i], "model") for i in unsure])
                    for i, result in zip(unsure, again):
                        if result.lines and (not results[i].lines or result.confidence > results[i].confidence):
                            results[i] = result
            if self._switch():
                return self._switched.read(crops)  # this batch too: its reads were dropped as doubtful
            return results

    def _switch(self) -> bool:
        """Go on with the tesseract engine once the script check has named a language (``switch_script``)."""
        language = self.script_check.language
        if language is None or not self.settings.switch_script:
            return False
        from .tesseract import TesseractEngine  # tesseract imports this module

        self._switched = TesseractEngine(lang=language.code)
        return True

    def _worth_detecting(self, crop: np.ndarray, boxes: list[Box], result: Recognition) -> bool:
        """auto: is a weak read worth a second try with the DB detector?

        Not for a crop too thin to hold a line (the band's edge, a rule or a lamp strip, where the
        finder rightly saw nothing): on the generated 720p benchmark such crops were most of the
        fallbacks, the model never found text in them, and they cost a third of all OCR time.
        """
        if _blank(crop) or not _weak(result, self.settings):
            return False
        return bool(boxes) or crop.shape[0] >= 2 * self.line_params.min_height

    def load(self) -> None:
        with self._lock:
            self._model()

    def for_input(self) -> "RapidEngine":
        """A view for one input: the same loaded models, its own script check (kept per input, as
        :meth:`reset` keeps it for one input after another) and its own lock, so that the views of
        different inputs can read at the same time, as engines of their own would (onnxruntime
        sessions and rapidocr's recogniser may be called from several threads)."""
        self.load()
        view = copy.copy(self)
        view.script_check = ScriptCheck(switch=self.settings.switch_script)
        view._switched = None
        view._lock = threading.Lock()
        return view

    def describe(self) -> str:
        rec = Path(self.settings.rec_model).name if self.settings.rec_model else "PP-OCRv6 small"
        threads = self.settings.threads or os.cpu_count()
        switched = f", then {self._switched.describe()} by the script check" if self._switched else ""
        return f"rapid ({rec} rec, detect={self.settings.detect}, {threads} threads){switched}"

    async def aclose(self) -> None:
        with self._lock:
            self._ocr = None
            self._forget_script()

    def reset(self) -> None:
        """Each input gets its own script check (a batch may hold Russian and English videos)."""
        with self._lock:
            self._forget_script()

    def _forget_script(self) -> None:
        self.script_check = ScriptCheck(switch=self.settings.switch_script)
        if self._switched is not None:
            self._switched.close()
            self._switched = None

    def _find(self, crop: np.ndarray, how: str) -> list[Box]:
        """Line boxes of one crop, by the stroke-mask finder or by the DB detector."""
        if _blank(crop):
            return []
        if how == "lines":
            boxes = find_lines(crop, self.line_params)
            if self.settings.dark_text:  # dark text on a bright plate is bright text on a dark one, inverted
                for dark in find_lines(255 - crop, self.line_params):
                    same = [b for b in boxes if _overlap(b, dark)]
                    boxes = [b for b in boxes if b not in same] + [union_box([dark, *same])]
                boxes.sort(key=lambda b: (b.y0, b.x0))
            return boxes
        height, width = crop.shape[:2]
        with self._det_lock:
            result = self._model()(np.ascontiguousarray(crop[:, :, ::-1]), use_det=True, use_cls=False, use_rec=False)
        if result.boxes is None or len(result.boxes) == 0:
            return []
        words = []
        for quad in np.asarray(result.boxes):
            x0, y0 = np.floor(quad.min(axis=0)).astype(int)
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
            words.append(Box(max(0, x0), max(0, y0), min(width, x1), min(height, y1)))
        return group_into_lines(words)

    def _read_lines(self, crops: list[np.ndarray], boxes: list[list[Box]], check: bool = False) -> list[Recognition]:
        """Recognise every line of every crop in one batched call and assemble per-crop answers
        (``check``: also count the reads in the script check)."""
        boxes = [[b for b in crop_boxes if b.width > 0 and b.height > 0] for crop_boxes in boxes]
        images = [[crop[b.y0 : b.y1, b.x0 : b.x1] for b in crop_boxes] for crop, crop_boxes in zip(crops, boxes)]
        flat = [image for crop_images in images for image in crop_images]
        reads = self._restore_cjk_spaces(flat, self._recognize(flat))
        if self.settings.script_check:
            reads = self._check_script([b for crop_boxes in boxes for b in crop_boxes], flat, reads, count=check)
        results, start = [], 0
        for crop_images in images:
            lines = [read for read in reads[start : start + len(crop_images)] if self._plausible(*read)]
            start += len(crop_images)
            if lines:
                results.append(Recognition(tuple(t for t, _ in lines), min(s for _, s in lines)))
            else:
                results.append(Recognition((), 0.0))
        return results

    def _check_script(self, boxes: list[Box], images: list[np.ndarray], reads: list[tuple[str, float]],
                      count: bool) -> list[tuple[str, float]]:
        """Feed the batch's reads to the script check (``count``: first pass only; it warns once); when it
        has found the run to be in a script the model cannot read, drop the reads it doubts instead of
        passing look-alikes on."""
        check = self.script_check
        if count:
            for box, image, (text, score) in zip(boxes, images, reads):
                warning = check.add(box, image, text, score)
                if warning:
                    log.warning(warning)
        return [("", 0.0) if check.doubted(box, text, score) else (text, score) for box, (text, score) in zip(boxes, reads)]

    def _plausible(self, text: str, score: float) -> bool:
        floor = self.settings.min_short_confidence if len(text) <= 2 else self.settings.min_line_confidence
        return bool(text) and score >= floor

    def _recognize(self, images: list[np.ndarray]) -> list[tuple[str, float]]:
        """Batched rec calls on RGB line images: cleaned text and score of each.

        rapidocr pads every line of a call to the call's widest, and the padding changes what the
        model reads. So a line shares a call only with lines of its own padded width: it reads the
        same whatever else is in the batch, and a video gives the same subtitles however its OCR
        calls happen to be grouped (which depends on timing)."""
        padded = [_whole_ratio(np.ascontiguousarray(image[:, :, ::-1])) for image in images]
        groups: dict[int, list[int]] = {}
        for i, image in enumerate(padded):
            ratio = image.shape[1] // image.shape[0]
            groups.setdefault(max(ratio, _NARROWEST_RATIO), []).append(i)
        reads = [("", 0.0)] * len(padded)
        for members in groups.values():
            output = self._model().recognize_txt([padded[i] for i in members])
            for i, text, score in zip(members, output.txts, output.scores):
                reads[i] = (_clean(text), float(score))
        return reads

    def _restore_cjk_spaces(self, images: list[np.ndarray], reads: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """Chinese subtitles use a space as a pause mark (我们先去吃饭 然后再说), which the rec
        model drops. Where a CJK line shows a wide gap, read the pieces between gaps again and
        keep the spaces only if the pieces spell exactly the whole-line read: no text is invented."""
        split = {}
        for i, (image, (text, _)) in enumerate(zip(images, reads)):
            if _CJK_ONLY.fullmatch(text) and len(text) > 1 and not _KANA.search(text):
                cuts = wide_gaps(image, self.line_params)
                if cuts:
                    split[i] = [image[:, a:b] for a, b in zip([0, *cuts], [*cuts, image.shape[1]])]
        if not split:
            return reads
        pieces = self._recognize([piece for group in split.values() for piece in group])
        reads, start = list(reads), 0
        for i, group in split.items():
            words = [text for text, _ in pieces[start : start + len(group)]]
            start += len(group)
            if all(words) and "".join(words) == reads[i][0]:
                reads[i] = (_join_phrases(words), reads[i][1])
        return reads

    def _model(self):
        """The rapidocr pipeline object, built on first use (callers hold ``self._lock``)."""
        if self._ocr is None:
            self._ocr = _build(self.settings)
        return self._ocr


def _build(settings: RapidOptions):
    try:
        import rapidocr
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise EngineError(f"the rapid engine needs rapidocr and onnxruntime: {exc}") from exc
    shipped = Path(rapidocr.__file__).parent / "models"
    det = Path(settings.det_model) if settings.det_model else shipped / "PP-OCRv6_det_small.onnx"
    rec = Path(settings.rec_model) if settings.rec_model else shipped / "PP-OCRv6_rec_small.onnx"
    for path in (det, rec):
        if not path.is_file():
            raise EngineError(f"OCR model not found: {path} (reinstall rapidocr>=3.10 or fix [engines.rapid])")
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.use_cls": False,
        "Det.model_path": str(det),
        "Rec.model_path": str(rec),
        "Rec.rec_batch_num": settings.rec_batch,
        "Det.limit_type": "max",
        "Det.limit_side_len": settings.det_side,
    }
    if settings.threads > 0:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = settings.threads
        params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
    if not settings.spin:
        _stop_spinning()
    return RapidOCR(params=params)


def _stop_spinning() -> None:
    """Have onnxruntime's worker threads sleep between model calls instead of spin-waiting.

    Spinning is fastest when onnxruntime has the cores to itself; here it shares them with the
    video decoder's threads, and the spinning burned their time (measured on the 2-core machine,
    5-minute 720p video: 11 % less CPU and 9-10 % less wall time without it). rapidocr has no
    setting for it, so its session-options factory is wrapped (rapidocr 3.x).
    """
    try:
        from rapidocr.inference_engine.onnxruntime import main as ort_main
    except ImportError:
        return
    session_class = ort_main.OrtInferSession
    factory = session_class._init_sess_opts
    if getattr(factory, "subflow_no_spin", False):
        return

    def options(cfg: Any) -> Any:
        opts = factory(cfg)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    options.subflow_no_spin = True  # type: ignore[attr-defined]
    session_class._init_sess_opts = staticmethod(options)


def _join_phrases(pieces: list[str]) -> str:
    """Join the pieces read between wide gaps, with a space only between pieces of two characters or more:
    a pause space parts phrases, while a one-character piece is a glyph with wide side bearings (Japanese
    kana such as ま, う and 。 leave gaps as wide as a pause once video compression blurs them)."""
    text = pieces[0]
    for before, piece in zip(pieces, pieces[1:]):
        text += (" " if len(before) > 1 and len(piece) > 1 else "") + piece
    return text


def _overlap(a: Box, b: Box) -> bool:
    """Do two boxes share more than half of the smaller one?"""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w > 0 and h > 0 and w * h > 0.5 * min(a.width * a.height, b.width * b.height)


# The rec model's own input is 320x48: lines narrower than this ratio are all padded to it.
_NARROWEST_RATIO = 320 // 48


def _whole_ratio(image: np.ndarray) -> np.ndarray:
    """Pad a line image on the right to a whole-number width:height ratio, with the mid grey that
    rapidocr itself pads narrower lines of a batch with (0 after its normalisation).

    The recogniser's input width follows the batch's widest ratio. onnxruntime keeps state for
    every input shape it has seen, so a continuous range of ratios grew memory without bound
    (measured: +100 MB per 300 random widths, still climbing); whole ratios bound the shapes to a
    few dozen and memory stays flat.
    """
    height, width = image.shape[:2]
    target = -(-width // height) * height
    if target == width:
        return image
    return cv2.copyMakeBorder(image, 0, 0, 0, target - width, cv2.BORDER_CONSTANT, value=(128, 128, 128))


def _blank(crop: np.ndarray) -> bool:
    """Nothing to read: an empty array, or no contrast at all."""
    return crop.size == 0 or int(crop.max()) - int(crop.min()) < 24


def _weak(result: Recognition, settings: RapidOptions) -> bool:
    return not result.lines or result.confidence < settings.fallback_below


def _clean(text: str) -> str:
    """Trim, collapse whitespace, drop spaces between CJK characters, and strip block and
    geometric-shape symbols (■ □ ▌) from the ends: the rec model's reading of lit windows
    and other blobs next to the text, never subtitle text."""
    return _CJK_SPACE.sub("", " ".join(text.split())).strip(_BLOBS + " ")
