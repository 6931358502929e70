"""Render test videos with burned-in subtitles and their exact ground-truth SRT.

Every frame is drawn from a seed (backgrounds with numpy/OpenCV, text with
Pillow and real fonts) and streamed straight into libx264, so the same command
always gives the same video, and a two-hour benchmark needs no more memory than
a two-second one. The ground truth comes from the very pts written to the
container: a cue starts at the pts of the first frame that shows it and ends at
the pts of the first frame without it (the stream end for a cue on the last
frame), both relative to the first frame (the container start).

    python samples/generate.py all                 # the committed samples
    python samples/generate.py all --only zh_basic # one of them
    python samples/generate.py bench --duration 300 --height 1080 --out /tmp/bench1080.mp4
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
import srt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SAMPLES_DIR = Path(__file__).resolve().parent
TICKS = 90000  # pts units per second (the MPEG clock); every frame time is a whole tick
TIME_BASE = Fraction(1, TICKS)
TOP_TAG = r"{\an8}"  # SRT convention for a cue shown at the top of the frame

# Fonts are looked up at fixed paths so that renders are reproducible; each
# entry names the Debian package that provides it.
FONTS: dict[str, tuple[tuple[str, ...], str]] = {
    "latin": (("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",), "fonts-dejavu-core"),
    "cjk": (("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",), "fonts-wqy-zenhei"),
    "hangul": (("/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf",), "fonts-nanum"),
}
FONT_PACKAGES = tuple(package for _, package in FONTS.values())
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
# Scripts with a font of their own (Cyrillic is in the Latin font), checked before _CJK.
_SCRIPT_FONTS = ((re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"), "hangul"),)


class GenerateError(RuntimeError):
    """A sample cannot be rendered (missing font, bad arguments); the message says why."""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Style:
    """How a subtitle block looks; sizes are fractions of the frame height.

    ``sizes`` gives the font size of each line of the block (the last value
    repeats), so a bilingual block can have a smaller English line.
    """

    color: tuple[int, int, int] = (255, 255, 255)
    sizes: tuple[float, ...] = (0.055,)
    outline: float = 0.0045
    shadow: bool = True
    margin: float = 0.065  # distance of the block from the frame edge (bottom or top)
    font: str = ""  # a font file instead of the script's default (e.g. a thin face); "" = FONTS


YELLOW = (255, 230, 40)
BILINGUAL = Style(sizes=(0.055, 0.042))


@dataclass(frozen=True)
class Event:
    """One subtitle block on screen from frame ``start`` up to, not including, frame ``end``.

    ``texts`` are the source lines (one per language); each is wrapped to fit
    the frame when rendered, and the ground truth holds the wrapped lines.
    """

    start: int
    end: int
    texts: tuple[str, ...]
    top: bool = False
    style: Style = Style()
    fade: int = 0  # frames of a linear fade in (and out), centred on start (and end): see fade_strength


def fade_strength(event: Event, i: int) -> float:
    """Opacity of ``event`` on frame ``i``: 1 inside [start, end) without a fade; with one, a linear
    ramp over ``fade`` frames that crosses half strength between ``start - 1`` and ``start`` (and
    between ``end - 1`` and ``end``). The ground truth keeps start and end: the first frame at half
    strength or more (legible), the first frame below it (gone)."""
    if not event.fade:
        return 1.0 if event.start <= i < event.end else 0.0
    step = 1 / event.fade
    rise = (i - event.start) * step + 0.5 + step / 2
    fall = (event.end - 1 - i) * step + 0.5 + step / 2
    return float(min(1.0, max(0.0, min(rise, fall))))


def shown_frames(event: Event) -> range:
    """The frames ``event`` is drawn on, fades included."""
    ramp = event.fade // 2  # beyond it the strength is 0
    return range(event.start - ramp, event.end + ramp)


@dataclass(frozen=True)
class Mark:
    """Text in the picture that is not a subtitle: a sign, a watermark, a spark. Drawn on frames
    [start, end) at (x, y) (fractions of the frame: the text's top-left), never in the ground truth."""

    start: int
    end: int
    text: str
    x: float
    y: float
    size: float = 0.04  # font size, fraction of the frame height
    color: tuple[int, int, int] = (245, 245, 245)
    outline: bool = False  # a dark outline like a subtitle's (signs usually have none)


@dataclass(frozen=True)
class Scene:
    """A background shot from frame ``start`` until the next scene (a hard cut)."""

    start: int
    kind: str  # one of BACKDROPS
    seed: int
    shapes: int = 0  # bright moving shapes, about half of them crossing the subtitle band
    lines: int = 0  # thin bright lines sweeping across the lower half
    # Texture pan in whole pixels per frame. Steady sideways pans (or none) keep the committed files
    # small: sub-pixel, diagonal and vertical ones, or panning stripes, cost x264 several times more.
    pan: tuple[int, int] = (0, 0)


@dataclass
class VideoSpec:
    """Everything that determines one video and its ground truth."""

    name: str
    width: int
    height: int
    fps: int  # nominal rate; every frame lasts 1/fps unless vfr_seed is set
    frames: int
    events: list[Event]
    scenes: list[Scene]
    start_offset: float = 0.0  # pts of the first frame, seconds
    vfr_seed: int | None = None  # set: frame durations vary unevenly between 1/60 and 1/15 s
    crf: int = 26
    preset: str = "medium"
    covers: tuple[str, ...] = ()
    lang: str = ""  # the --lang the sample needs ("" = read with the defaults)
    marks: tuple[Mark, ...] = ()  # scene text (signs, watermarks, sparks): drawn, not subtitles

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise GenerateError(f"{self.name}: width and height must be even for yuv420p")
        if self.fps <= 0 or TICKS % self.fps:
            raise GenerateError(f"{self.name}: fps {self.fps} does not divide {TICKS}; use 24, 25, 30, 50 or 60")
        if self.frames < 1:
            raise GenerateError(f"{self.name}: needs at least one frame")
        for ev in self.events:
            shown = shown_frames(ev)
            if not 0 <= shown.start < shown.stop <= self.frames:
                raise GenerateError(
                    f"{self.name}: event {ev.texts!r} spans frames {ev.start}-{ev.end}, outside 0-{self.frames}")
        for pos in (False, True):
            spans = sorted((e.start, e.end) for e in self.events if e.top == pos)
            for (_, end), (start, _) in zip(spans, spans[1:]):
                if start < end:
                    where = "top" if pos else "bottom"
                    raise GenerateError(f"{self.name}: two {where} events overlap at frame {start}")
        if not self.scenes or self.scenes[0].start != 0:
            raise GenerateError(f"{self.name}: the first scene must start at frame 0")


# --------------------------------------------------------------------------- timing


def frame_pts(spec: VideoSpec) -> np.ndarray:
    """Pts (in TICKS) of every frame plus one more entry: the stream end."""
    offset = round(spec.start_offset * TICKS)
    if spec.vfr_seed is None:
        durations = np.full(spec.frames, TICKS // spec.fps, np.int64)
    else:
        rng = np.random.default_rng(spec.vfr_seed)
        choices = np.array([TICKS // 60, TICKS // 30, TICKS // 30, TICKS // 24, TICKS // 20, TICKS // 15], np.int64)
        durations = rng.choice(choices, spec.frames)
        # The muxer takes the stream end from packet durations, which B-frame reordering shuffles;
        # even last frames keep that end equal to the one intended here.
        durations[-8:] = TICKS // spec.fps
    return offset + np.concatenate([[0], np.cumsum(durations)])


# --------------------------------------------------------------------------- text


@lru_cache(maxsize=None)
def font_file(script: str) -> str:
    """Path of the font for ``script`` ("latin" or "cjk"); a clear error names the package if missing."""
    paths, package = FONTS[script]
    for path in paths:
        if Path(path).is_file():
            return path
    raise GenerateError(f"{script} font not found at {', '.join(paths)}; install it with: apt-get install -y {package}")


@lru_cache(maxsize=64)
def _font(script: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_file(script), size)


def _font_for(text: str, size: int) -> ImageFont.FreeTypeFont:
    for pattern, script in _SCRIPT_FONTS:
        if pattern.search(text):
            return _font(script, size)
    return _font("cjk" if _CJK.search(text) else "latin", size)


def _style_font(style: "Style", text: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(style.font, size) if style.font else _font_for(text, size)


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Split a line that is too wide in two, at the break nearest its middle (spaces for Latin)."""
    if font.getlength(text) <= max_width:
        return [text]
    if " " in text and not _CJK.search(text):
        cuts = [i for i, ch in enumerate(text) if ch == " "]
        cut = min(cuts, key=lambda i: abs(i - len(text) / 2))
        return [text[:cut], text[cut + 1 :]]
    cut = len(text) // 2
    return [text[:cut].rstrip(), text[cut:].lstrip()]


def event_lines(event: Event, width: int, height: int) -> list[tuple[str, int]]:
    """The lines drawn for ``event`` with their font sizes in pixels, top to bottom."""
    out: list[tuple[str, int]] = []
    for i, text in enumerate(event.texts):
        size = round(event.style.sizes[min(i, len(event.style.sizes) - 1)] * height)
        for line in _wrap(text, _style_font(event.style, text, size), 0.9 * width):
            out.append((line, size))
    return out


def cue_text(event: Event, width: int, height: int) -> str:
    """Ground-truth text of ``event``: its drawn lines, with the top-position tag when on top."""
    text = "\n".join(line for line, _ in event_lines(event, width, height))
    return TOP_TAG + text if event.top else text


@dataclass(frozen=True)
class Overlay:
    """A rendered subtitle block ready to blend: premultiplied colour and 0..256 alpha."""

    x: int
    y: int
    premul: np.ndarray  # h x w x 3 uint16: colour * alpha
    inv_alpha: np.ndarray  # h x w x 1 uint16: 256 - alpha

    def paint(self, frame: np.ndarray, strength: float = 1.0) -> None:
        h, w = self.inv_alpha.shape[:2]
        region = frame[self.y : self.y + h, self.x : self.x + w]
        if strength >= 1.0:
            region[:] = (self.premul + region.astype(np.uint16) * self.inv_alpha) >> 8
            return
        level = round(256 * strength)  # a fading block: every alpha scaled by the same level
        premul = (self.premul.astype(np.uint32) * level) >> 8
        inv_alpha = 256 - (((256 - self.inv_alpha.astype(np.uint32)) * level) >> 8)
        region[:] = ((premul + region.astype(np.uint32) * inv_alpha) >> 8).astype(np.uint8)


@dataclass(frozen=True)
class PlacedLine:
    """A drawn line and the frame rectangle of its letters, outline included (x1/y1 exclusive)."""

    text: str
    size: int  # font size in pixels
    x0: int
    y0: int
    x1: int
    y1: int


@dataclass(frozen=True)
class Layout:
    """Where a subtitle block sits: its canvas (padded for the shadow) and its lines."""

    x: int
    y: int
    width: int
    height: int
    stroke: int
    lines: tuple[PlacedLine, ...]


def layout(event: Event, width: int, height: int) -> Layout:
    """Place the block centred, ``style.margin`` from the bottom (or top) edge of the frame."""
    style = event.style
    stroke = max(2, round(style.outline * height)) if style.outline > 0 else 0  # 0: no outline
    pad = 4 * stroke
    rows = []
    for text, size in event_lines(event, width, height):
        font = _style_font(style, text, size)
        ascent, descent = font.getmetrics()
        rows.append((text, size, int(font.getlength(text)) + 2 * stroke, ascent + descent + 2 * stroke))
    gaps = [round(0.12 * size) for _, size, _, _ in rows[:-1]] + [0]
    block_w = max(w for _, _, w, _ in rows) + 2 * pad
    block_h = sum(h for _, _, _, h in rows) + sum(gaps) + 2 * pad
    x = (width - block_w) // 2
    margin = round(style.margin * height)
    y = margin - pad if event.top else height - margin - block_h + pad
    if x < 0 or y < 0 or y + block_h > height:
        raise GenerateError(f"subtitle {event.texts!r} does not fit a {width}x{height} frame")
    placed, top = [], y + pad
    for (text, size, w, h), gap in zip(rows, gaps):
        x0 = x + block_w // 2 - w // 2
        placed.append(PlacedLine(text, size, x0, top, x0 + w, top + h))
        top += h + gap
    return Layout(x, y, block_w, block_h, stroke, tuple(placed))


def render_overlay(event: Event, width: int, height: int) -> Overlay:
    """Draw the block with a dark outline and a soft shadow."""
    lay = layout(event, width, height)
    stroke = lay.stroke
    text_layer = Image.new("RGBA", (lay.width, lay.height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(text_layer)
    for line in lay.lines:
        font = _style_font(event.style, line.text, line.size)
        draw.text((lay.width // 2, line.y0 - lay.y + stroke), line.text, font=font,
                  fill=(*event.style.color, 255), anchor="ma", stroke_width=stroke, stroke_fill=(16, 16, 16, 255))
    if event.style.shadow:
        alpha = np.asarray(text_layer.getchannel("A")).astype(np.uint16) * 150 // 255
        offset = max(1, stroke // 2 + 1)
        shifted = np.zeros((lay.height, lay.width, 4), np.uint8)
        shifted[offset:, offset:, 3] = alpha[:-offset, :-offset]
        shadow = Image.fromarray(shifted, "RGBA").filter(ImageFilter.GaussianBlur(stroke))
        text_layer = Image.alpha_composite(shadow, text_layer)
    rgba = np.asarray(text_layer).astype(np.uint16)
    alpha = rgba[:, :, 3:4] + (rgba[:, :, 3:4] > 0)  # 0..255 -> 0..256 so opaque covers fully
    return Overlay(lay.x, lay.y, rgba[:, :, :3] * alpha, 256 - alpha)


# --------------------------------------------------------------------------- backgrounds


def _periodic_field(rng: np.random.Generator, h: int, w: int, beta: float) -> np.ndarray:
    """Smooth random field in 0..1 that tiles seamlessly (1/f^beta noise made with an FFT)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal((h, w))) / f**beta
    spectrum[0, 0] = 0
    field_ = np.fft.irfft2(spectrum, s=(h, w))
    field_ -= field_.min()
    return (field_ / max(field_.max(), 1e-9)).astype(np.float32)


def _colours(rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    return rng.integers(lo, hi, (2, 3)).astype(np.float32)


SHAPE_COLOURS = ((250, 250, 250), (255, 235, 60), (200, 240, 255), (255, 160, 60))
GRAIN = 4  # per-frame noise amplitude of "grain" scenes (grey levels); more would blow the size budget


@dataclass(frozen=True)
class Shape:
    """A bright disc or bar moving sideways at ``speed`` px/frame, wrapping around the frame."""

    x0: float
    y: float
    size: int
    colour: tuple[int, ...]
    speed: float
    round_: bool


@dataclass(frozen=True)
class Sweep:
    """A thin bright line moving across the lower part of the frame."""

    vertical: bool
    p0: float  # start position (x for vertical lines, y for horizontal ones)
    speed: float  # px/frame
    tilt: float  # slant, as a fraction of the frame height
    thickness: int
    level: int  # grey level


class Backdrop:
    """The background of one scene, drawn for any frame of that scene on request."""

    def __init__(self, scene: Scene, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.rng = np.random.default_rng(scene.seed)
        self.scene = scene
        draw = {"plasma": self._plasma, "bright": self._plasma, "grain": self._plasma,
                "stripes": self._stripes, "city": self._city, "plate": self._plate, "grey": self._plate}[scene.kind]
        self.texture = draw()
        self.shapes = [self._shape() for _ in range(scene.shapes)]
        self.sweeps = [self._sweep() for _ in range(scene.lines)]

    # A texture is twice the frame in each direction and periodic, so panning is a slice.
    def _tile(self, small: np.ndarray) -> np.ndarray:
        big = cv2.resize(small, (self.w, self.h), interpolation=cv2.INTER_CUBIC)
        return np.tile(np.clip(big, 0, 255).astype(np.uint8), (2, 2, 1))

    def _plasma(self) -> np.ndarray:
        lh, lw = self.h // 4, self.w // 4
        shape = _periodic_field(self.rng, lh, lw, 1.6)[..., None]
        detail = _periodic_field(self.rng, lh, lw, 1.4)[..., None]
        lo, hi = (150, 250) if self.scene.kind == "bright" else (10, 200)
        c0, c1 = _colours(self.rng, lo, hi)
        img = c0 * (1 - shape) + c1 * shape
        img *= 0.85 + 0.3 * detail
        return self._tile(img)

    def _stripes(self) -> np.ndarray:
        # Periodic in both axes over one frame so the tiled texture has no seams.
        yy, xx = np.mgrid[0 : self.h // 4, 0 : self.w // 4].astype(np.float32)
        kx, ky = self.rng.integers(3, 12), self.rng.integers(1, 6)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * (kx * xx / (self.w // 4) + ky * yy / (self.h // 4)))
        c0, c1 = _colours(self.rng, 20, 230)
        return self._tile(c0 * (1 - wave[..., None]) + c1 * wave[..., None])

    def _city(self) -> np.ndarray:
        """A dark skyline of lit windows: many small bright rectangles, the hardest clutter for a text mask."""
        img = np.zeros((self.h, self.w, 3), np.float32)
        img[:] = self.rng.integers(5, 40, 3)
        cell = max(8, self.h // 40)
        for y in range(0, self.h, cell):
            for x in range(0, self.w, cell):
                if self.rng.random() < 0.45:
                    level = self.rng.choice([90, 160, 230, 250])
                    tint = self.rng.integers(-20, 20, 3)
                    img[y + 2 : y + cell - 3, x + 2 : x + cell - 4] = np.clip(level + tint, 0, 255)
        return np.tile(img.astype(np.uint8), (2, 2, 1))

    def _plate(self) -> np.ndarray:
        """A bright, nearly white plate with soft folds (a lit wall, an apron, snow): white text
        keeps only its outline and shadow against it."""
        lh, lw = self.h // 4, self.w // 4
        folds = _periodic_field(self.rng, lh, lw, 1.8)[..., None]
        low, span = (165, 25) if self.scene.kind == "grey" else (222, 28)  # "grey": a light grey wall
        img = low + span * folds + np.zeros((1, 1, 3), np.float32)
        return self._tile(img)

    def _shape(self) -> Shape:
        in_band = self.rng.random() < 0.6
        y = self.rng.uniform(0.78, 0.95) if in_band else self.rng.uniform(0.05, 0.95)
        size = int(self.rng.uniform(0.03, 0.12) * self.h)
        colour = tuple(int(c) for c in self.rng.choice(SHAPE_COLOURS))
        speed = self.rng.uniform(2, 6) * self.rng.choice([-1, 1]) * self.h / 720
        x0 = self.rng.uniform(0, self.w)
        return Shape(x0, y * self.h, size, colour, speed, round_=bool(self.rng.random() < 0.5))

    def _sweep(self) -> Sweep:
        vertical = bool(self.rng.random() < 0.6)
        speed = self.rng.uniform(2, 8) * self.rng.choice([-1, 1]) * self.h / 720
        tilt = self.rng.uniform(-0.3, 0.3)
        p0 = self.rng.uniform(0, self.w if vertical else self.h)
        return Sweep(vertical, p0, speed, tilt, int(self.rng.integers(1, 3)), int(self.rng.integers(200, 256)))

    def frame(self, k: int) -> np.ndarray:
        """RGB uint8 image of the ``k``-th frame of the scene."""
        ox, oy = (k * self.scene.pan[0]) % self.w, (k * self.scene.pan[1]) % self.h
        img = self.texture[oy : oy + self.h, ox : ox + self.w].copy()
        if self.scene.kind == "grain":
            rng = np.random.default_rng((self.scene.seed, k))
            noise = rng.integers(-GRAIN, GRAIN + 1, (self.h, self.w, 1), np.int16)
            img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        for s in self.shapes:
            x, y = int((s.x0 + s.speed * k) % (self.w + 2 * s.size)) - s.size, int(s.y)
            if s.round_:
                cv2.circle(img, (x, y), s.size // 2, s.colour, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(img, (x, y - s.size // 3), (x + s.size, y + s.size // 3), s.colour, -1)
        # Lines only cross the lower part of the frame: that is where they matter, and lines cost bits.
        top = int(0.55 * self.h)
        for s in self.sweeps:
            colour = (s.level,) * 3
            if s.vertical:
                x = int((s.p0 + s.speed * k) % self.w)
                cv2.line(img, (x, top), (x + int(s.tilt * self.h), self.h), colour, s.thickness, cv2.LINE_AA)
            else:
                y = top + int((s.p0 + s.speed * k) % (self.h - top))
                cv2.line(img, (0, y), (self.w, y + int(0.3 * s.tilt * self.h)), colour, s.thickness, cv2.LINE_AA)
        return img


BACKDROPS = ("plasma", "bright", "grain", "stripes", "city")  # the benchmark's mix; "plate" is for samples


# --------------------------------------------------------------------------- rendering


def iter_frames(spec: VideoSpec) -> Iterator[np.ndarray]:
    """Yield the RGB frames of ``spec`` one at a time (only the current scene and live subtitles are kept)."""
    events = sorted(spec.events, key=lambda e: shown_frames(e).start)
    cuts = [s.start for s in spec.scenes[1:]] + [spec.frames]
    scene_no, backdrop = 0, Backdrop(spec.scenes[0], spec.width, spec.height)
    live: dict[int, Overlay] = {}
    next_event = 0
    ends: dict[int, int] = {}
    marks = {n: render_mark(mark, spec.width, spec.height) for n, mark in enumerate(spec.marks)}
    for i in range(spec.frames):
        while i >= cuts[scene_no]:
            scene_no += 1
            backdrop = Backdrop(spec.scenes[scene_no], spec.width, spec.height)
        while next_event < len(events) and shown_frames(events[next_event]).start == i:
            live[next_event] = render_overlay(events[next_event], spec.width, spec.height)
            ends[next_event] = shown_frames(events[next_event]).stop
            next_event += 1
        for n in [n for n, end in ends.items() if end == i]:
            del live[n], ends[n]
        img = backdrop.frame(i - spec.scenes[scene_no].start)
        for n, mark in enumerate(spec.marks):
            if mark.start <= i < mark.end:
                marks[n].paint(img)
        for n, overlay in live.items():
            overlay.paint(img, fade_strength(events[n], i))
        yield img


def render_mark(mark: Mark, width: int, height: int) -> Overlay:
    """Draw a sign, watermark or spark: plain text (or outlined, when ``mark.outline``), no shadow."""
    size = max(8, round(mark.size * height))
    font = _font_for(mark.text, size)
    stroke = max(1, round(0.003 * height)) if mark.outline else 0
    left, top, right, bottom = font.getbbox(mark.text, stroke_width=stroke)
    layer = Image.new("RGBA", (right + 2, bottom + 2), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((0, 0), mark.text, font=font, fill=(*mark.color, 255), stroke_width=stroke,
                               stroke_fill=(16, 16, 16, 255))
    x, y = round(mark.x * width), round(mark.y * height)
    rgba = np.asarray(layer).astype(np.uint16)[: height - y, : width - x]
    alpha = rgba[:, :, 3:4] + (rgba[:, :, 3:4] > 0)
    return Overlay(x, y, rgba[:, :, :3] * alpha, 256 - alpha)


def ground_truth(spec: VideoSpec, pts: np.ndarray | None = None) -> list[srt.Subtitle]:
    """The cues of ``spec`` timed by frame pts relative to the first frame, in start order."""
    pts = frame_pts(spec) if pts is None else pts
    rows = sorted(spec.events, key=lambda e: (e.start, e.top))
    return [
        srt.Subtitle(index=n, start=_delta(pts[e.start] - pts[0]), end=_delta(pts[e.end] - pts[0]),
                     content=cue_text(e, spec.width, spec.height))
        for n, e in enumerate(rows, start=1)
    ]


def _delta(ticks: int) -> timedelta:
    # SRT keeps milliseconds; round to the nearest one (srt itself would truncate).
    return timedelta(milliseconds=round(int(ticks) * 1000 / TICKS))


def render(spec: VideoSpec, out: Path, progress: Callable[[int], None] | None = None) -> Path:
    """Encode ``spec`` to ``out`` (H.264 yuv420p in MP4) and write the ground truth beside it as .srt."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pts = frame_pts(spec)
    with av.open(str(out), "w", format="mp4") as container:
        container.metadata["comment"] = f"subflow sample {spec.name}"
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = TIME_BASE
        stream.options = {"crf": str(spec.crf), "preset": spec.preset}
        for i, img in enumerate(iter_frames(spec)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = int(pts[i]), TIME_BASE
            frame.duration = int(pts[i + 1] - pts[i])
            container.mux(stream.encode(frame))
            if progress:
                progress(i)
        container.mux(stream.encode())
    out.with_suffix(".srt").write_text(srt.compose(ground_truth(spec, pts)), encoding="utf-8")
    return out


# --------------------------------------------------------------------------- text pools

# Invented everyday lines, (Chinese, English). Chinese subtitles use spaces, not commas.
PAIRS: tuple[tuple[str, str], ...] = (
    ("你今天怎么这么早就回来了", "Why are you back so early today?"),
    ("外面的雨还在下吗", "Is it still raining outside?"),
    ("我们先去吃饭 然后再说", "Let's eat first and talk later."),
    ("这条路我以前走过很多次", "I have walked this road many times before."),
    ("别担心 一切都会好起来的", "Don't worry, everything will be fine."),
    ("火车七点出发 我们还有时间", "The train leaves at seven, we still have time."),
    ("你能帮我拿一下那个箱子吗", "Could you hand me that box?"),
    ("他说明天会给我打电话", "He said he would call me tomorrow."),
    ("这家店的面条特别好吃", "The noodles in this shop are really good."),
    ("我找了一整天也没找到", "I looked all day and couldn't find it."),
    ("你还记得我们第一次见面吗", "Do you remember the first time we met?"),
    ("天快黑了 我们该回家了", "It's getting dark, we should go home."),
    ("这个问题没有那么简单", "This problem is not that simple."),
    ("请把门关上 外面很冷", "Please close the door, it's cold outside."),
    ("我已经等了你半个小时了", "I've been waiting for you for half an hour."),
    ("周末我们去海边看看吧", "Let's go to the seaside this weekend."),
    ("你的字写得真漂亮", "Your handwriting is really beautiful."),
    ("他们明天早上就要搬走了", "They are moving out tomorrow morning."),
    ("我不太明白你的意思", "I don't quite understand what you mean."),
    ("山上的空气比城里好多了", "The air in the mountains is much cleaner."),
    ("小心 地上有水", "Careful, the floor is wet."),
    ("这本书我看了三遍", "I have read this book three times."),
    ("我们的航班推迟了两个小时", "Our flight was delayed by two hours."),
    ("你要喝茶还是咖啡", "Would you like tea or coffee?"),
    ("明天的会议改到下午三点", "Tomorrow's meeting is now at three."),
    ("我把钥匙忘在车里了", "I left my keys in the car."),
    ("听说那座桥已经修好了", "I heard the bridge has been repaired."),
    ("你先休息一下 我来做饭", "You rest for a bit, I'll cook."),
    ("窗外的那棵树开花了", "The tree outside the window is in bloom."),
    ("我们得在天亮之前赶到", "We have to get there before dawn."),
    ("这张照片是去年夏天拍的", "This photo was taken last summer."),
    ("对不起 我来晚了", "Sorry, I'm late."),
    ("你听到那个声音了吗", "Did you hear that sound?"),
    ("河对岸有一座老房子", "There is an old house across the river."),
    ("我们明年再来这里吧", "Let's come back here next year."),
    ("电话又没电了", "The phone is dead again."),
    ("妈妈做的汤最好喝", "Mom's soup is the best."),
    ("那只猫每天都在门口等", "That cat waits at the door every day."),
    ("时间过得真快", "Time really flies."),
    ("我们走这边 比较近", "Let's go this way, it's shorter."),
)
SHORT = (("好", "OK"), ("走吧", "Go!"), ("谢谢", "Thanks."), ("什么？", "What?"), ("等等", "Wait."),
         ("快跑！", "Run!"), ("是你？", "You?"), ("嗯", "Hm."), ("不", "No."), ("对", "Yes."))

# Parallel sentence parts for benchmark variety: "{S} {V} {P} {T}." / "{T}{S}{P}{V}".
_SUBJECTS = (("I", "我"), ("We", "我们"), ("They", "他们"), ("My sister", "我妹妹"), ("The old man", "那个老人"),
             ("Our teacher", "我们老师"), ("Her brother", "她哥哥"), ("The driver", "司机"))
_VERBS = (("waited for an hour", "等了一个小时"), ("lost a blue umbrella", "丢了一把蓝色的雨伞"),
          ("bought fresh bread", "买了新鲜的面包"), ("met an old friend", "遇到了一个老朋友"),
          ("saw a strange light", "看到了一道奇怪的光"), ("read the letter again", "又读了一遍那封信"),
          ("took a few photos", "拍了几张照片"), ("heard the good news", "听到了好消息"))
_PLACES = (("at the station", "在车站"), ("near the river", "在河边"), ("in the library", "在图书馆"),
           ("at the market", "在市场"), ("outside the school", "在学校外面"), ("on the bridge", "在桥上"),
           ("in a small cafe", "在一家小咖啡馆"))
_TIMES = (("yesterday", "昨天"), ("last night", "昨晚"), ("this morning", "今天早上"), ("on Sunday", "星期天"),
          ("after lunch", "午饭后"), ("two days ago", "两天前"))


def random_pair(rng: random.Random) -> tuple[str, str]:
    """A (Chinese, English) line: a written one, a short one, or one composed from parts."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(SHORT)
    if roll < 0.55:
        return rng.choice(PAIRS)
    (s_en, s_zh), (v_en, v_zh), (p_en, p_zh), (t_en, t_zh) = (
        rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_PLACES), rng.choice(_TIMES))
    return f"{t_zh}{s_zh}{p_zh}{v_zh}", f"{s_en} {v_en} {p_en} {t_en}."


# --------------------------------------------------------------------------- committed samples


def _script(items: list[tuple], style: Style = Style(), start: int = 0) -> list[Event]:
    """Events laid end to end from (texts, frames shown, blank frames after[, style]) rows."""
    events, at = [], start
    for texts, shown, blank, *rest in items:
        texts = (texts,) if isinstance(texts, str) else tuple(texts)
        events.append(Event(at, at + shown, texts, style=rest[0] if rest else style))
        at += shown + blank
    return events


def _p(i: int) -> tuple[str, str]:
    return PAIRS[i]


def sample_en_basic() -> VideoSpec:
    events = _script([
        ("Good morning, everyone.", 60, 0),
        ("Let's get started with today's plan.", 70, 15),
        ("Oh!", 25, 10),
        (_p(32)[1], 50, 20),
        (_p(32)[1], 50, 10),
        ("Run!", 6, 10),
        ("No.", 5, 14),
        ("The train leaves at seven, so we have plenty of time to get there.", 75, 0),
        ("OK", 30, 10),
        ("See you at the station tonight.", 40, 0),
    ])
    return VideoSpec("en_basic", 1280, 720, 25, 500, events,
                     [Scene(0, "plasma", 11, shapes=3, pan=(2, 0)), Scene(262, "stripes", 12, shapes=2)],
                     covers=("english", "first-frame cue", "last-frame cue", "back-to-back changes",
                             "same line twice with a 0.8 s blank", "6- and 5-frame cues", "1-3 character cues",
                             "long and short lines", "scrolling texture", "moving bright shapes", "scene cut"))


def sample_zh_basic() -> VideoSpec:
    events = _script([
        (_p(0)[0], 55, 0),
        (_p(1)[0], 50, 12),
        ("好", 30, 8),
        ("走吧", 24, 20),
        (_p(4)[0], 80, 0),  # the scene cut at frame 250 falls inside
        ("我再想想", 40, 6),
        ("我再想想", 40, 15),
        ("快跑！", 8, 10),
        ("嗯", 4, 16),
        (_p(8)[0], 60, 0),  # and the one at 460
        ("谢谢你", 36, 14),
        (_p(19)[0], 45, 15),
    ], start=12)
    return VideoSpec("zh_basic", 1280, 720, 30, 600, events,
                     [Scene(0, "grain", 21, shapes=2, pan=(1, 0)), Scene(250, "plasma", 22, lines=2, pan=(2, 0)),
                      Scene(460, "bright", 23, shapes=2)],
                     covers=("chinese", "1-3 character cues", "same line twice with a 6-frame blank",
                             "4- and 8-frame cues", "back-to-back changes", "scene cuts under cues",
                             "panning textures", "grain noise", "thin bright lines", "bright background",
                             "blank at start and end"))


def sample_bilingual() -> VideoSpec:
    rows = [(_p(i), shown, blank, BILINGUAL) for i, shown, blank in
            ((11, 50, 0), (5, 55, 5), (2, 55, 0), (15, 50, 15), (22, 55, 0), (23, 45, 12), (23, 45, 10),
             (31, 30, 0), (26, 40, 0))]
    rows.insert(4, (SHORT[1], 20, 8, BILINGUAL))
    events = _script(rows, start=5)
    return VideoSpec("bilingual", 1280, 720, 25, 500, events,
                     [Scene(0, "stripes", 31, lines=3), Scene(180, "plasma", 32, shapes=3, pan=(-2, 0)),
                      Scene(340, "city", 33, pan=(-2, 0))],
                     covers=("two-line bilingual (Chinese over English, smaller English)", "back-to-back changes",
                             "same pair twice with a blank", "thin bright lines", "city lights clutter",
                             "scene cuts", "cue to last frame"))


def sample_clutter() -> VideoSpec:
    yellow = replace(Style(), color=YELLOW)
    events = _script([
        (_p(6)[1], 60, 0),
        (_p(13)[1], 70, 10, yellow),
        ("Hi!", 20, 10),
        (_p(9)[1], 65, 0, yellow),
        (_p(20)[1], 55, 18),
        ("Go!", 7, 12, yellow),
        (_p(33)[1], 70, 0),
        (_p(24)[1], 45, 0, yellow),
    ], start=8)
    cuts = [(0, "city", -1), (60, "grain", 2), (120, "bright", 0), (175, "stripes", 0), (230, "city", 2),
            (290, "plasma", -2), (345, "bright", -1), (400, "city", 0)]
    scenes = [Scene(at, kind, 40 + n, shapes=3, lines=2, pan=(dx, 0)) for n, (at, kind, dx) in enumerate(cuts)]
    return VideoSpec("clutter", 1280, 720, 30, 450, events, scenes,
                     covers=("english", "yellow and white text", "hard scene cuts every ~2 s under cues",
                             "bright shapes and thin bright lines crossing the subtitle band",
                             "lit-window clutter", "bright sky", "grain noise", "7-frame cue"))


def sample_top() -> VideoSpec:
    bottom = _script([
        (_p(24)[1], 60, 15),
        (_p(27)[1], 70, 0),
        (_p(36)[1], 55, 20),
        (_p(38)[1], 50, 30),
        ("Yes.", 20, 0),
    ], start=40)
    top = [Event(0, 35, ("Hotel lobby, 9:40 PM",), top=True),
           Event(70, 160, ("[Phone ringing]",), top=True, style=replace(Style(), color=YELLOW)),
           Event(230, 300, ("湖边的旅馆",), top=True),
           Event(330, 375, ("Two days later",), top=True)]
    return VideoSpec("top", 1280, 720, 25, 375, bottom + top,
                     [Scene(0, "plasma", 51, shapes=2, pan=(1, 0)), Scene(200, "stripes", 52, lines=2)],
                     covers=("top cues alone", "top and bottom cues at once", "{\\an8} in ground truth",
                             "top cue on the first frame", "top cue to last frame", "english and chinese"))


def sample_offset_start() -> VideoSpec:
    events = _script([
        (_p(30)[1], 50, 0),
        (_p(16)[1], 50, 12),
        ("Why?", 18, 10),
        (_p(28)[1], 50, 0),
        (_p(10)[1], 55, 10),
        (_p(34)[1], 45, 0),
    ])
    return VideoSpec("offset_start", 1280, 720, 25, 300, events, [Scene(0, "plasma", 61, shapes=2, pan=(-1, 0))],
                     start_offset=1.4,
                     covers=("container start 1.4 s (first pts not zero; GT relative to it)",
                             "first-frame cue", "last-frame cue", "english"))


def sample_vfr() -> VideoSpec:
    events = _script([
        (_p(7)[1], 33, 5),
        (_p(18)[1], 41, 0),
        ("No.", 7, 9),
        (_p(21)[1], 47, 13),
        (_p(14)[0], 38, 0),
        (_p(25)[1], 45, 11),
        (_p(3)[1], 52, 7),
    ], start=9)
    return VideoSpec("vfr", 1280, 720, 30, 330, events,
                     [Scene(0, "stripes", 71, shapes=2), Scene(160, "grain", 72, lines=1, pan=(-2, 0))],
                     vfr_seed=7,
                     covers=("variable frame rate (frame durations 1/60-1/15 s)", "times only from pts",
                             "english and chinese", "7-frame cue", "back-to-back changes"))


def sample_fullhd() -> VideoSpec:
    events = _script([
        (_p(29)[1], 45, 0),
        (_p(29)[0], 40, 8),
        (_p(35)[1], 40, 0),
        ("对", 15, 8),
        (_p(39)[1], 45, 12),
        (_p(17)[1], 34, 0),
    ], start=3)
    return VideoSpec("fullhd", 1920, 1080, 25, 250, events,
                     [Scene(0, "bright", 81, shapes=2), Scene(120, "plasma", 82, lines=2, pan=(4, 0))], crf=27,
                     covers=("1920x1080", "english and chinese lines alternating", "1-character cue",
                             "bright background", "last-frame cue"))


def sample_scenetext() -> VideoSpec:
    """Scene text that is not subtitles: a watermark on every frame, a shop sign high in the picture
    through two shots, and sparks (glyph-like specks) in the subtitle band between cues."""
    events = _script([
        (_p(12)[1], 55, 12),
        (_p(2)[0], 50, 14),
        ("Why?", 20, 16),
        (_p(37)[1], 50, 12),
        (_p(21)[1], 45, 10),
    ], start=10)
    sparks = [Mark(at, at + n, text, x, y, size=0.055, color=(255, 240, 200), outline=True)
              for at, n, text, x, y in ((66, 6, "V", 0.71, 0.78), (130, 8, "三", 0.22, 0.82),
                                        (222, 7, "Y", 0.83, 0.77), (160, 5, "+", 0.12, 0.86))]
    marks = (Mark(0, 300, "NEWS 24", 0.82, 0.05, size=0.035),
             Mark(75, 230, "PHARMACY", 0.12, 0.11, size=0.05, color=(120, 255, 160)), *sparks)
    scenes = [Scene(at, kind, 90 + n, shapes=1, pan=(dx, 0))
              for n, (at, kind, dx) in enumerate(((0, "plasma", 1), (75, "stripes", 0), (150, "grain", 1),
                                                  (230, "plasma", -1)))]
    return VideoSpec("scenetext", 1280, 720, 25, 300, events, scenes, marks=marks, crf=30,
                     covers=("scene text: a watermark on every frame (upper right corner)",
                             "a shop sign high in the picture through two shots",
                             "sparks read as 'V' and '三' in the band between cues", "english and chinese"))


def sample_fades() -> VideoSpec:
    """Subtitles that fade in and out (8-frame ramps) over a panning texture and stripes."""
    rows = [(_p(9)[1], 50, 14), (_p(26)[0], 45, 14), ("Wait.", 24, 14), (_p(5)[1], 55, 14), (_p(31)[0], 40, 0)]
    events = [replace(event, fade=8) for event in _script(rows, start=8)]
    return VideoSpec("fades", 1280, 720, 25, 290, events,
                     [Scene(0, "plasma", 101, shapes=1, pan=(2, 0)), Scene(140, "stripes", 102, lines=1)],
                     crf=30,
                     covers=("fade in and out over 8 frames (start: first frame at half strength or more; end: "
                             "first frame below it)", "panning and striped textures", "english and chinese"))


def sample_plates() -> VideoSpec:
    """White (and yellow) outlined subtitles over bright, nearly white plates."""
    yellow = replace(Style(), color=YELLOW)
    events = _script([
        (_p(19)[1], 50, 10),
        (_p(13)[0], 45, 0),
        ("Yes?", 20, 12),
        (_p(38)[1], 50, 8, yellow),
        (_p(25)[0], 45, 0),
    ], start=6)
    return VideoSpec("plates", 1280, 720, 25, 250, events,
                     [Scene(0, "plate", 111), Scene(120, "plate", 112, pan=(1, 0))],
                     covers=("bright, nearly white plates behind white text: only outline and shadow stand out",
                             "yellow text on white", "a 20-frame cue", "english and chinese"))


def sample_lowcontrast() -> VideoSpec:
    """Thin capitals without outline or shadow, light grey on a light grey wall, small (3.5 % of
    the height): the text stands 45-70 grey levels above its background."""
    thin = Style(color=(238, 238, 238), sizes=(0.035,), outline=0.0, shadow=False,
                 font="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    events = _script([
        ("THE MEETING IS AT NOON", 55, 12),
        ("BRING THE BLUE FOLDER", 50, 10),
        ("WHY?", 22, 14),
        ("WE LEAVE FROM THE NORTH GATE", 55, 10),
        ("SEE YOU THERE", 45, 0),
    ], style=thin, start=8)
    return VideoSpec("lowcontrast", 1280, 720, 25, 290, events,
                     [Scene(0, "grey", 121), Scene(140, "grey", 122, pan=(1, 0))],
                     covers=("thin capitals without outline or shadow", "light grey text on a light grey wall",
                             "small text (3.5 % of the frame height)"))


SAMPLES: dict[str, Callable[[], VideoSpec]] = {
    "en_basic": sample_en_basic,
    "zh_basic": sample_zh_basic,
    "bilingual": sample_bilingual,
    "clutter": sample_clutter,
    "top": sample_top,
    "offset_start": sample_offset_start,
    "vfr": sample_vfr,
    "fullhd": sample_fullhd,
    "scenetext": sample_scenetext,
    "fades": sample_fades,
    "plates": sample_plates,
    "lowcontrast": sample_lowcontrast,
}


def manifest_entry(spec: VideoSpec) -> dict:
    pts = frame_pts(spec)
    return {
        "name": spec.name,
        "file": f"{spec.name}.mp4",
        "srt": f"{spec.name}.srt",
        "width": spec.width,
        "height": spec.height,
        "fps": spec.fps,
        "vfr": spec.vfr_seed is not None,
        "frames": spec.frames,
        "start_time": spec.start_offset,
        "duration": round(int(pts[-1] - pts[0]) / TICKS, 6),
        "cues": len(spec.events),
        "covers": list(spec.covers),
        **({"lang": spec.lang} if spec.lang else {}),
    }


# --------------------------------------------------------------------------- more scripts (read with --lang)


def sample_ru_basic() -> VideoSpec:
    events = _script([
        ("Доброе утро! Ты уже проснулся?", 55, 0),
        ("Мы опоздаем на поезд.", 50, 10),
        ("Да.", 20, 8),
        ("КРАСОТА В ГЛАЗАХ СМОТРЯЩЕГО", 50, 0),
        (("Где ты был всю ночь?", "Я ждала тебя до утра."), 60, 12),
        ("Съешь же этих мягких французских булок", 55, 0),
        ("Нет!", 18, 0),
    ])
    return VideoSpec("ru_basic", 1280, 720, 25, 338, events,
                     [Scene(0, "plasma", 91, shapes=2, pan=(1, 0)), Scene(170, "stripes", 92, lines=1)],
                     crf=30, lang="ru",
                     covers=("russian (Cyrillic, --lang ru)", "an all-caps line of Latin look-alikes (КРАСОТА В)",
                             "two-line cue", "3-character cue", "first-frame cue", "last-frame cue",
                             "back-to-back changes", "scene cut"))


def sample_ko_basic() -> VideoSpec:
    events = _script([
        ("안녕하세요, 반갑습니다.", 50, 0),
        ("내일 아침에 다시 만나요", 55, 10),
        ("지금 어디에 있어요?", 45, 0),
        ("괜찮아요", 25, 12),
        (("정말 고마워요.", "다음에 또 봐요!"), 60, 8),
        ("우리 같이 영화 보러 갈래요?", 55, 10),
    ], start=6)
    return VideoSpec("ko_basic", 1280, 720, 25, 336, events,
                     [Scene(0, "plasma", 93, shapes=2, pan=(-1, 0)), Scene(160, "stripes", 94, lines=1)],
                     crf=30, lang="ko",
                     covers=("korean (Hangul, --lang ko)", "two-line cue", "4-character cue", "back-to-back changes",
                             "scene cut", "blank at start and end"))


def sample_ja_basic() -> VideoSpec:
    events = _script([
        ("明日の朝、駅で会いましょう", 55, 0),
        ("ちょっと待って！", 40, 10),
        ("はい", 20, 8),
        ("コーヒーを飲みに行きませんか？", 55, 0),
        (("本当にありがとう。", "また会いましょう。"), 60, 12),
        ("東京タワーが見える", 50, 10),
    ], start=5)
    return VideoSpec("ja_basic", 1280, 720, 25, 335, events,
                     [Scene(0, "plasma", 95, shapes=2, pan=(1, 0)), Scene(165, "stripes", 96, lines=1)],
                     crf=30, lang="ja",
                     covers=("japanese (kanji, hiragana, katakana; read by the default model)", "two-line cue",
                             "2-character cue", "back-to-back changes", "scene cut"))


SAMPLES.update({"ru_basic": sample_ru_basic, "ko_basic": sample_ko_basic, "ja_basic": sample_ja_basic})


# --------------------------------------------------------------------------- text in the band that is not subtitles


def sample_signs() -> VideoSpec:
    """Signs in the subtitle band, on screen through their shot while subtitles come and go over
    them: read in one crop with the subtitle, they are not part of its text."""
    events = _script([
        (_p(6)[1], 55, 10),
        (_p(17)[0], 50, 0),
        ("Why not?", 25, 15),
        (_p(27)[1], 55, 12),
        (_p(11)[1], 60, 0),
    ], start=8)
    marks = (Mark(0, 95, "EXIT", 0.07, 0.765, size=0.045, color=(120, 255, 160)),
             Mark(95, 195, "OPEN 24 H", 0.72, 0.77, size=0.04),
             Mark(195, 300, "CAFE", 0.1, 0.78, size=0.05, color=(255, 220, 90), outline=True))
    return VideoSpec("signs", 1280, 720, 25, 300, events,
                     [Scene(0, "plasma", 121, shapes=1, pan=(1, 0)), Scene(95, "stripes", 122),
                      Scene(195, "grain", 123, pan=(-1, 0))], marks=marks, crf=30,
                     covers=("signs in the subtitle band while subtitles show (one per shot, above the subtitle "
                             "row, left or right)", "an outlined sign", "english and chinese"))


def sample_logo() -> VideoSpec:
    """A short clip (few keyframes) with a channel logo inside the subtitle band on every frame."""
    events = _script([
        (_p(14)[1], 50, 12),
        (_p(3)[0], 55, 10),
        ("OK", 20, 14),
        (_p(36)[1], 50, 15),
        (_p(22)[1], 55, 0),
    ], start=6)
    return VideoSpec("logo", 1280, 720, 25, 300, events,
                     [Scene(0, "plasma", 131, shapes=1, pan=(1, 0)), Scene(150, "stripes", 132, lines=1)],
                     marks=(Mark(0, 300, "TV5", 0.875, 0.84, size=0.05, color=(230, 230, 230)),), crf=30,
                     covers=("a logo inside the subtitle band on every frame of a 12 s clip with few keyframes",
                             "english and chinese", "2-character cue"))


SAMPLES.update({"signs": sample_signs, "logo": sample_logo})


# --------------------------------------------------------------------------- benchmark videos


def bench_spec(duration: float, height: int = 720, fps: int = 25, lang: str = "en", seed: int = 0,
               crf: int = 24, preset: str = "veryfast") -> VideoSpec:
    """A long video with realistic subtitle density: a new line every 2-5 s, blanks and back-to-back changes.

    ``lang``: "en", "zh", "bi" (Chinese over English) or "mixed" (lines in either language).
    """
    if lang not in ("en", "zh", "bi", "mixed"):
        raise GenerateError(f"unknown language {lang!r}; use en, zh, bi or mixed")
    if duration <= 0 or height < 144:
        raise GenerateError("duration must be positive and height at least 144")
    width = round(height * 16 / 9 / 2) * 2
    frames = max(1, round(duration * fps))
    rng = random.Random(seed)
    events: list[Event] = []
    at, previous = 0, None
    while at < frames:
        zh, en = random_pair(rng)
        if previous and rng.random() < 0.04:
            zh, en = previous  # the same line again after a blank
        texts = {"en": (en,), "zh": (zh,), "bi": (zh, en), "mixed": (rng.choice((zh, en)),)}[lang]
        short = len(en) < 8
        shown = round(fps * (rng.uniform(0.15, 0.8) if short or rng.random() < 0.03 else rng.uniform(1.2, 4.2)))
        shown = min(max(2, shown), frames - at)
        colour = YELLOW if rng.random() < 0.15 else (255, 255, 255)
        style = replace(BILINGUAL if lang == "bi" else Style(), color=colour)
        events.append(Event(at, at + shown, texts, style=style))
        gap_roll = rng.random()
        blank = 0 if gap_roll < 0.35 else round(fps * (rng.uniform(0.1, 0.8) if gap_roll < 0.75 else rng.uniform(1, 4)))
        at += shown + (max(1, blank) if (zh, en) == previous else blank)
        previous = (zh, en)
    # Occasional signs at the top, over whatever is at the bottom.
    at = round(fps * rng.uniform(5, 40))
    while at < frames - fps:
        shown = min(round(fps * rng.uniform(1.5, 4)), frames - at)
        zh, en = rng.choice(PAIRS)
        events.append(Event(at, at + shown, (zh if lang == "zh" else en,), top=True))
        at += shown + round(fps * rng.uniform(20, 90))
    scenes, at = [], 0
    while at < frames:
        kind = rng.choice(BACKDROPS)
        pan = 0 if kind == "stripes" else rng.choice((0, 1, -1, 2, -2)) * max(1, round(height / 720))
        scenes.append(Scene(at, kind, rng.randrange(1 << 30), shapes=rng.randint(0, 3), lines=rng.randint(0, 2),
                            pan=(pan, 0)))
        at += round(fps * rng.uniform(2, 10))
    return VideoSpec(f"bench-{lang}-{height}p", width, height, fps, frames, events, scenes, crf=crf, preset=preset,
                     covers=("benchmark",))


# --------------------------------------------------------------------------- command line


def write_samples(out_dir: Path, names: list[str] | None = None) -> list[dict]:
    """Render the committed samples (all, or ``names``) into ``out_dir`` and refresh its manifest.json."""
    unknown = sorted(set(names or ()) - set(SAMPLES))
    if unknown:
        raise GenerateError(f"unknown sample(s) {', '.join(unknown)}; known: {', '.join(SAMPLES)}")
    entries = []
    for name, make in SAMPLES.items():
        spec = make()
        if not names or name in names:
            render(spec, out_dir / f"{name}.mp4")
            print(f"wrote {out_dir / name}.mp4 ({(out_dir / f'{name}.mp4').stat().st_size // 1024} KiB)")
        entries.append(manifest_entry(spec))
    (out_dir / "manifest.json").write_text(
        json.dumps({"font_packages": list(FONT_PACKAGES), "samples": entries}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    all_ = sub.add_parser("all", help="regenerate the committed samples and manifest.json")
    all_.add_argument("--out-dir", type=Path, default=SAMPLES_DIR)
    all_.add_argument("--only", nargs="+", metavar="NAME", help=f"just these ({', '.join(SAMPLES)})")
    bench = sub.add_parser("bench", help="render a long benchmark video (and its .srt beside it)")
    bench.add_argument("--duration", type=float, default=300, help="seconds (default 300)")
    bench.add_argument("--height", type=int, default=720, help="frame height; width is 16:9 (default 720)")
    bench.add_argument("--fps", type=int, default=25)
    bench.add_argument("--lang", default="en", choices=("en", "zh", "bi", "mixed"))
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--crf", type=int, default=24)
    bench.add_argument("--preset", default="veryfast", help="x264 preset (ultrafast is quickest)")
    bench.add_argument("--out", type=Path, required=True, help="output .mp4")
    args = parser.parse_args(argv)
    try:
        if args.command == "all":
            write_samples(args.out_dir, args.only)
        else:
            spec = bench_spec(args.duration, args.height, args.fps, args.lang, args.seed, args.crf, args.preset)
            step = max(1, spec.frames // 20)
            render(spec, args.out, progress=lambda i: i % step == 0 and print(
                f"\r{i * 100 // spec.frames:3d}%", end="", file=sys.stderr, flush=True))
            print(f"\rwrote {args.out} and {args.out.with_suffix('.srt')}", file=sys.stderr)
    except (GenerateError, OSError, av.error.FFmpegError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
