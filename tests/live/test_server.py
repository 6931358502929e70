"""The caption server with real WebSocket clients over localhost, fed a scripted session."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from subflow.live.client import CaptionClient, ClientError
from subflow.config import ServerConfig
from subflow.records import Cue, CueUpdate
from subflow.live.server import CLOSE_TRY_AGAIN, CaptionServer, ServerError, parse_listen


def cue(index: int, text: str, start: float = 0.0, end: float = 0.0, region: str = "bottom") -> Cue:
    return Cue(index=index, start=start, end=end or start + 1.0, lines=text.split("\n"), region=region, wall_start=time.time())


def partial(index: int, text: str, rev: int = 0) -> CueUpdate:
    return CueUpdate(cue(index, text, start=index), final=False, revision=rev)


def final(index: int, text: str, rev: int = 1) -> CueUpdate:
    return CueUpdate(cue(index, text, start=index), final=True, revision=rev)


def clear(region: str = "bottom") -> CueUpdate:
    return CueUpdate(None, final=False, meta={"region": region, "time": 1.0})


async def started(config: ServerConfig | None = None, **kwargs) -> CaptionServer:
    server = CaptionServer(config, **kwargs)
    await server.start("127.0.0.1", 0)
    return server


async def receive(ws, count: int, timeout: float = 5.0) -> list[dict]:
    return [json.loads(await asyncio.wait_for(ws.recv(), timeout)) for _ in range(count)]


def test_parse_listen():
    assert parse_listen("0.0.0.0:8765") == ("0.0.0.0", 8765)
    assert parse_listen(":8765") == ("0.0.0.0", 8765)
    assert parse_listen("8765") == ("0.0.0.0", 8765)
    assert parse_listen("[::1]:9") == ("::1", 9)
    with pytest.raises(ServerError, match="HOST:PORT"):
        parse_listen("localhost:http")


def test_protocol_sequence_hello_partial_final_clear():
    async def scenario():
        server = await started()
        server.publish_status("connected", {"width": 640})
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            (hello,) = await receive(ws, 1)
            assert hello["type"] == "hello" and hello["protocol"] == 1 and hello["status"]["state"] == "connected"
            assert hello["seq"] == 1 and hello["replay"] == 0
            for update in (partial(0, "Hel"), partial(0, "Hello", 1), final(0, "Hello", 2), clear(), partial(1, "Two\nlines")):
                server.publish_update(update)
                await asyncio.sleep(0.05)  # let the relay send it (a queued partial is superseded by the next)
            got = await receive(ws, 5)
        await server.stop()
        return got

    got = asyncio.run(scenario())
    assert [m["type"] for m in got] == ["cue", "cue", "cue", "clear", "cue"]
    assert [m["seq"] for m in got] == [2, 3, 4, 5, 6]
    assert [(m.get("id"), m.get("rev"), m.get("final")) for m in got] == [(0, 0, False), (0, 1, False), (0, 2, True), (None, None, None), (1, 0, False)]
    assert got[2]["cue"]["text"] == "Hello" and got[4]["cue"]["lines"] == ["Two", "lines"]
    assert got[3]["region"] == "bottom"


def test_a_late_message_after_the_session_ended_is_dropped_quietly():
    async def scenario():
        server = await started()
        await server.stop()
        return server

    server = asyncio.run(scenario())  # the loop is closed now, as when `subflow live` has returned
    server.call_soon_threadsafe(server.publish_status, "reconnecting", {})  # a source thread still winding down


def test_resume_since_gets_missed_finals_once_and_the_cue_on_screen():
    async def scenario():
        server = await started()
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            server.publish_update(final(0, "zero"))
            hello, first = await receive(ws, 2)
        assert first["final"] and first["cue"]["text"] == "zero"
        for i in (1, 2):
            server.publish_update(partial(i, f"part {i}"))
            server.publish_update(final(i, f"final {i}"))
        server.publish_update(partial(3, "on screen"))
        url = f"ws://127.0.0.1:{server.port}/ws?since={first['seq']}&session={hello['session']}"
        async with connect(url) as ws:
            resumed = await receive(ws, 4)
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:  # a fresh client: no history, the cue on screen
            fresh = await receive(ws, 2)
        await server.stop()
        return resumed, fresh

    resumed, fresh = asyncio.run(scenario())
    assert resumed[0]["type"] == "hello" and resumed[0]["replay"] == 2 and not resumed[0]["gap"]
    assert [(m["cue"]["text"], m.get("replay", False)) for m in resumed[1:]] == [("final 1", True), ("final 2", True), ("on screen", False)]
    assert fresh[0]["replay"] == 0 and fresh[1]["cue"]["text"] == "on screen"


def test_resume_from_before_the_ring_reports_a_gap():
    async def scenario():
        server = await started(ServerConfig(ring=3))
        for i in range(6):
            server.publish_update(final(i, f"f{i}"))
        async with connect(f"ws://127.0.0.1:{server.port}/ws?since=1") as ws:
            got = await receive(ws, 4)
        await server.stop()
        return got

    got = asyncio.run(scenario())
    assert got[0]["gap"] is True and got[0]["replay"] == 3
    assert [m["cue"]["text"] for m in got[1:]] == ["f3", "f4", "f5"]


def test_client_helper_loses_nothing_across_drops_and_a_server_restart():
    """Finals published while the client is away arrive after it resumes; none twice."""

    async def scenario():
        server = await started()
        port = server.port
        received: list[str] = []
        restarted = asyncio.Event()

        async def consume():
            async for message in CaptionClient(f"ws://127.0.0.1:{port}/ws", backoff_min=0.05, backoff_max=0.2):
                if message["type"] == "cue" and message["final"]:
                    received.append(message["cue"]["text"])
                if len(received) == 30:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        for i in range(20):
            server.publish_update(partial(i, f"p{i}"))
            server.publish_update(final(i, f"cue {i}"))
            if i % 5 == 4:  # drop every client mid-stream, as a network blip would
                for client in list(server.clients):
                    await client.ws.close(1011, "blip")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        await server.stop()  # a restart: the new session replays its finals to the resuming client
        server2 = CaptionServer()
        await server2.start("127.0.0.1", port)
        restarted.set()
        for i in range(10):
            server2.publish_update(final(i, f"new {i}"))
        await asyncio.wait_for(task, 10)
        await server2.stop()
        return received

    received = asyncio.run(scenario())
    assert received == [f"cue {i}" for i in range(20)] + [f"new {i}" for i in range(10)]


def test_a_client_that_never_reads_is_closed_with_1013_and_slows_nobody():
    big = "x" * 3000

    async def scenario():
        server = await started(ServerConfig(client_queue=16, ring=4000))
        port = server.port
        stalled = await connect(f"ws://127.0.0.1:{port}/ws", max_queue=1)  # never reads again
        await asyncio.sleep(0.1)
        (stalled_on_server,) = [c.ws for c in server.clients if c.ws.remote_address[1] == stalled.local_address[1]]
        fast_texts: list[str] = []

        async def fast():
            async for message in CaptionClient(f"ws://127.0.0.1:{port}/ws"):
                if message["type"] == "cue" and message["final"]:
                    fast_texts.append(message["cue"]["text"])
                    if len(fast_texts) == 2000:
                        return

        fast_task = asyncio.create_task(fast())
        await asyncio.sleep(0.3)
        started_at = time.perf_counter()
        for i in range(2000):
            server.publish_update(partial(i, f"{i} {big}"))
            server.publish_update(final(i, f"{i} {big}"))
            await asyncio.sleep(0)  # a pipeline publishes a few updates per frame, not thousands at once
            assert all(len(c.queue) <= 16 for c in server.clients)
        await asyncio.wait_for(fast_task, 30)
        elapsed = time.perf_counter() - started_at
        stats = server.stats()
        # the stalled client, once it resumes from what it had, gets every final exactly once
        resumed: list[str] = []
        async for message in CaptionClient(f"ws://127.0.0.1:{port}/ws", since=1):
            if message["type"] == "cue" and message["final"]:
                resumed.append(message["cue"]["text"])
                if len(resumed) == 2000:
                    break
        await asyncio.wait_for(stalled_on_server.wait_closed(), 10)  # the server let go of it (1013, then abort)
        sent_code = stalled_on_server.protocol.close_sent.code
        stalled.transport.abort()
        await server.stop()
        return fast_texts, elapsed, stats, resumed, sent_code

    fast_texts, elapsed, stats, resumed, sent_code = asyncio.run(scenario())
    assert fast_texts == [f"{i} {'x' * 3000}" for i in range(2000)]
    assert stats["slow_clients_closed"] == 1 and stats["dropped_for_slow_clients"] > 0
    assert sent_code == CLOSE_TRY_AGAIN
    assert resumed == fast_texts
    assert elapsed < 20


def test_tokens_query_and_bearer_header():
    async def scenario():
        server = await started(tokens={"s3cret"})
        base = f"ws://127.0.0.1:{server.port}/ws"
        results = {}
        for name, url, headers in (
            ("none", base, None),
            ("wrong", base + "?token=nope", None),
            ("query", base + "?token=s3cret", None),
            ("bearer", base, {"Authorization": "Bearer s3cret"}),
            ("bad bearer", base, {"Authorization": "Bearer s3cre"}),
        ):
            try:
                async with connect(url, additional_headers=headers) as ws:
                    results[name] = (await receive(ws, 1))[0]["type"]
            except InvalidStatus as exc:
                results[name] = exc.response.status_code
        with pytest.raises(ClientError, match="401"):
            async for _ in CaptionClient(base, token="wrong"):
                pass
        stats_code = await asyncio.to_thread(_http_status, f"http://127.0.0.1:{server.port}/stats")
        health_code = await asyncio.to_thread(_http_status, f"http://127.0.0.1:{server.port}/healthz")
        stats_ok = await asyncio.to_thread(_http_status, f"http://127.0.0.1:{server.port}/stats?token=s3cret")
        await server.stop()
        return results, stats_code, health_code, stats_ok, server.counters["unauthorized"]

    results, stats_code, health_code, stats_ok, rejected = asyncio.run(scenario())
    assert results == {"none": 401, "wrong": 401, "query": "hello", "bearer": "hello", "bad bearer": 401}
    assert (stats_code, health_code, stats_ok) == (401, 200, 200)
    assert rejected == 4


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_http_endpoints_overlay_healthz_stats():
    async def scenario():
        server = await started(stats=lambda: {"fps": 24.0, "queue_depth": 1})
        server.publish_status("reconnecting", {"attempt": 2})
        base = f"http://127.0.0.1:{server.port}"

        def fetch(path):
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return response.headers["Content-Type"], response.read()

        overlay = await asyncio.to_thread(fetch, "/")
        health = await asyncio.to_thread(fetch, "/healthz")
        stats = await asyncio.to_thread(fetch, "/stats")
        missing = await asyncio.to_thread(_http_status, base + "/nope")
        await server.stop()
        return overlay, health, stats, missing

    overlay, health, stats, missing = asyncio.run(scenario())
    assert overlay[0].startswith("text/html") and b"new WebSocket" in overlay[1]
    assert json.loads(health[1]) == {"status": "ok", "source": "reconnecting", "clients": 0, "seq": 1}
    body = json.loads(stats[1])
    assert body["fps"] == 24.0 and body["status"] == "reconnecting" and "latency" in body
    assert missing == 404


def test_malformed_messages_get_errors_and_the_connection_survives_until_abuse():
    async def scenario():
        server = await started()
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await receive(ws, 1)
            replies = []
            for raw in ("not json", b"\x00\x01", "[1, 2]", '{"type": 5}', '{"type": "subscribe"}', '{"type": "ping", "id": 7}', '{"type": "stats"}'):
                await ws.send(raw)
                replies.append((await receive(ws, 1))[0])
            server.publish_update(final(0, "still here"))
            after = (await receive(ws, 1))[0]
            for _ in range(20):
                await ws.send("garbage")
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as exc:
                close_code = exc.rcvd.code if exc.rcvd else None
        await server.stop()
        return replies, after, close_code

    replies, after, close_code = asyncio.run(scenario())
    assert [r["type"] for r in replies] == ["error"] * 5 + ["pong", "stats"]
    assert [r.get("error") for r in replies[:5]] == ["bad_message"] * 4 + ["unknown_type"]
    assert replies[5]["id"] == 7 and "clients" in replies[6]
    assert after["cue"]["text"] == "still here"
    assert close_code == 1008


def test_oversized_client_message_closes_with_1009():
    async def scenario():
        server = await started(ServerConfig(max_message=1024))
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await receive(ws, 1)
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
        await server.stop()
        return info.value.rcvd.code

    assert asyncio.run(scenario()) == 1009


def test_example_client_prints_finals_and_survives_a_restart():
    import subprocess
    import sys
    from pathlib import Path

    from live_support import ServerThread

    root = Path(__file__).parents[2]
    server = ServerThread().start()
    proc = subprocess.Popen([sys.executable, str(root / "examples" / "live_client.py"), f"ws://127.0.0.1:{server.port}/ws"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root)
    try:
        time.sleep(1.5)  # the client connects
        server.publish(partial(0, "first"))
        server.publish(final(0, "first"))
        server.stop()
        server.start()  # a new session on the same port: the client reconnects by itself
        time.sleep(1.5)
        server.publish(final(0, "second"))
        lines = []
        while len(lines) < 2:
            line = proc.stdout.readline()
            assert line, "example client exited"
            if "->" in line:
                lines.append(line.split("\r")[-1].strip())
    finally:
        proc.kill()
        server.close()
    assert lines[0].endswith("'first'") and lines[1].endswith("'second'")
