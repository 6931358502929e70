"""The naive baseline subflow is compared against.

What most hard-subtitle tools do (see docs of the peers): decode the video,
run a full OCR pipeline (here rapidocr with its defaults: DB detector,
direction classifier, recogniser) on the bottom band of every Nth frame, then
join neighbouring reads that are similar enough (>= 0.8) into one cue::

    python benchmarks/baseline_naive.py VIDEO -o out.srt [--every 5] [--seconds 60]

It prints the elapsed time and the real-time factor (media seconds per
second of work; above 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import srt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subflow.merger import similarity  # noqa: E402


@dataclass
class NaiveCue:
    start: float
    end: float
    reads: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The read seen most often (ties: the first)."""
        return Counter(self.reads).most_common(1)[0][0]


def sampled_bands(path: str, every: int, band: float, seconds: float | None):
    """(time, BGR bottom band) of every ``every``-th frame, times from the container start."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = None
        for index, frame in enumerate(container.decode(stream)):
            if frame.time is None:
                continue
            origin = frame.time if origin is None else origin
            t = frame.time - origin
            if seconds is not None and t >= seconds:
                return
            if index % every == 0:
                image = frame.to_ndarray(format="bgr24")
                yield t, np.ascontiguousarray(image[round(image.shape[0] * (1 - band)) :])


def merge(reads: list[tuple[float, str]], step: float, threshold: float) -> list[NaiveCue]:
    """Runs of similar non-empty reads become cues; a cue ends one sampling step after its last read."""
    cues: list[NaiveCue] = []
    current: NaiveCue | None = None
    for t, text in reads:
        if current is not None and text and similarity(text, current.reads[-1]) >= threshold:
            current.reads.append(text)
            current.end = t + step
            continue
        current = None
        if text:
            current = NaiveCue(t, t + step, [text])
            cues.append(current)
    return cues


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Naive baseline: rapidocr on every Nth frame's bottom band.")
    parser.add_argument("video")
    parser.add_argument("-o", "--output", required=True, help="SRT file to write")
    parser.add_argument("--every", type=int, default=5, help="OCR every Nth frame (default 5)")
    parser.add_argument("--band", type=float, default=0.25, help="bottom band height, share of the frame")
    parser.add_argument("--similarity", type=float, default=0.8, help="reads this similar join one cue")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this much media time")
    parser.add_argument(
        "--det-side", type=int, default=0,
        help="scale bands to at most this width for the detector (0 = rapidocr's default: short side up to 736 px)",
    )
    args = parser.parse_args(argv)
    if not Path(args.video).is_file():
        parser.error(f"no such video: {args.video}")

    from rapidocr import RapidOCR

    params: dict = {"Global.log_level": "error"}
    if args.det_side:
        params.update({"Det.limit_type": "max", "Det.limit_side_len": args.det_side})
    ocr = RapidOCR(params=params)
    started = time.perf_counter()
    reads: list[tuple[float, str]] = []
    fps = None
    try:
        for t, band in sampled_bands(args.video, args.every, args.band, args.seconds):
            result = ocr(band)
            reads.append((t, " ".join(" ".join(result.txts or ()).split())))
            print(f"\r{t:8.2f} s  {len(reads)} frames read", end="", file=sys.stderr, flush=True)
        with av.open(args.video) as container:
            fps = float(container.streams.video[0].average_rate or 25)
    except av.error.FFmpegError as exc:
        print(f"\ncannot read {args.video}: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    cues = merge(reads, args.every / fps, args.similarity)
    subtitles = [
        srt.Subtitle(i, timedelta(seconds=c.start), timedelta(seconds=c.end), c.text) for i, c in enumerate(cues, 1)
    ]
    Path(args.output).write_text(srt.compose(subtitles), encoding="utf-8")
    media = (reads[-1][0] + args.every / fps) if reads else 0.0
    print(
        f"\n{len(reads)} frames OCRed, {len(cues)} cues -> {args.output}; "
        f"elapsed {elapsed:.1f} s for {media:.1f} s of video; real-time factor {media / elapsed:.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
