"""`subflow live --translate` as a real process with a real WebSocket client: the original final goes out at
once and its translation follows as a revision of the same cue id; a dead translator never delays or drops
an original cue."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import srt
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .conftest import ROOT, SAMPLES
from hunyuan_env import free_port, vllm_env
from .scripted_server import echo

pytestmark = pytest.mark.translate


def live_session(video: str, endpoint: str, *extra: str, limit: float = 90) -> tuple[list[dict], float]:
    """Run `subflow live` on ``video``; every message a client resuming from the start sees, and the run time."""
    port = free_port()
    command = [sys.executable, "-m", "subflow.cli", "live", str(SAMPLES / video), "--ws", f"127.0.0.1:{port}",
               "--translate", "fr", "--translator-endpoint", endpoint, *extra]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=vllm_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    messages: list[dict] = []
    try:
        deadline = started + limit
        while time.monotonic() < deadline and not any(m.get("state") == "ended" for m in messages):
            try:
                with connect(f"ws://127.0.0.1:{port}/ws?since=0", open_timeout=2) as ws:
                    for raw in ws:
                        message = json.loads(raw)
                        if message["type"] != "hello" and message["seq"] > max((m.get("seq", 0) for m in messages), default=0):
                            messages.append(message)
                        if message.get("state") == "ended":
                            break
            except (OSError, ConnectionClosed):
                time.sleep(0.2)
        assert process.wait(timeout=30) == 0, process.stderr.read()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    return messages, time.monotonic() - started


def test_translations_arrive_as_revisions_of_the_same_cue(scripted):
    server = scripted(echo)
    messages, _ = live_session("en_basic.mp4", server.url)
    finals = [m for m in messages if m["type"] == "cue" and m["final"] and not m.get("translation")]
    revisions = {m["id"]: m for m in messages if m.get("translation")}
    truth = list(srt.parse((SAMPLES / "en_basic.srt").read_text()))
    assert [m["cue"]["text"] for m in finals] == [s.content for s in truth]
    for final in finals:
        revision = revisions[final["id"]]
        assert revision["rev"] == final["rev"] + 1 and revision["seq"] > final["seq"]
        cue, translated = final["cue"], revision["cue"]
        assert (translated["start"], translated["end"], translated["text"]) == (cue["start"], cue["end"], cue["text"])
        assert translated["translations"] == {"fr": f"T{final['id']} " + cue["text"].upper()}
        assert "translations" not in cue  # the original went out before its translation existed


def test_a_dead_translator_never_delays_or_drops_an_original_cue(scripted):
    server = scripted(lambda n, body, ids: ("sleep", 60, echo(n, body, ids)))  # accepts, never answers in time
    messages, seconds = live_session("fullhd.mp4", server.url, "--realtime", "--set", "translate.timeout=30")
    finals = [m for m in messages if m["type"] == "cue" and m["final"]]
    truth = list(srt.parse((SAMPLES / "fullhd.srt").read_text()))
    assert len(finals) == len(truth) and not any(m.get("translation") for m in finals)
    for final, expected in zip(finals, truth):
        assert abs(final["cue"]["start"] - expected.start.total_seconds()) < 0.05
        assert final["wall"] - final["cue"]["wall_end"] < 1.5  # published as soon as the cue ended
    assert server.requests  # the translator was asked (and hung)
    assert seconds < truth[-1].end.total_seconds() + 25  # the session ends: it waits for translations 5 s at most
