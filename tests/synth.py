"""In-memory frames with subtitles drawn on known frames, for the stage tests.

No encoding: frames go straight from numpy to ``av.VideoFrame`` (yuv420p, as a
decoder would give), so expected boundaries are exact by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from subflow.source import Frame

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
WIDTH, HEIGHT, FPS = 1280, 720, 25


@dataclass(frozen=True)
class Shown:
    """``lines`` drawn at ``where`` ("bottom" or "top") on frames ``first`` to ``last`` - 1."""

    first: int
    last: int
    lines: tuple[str, ...]
    where: str = "bottom"


def plain(index: int, rng: np.random.Generator) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), 70, np.uint8)


def moving(index: int, rng: np.random.Generator) -> np.ndarray:
    """Scrolling stripes, a bright bar sweeping across, and fresh noise every frame."""
    x = np.arange(WIDTH)
    stripes = (100 + 60 * np.sin((x + 15 * index) / 11.0)).astype(np.uint8)
    frame = np.repeat(np.repeat(stripes[None, :, None], HEIGHT, 0), 3, 2)
    bar = (index * 41) % WIDTH
    frame[:, bar : bar + 10] = 235
    return np.clip(frame + rng.integers(0, 25, frame.shape, dtype=np.uint8), 0, 255).astype(np.uint8)


def cut_at(cut: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    """A plain dark scene, then from frame ``cut`` a bright busy one (a hard scene cut)."""

    def background(index: int, rng: np.random.Generator) -> np.ndarray:
        if index < cut:
            return np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        frame = moving(index, rng)
        return np.clip(frame.astype(np.int16) + 60, 0, 255).astype(np.uint8)

    return background


def draw(image: np.ndarray, lines: Sequence[str], where: str, size: int = 40) -> np.ndarray:
    picture = Image.fromarray(image)
    pen = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, size)
    step = int(size * 1.3)
    y = HEIGHT - 40 - step * (len(lines) - 1) if where == "bottom" else 60
    for line in lines:
        pen.text((WIDTH // 2, y), line, font=font, fill=(255, 255, 255), anchor="ms", stroke_width=3, stroke_fill=(0, 0, 0))
        y += step
    return np.asarray(picture)


def frames(
    count: int,
    shown: Sequence[Shown],
    background: Callable[[int, np.random.Generator], np.ndarray] = plain,
    times: Sequence[float] | None = None,
    hide: Sequence[int] = (),
) -> Iterator[Frame]:
    """``count`` frames at FPS (or at ``times``), subtitles per ``shown``; frames in ``hide`` show no text."""
    rng = np.random.default_rng(7)
    for index in range(count):
        image = background(index, rng)
        if index not in hide:
            for item in shown:
                if item.first <= index < item.last:
                    image = draw(image, item.lines, item.where)
        video = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format="yuv420p")
        t = times[index] if times is not None else index / FPS
        yield Frame(index=index, time=t, wall=float(index), image=video)


def with_clutter(spans: Sequence[tuple[int, int]], background: Callable[[int, np.random.Generator], np.ndarray] = plain):
    """``background`` with a bright outlined word ("Wow", a shop sign say) in the band's corner on
    frames ``first`` to ``last`` - 1 of each span: clutter that comes and goes beside a subtitle."""

    def frame(index: int, rng: np.random.Generator) -> np.ndarray:
        image = background(index, rng)
        if any(first <= index < last for first, last in spans):
            picture = Image.fromarray(image)
            ImageDraw.Draw(picture).text((60, HEIGHT - 60), "Wow", font=ImageFont.truetype(FONT, 36),
                                         fill=(250, 250, 250), stroke_width=2, stroke_fill=(0, 0, 0))
            image = np.asarray(picture)
        return image

    return frame


def write_video(path, frame_list: Iterator[Frame]) -> None:
    """Encode frames as near-lossless H.264 (crf 10), as a real file for whole-pipeline tests."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in frame_list:
            frame.image.pts = frame.index
            out.mux(stream.encode(frame.image))
        out.mux(stream.encode(None))


def write_audio_only(path) -> None:
    """A short WAV file: a real media file without a video stream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
