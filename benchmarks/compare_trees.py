"""Speed of `subflow extract` from two source trees, side by side in one run, and what each new
check costs: before (another checkout, e.g. a `git worktree` of an older commit) with its default
options, then this tree with its defaults, without the region sampling, and without the style check.

    git worktree add --detach /tmp/subflow-before ef0d422
    flock /tmp/subflow-heavy.lock python benchmarks/compare_trees.py VIDEO.mp4 --before /tmp/subflow-before

Each run is its own process (model load included), the variants interleaved, best of ``--reps``.
The video needs its ground-truth .srt beside it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="the other source tree (its subflow package is run)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    runs = [
        ("before, default", args.before, []),
        ("after, default", ROOT, []),
        ("after, --region bottom", ROOT, ["--region", "bottom"]),
        ("after, --region bottom, style off", ROOT, ["--region", "bottom", "--set", "style.enabled=false"]),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    scores: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as out:
        for rep in range(args.reps):
            for n, (name, tree, extra) in enumerate(runs):
                pred = Path(out) / f"{n}.srt"
                env = dict(os.environ, PYTHONPATH=str(tree))
                command = [sys.executable, "-m", "subflow.cli", "extract", str(args.video), "-o", str(pred), "-q", *extra]
                started = time.perf_counter()
                subprocess.run(command, env=env, cwd=tree, check=True)
                times[name].append(time.perf_counter() - started)
                if rep == 0:
                    truth = args.video.with_suffix(".srt")
                    report = subprocess.run([sys.executable, "-m", "subflow.cli", "score", str(truth), str(pred)],
                                            env=env, cwd=tree, capture_output=True, text=True, check=True).stdout
                    scores[name] = " / ".join(line.split(None, 1)[1] for line in report.splitlines()[1:3])
    duration = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                     str(args.video)], capture_output=True, text=True, check=True).stdout)
    print(f"{args.video.name}, {duration:.0f} s; load average {os.getloadavg()[0]:.1f}; best of {args.reps}")
    print("| run | wall time | x real time | score |\n|---|---|---|---|")
    for name, values in times.items():
        best = min(values)
        print(f"| {name} | {best:.2f} s | {duration / best:.1f} | {scores[name]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
