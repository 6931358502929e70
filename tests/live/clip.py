"""A small H.264 clip with burned-in subtitles whose ground truth is known exactly.

Made with PyAV and Pillow at test time (no binary fixture in git): a moving
background so the stream looks like video, white outlined captions in the
bottom band, with gaps between them so faults can be placed between cues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import srt
from PIL import Image, ImageDraw, ImageFont

TEXTS = (
    "Good evening and welcome",
    "The weather turns cold tonight",
    "Trains run late on the north line",
    "Markets closed slightly higher",
    "Thank you for watching",
)
# Long gaps after the 1st and 3rd cue: the fault tests stall or kill the server there, and the
# outage (stall detection or server start-up, then reconnect) must fit in them.
GAPS = (7.0, 1.5, 7.0, 1.5)


@dataclass(frozen=True)
class GroundTruth:
    start: float
    end: float
    text: str


def timeline(texts: tuple[str, ...] = TEXTS, lead: float = 2.5, show: float = 2.0, gaps: tuple[float, ...] = GAPS) -> list[GroundTruth]:
    """Cue times: ``lead`` seconds of blank, then each text for ``show`` s followed by its gap of blank."""
    out = []
    t = lead
    for i, text in enumerate(texts):
        out.append(GroundTruth(round(t, 3), round(t + show, 3), text))
        t += show + (gaps[i] if i < len(gaps) else 1.5)
    return out


def make_clip(path: Path, cues: list[GroundTruth], *, fps: int = 24, size: tuple[int, int] = (640, 360), tail: float = 1.0) -> Path:
    """Encode the clip, with its ground truth as an SRT beside it; keyframes every half second so RTSP
    joins and seeks land close to where asked."""
    width, height = size
    duration = cues[-1].end + tail
    font = ImageFont.load_default(size=28)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(fps // 2), "bf": "0", "preset": "veryfast", "tune": "zerolatency", "crf": "23"}
        xs, ys = np.arange(width), np.arange(height)
        for i in range(int(round(duration * fps))):
            t = i / fps
            wave = 60 + 20 * np.cos(ys / 37.0 - t)[:, None] + 30 * np.sin(xs / 53.0 + t * 2.0)[None, :]
            base = np.clip(wave, 0, 255).astype(np.uint8)
            rgb = np.stack([base, (base * 0.8).astype(np.uint8), (base * 0.6).astype(np.uint8)], axis=-1)
            text = next((c.text for c in cues if c.start <= t < c.end), None)
            if text:
                image = Image.fromarray(rgb)
                draw = ImageDraw.Draw(image)
                box = draw.textbbox((0, 0), text, font=font, stroke_width=3)
                x = (width - (box[2] - box[0])) // 2
                draw.text((x, height - 60), text, font=font, fill=(255, 255, 255), stroke_width=3, stroke_fill=(0, 0, 0))
                rgb = np.asarray(image)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    subtitles = [srt.Subtitle(i + 1, timedelta(seconds=c.start), timedelta(seconds=c.end), c.text) for i, c in enumerate(cues)]
    path.with_suffix(".srt").write_text(srt.compose(subtitles))
    return path
