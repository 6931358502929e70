"""Throughput of `subflow batch`, side by side in one run: one extract at a time, local mode, Ray mode.

    flock /tmp/subflow-heavy.lock python benchmarks/batch_bench.py            # the bundled samples (10-20 s each)
    flock /tmp/subflow-heavy.lock python benchmarks/batch_bench.py --generate 8  # 8 generated 720p videos, 60-120 s
    flock /tmp/subflow-heavy.lock python benchmarks/batch_bench.py --videos a.mp4 b.mkv ...

Every run is the whole command a user types, timed from start to exit (process start, engine
loading and Ray's connection included), on the same videos:

- ``extract x N``: one ``subflow extract VIDEO`` after another (what a user does without batch);
- ``extract all``: one ``subflow extract`` of every video (one process, the engine loaded once);
- ``batch local``: ``subflow batch`` with one worker (and engine) per core;
- ``batch ray``: ``subflow batch --ray`` on a Ray head started here for the run (as many CPUs as
  cores; started before the run and stopped after it, neither timed), with its defaults (one engine actor, reserving no CPU below 4 CPUs per actor since
  2026-12-03, one CPU before), and with the engine actor reserving
  no CPU slot (so as many videos decode as there are cores). Ray mode on one machine is also the
  "shared engine process" design (every video's crops go to one engine in another process),
  measured here against local mode's engine per worker;
- ``batch ray (base)``, with ``--base DIR``: ``batch ray`` with the subflow of another tree (before
  and after a change, in one run).

Only Ray runs have a Ray head on the machine (before 2026-12-03 16:00 UTC one head stayed up for
every run, local ones too, and its daemons took ~1.5-2 s of CPU from each local run). Each head
has run one untimed job, so that no timed run gets the worker processes Ray starts ahead only for a
new head's first job: every run starts its workers as on a cluster that was up before.

Each run is done ``--rounds`` times, in rotating order (other jobs' load drifts), and the median is
reported. Prints a Markdown table (aggregate media-seconds per second and ratios) and writes JSON,
with the per-video costs from the manifests (for the N-node estimate in docs/batch.md), to
bench-out/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extract_bench import generated, machine, media_seconds  # noqa: E402

OUT = ROOT / "bench-out"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the ray CLI, also where Ray came without its script


def timed(args: list[str], tree: Path = ROOT) -> tuple[float, str]:
    """Seconds one subflow command took, run with the subflow of ``tree`` (its folder is also where Ray's
    workers look first for code: Ray puts the driver's working directory on their path)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "subflow.cli", *args], capture_output=True, text=True, cwd=tree, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: subflow {' '.join(args)}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


def ray_head(temp: Path) -> tuple[subprocess.Popen, str]:
    """A Ray head on this machine for the run (loopback only, no token auth); the runs inherit the env."""
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # each run's workers find its tree (see timed)
    head = subprocess.Popen(
        [*RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(os.cpu_count()),
         "--include-dashboard", "false", "--object-store-memory", str(200 * 1024 * 1024), "--temp-dir", str(temp),
         "--disable-usage-stats", "--block"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    deadline = time.monotonic() + 120
    while subprocess.run([*RAY, "status", "--address", address], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            head.terminate()
            raise SystemExit("the Ray head did not start")
        time.sleep(1)
    # The first job on a new head finds worker processes already started for it; later ones (every run
    # on a cluster that was up before) do not. A first job that times nothing leaves every run the latter.
    subprocess.run([sys.executable, "-c", f"import ray; ray.init(address={address!r}); ray.shutdown()"], env=env,
                   capture_output=True, check=True)
    return head, address


def generated_batch(count: int, height: int) -> list[Path]:
    """``count`` benchmark videos of episode-like length: 60 to 120 s, evenly spread, languages in turn
    (English, Chinese, Chinese over English, mixed lines), each from its own seed; rendered once into bench-out/."""
    languages = ("en", "zh", "bi", "mixed")
    return [
        generated(height, round(60 + 60 * i / max(1, count - 1)), languages[i % len(languages)], seed=i + 1)
        for i in range(count)
    ]


def stop_head(head: subprocess.Popen) -> None:
    """Stop a head from :func:`ray_head` (its `ray start --block` ends the node's processes), then let them go."""
    head.terminate()
    head.wait(timeout=90)
    time.sleep(2)


def manifest_costs(out: Path) -> list[dict]:
    lines = (out / "subflow-batch.jsonl").read_text().splitlines()
    return [{k: r[k] for k in ("key", "duration", "elapsed", "crops", "stages", "worker")} for r in map(json.loads, lines)]


def _ratio(median: dict[str, float], name: str, wall: float) -> str:
    return f"{median[name] / wall:.2f}x" if name in median else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", nargs="*", type=Path, help="videos to run (default: the bundled samples)")
    parser.add_argument("--generate", type=int, metavar="N", help="run N generated videos of 60-120 s instead "
                        "(samples/generate.py bench, seeds 1..N, rendered once into bench-out/)")
    parser.add_argument("--height", type=int, default=720, help="frame height of the --generate videos (default 720)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray runs")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every run, in rotating order (median reported)")
    parser.add_argument("--runs", help="comma-separated subset of the runs below, e.g. 'extract all,batch ray'; "
                        "the runs: 'extract x N', 'extract all', 'batch local', 'batch ray', "
                        "'batch ray (engine CPUs 0)', 'batch ray (engine CPUs 4)', 'batch ray (base)' (with --base)")
    parser.add_argument("--args", default="", help="more arguments for every subflow command, e.g. on a GPU host "
                        "'--engine hunyuan-transformers --set engines.hunyuan-transformers.model=/ckpt'")
    parser.add_argument("--base", type=Path, metavar="DIR", help="also run 'batch ray (base)': Ray mode with the subflow "
                        "of another tree, e.g. `git archive COMMIT | tar -x -C DIR`, for before and after in one run")
    parser.add_argument("--out", type=Path, default=OUT / "batch.json")
    args = parser.parse_args()
    extra = args.args.split()
    videos = args.videos or (generated_batch(args.generate, args.height) if args.generate else None) or sorted(
        (ROOT / "samples").glob("*.mp4")
    )
    media = sum(media_seconds(v)[0] for v in videos)
    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    inputs = work / "in"  # the videos are copied there once the runs asked for are known
    names = sorted({video.name for video in videos})

    commands: dict[str, list[list[str]]] = {
        "extract x N": [["extract", str(inputs / n), "-o", "{out}/" + n + ".srt", "-q"] for n in names],
        "extract all": [["extract", *[str(inputs / n) for n in names], "-o", "{out}", "-q"]],
        "batch local": [["batch", str(inputs), "--out-dir", "{out}", "-q"]],
    }
    if not args.no_ray:  # "{ray}": the address of a head started for that run
        commands["batch ray"] = [["batch", str(inputs), "--out-dir", "{out}", "-q", "--ray", "{ray}"]]
        # The engine actor's reserved CPUs also set its threads: Ray gives it OMP_NUM_THREADS = its num_cpus
        # (at least 1), and torch sizes its CPU thread pool by that.
        for cpus in (0, 4):
            commands[f"batch ray (engine CPUs {cpus})"] = [
                ["batch", str(inputs), "--out-dir", "{out}", "-q", "--ray", "{ray}", "--set", f"batch.cpus_per_engine={cpus}"]
            ]
        if args.base:
            commands["batch ray (base)"] = commands["batch ray"]
    if args.runs:
        wanted = args.runs.split(",")
        unknown = [name for name in wanted if name not in commands]
        if unknown:
            parser.error(f"unknown run {unknown[0]!r}; the runs: {', '.join(repr(n) for n in commands)}")
        commands = {name: commands[name] for name in wanted}
    inputs.mkdir()
    for video in videos:
        shutil.copy(video, inputs / video.name)
    started_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"machine: {machine()}; {len(names)} videos, {media:.1f} media seconds; {started_at}", flush=True)
    # batch commands print their summary (--json): Ray mode's says how long each engine actor took to load
    commands = {name: [cmd + extra + (["--json"] if cmd[0] == "batch" else []) for cmd in cmds]
                for name, cmds in commands.items()}
    runs: dict[str, list[float]] = {name: [] for name in commands}
    costs: dict[str, list[dict]] = {}
    engines: dict[str, list[dict]] = {}
    for round_ in range(args.rounds):
        order = list(commands)[round_ % len(commands):] + list(commands)[: round_ % len(commands)]  # rotate: load drifts
        for name in order:
            slug = f"{name.replace(' ', '_').replace(',', '').replace('(', '').replace(')', '')}_{round_}"
            out = work / slug
            out.mkdir()
            tree = args.base.resolve() if name.endswith("(base)") else ROOT
            # A Ray run gets a head of its own, up only for it: the other runs have the machine without Ray.
            head, address = ray_head(work / f"ray_{slug}") if "{ray}" in commands[name][0] else (None, "")
            try:
                results = [timed([a.replace("{out}", str(out)).replace("{ray}", address) for a in cmd], tree)
                           for cmd in commands[name]]
            finally:
                if head is not None:
                    stop_head(head)
            runs[name].append(sum(seconds for seconds, _ in results))
            if name.startswith("batch"):
                costs[name] = manifest_costs(out)
                engines[name] = json.loads(results[-1][1])["engines"]
                if engines[name]:
                    print(f"  {name}: engine actors {engines[name]}", flush=True)
            print(f"round {round_ + 1}: {name}: {runs[name][-1]:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)

    median = {name: statistics.median(times) for name, times in runs.items()}
    base = median[next(iter(median))]  # the first run named
    print(f"\nMachine: {machine()}; {started_at}; {len(names)} videos, {media:.1f} media seconds in all; "
          f"median of {args.rounds} rounds\n")
    print("| run | wall s (median) | all rounds | media-s per s | vs the first run | vs extract all | vs batch local |")
    print("|---|---|---|---|---|---|---|")
    for name, wall in median.items():
        print(f"| {name} | {wall:.1f} | {', '.join(f'{t:.1f}' for t in runs[name])} | {media / wall:.2f} | "
              f"{base / wall:.2f}x | "
              f"{_ratio(median, 'extract all', wall)} | {_ratio(median, 'batch local', wall)} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"machine": machine(), "date": started_at, "videos": names, "media_seconds": media, "runs": runs,
                    "median": median, "costs": costs, "engines": engines, "args": args.args}, indent=1)
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
