"""`subflow serve` side by side with `subflow extract`, and the latency of what an editor does.

    python benchmarks/serve_bench.py                       # the bundled samples, rapid engine
    python benchmarks/serve_bench.py --videos a.mp4 b.mp4 --edits 500

One run measures, on this machine:

1. extraction wall time for the same videos: `subflow extract` over all of them (one process, one
   engine), then `subflow serve` with every job submitted at once, with one job at a time on the
   shared engine (`serve.jobs_per_engine = 1`) and with two (the default);
2. the latency of edits over real HTTP (text, a one-frame nudge, undo), of a boundary frame
   (decoded by seeking, cut to the band) and of an SRT export.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out" / "serve"
SAMPLES = ["en_basic", "zh_basic", "bilingual", "clutter", "fullhd", "top"]


def start(data: Path, *args: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "subflow.cli", "serve", "--port", "0", "--data", str(data), *args],
                            env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    line = proc.stdout.readline()
    url = line.split()[2].rstrip("/")
    for _ in range(300):
        try:
            httpx.get(url + "/api/settings", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("serve did not start")


def serve_extract(videos: list[Path], per_engine: int) -> float:
    data = OUT / f"data-{per_engine}"
    shutil.rmtree(data, ignore_errors=True)
    proc, url = start(data, "--set", f"serve.jobs_per_engine={per_engine}")
    try:
        client = httpx.Client(base_url=url, timeout=60)
        client.post("/api/jobs", files={"file": (videos[0].name, videos[0].read_bytes())})  # loads the engine
        wait(client)
        began = time.perf_counter()
        for video in videos:
            client.post("/api/jobs", files={"file": (video.name, video.read_bytes())})
        wait(client)
        return time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(30)


def wait(client: httpx.Client) -> None:
    while any(job["state"] in ("queued", "running") for job in client.get("/api/jobs").json()):
        time.sleep(0.05)


def cli_extract(videos: list[Path]) -> float:
    """The whole batch in one `subflow extract` (the engine loads once), minus its engine load."""
    out = OUT / "cli"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    warm = [sys.executable, "-m", "subflow.cli", "extract", str(videos[0]), "-o", str(out / "warm.srt"), "-q"]
    began = time.perf_counter()
    subprocess.run(warm, check=True, env=env)
    one = time.perf_counter() - began
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "subflow.cli", "extract", str(videos[0]), *map(str, videos), "-o", str(out), "-q"], check=True, env=env)
    return time.perf_counter() - began - one


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {ordered[int(0.95 * (len(ordered) - 1))] * 1000:.1f} ms"


def latencies(video: Path, edits: int) -> dict[str, str]:
    data = OUT / "data-latency"
    shutil.rmtree(data, ignore_errors=True)
    proc, url = start(data)
    try:
        client = httpx.Client(base_url=url, timeout=60)
        job = client.post("/api/jobs", files={"file": (video.name, video.read_bytes())}).json()
        wait(client)
        base = f"/api/jobs/{job['id']}"
        cues = client.get(f"{base}/cues").json()
        client.get(f"{base}/frames")  # the frame list, read once per video
        times: dict[str, list[float]] = {"text edit": [], "nudge one frame": [], "undo": [], "boundary frame": [], "SRT export": []}

        def timed(name: str, method: str, path: str, **kwargs) -> None:
            began = time.perf_counter()
            response = client.request(method, path, **kwargs)
            times[name].append(time.perf_counter() - began)
            response.raise_for_status()

        for i in range(edits):
            cue = cues[i % len(cues)]
            timed("text edit", "PATCH", f"{base}/cues/{cue['id']}", json={"text": f"{cue['text']} {i}"})
            timed("nudge one frame", "POST", f"{base}/cues/{cue['id']}/nudge", json={"edge": "end", "frames": 1 if i % 2 == 0 else -1})
            timed("undo", "POST", f"{base}/undo")
        for i in range(min(edits, 100)):
            cue = cues[i % len(cues)]
            box = cue["box"]
            timed("boundary frame", "GET", f"{base}/frame", params={"t": cue["start"], "box": f"0,{box[1] - 30},{job['width']},{box[3] + 30}"})
            if i < 30:
                timed("SRT export", "GET", f"{base}/export", params={"format": "srt"})
        return {name: ms(values) + f" (n={len(values)}, {len(cues)} cues)" for name, values in times.items()}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", nargs="+", type=Path, default=[ROOT / "samples" / f"{name}.mp4" for name in SAMPLES])
    parser.add_argument("--edits", type=int, default=200)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    media = sum(float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(v)],
                                     capture_output=True, text=True).stdout) for v in args.videos)  # fmt: skip
    print(f"{len(args.videos)} videos, {media:.0f} s of video; {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f} at the start")
    cli = cli_extract(args.videos)
    one = serve_extract(args.videos, 1)
    two = serve_extract(args.videos, 2)
    print(f"subflow extract (one process, batch):  {cli:6.1f} s  ({media / cli:.1f}x real time)")
    print(f"subflow serve, 1 job at a time:         {one:6.1f} s  ({media / one:.1f}x real time, {cli / one:.2f} of the CLI's speed)")
    print(f"subflow serve, 2 jobs on one engine:     {two:6.1f} s  ({media / two:.1f}x real time, {cli / two:.2f} of the CLI's speed)")
    for name, figure in latencies(args.videos[0], args.edits).items():
        print(f"{name:>16}: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
