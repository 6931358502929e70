"""Throughput of `subflow batch`, side by side in one run: one extract at a time, local mode, Ray mode.

    flock /tmp/subflow-heavy.lock python benchmarks/batch_bench.py            # the 8 bundled samples
    flock /tmp/subflow-heavy.lock python benchmarks/batch_bench.py --videos a.mp4 b.mkv ...

Every run is the whole command a user types, timed from start to exit (process start, engine
loading and Ray's connection included), on the same videos:

- ``extract x N``: one ``subflow extract VIDEO`` after another (what a user does without batch);
- ``extract all``: one ``subflow extract`` of every video (one process, the engine loaded once);
- ``batch local``: ``subflow batch`` with one worker (and engine) per core;
- ``batch ray``: ``subflow batch --ray`` on a Ray head started here for the run (as many CPUs as
  cores), with its defaults (one engine actor reserving a CPU), and with the engine actor reserving
  no CPU slot (so as many videos decode as there are cores). Ray mode on one machine is also the
  "shared engine process" design (every video's crops go to one engine in another process),
  measured here against local mode's engine per worker.

Prints a Markdown table (aggregate media-seconds per second and the ratio to ``extract x N``) and
the per-video costs from the manifests (for the N-node estimate in docs/batch.md); writes JSON to
bench-out/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extract_bench import machine, media_seconds  # noqa: E402

OUT = ROOT / "bench-out"
RAY = str(Path(sys.executable).parent / "ray")


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "subflow.cli", *args], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: subflow {' '.join(args)}\n{proc.stderr[-3000:]}")
    return elapsed


def ray_head(temp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    head = subprocess.Popen(
        [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(os.cpu_count()),
         "--include-dashboard", "false", "--object-store-memory", str(200 * 1024 * 1024), "--temp-dir", str(temp),
         "--disable-usage-stats", "--block"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    deadline = time.monotonic() + 120
    while subprocess.run([RAY, "status", "--address", address], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            head.terminate()
            raise SystemExit("the Ray head did not start")
        time.sleep(1)
    return head, address


def manifest_costs(out: Path) -> list[dict]:
    lines = (out / "subflow-batch.jsonl").read_text().splitlines()
    return [{k: r[k] for k in ("key", "duration", "elapsed", "crops", "stages", "worker")} for r in map(json.loads, lines)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", nargs="*", type=Path, help="videos to run (default: the 8 bundled samples)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray runs")
    args = parser.parse_args()
    videos = args.videos or sorted((ROOT / "samples").glob("*.mp4"))
    media = sum(media_seconds(v)[0] for v in videos)
    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    inputs = work / "in"
    inputs.mkdir()
    for video in videos:
        shutil.copy(video, inputs / video.name)
    names = sorted(p.name for p in inputs.iterdir())
    started_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"machine: {machine()}; {len(names)} videos, {media:.1f} media seconds; {started_at}", flush=True)

    runs: dict[str, float] = {}
    costs: dict[str, list[dict]] = {}
    single = work / "single"
    single.mkdir()
    runs["extract x N"] = sum(timed(["extract", str(inputs / n), "-o", str(single / (n + ".srt")), "-q"]) for n in names)
    print(f"extract x N: {runs['extract x N']:.1f} s", flush=True)
    every = work / "every"
    every.mkdir()
    runs["extract all"] = timed(["extract", *[str(inputs / n) for n in names], "-o", str(every), "-q"])
    print(f"extract all: {runs['extract all']:.1f} s", flush=True)
    runs["batch local"] = timed(["batch", str(inputs), "--out-dir", str(work / "local"), "-q"])
    costs["batch local"] = manifest_costs(work / "local")
    print(f"batch local: {runs['batch local']:.1f} s", flush=True)
    if not args.no_ray:
        head, address = ray_head(work / "ray")
        try:
            variants = {
                "batch ray": [],
                "batch ray, engine CPU 0": ["--set", "batch.cpus_per_engine=0"],
            }
            for name, extra in variants.items():
                out = work / name.replace(" ", "_").replace(",", "")
                runs[name] = timed(["batch", str(inputs), "--out-dir", str(out), "-q", "--ray", address, *extra])
                costs[name] = manifest_costs(out)
                print(f"{name}: {runs[name]:.1f} s", flush=True)
        finally:
            head.terminate()
            head.wait(timeout=60)

    base = runs["extract x N"]
    print(f"\nMachine: {machine()}; {started_at}; {len(names)} videos, {media:.1f} media seconds in all\n")
    print("| run | wall s | media-s per s | vs extract x N | vs batch local |")
    print("|---|---|---|---|---|")
    for name, wall in runs.items():
        print(f"| {name} | {wall:.1f} | {media / wall:.2f} | {base / wall:.2f}x | {runs['batch local'] / wall:.2f}x |")
    OUT.mkdir(exist_ok=True)
    (OUT / "batch.json").write_text(
        json.dumps({"machine": machine(), "date": started_at, "videos": names, "media_seconds": media, "runs": runs, "costs": costs}, indent=1)
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
