"""Decoding throughput on one host: CPU decoders alone, NVDEC alone, and both at once.

Answers issue 11's question for a GPU host: do CPU and hardware (NVDEC) decoding together beat the
CPU alone? Each worker is a process that decodes whole videos through subflow's own source
(``subflow.source.open_source``: the frames as the pipeline gets them, as RGB arrays), so the figure
includes what the pipeline pays to bring NVDEC's frames back to the host.

    python benchmarks/decode_bench.py --videos v1.mp4 v2.mp4 ... --cpu 16 --hw 4 --out bench-out/decode.json

Runs, one after another on the same videos: ``--cpu`` CPU workers; ``--hw`` hardware workers;
both at once. Prints frames per second per run and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subflow.config import SourceConfig  # noqa: E402
from subflow import source as subflow_source  # noqa: E402


def decode(job: tuple[str, str, int]) -> tuple[int, bool]:
    """Decode one video to the end: (frames, whether a hardware decoder was asked for and fell back)."""
    path, hwaccel, threads = job
    source = subflow_source.open_source(path, SourceConfig(hwaccel=hwaccel, threads=threads))
    frames = sum(1 for _ in source.frames())
    source.close()
    return frames, bool(hwaccel) and hwaccel in subflow_source._hw_unavailable


def run(videos: list[str], cpu: int, hw: int, kind: str, threads: int) -> dict:
    """``cpu`` + ``hw`` worker processes share the videos (a queue, so the faster kind takes more)."""
    jobs = [(v, "", threads) for v in videos]
    started = time.perf_counter()
    frames = 0
    fallbacks = 0
    with mp.Pool(cpu) if cpu else _NoPool() as cpu_pool, mp.Pool(hw) if hw else _NoPool() as hw_pool:
        pending = list(jobs)
        running = []
        # one job per worker at a time, from one queue: whichever kind is free takes the next video
        free = {"cpu": cpu, "hw": hw}
        while pending or running:
            for name, pool in (("hw", hw_pool), ("cpu", cpu_pool)):
                while free[name] and pending:
                    path, _, t = pending.pop(0)
                    job = (path, kind if name == "hw" else "", t)
                    running.append((name, pool.apply_async(decode, (job,))))
                    free[name] -= 1
            time.sleep(0.01)
            for entry in [r for r in running if r[1].ready()]:
                running.remove(entry)
                free[entry[0]] += 1
                got, fell_back = entry[1].get()
                frames += got
                fallbacks += fell_back
    wall = time.perf_counter() - started
    return {"cpu_workers": cpu, "hw_workers": hw, "frames": frames, "wall_s": round(wall, 2), "fps": round(frames / wall, 1),
            "hw_fell_back_to_cpu": fallbacks}


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", nargs="+", required=True)
    parser.add_argument("--cpu", type=int, default=os.cpu_count(), help="CPU decoding workers")
    parser.add_argument("--hw", type=int, default=4, help="hardware decoding workers")
    parser.add_argument("--kind", default="cuda", help="FFmpeg hardware device type (cuda = NVDEC)")
    parser.add_argument("--threads", type=int, default=1, help="decoder threads per CPU worker (1: one core each)")
    parser.add_argument("--out", default="bench-out/decode.json")
    args = parser.parse_args()
    from av.codec.hwaccel import hwdevices_available

    available = hwdevices_available()
    print(f"FFmpeg hardware devices here: {', '.join(available) or 'none'}", flush=True)
    results = {"videos": args.videos, "cpus": os.cpu_count(), "hw_available": list(available), "runs": {}}
    plans = [("cpu", args.cpu, 0)]
    if args.kind in available:
        plans += [("hw", 0, args.hw), ("cpu+hw", args.cpu, args.hw)]
    for name, cpu, hw in plans:
        results["runs"][name] = run(args.videos, cpu, hw, args.kind, args.threads)
        print(name, results["runs"][name], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
