"""Thin low-contrast text beyond the committed sample: variants of ``samples/lowcontrast.mp4``
(other wall seeds, dimmer or tinted text, smaller text, other frame sizes) rendered into a
temporary folder and scored with ``detector.contrast_share`` off (the plain ``contrast_min``
rule) and at its default, plus the ``clutter`` sample, whose lit-window specks are what a lower
global ``contrast_min`` let through. Default options otherwise.

    .venv/bin/python benchmarks/lowcontrast_variants.py            # ~40 s on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "samples"))

import generate as gen  # noqa: E402

from subflow import extract  # noqa: E402
from subflow.config import DetectorConfig  # noqa: E402
from subflow.score import load_cues, score  # noqa: E402


def variant(name: str, color: tuple[int, int, int] | None = None, size: float | None = None,
            seeds: tuple[int, int] = (121, 122), height: int = 720) -> gen.VideoSpec:
    """The committed sample with one thing changed (seeds: of its two grey walls)."""
    base = gen.sample_lowcontrast()
    style = base.events[0].style
    style = replace(style, color=color or style.color, sizes=(size or style.sizes[0],))
    scenes = [replace(scene, seed=seed) for scene, seed in zip(base.scenes, seeds)]
    return replace(base, name=name, events=[replace(e, style=style) for e in base.events], scenes=scenes,
                   width=height * 16 // 9 // 2 * 2, height=height)


VARIANTS = (
    variant("walls 201/202", seeds=(201, 202)),
    variant("walls 301/302", seeds=(301, 302)),
    variant("grey 225 text", color=(225, 225, 225)),
    variant("3 % text", size=0.03),
    variant("1080p", height=1080),
    variant("540p", height=540),
    variant("cream text", color=(240, 235, 215), seeds=(401, 402)),
    variant("white text", color=(255, 255, 255), seeds=(501, 502)),
)


def line(name: str, video: Path, truth: Path, fps: float, **options) -> str:
    result = score(load_cues(truth), list(extract(video, **options)), frame_duration=1 / fps)
    cer = "-" if result.cer is None else f"{100 * result.cer:.2f} %"
    timing = "-" if result.start_p95_ms is None else f"{result.start_p95_ms:.0f} / {result.end_p95_ms:.0f} ms"
    return f"| {name} | {result.f1:.3f} | {cer} | {timing} | {result.pred - result.matched} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    default = DetectorConfig().contrast_share
    print("| video, contrast_share | cue F1 | CER | start / end p95 | phantom |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for spec in VARIANTS:
            video = gen.render(spec, Path(folder) / "variant.mp4")
            for share in (0.0, default):
                print(line(f"{spec.name}, {share}", video, video.with_suffix(".srt"), spec.fps,
                           detector__contrast_share=share), flush=True)
    clutter = ROOT / "samples" / "clutter.mp4"
    for share in (0.0, default):
        print(line(f"clutter (committed), {share}", clutter, clutter.with_suffix(".srt"), 30,
                   detector__contrast_share=share), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
