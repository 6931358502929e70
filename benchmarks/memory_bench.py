"""Memory over a long input: `subflow extract` must stream, with flat RSS and a peak under 1 GB.

    python benchmarks/memory_bench.py                 # 2 hours: a generated 5-min 720p clip played 24 times
    python benchmarks/memory_bench.py --hours 0.5

The long input is an FFmpeg concat list of one generated clip (timestamps run
on across the copies), so no 2-hour file has to be rendered. RSS of the
extracting process is sampled from /proc every 2 s; the report gives the peak,
and the growth between the first and last tenth of the run (a leak shows as a
steady climb).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--clip-seconds", type=int, default=300)
    args = parser.parse_args()

    OUT.mkdir(exist_ok=True)
    clip = OUT / f"gen_mixed_720p_{args.clip_seconds}s.mp4"
    if not clip.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "samples" / "generate.py"), "bench", "--duration", str(args.clip_seconds),
             "--height", "720", "--lang", "mixed", "--out", str(clip)],
            check=True,
        )
    copies = max(1, round(args.hours * 3600 / args.clip_seconds))
    playlist = OUT / f"long_{copies}x.ffconcat"
    playlist.write_text("ffconcat version 1.0\n" + f"file '{clip.name}'\n" * copies)

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "subflow.cli", "extract", str(playlist), "-o", str(OUT / "long.srt"), "-q"], cwd=ROOT
    )
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        value = rss_mb(proc.pid)
        if value is not None:
            samples.append((time.perf_counter() - started, value))
        time.sleep(2)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or not samples:
        print(f"extract failed (exit {proc.returncode})")
        return 1
    tenth = max(1, len(samples) // 10)
    early = max(v for _, v in samples[:tenth])
    late = max(v for _, v in samples[-tenth:])
    peak = max(v for _, v in samples)
    media = copies * args.clip_seconds
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"input: {media / 3600:.2f} h of 720p ({copies} x {clip.name}); {elapsed:.0f} s, {media / elapsed:.1f}x real time")
    print(f"peak RSS {peak:.0f} MB; RSS in the first tenth {early:.0f} MB, in the last tenth {late:.0f} MB "
          f"(growth {late - early:+.0f} MB over {media / 3600:.2f} h)")
    return 0 if peak < 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
