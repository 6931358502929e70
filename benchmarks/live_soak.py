"""Soak: `subflow live` on a looping RTSP broadcast with repeated faults, for as long as you like.

What runs: gst-rtsp-server plays a clip as a broadcast (each reconnect joins at
the wall-clock position; at the clip's end the stream ends and the reconnect
starts it over, so it loops); `subflow live` (the real CLI process) reads it
with --ws and --srt; and around it:

* a reference client that stays connected (it resumes if the server closes it);
* churning clients that connect, read a few seconds, leave, and come back with
  ``since``/``session`` from where they left;
* a client that never reads, reopened every 20 s (it must be closed with 1013
  without slowing anyone);
* faults every ``--fault-every`` seconds, in turn: the RTSP server stalled
  (SIGSTOP for 3 s), killed and restarted.

Every 5 s it samples the process's memory, open file handles and threads. The
verdict (exit 0 when all hold): clean exit on SIGTERM with a valid SRT holding
every final the reference client got; no final twice or out of order at any
client; every churning client got every final of the time it followed the
session, across its reconnects; no growth in file handles or threads; memory
growth from the second to the last quarter within bounds.

    .venv/bin/python benchmarks/live_soak.py --seconds 3600          # the 1-hour soak
    .venv/bin/python benchmarks/live_soak.py --seconds 40 --fault-every 10   # the short one (tests run it)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import srt
from live_harness import LiveProcess, RtspServer, test_clip
from websockets.asyncio.client import connect

from subflow.live.client import CaptionClient

SAMPLE_EVERY = 5.0


class Follower:
    """The finals one logical client received, over all its connections."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ids: list[int] = []
        self.texts: list[str] = []
        self.session: str | None = None
        self.last_seq: int | None = None

    def take(self, message: dict) -> None:
        if message["type"] == "cue" and message["final"] and not message.get("retracted"):
            self.ids.append(message["id"])
            self.texts.append(message["cue"]["text"])


async def reference(url: str, follower: Follower, states: list[str]) -> None:
    async for message in CaptionClient(url, backoff_min=0.1, backoff_max=1.0):
        follower.take(message)
        if message["type"] == "status":
            states.append(message["state"])


async def churn(url: str, follower: Follower, rng: random.Random) -> None:
    while True:
        client = CaptionClient(url, since=follower.last_seq, session=follower.session, backoff_min=0.1, backoff_max=1.0)

        async def follow() -> None:
            async for message in client:
                follower.take(message)
                follower.session, follower.last_seq = client.session, client.last_seq

        try:
            await asyncio.wait_for(follow(), rng.uniform(1.0, 6.0))
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(rng.uniform(0.2, 3.0))


async def never_reads(url: str, counter: list[int]) -> None:
    while True:
        try:
            ws = await connect(url, max_queue=1)
            counter[0] += 1
            await asyncio.sleep(15)
            ws.transport.abort()
        except OSError:
            pass
        await asyncio.sleep(5)


async def faults(rtsp: RtspServer, every: float, log: list[str]) -> None:
    turn = 0
    while True:
        await asyncio.sleep(every)
        if turn % 2 == 0:
            rtsp.signal(signal.SIGSTOP)
            log.append(f"{time.strftime('%H:%M:%S')} stall 3 s")
            await asyncio.sleep(3)
            rtsp.signal(signal.SIGCONT)
        else:
            rtsp.kill()
            log.append(f"{time.strftime('%H:%M:%S')} kill + restart")
            await asyncio.sleep(1)
            await asyncio.to_thread(rtsp.start)
        turn += 1


async def sample(live: LiveProcess, samples: list[dict]) -> None:
    started = time.monotonic()
    while True:
        samples.append({"t": round(time.monotonic() - started, 1), "rss_mb": round(live.rss_mb(), 1),
                        "fds": live.open_fds(), "threads": live.threads()})
        await asyncio.sleep(SAMPLE_EVERY)


async def soak(live: LiveProcess, rtsp: RtspServer, seconds: float, fault_every: float, churners: int, seed: int) -> dict:
    rng = random.Random(seed)
    ref = Follower("reference")
    followers = [Follower(f"churn{i}") for i in range(churners)]
    states: list[str] = []
    fault_log: list[str] = []
    samples: list[dict] = []
    stalled = [0]
    tasks = [asyncio.create_task(reference(live.ws_url, ref, states))]
    tasks += [asyncio.create_task(churn(live.ws_url, f, random.Random(rng.random()))) for f in followers]
    tasks += [asyncio.create_task(never_reads(live.ws_url, stalled)), asyncio.create_task(sample(live, samples))]
    await asyncio.sleep(1.0)
    await asyncio.to_thread(rtsp.start)
    tasks.append(asyncio.create_task(faults(rtsp, fault_every, fault_log)))
    await asyncio.sleep(seconds)
    stats = await asyncio.to_thread(live.get, "/stats")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"ref": ref, "followers": followers, "states": states, "faults": fault_log, "samples": samples,
            "stalled_clients": stalled[0], "stats": stats}


def judge(got: dict, srt_cues: list, exit_code: int, truth_texts: set[str]) -> dict:
    ref, samples = got["ref"], got["samples"]
    problems: list[str] = []
    if exit_code != 130:  # stopped by a signal: outputs complete, exit 130 like any interrupted subflow command
        problems.append(f"exit code {exit_code} after SIGTERM (expected 130)")
    if len(srt_cues) < len(ref.ids):
        problems.append(f"SRT has {len(srt_cues)} cues, the reference client got {len(ref.ids)} finals")
    if ref.ids != sorted(set(ref.ids)):
        problems.append("reference client got a final twice or out of order")
    for follower in got["followers"]:
        if follower.ids != sorted(set(follower.ids)):
            problems.append(f"{follower.name}: a final twice or out of order")
        elif follower.ids:
            span = [i for i in ref.ids if follower.ids[0] <= i <= follower.ids[-1]]
            if follower.ids != span:
                problems.append(f"{follower.name}: missed {len(set(span) - set(follower.ids))} finals across its reconnects")
    # Memory: the second quarter (the engine has seen every crop size by then) against the last one.
    quarter = max(1, len(samples) // 4)
    rss_first = statistics.median(s["rss_mb"] for s in samples[quarter : 2 * quarter]) if len(samples) >= 4 else None
    rss_last = statistics.median(s["rss_mb"] for s in samples[-quarter:]) if len(samples) >= 4 else None
    settled = samples[min(2, len(samples) - 1)] if samples else None
    if rss_first and rss_last and rss_last - rss_first > max(20.0, 0.15 * rss_first):
        problems.append(f"memory grew from {rss_first} MB to {rss_last} MB")
    if settled and samples[-1]["fds"] > settled["fds"] + 4:
        problems.append(f"file handles grew from {settled['fds']} to {samples[-1]['fds']}")
    if settled and samples[-1]["threads"] > settled["threads"] + 3:
        problems.append(f"threads grew from {settled['threads']} to {samples[-1]['threads']}")
    text_ok = sum(text in truth_texts for text in ref.texts) / len(ref.texts) if ref.texts and truth_texts else None
    return {
        "ok": not problems,
        "problems": problems,
        "finals": len(ref.ids),
        "srt_cues": len(srt_cues),
        "text_exact_share": text_ok,
        "churn_finals": [len(f.ids) for f in got["followers"]],
        "reconnects": got["stats"].get("reconnects"),
        "slow_clients_closed": got["stats"].get("slow_clients_closed"),
        "stalled_clients_opened": got["stalled_clients"],
        "faults": got["faults"],
        "rss_mb": {"second_quarter": rss_first, "last_quarter": rss_last, "peak": max((s["rss_mb"] for s in samples), default=None)},
        "fds": {"settled": settled and settled["fds"], "end": samples[-1]["fds"] if samples else None},
        "threads": {"settled": settled and settled["threads"], "end": samples[-1]["threads"] if samples else None},
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--fault-every", type=float, default=60)
    parser.add_argument("--churn", type=int, default=4, help="churning clients")
    parser.add_argument("--video", type=Path, help="default: the live tests' clip (5 captions, 30 s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the verdict here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="subflow-soak-") as tmp:
        workdir = Path(tmp)
        video = args.video or test_clip(workdir)
        truth_srt = video.with_suffix(".srt")
        truth_texts = {s.content for s in srt.parse(truth_srt.read_text())} if truth_srt.exists() else set()
        with av.open(str(video)) as container:
            duration = container.duration / av.time_base
        rtsp = RtspServer(video, duration, broadcast=True)
        out_srt = workdir / "soak.srt"
        live = LiveProcess(rtsp.url, workdir, "--srt", str(out_srt), "--set", "live.timeout=1",
                           "--set", "live.backoff_min=0.2", "--set", "live.backoff_max=1", "--set", "server.client_queue=16")
        try:
            live.wait_healthy()
            got = asyncio.run(soak(live, rtsp, args.seconds, args.fault_every, args.churn, args.seed))
        finally:
            rtsp.kill()
            exit_code = live.stop()
        try:
            srt_cues = list(srt.parse(out_srt.read_text()))
        except (OSError, srt.SRTParseError) as exc:
            srt_cues = []
            print(f"soak: the SRT is not valid: {exc}", file=sys.stderr)
        verdict = judge(got, srt_cues, exit_code, truth_texts)
        if not verdict["ok"]:
            print(live.log_path.read_text()[-3000:], file=sys.stderr)
    summary = {k: v for k, v in verdict.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(verdict, indent=2))
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
