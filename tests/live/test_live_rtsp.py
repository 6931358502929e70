"""`subflow live` end to end: a real RTSP server, the real CLI process, real WebSocket clients, and faults.

The RTSP server plays the clip like a broadcast (a reconnect joins at the
current position), and every fault is placed in a gap between captions, so the
ground truth is exact: every caption must arrive once as final, in order, with
its text, at every client and in the SRT file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import srt
from browser import Chromium
from live_support import needs_chromium, needs_rtsp
from rtsp_server import RtspServer, free_port
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from subflow.live.client import CaptionClient
from subflow.config import LiveConfig
from subflow.live.source import LiveSource
from subflow.source import StreamBreak

pytestmark = [needs_rtsp, pytest.mark.live, pytest.mark.timeout(120)]


def test_refused_connection_backs_off_then_connects_with_a_monotonic_clock(rtsp_server):
    statuses: list[tuple[str, dict]] = []
    source = LiveSource(rtsp_server.url, live=LiveConfig(timeout=1.0, backoff_min=0.1, backoff_max=0.4),
                        on_status=lambda state, detail: statuses.append((state, detail)))
    try:
        time.sleep(1.2)  # nothing listens yet: refused, again and again, with growing then capped delays
        rtsp_server.start()
        frames, breaks = [], []
        for frame in source.frames():
            if isinstance(frame, StreamBreak):  # where the stream dropped, between the two connections
                breaks.append((len(frames), frame.time))
                continue
            frames.append(frame)
            if len(frames) == 30:
                rtsp_server.kill()  # a crash mid-stream, then the server comes back
                rtsp_server.start()
            if len(frames) == 60:
                break
    finally:
        source.close()
    delays = [d["retry_in"] for s, d in statuses if s == "reconnecting" and "retry_in" in d]
    assert statuses[0][0] == "connecting"
    assert delays[:3] == [0.1, 0.2, 0.4] and max(delays) == 0.4
    assert [s for s, _ in statuses].count("connected") == 2
    times = [f.time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    # A stream's first frame comes without a timestamp: it belongs one frame before the next (placed ~1 s
    # early, it was dropped as stale), and no frame of either connection is lost
    assert all(b - a < 0.1 for a, b in zip(times[:25], times[1:25]))
    assert source.stats.frames_dropped == 0
    assert len(breaks) == 1  # one drop, after the frames already queued when the server died
    at, when = breaks[0]
    assert at >= 30 and frames[at - 1].time < when < frames[at].time
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    assert source.stats.reconnects == 1


def test_udp_transport_reads_frames(rtsp_server):
    rtsp_server.start()
    source = LiveSource(rtsp_server.url, live=LiveConfig(transport="udp", timeout=2.0))
    try:
        frames = []
        for frame in source.frames():
            frames.append(frame)
            if len(frames) == 10:
                break
        assert source.width == 640 and source.height == 360
    finally:
        source.close()
    assert len(frames) == 10


class Session:
    """The `subflow live` process under test."""

    def __init__(self, url: str, tmp: Path, token: str) -> None:
        self.port = free_port()
        self.srt = tmp / "live.srt"
        tokens = tmp / "tokens.txt"
        tokens.write_text(f"# viewers\n{token}\n")
        self.log = open(tmp / "live.log", "w")
        # Outages must fit in the clip's 7 s gaps, a connection attempt that hangs included: one that
        # reached the server while it was stopped can get no stream after it resumes, and is retried
        # only after connect_timeout (10 s by default lost two captions: once in CI, 1 run in 3 here).
        cmd = [sys.executable, "-m", "subflow.cli", "live", url, "-v", "--ws", f"127.0.0.1:{self.port}",
               "--srt", str(self.srt), "--token-file", str(tokens),
               "--set", "live.timeout=1", "--set", "live.connect_timeout=3",
               "--set", "live.backoff_min=0.2", "--set", "live.backoff_max=1"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, cwd=Path(__file__).parents[2])

    def wait_healthy(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "subflow live exited early"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    return json.load(response)
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("subflow live did not come up")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# Records every caption the overlay shows, however briefly (injected by the test, not part of the page).
_RECORD_SHOWN = """
window.__shown = [];
new MutationObserver(() => {
  const text = document.querySelector('#caption-bottom .text').textContent;
  if (text && window.__shown[window.__shown.length - 1] !== text) window.__shown.push(text);
}).observe(document.getElementById('caption-bottom'), {subtree: true, childList: true, characterData: true});
true
"""


@needs_chromium
def test_live_session_delivers_every_cue_once_across_faults(rtsp_server, ground_truth, tmp_path):
    token = "viewer-token"
    session = Session(rtsp_server.url, tmp_path, token)
    page = None
    try:
        session.wait_healthy()
        page = Chromium(f"http://127.0.0.1:{session.port}/?token={token}")
        assert page.wait_for("document.body.dataset.state", "reconnecting") == "reconnecting"  # the stream is not up yet
        page.evaluate(_RECORD_SHOWN)
        result = asyncio.run(_drive(session, rtsp_server, token, ground_truth))
        shown = page.evaluate("window.__shown")
        exit_code = session.proc.wait(20)
    finally:
        if page is not None:
            page.close()
        session.close()
    log = (tmp_path / "live.log").read_text()
    expected = [cue.text for cue in ground_truth]

    seen = f"{log[-3000:]}\nA saw, by broadcast time: {result['a_seen']}"
    assert result["a"] == expected, seen
    assert not result["errors"], seen
    assert result["b"] == expected, log[-3000:]
    assert result["b_replayed"] >= 1  # B was away while a caption closed, and got it on resume
    assert result["states"].count("connected") >= 2 and "reconnecting" in result["states"]
    assert result["wrong_token"] == 401 and result["bad_reply"] == "error"
    assert [text for text in shown if text in expected] == expected  # the overlay showed each caption as sent
    assert exit_code == 130, log[-3000:]  # stopped by SIGTERM, outputs complete
    assert f"captions on ws://127.0.0.1:{session.port}/ws?token=TOKEN, overlay on http://127.0.0.1:{session.port}/?token=TOKEN" in log
    assert f"subflow live: stopped after {len(expected)} cues; outputs complete" in log, log[-3000:]
    cues = list(srt.parse(session.srt.read_text()))
    assert [c.content for c in cues] == expected
    # 2 s each; under load the newest-frames-first queue may drop a few blank frames around a cue
    assert all(1.0 <= (c.end - c.start).total_seconds() <= 3.0 for c in cues), srt.compose(cues)
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))


async def _drive(session: Session, rtsp: RtspServer, token: str, truth: list) -> dict:
    """Clients A (helper, stays), B (raw, leaves and resumes) and a stalled one; faults on the broadcast clock."""
    base = f"ws://127.0.0.1:{session.port}/ws"
    out: dict = {"a": [], "b": [], "states": [], "b_replayed": 0, "a_seen": []}
    try:
        async with connect(base + "?token=nope"):
            pass
    except InvalidStatus as exc:
        out["wrong_token"] = exc.response.status_code
    stalled = await connect(f"{base}?token={token}", max_queue=1)  # a viewer that never reads

    async def client_a():
        async for message in CaptionClient(base, token=token, backoff_min=0.1, backoff_max=0.5):
            clock = round(time.time() - rtsp.anchor, 2) if rtsp.anchor else None  # seconds of the broadcast
            out["a_seen"].append((clock, message["type"], message.get("final"), message.get("state") or message.get("cue", {}).get("text")))
            if message["type"] == "status":
                out["states"].append(message["state"])
                if message["state"] == "ended":
                    return
            if message["type"] == "cue" and message["final"] and not message.get("retracted"):
                out["a"].append(message["cue"]["text"])

    async def client_b():
        """Leaves after the second caption and comes back after the third, resuming by seq."""
        seq, session_id = 0, None
        async with connect(f"{base}?token={token}") as ws:
            await ws.send("this is not JSON")
            async for raw in ws:
                message = json.loads(raw)
                seq = max(seq, message.get("seq", 0)) if message["type"] != "hello" else seq
                session_id = message.get("session", session_id)
                if message["type"] == "error":
                    out["bad_reply"] = "error"
                if message["type"] == "cue" and message["final"]:
                    out["b"].append(message["cue"]["text"])
                    if len(out["b"]) == 2:
                        break
        while len(out["a"]) < 3 and not tasks[0].done():  # if A ended early, the assertions say why
            await asyncio.sleep(0.05)
        async with connect(f"{base}?since={seq}&session={session_id}", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "cue" and message["final"]:
                    out["b"].append(message["cue"]["text"])
                    out["b_replayed"] += bool(message.get("replay"))
                if message["type"] == "status" and message["state"] == "ended":
                    return

    async def at(show_time: float) -> None:
        """Wait until the broadcast reaches ``show_time`` (seconds of the clip)."""
        await asyncio.sleep(max(0.0, rtsp.anchor + show_time - time.time()))

    tasks = [asyncio.create_task(client_a()), asyncio.create_task(client_b())]
    await asyncio.sleep(0.5)
    await asyncio.to_thread(rtsp.start)  # the broadcast begins now
    await at(truth[0].end + 0.5)  # in the long gap after caption 1: stall the server with its socket open
    rtsp.signal(signal.SIGSTOP)
    await asyncio.sleep(3.0)
    rtsp.signal(signal.SIGCONT)
    await at(truth[2].end + 0.5)  # in the long gap after caption 3: crash it and restart it on the same port
    rtsp.kill()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(rtsp.start)
    await at(truth[-1].end + 1.0)  # the show is over: a clean stop must complete the files and tell the clients
    os.kill(session.proc.pid, signal.SIGTERM)
    done, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    out["errors"] = [repr(task.exception()) for task in done if task.exception()] + ["hung"] * len(pending)
    stalled.transport.abort()
    return out
