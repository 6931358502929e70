"""Live caption delay through a real RTSP server, with 1 and with 100 WebSocket clients.

For each sample video (with its ground-truth SRT beside it) and each client
count, this starts `subflow live rtsp://... --ws` (the real CLI process, the
embedded engine unless --engine says otherwise), connects the clients, then
starts gst-rtsp-server playing the sample in real time. The server reports,
from its pipeline clock, the wall time at which the stream's first frame left
it, so every subtitle's first frame has a known send time; the delay of a
subtitle is the time from then to its first message (partial) reaching a
client. Also reported: delay to its final, cue F1 and CER of the finals
against the ground truth (as for files), frames dropped as stale, and the
memory of the `subflow live` process.

    flock /tmp/subflow-bench.lock .venv/bin/python benchmarks/live_latency.py samples/*.mp4
    .venv/bin/python benchmarks/live_latency.py --clients 1 100 --json out/live_latency.json

Without sample arguments it uses the live tests' clip (5 captions, 30 s). Samples
are re-encoded (same frames and times) with a keyframe every ``--gop`` seconds
(default 1), as live encoders send; a stream can only be joined at a keyframe.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

from live_harness import LiveProcess, RtspServer, ground_truth_for, test_clip, with_gop

from subflow.live.client import CaptionClient
from subflow.records import Cue
from subflow.score import edit_distance, match, normalize, score


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def clock_shift(truth: list[Cue], cues) -> float:
    """File time minus session time. A stream has no file position (the session clock starts at the
    first frame received), so align by text: the median start difference of cues read as a ground-truth line."""
    diffs = []
    for cue in cues:
        text = normalize(cue["text"])
        best = min(truth, key=lambda gt: edit_distance(normalize(gt.text), text) / max(1, len(text)))
        if edit_distance(normalize(best.text), text) <= 0.2 * max(1, len(text)):
            diffs.append(best.start - cue["start"])
    return statistics.median(diffs) if diffs else 0.0


def video_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        return container.duration / av.time_base


def start_offset(path: Path) -> float:
    """The container's start time (seconds): the RTSP server's positions include it, ground truth does not."""
    with av.open(str(path)) as container:
        return (container.start_time or 0) / av.time_base


async def _collect(live: LiveProcess, rtsp: RtspServer, clients: int, duration: float) -> dict:
    """Connect the clients, start the stream, and record when each cue's messages arrive at client 0."""
    first_seen: dict[int, float] = {}
    final_seen: dict[int, float] = {}
    finals: dict[int, dict] = {}
    latest: dict[int, dict] = {}
    counts = [0] * clients
    ended = asyncio.Event()
    connected_once = asyncio.Event()

    async def client(number: int) -> None:
        async for message in CaptionClient(live.ws_url, backoff_max=1.0):
            now = time.time()
            counts[number] += 1
            if number:
                continue
            if message["type"] == "status":
                if message["state"] == "connected":
                    connected_once.set()
                elif message["state"] == "reconnecting" and connected_once.is_set():
                    ended.set()  # the sample played to its end (the server would start it over)
            if message["type"] == "cue":
                cue_id = message["id"]
                first_seen.setdefault(cue_id, now)
                latest[cue_id] = message["cue"]
                if message["final"]:
                    final_seen[cue_id] = now
                    if message.get("retracted"):
                        finals.pop(cue_id, None)
                    else:
                        finals[cue_id] = message["cue"]

    tasks = [asyncio.create_task(client(n)) for n in range(clients)]
    await asyncio.sleep(1.0 + clients * 0.01)
    await asyncio.to_thread(rtsp.start)
    position, wall = await asyncio.to_thread(rtsp.play_line)
    try:
        await asyncio.wait_for(ended.wait(), duration + 60)
    except asyncio.TimeoutError:
        pass
    rtsp.kill()  # no second play-through
    stats = await asyncio.to_thread(live.get, "/stats")
    await asyncio.sleep(0.5)
    return {"position": position, "wall": wall, "first_seen": first_seen, "final_seen": final_seen,
            "finals": finals, "latest": latest, "counts": counts, "stats": stats, "tasks": tasks}


def measure(video: Path, clients: int, engine: str | None, extra: list[str]) -> dict:
    truth = ground_truth_for(video)
    duration = video_duration(video)
    with tempfile.TemporaryDirectory(prefix="subflow-live-bench-") as tmp:
        rtsp = RtspServer(video, duration, broadcast=False, timing=True)
        args = ["--set", "live.backoff_min=0.2", "--set", "live.backoff_max=0.5", *extra]
        if engine:
            args += ["--engine", engine]
        live = LiveProcess(rtsp.url, Path(tmp), *args)
        rss: list[float] = []
        try:
            live.wait_healthy()
            rss.append(live.rss_mb())

            async def run() -> dict:
                async def sample_memory():
                    while True:
                        rss.append(live.rss_mb())
                        await asyncio.sleep(0.5)

                sampler = asyncio.create_task(sample_memory())
                result = await _collect(live, rtsp, clients, duration)
                sampler.cancel()
                for task in result.pop("tasks"):
                    task.cancel()
                return result

            got = asyncio.run(run())
        finally:
            rtsp.kill()
            code = live.stop()
            log_tail = live.log_path.read_text()[-2000:] if code else ""
    if code:
        print(f"warning: subflow live exited with {code}:\n{log_tail}", file=sys.stderr)

    cues = {cid: got["finals"].get(cid) or got["latest"][cid] for cid in got["first_seen"]}
    shift = clock_shift(truth, cues.values())
    pred = [Cue(index=cid, start=c["start"] + shift, end=max(c["end"], c["start"]) + shift, lines=c["lines"],
                region=c.get("region", "bottom"))  # scoring pairs cues within a region: top signs need theirs
            for cid, c in sorted(cues.items())]
    finals = [p for p in pred if p.index in got["finals"]]
    offset = start_offset(video)
    sent = lambda t: got["wall"] + (t + offset - got["position"])  # noqa: E731  wall time the frame at t left the server
    first_delays, final_delays = [], []
    for gi, pi in match(truth, pred):
        cue_id = pred[pi].index
        first_delays.append(got["first_seen"][cue_id] - sent(truth[gi].start))
        if cue_id in got["final_seen"]:
            final_delays.append(got["final_seen"][cue_id] - sent(truth[gi].end))
    quality = score(truth, finals)
    return {
        "video": str(video),
        "clients": clients,
        "gt_cues": len(truth),
        "matched": len(first_delays),
        "delay_first_p50": percentile(first_delays, 0.5),
        "delay_first_p95": percentile(first_delays, 0.95),
        "delay_first_max": max(first_delays, default=None),
        "delays_first": [round(d, 3) for d in first_delays],
        "delay_final_p50": percentile(final_delays, 0.5),
        "delay_final_p95": percentile(final_delays, 0.95),
        "f1": quality.f1,
        "cer": quality.cer,
        "start_bias_ms": quality.start_bias_ms,
        "messages_per_client": statistics.median(got["counts"]) if got["counts"] else 0,
        "rss_mb_start": round(rss[0], 1) if rss else None,
        "rss_mb_peak": round(max(rss), 1) if rss else None,
        "frames_dropped_stale": got["stats"].get("frames_dropped_stale"),
        "frames_decoded": got["stats"].get("frames_decoded"),
        "server_first_seen_p95": got["stats"]["latency"]["first_seen_p95"],
        "exit_code": code,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="*", type=Path, help="samples with a .srt beside (default: the live tests' clip)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--engine", help="OCR engine (default: the config's, rapid)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="passed to subflow live")
    parser.add_argument("--gop", type=float, default=1.0, help="re-encode with a keyframe every GOP seconds, as live "
                        "encoders do (0: play the files as they are; a 10 s GOP means joining costs up to 10 s)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    extra = [item for value in args.set for item in ("--set", value)]

    with tempfile.TemporaryDirectory(prefix="subflow-live-clip-") as tmp:
        videos = args.videos or [test_clip(Path(tmp))]
        if args.gop > 0:
            videos = [with_gop(video, args.gop, Path(tmp)) for video in videos]
        results = []
        for video in videos:
            for clients in args.clients:
                result = measure(video, clients, args.engine, extra)
                results.append(result)
                print(json.dumps(result), flush=True)

    def fmt(value: float | None, scale: float = 1.0, unit: str = " s") -> str:
        return "n/a" if value is None else f"{value * scale:.3f}{unit}"

    print(f"\nlive latency on {platform.node()} ({__import__('os').cpu_count()} cores)")
    print(f"{'video':<28} {'clients':>7} {'matched':>9} {'first p50':>10} {'first p95':>10} {'final p95':>10} {'F1':>6} {'CER':>7} {'RSS peak':>9} {'stale':>6}")
    for r in results:
        print(f"{Path(r['video']).name:<28} {r['clients']:>7} {r['matched']:>4}/{r['gt_cues']:<4} {fmt(r['delay_first_p50']):>10} "
              f"{fmt(r['delay_first_p95']):>10} {fmt(r['delay_final_p95']):>10} {r['f1']:>6.3f} {fmt(r['cer'], 100, '%'):>7} "
              f"{r['rss_mb_peak']:>7} MB {r['frames_dropped_stale']:>6}")
    by_video: dict[str, dict[int, dict]] = {}
    for r in results:
        by_video.setdefault(r["video"], {})[r["clients"]] = r
    for video, runs in by_video.items():
        low, high = min(runs), max(runs)
        if low != high and runs[low]["delay_first_p95"] and runs[high]["delay_first_p95"]:
            growth = runs[high]["delay_first_p95"] / runs[low]["delay_first_p95"] - 1
            print(f"{Path(video).name}: p95 with {high} clients vs {low}: {growth:+.1%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
