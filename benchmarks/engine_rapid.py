"""How fast the rapid engine reads subtitle band crops, per line-finding mode.

Compares, on the same rendered band crops (720p and 1080p band sizes, plain
and cluttered backgrounds, 1-2 lines):

* ``lines``: the cheap stroke-projection line finder + one batched rec call;
* ``model``: rapidocr's DB text detector on each crop + the same batched rec;
* ``rapidocr``: rapidocr's plain pipeline (det + cls + rec) called per crop.

Also prints the character error rate of each, so speed is not bought with
misreads. Run under the bench lock when the figures are to be reported::

    flock /tmp/subflow-bench.lock .venv/bin/python benchmarks/engine_rapid.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"  # Debian fonts-wqy-zenhei
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # Debian fonts-dejavu-core


def is_cjk(text: str) -> bool:
    return any(unicodedata.east_asian_width(ch) in "WF" for ch in text)


def render_band(
    lines: Sequence[str],
    size: tuple[int, int] = (1280, 180),
    *,
    clutter: bool = False,
    x_center: float = 0.5,
    seed: int = 0,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """An RGB band crop with ``lines`` burned in the way subtitles are: white, black outline,
    stacked from the bottom, centred on ``x_center`` (share of the width). ``background``
    (an RGB array of ``size``) replaces the generated plain or cluttered one."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = Image.fromarray(background if background is not None else _background(width, height, clutter, rng))
    draw = ImageDraw.Draw(image)
    cjk_px = round(height * 0.2)
    y = height - round(height * 0.1)
    for text in reversed(lines):
        px = cjk_px if is_cjk(text) else round(cjk_px * 0.8)
        font = ImageFont.truetype(CJK_FONT if is_cjk(text) else LATIN_FONT, px)
        outline = max(2, px // 14)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=outline)
        x = round(width * x_center - (right - left) / 2) - left
        y -= bottom - top
        draw.text((x, y - top), text, font=font, fill=(255, 255, 255), stroke_width=outline, stroke_fill=(0, 0, 0))
        y -= round(px * 0.3)
    return np.asarray(image)


def _background(width: int, height: int, clutter: bool, rng: np.random.Generator) -> np.ndarray:
    """A dim gradient, or a busy scene: bright and dark shapes, thin bright lines, noise."""
    ramp = np.linspace(30, 90, width, dtype=np.float32)
    base = np.stack([ramp, ramp * 0.8 + 10, ramp * 0.6 + 20], axis=-1)
    base = np.broadcast_to(base, (height, width, 3)).copy()
    if not clutter:
        return base.astype(np.uint8)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(10, width // 4)), y0 + int(rng.integers(5, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    for _ in range(12):
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
        draw.line(points, fill=(235, 235, 235), width=int(rng.integers(1, 4)))
    noisy = np.asarray(image).astype(np.int16) + rng.normal(0, 12, (height, width, 3)).astype(np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


SUBTITLES = [
    ["我们明天早上八点出发"],
    ["你到底想说什么？", "What are you trying to say?"],
    ["I told you not to come back here."],
    ["这件事情跟你没有关系", "This has nothing to do with you"],
    ["好"],
    ["- Where were you last night?", "- At home."],
    ["第三章：回家的路"],
    ["Thank you."],
]


def band_set(size: tuple[int, int], count: int) -> list[tuple[list[str], np.ndarray]]:
    """``count`` band crops of one size: the subtitles above, alternately on plain and busy backgrounds."""
    return [
        (SUBTITLES[i % len(SUBTITLES)], render_band(SUBTITLES[i % len(SUBTITLES)], size, clutter=i % 2 == 1, seed=i))
        for i in range(count)
    ]


def char_error(truth: list[str], lines: Sequence[str]) -> float:
    """Character error rate ignoring whitespace and line breaks (the plain pipeline splits words apart)."""
    from subflow.score import edit_distance

    want, got = "".join("".join(truth).split()), "".join("".join(lines).split())
    return edit_distance(want, got) / len(want)


def run_engine(engine, crops: list[np.ndarray], batch: int) -> list[list[str]]:
    out: list[list[str]] = []
    for start in range(0, len(crops), batch):
        out.extend(list(r.lines) for r in engine.read(crops[start : start + batch]))
    return out


def run_plain(ocr, crops: list[np.ndarray]) -> list[list[str]]:
    """rapidocr as its README shows it: the whole pipeline on each image."""
    out = []
    for crop in crops:
        result = ocr(np.ascontiguousarray(crop[:, :, ::-1]))
        out.append(list(result.txts or ()))
    return out


def machine() -> str:
    from importlib.metadata import version

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.processor(),
    )
    return (
        f"{cpu}; {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"rapidocr {version('rapidocr')}; onnxruntime {version('onnxruntime')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=int, default=16, help="band crops per size (default 16)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = one per core)")
    parser.add_argument("--repeat", type=int, default=2, help="timed passes over the crops; the best is kept")
    parser.add_argument(
        "--plain-crops", type=int, default=4, help="crops per size for the slow plain pipeline (0 = skip it)"
    )
    args = parser.parse_args(argv)

    from rapidocr import RapidOCR

    from subflow.engines.rapid import RapidEngine
    from subflow.lines import find_lines

    print(machine())
    print(f"threads={args.threads or os.cpu_count()}, {args.crops} crops per size, best of {args.repeat} passes\n")
    plain_params = {"Global.log_level": "error"}
    if args.threads:
        plain_params["EngineConfig.onnxruntime.intra_op_num_threads"] = args.threads
    plain = RapidOCR(params=plain_params)
    engines = {mode: RapidEngine(detect=mode, threads=args.threads) for mode in ("lines", "auto", "model")}
    runners = {
        f"detect={mode}": (args.crops, lambda crops, e=engine: run_engine(e, crops, e.max_batch))
        for mode, engine in engines.items()
    }
    if args.plain_crops > 0:
        runners["rapidocr plain"] = (args.plain_crops, lambda crops: run_plain(plain, crops))

    print(f"{'band':>10} {'mode':>16} {'crops':>5} {'crops/s':>8} {'ms/crop':>8} {'CER':>6}")
    for size in ((1280, 180), (1920, 270)):
        bands = band_set(size, args.crops)
        start = time.perf_counter()
        for _, crop in bands:
            find_lines(crop)
        finder_ms = (time.perf_counter() - start) * 1000 / len(bands)
        for label, (count, runner) in runners.items():
            crops = [crop for _, crop in bands[:count]]
            runner(crops[:1])  # load the models outside the timing
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                reads = runner(crops)
                best = min(best, time.perf_counter() - start)
            error = sum(char_error(truth, got) for (truth, _), got in zip(bands, reads)) / len(reads)
            print(
                f"{size[0]}x{size[1]:<5} {label:>16} {len(crops):5} {len(crops) / best:8.2f} "
                f"{best * 1000 / len(crops):8.1f} {error:6.3f}"
            )
        print(f"{size[0]}x{size[1]:<5} {'(line finder)':>16} {len(bands):5} {1000 / finder_ms:8.1f} {finder_ms:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
