"""Accuracy and speed of `subflow extract`, side by side with the naive baseline, in one run.

    python benchmarks/extract_bench.py                  # samples + generated 5-min 720p and 1-min 1080p videos
    python benchmarks/extract_bench.py --minutes 1      # shorter generated videos
    python benchmarks/extract_bench.py --videos a.mp4   # your own videos (each needs a .srt beside it)

For every video: subflow (frame-exact default), subflow with --sample-every 3
(the faster sampling mode, to show its timing cost), optionally subflow with
fast decoding, and, on the generated videos, the naive baseline (rapidocr's
full pipeline on every 5th frame's band + merging of similar neighbouring
reads; on the first --baseline-seconds only, as it is ~50x slower). Each run is its own process, so peak RSS and CPU seconds (user + system: the load-independent cost) are its own. Scores come
from `subflow.score` against the ground-truth SRT. Prints a Markdown table
with the machine, and writes JSON to bench-out/extract.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subflow.score import load_cues, score  # noqa: E402

OUT = ROOT / "bench-out"


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, load average at start {load:.1f}"


def run_subflow(video: Path, output: Path, extra: list[str]) -> dict:
    """One extraction in a child process that reports its own stats and peak RSS as JSON."""
    code = (
        "import json, resource, sys\n"
        "from subflow.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'rc': rc, 'rss_mb': usage.ru_maxrss / 1024, 'cpu_s': usage.ru_utime + usage.ru_stime}))\n"
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, "extract", str(video), "-o", str(output), *extra],
        capture_output=True, text=True, cwd=ROOT,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"subflow failed on {video}: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = [line.strip() for line in proc.stderr.splitlines() if "decode" in line or "real time" in line]
    return {"elapsed": elapsed, "rss_mb": report["rss_mb"], "cpu_s": report["cpu_s"], "summary": " / ".join(summary)}


def run_baseline(video: Path, output: Path, seconds: float | None) -> dict:
    args = [sys.executable, str(ROOT / "benchmarks" / "baseline_naive.py"), str(video), "-o", str(output)]
    if seconds:
        args += ["--seconds", str(seconds)]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"baseline failed on {video}: {proc.stderr[-2000:]}")
    return {"elapsed": time.perf_counter() - started}


def media_seconds(video: Path) -> tuple[float, float]:
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return container.duration / av.time_base, float(stream.average_rate or 25)


def scored(gt_path: Path, pred_path: Path, fps: float, until: float | None = None) -> dict:
    gt = load_cues(gt_path)
    pred = load_cues(pred_path)
    if until is not None:  # the baseline saw only the start: judge it on what it saw
        gt = [c for c in gt if c.end <= until]
        pred = [c for c in pred if c.start < until]
    return score(gt, pred, frame_duration=1 / fps).to_dict()


def generated(height: int, seconds: int, lang: str, seed: int = 0) -> Path:
    """A benchmark video from samples/generate.py, rendered once into bench-out/ and reused."""
    path = OUT / (f"gen_{lang}_{height}p_{seconds}s.mp4" if not seed else f"gen_{lang}_{height}p_{seconds}s_seed{seed}.mp4")
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, str(ROOT / "samples" / "generate.py"), "bench", "--duration", str(seconds),
             "--height", str(height), "--lang", lang, "--seed", str(seed), "--out", str(path)],
            check=True, cwd=ROOT,
        )
    return path


def _frames(score: dict, key: str) -> str:
    """p50/p95 of a timing error in frames."""
    return f"{score.get(key + '_p50_frames') or 0:.1f}/{score.get(key + '_p95_frames') or 0:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", nargs="*", type=Path, help="videos with ground truth .srt beside them")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the generated 720p video (1080p: a fifth of it)")
    parser.add_argument("--fast-decode", action="store_true", help="also run subflow with source.fast_decode")
    parser.add_argument("--fast", action="store_true", help="also run subflow --fast (B-frames skipped)")
    parser.add_argument("--baseline-seconds", type=float, default=30.0, help="media seconds the baseline reads per long video")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    OUT.mkdir(exist_ok=True)
    regions: dict[str, str] = {}  # video name -> --region, for samples with top subtitles
    if args.videos:
        videos = args.videos
    else:
        manifest = json.loads((ROOT / "samples" / "manifest.json").read_text())
        videos = [ROOT / "samples" / item["file"] for item in manifest["samples"]]
        regions.update({item["file"]: "both" for item in manifest["samples"] if any("top" in c for c in item["covers"])})
        seconds = int(args.minutes * 60)
        videos += [generated(720, seconds, "mixed"), generated(1080, max(60, seconds // 5), "mixed")]

    print(f"machine: {machine()}", flush=True)
    rows = []
    for video in videos:
        gt = video.with_suffix(".srt")
        duration, fps = media_seconds(video)
        row: dict = {"video": video.name, "duration": duration, "fps": fps}
        runs = [("subflow", ["-q"]), ("subflow_every3", ["-q", "--sample-every", "3"])]
        if args.fast_decode:
            runs.append(("subflow_fastdecode", ["-q", "--set", "source.fast_decode=true"]))
        if args.fast:
            runs.append(("subflow_fast", ["-q", "--fast"]))
        for name, extra in runs:
            extra = extra + (["--region", regions[video.name]] if video.name in regions else [])  # else the default
            pred = OUT / f"{video.stem}.{name}.srt"
            run = run_subflow(video, pred, extra)
            run["rtf"] = duration / run["elapsed"]
            run["score"] = scored(gt, pred, fps)
            row[name] = run
        if not args.no_baseline and duration >= 60:  # the long generated videos: the baseline is too slow for all
            pred = OUT / f"{video.stem}.naive.srt"
            window = min(duration, args.baseline_seconds)
            run = run_baseline(video, pred, window if window < duration else None)
            run["rtf"] = window / run["elapsed"]
            run["score"] = scored(gt, pred, fps, until=window if window < duration else None)
            row["naive"] = run
        rows.append(row)
        print(json.dumps(row), flush=True)

    (OUT / "extract.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    print()
    print(f"Machine: {machine()}")
    print("| video | run | x real time | CPU s | F1 | CER | start p50/p95 (frames) | end p50/p95 (frames) | fragments | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for name in ("subflow", "subflow_every3", "subflow_fastdecode", "subflow_fast", "naive"):
            if name not in row:
                continue
            run, s = row[name], row[name]["score"]
            print(
                f"| {row['video']} | {name} | {run['rtf']:.2f} | {run.get('cpu_s', 0):.1f} | {s['f1']:.3f} | {100 * (s['cer'] or 0):.2f}% | "
                f"{_frames(s, 'start')} | {_frames(s, 'end')} | {s['fragments']} | {run.get('rss_mb', 0):.0f} |"
            )
    speedups = [row["subflow"]["rtf"] / row["naive"]["rtf"] for row in rows if "naive" in row]
    if speedups:
        print(f"\nsubflow vs naive baseline, speed ratio per video: {', '.join(f'{s:.0f}x' for s in speedups)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
