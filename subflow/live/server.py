"""The caption server: one live session fanned out to many WebSocket clients.

The protocol is documented in ``docs/protocol.md``. What this module guards:

* every message the session publishes gets the next global ``seq``; final cues
  are kept in a ring so a client that reconnects with ``?since=SEQ`` gets every
  final it missed, in order, exactly once;
* each client has its own bounded queue and relay task, so a slow client
  never slows the others. For a client that falls behind, superseded partials
  are coalesced and then partials dropped; a final is never dropped: when one
  does not fit, the client is closed with 1013 (try again later) and resumes;
* tokens are checked before the WebSocket upgrade (``?token=`` for browsers,
  which cannot set headers, or ``Authorization: Bearer``);
* plain HTTP: ``/`` is the overlay page, ``/healthz`` and ``/stats`` are JSON.

All methods run on the server's event loop; other threads use
:meth:`CaptionServer.call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .. import __version__
from ..config import ServerConfig
from ..records import CueUpdate

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
CLOSE_TRY_AGAIN = 1013  # the client was too slow; reconnect with ?since=SEQ
CLOSE_POLICY = 1008  # too many malformed messages
_MAX_BAD_MESSAGES = 10
_STOP_TIMEOUT = 5.0  # seconds stop() waits for connections to finish closing
_WEBSOCKET_PATHS = ("/", "/ws")
_LATENCY_WINDOW = 500


class ServerError(RuntimeError):
    """The server cannot start (address in use, bad listen address); one line for the user."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port); the host defaults to all interfaces."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "0.0.0.0"
    try:
        number = int(port)
    except ValueError:
        raise ServerError(f"--ws {text!r}: expected HOST:PORT, :PORT or PORT") from None
    if not 0 <= number <= 65535:
        raise ServerError(f"--ws {text!r}: port must be 0-65535")
    return host, number


def read_tokens(path: str) -> set[str]:
    """One token per line; blank lines and ``#`` comments are ignored."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as exc:
        raise ServerError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    tokens = {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
    if not tokens:
        raise ServerError(f"token file {path} has no tokens")
    return tokens


_DROPPABLE = ("partial", "clear", "status")


@dataclass
class _Message:
    kind: str  # "final", "partial", "clear", "status" or "reply"
    text: str  # the encoded JSON, shared by all clients
    cue_id: int | None = None
    region: str | None = None

    def supersedes(self, old: "_Message") -> bool:
        """Whether ``old``, still queued, is made stale by this newer message (so it need not be sent)."""
        if old.kind == "status":
            return self.kind == "status"
        if old.kind == "partial":
            return (self.cue_id is not None and self.cue_id == old.cue_id) or (self.kind == "clear" and self.region == old.region)
        if old.kind == "clear":
            return self.kind in ("clear", "partial") and self.region == old.region
        return False


@dataclass(eq=False)  # identity semantics: clients live in a set
class _Client:
    ws: ServerConnection
    limit: int
    backlog: list[str]  # hello and the replay, sent before the live queue
    queue: collections.deque[_Message] = field(default_factory=collections.deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    relay: asyncio.Task | None = None


def _percentile(values: Iterable[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


class CaptionServer:
    """Publishes a session's cue updates and status to WebSocket clients (see the module doc)."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        tokens: Iterable[str] = (),
        stats: Callable[[], dict[str, Any]] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.tokens = [token.encode() for token in tokens]
        self.source_stats = stats
        self.info = info or {}
        self.session = secrets.token_hex(6)
        self.seq = 0
        self.status: dict[str, Any] = {"state": "starting"}
        self.started = time.time()
        self.ring: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(maxlen=self.config.ring)
        self.open_partials: dict[Any, tuple[int, str]] = {}  # region -> (seq, encoded partial) of the cue on screen
        self.clients: set[_Client] = set()
        self.counters = collections.Counter()
        self.first_delays: collections.deque[float] = collections.deque(maxlen=_LATENCY_WINDOW)
        self.final_delays: collections.deque[float] = collections.deque(maxlen=_LATENCY_WINDOW)
        self.ring_lost = 0  # seq of the newest final pushed out of the ring (resumes from before it have a gap)
        self._seen_ids: set[int] = set()
        self._closing: set[asyncio.Future] = set()
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._overlay = resources.files("subflow").joinpath("web/overlay.html").read_bytes()

    # -- lifecycle -----------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await serve(
                self._handle,
                host,
                port,
                process_request=self._process_request,
                ping_interval=self.config.ping_interval or None,
                ping_timeout=self.config.ping_interval or None,
                close_timeout=2,
                max_size=self.config.max_message,
                compression=None,
                server_header=f"subflow/{__version__}",
            )
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every client (1001 going away) and stop listening.

        Bounded: a connection stuck in its closing handshake must not keep a stopping
        session (Ctrl-C, SIGTERM) from ending.
        """
        if self._server is not None:
            self._server.close(close_connections=True)
            try:
                await asyncio.wait_for(self._server.wait_closed(), _STOP_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("%d WebSocket connection(s) did not close in %.0f s; stopping anyway", len(self.clients), _STOP_TIMEOUT)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the server loop (for the pipeline and source threads). Once the
        session is over and its loop closed, a late status change or translation has no one to go to."""
        assert self._loop is not None, "start() first"
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            if not self._loop.is_closed():
                raise

    # -- publishing ----------------------------------------------------------

    def _next(self, body: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        return {"seq": self.seq, **body}

    def publish_update(self, update: CueUpdate) -> None:
        """Send a partial, final or clear to every client; keep finals for resume."""
        now = time.time()
        if update.cue is None:
            region = update.meta.get("region", "bottom")
            message = self._next({"type": "clear", "region": region, "time": update.meta.get("time"), "wall": now})
            self.open_partials.pop(region, None)
            self._fan_out(_Message("clear", json.dumps(message), region=region))
            return
        cue = update.cue
        retracted = bool(update.meta.get("retracted"))
        translation = bool(update.meta.get("translation"))
        message = self._next(
            {"type": "cue", "id": cue.index, "rev": update.revision, "final": update.final, "cue": cue.to_dict(), "wall": now}
        )
        if retracted:
            message["retracted"] = True
        if translation:
            message["translation"] = True
        text = json.dumps(message, ensure_ascii=False)
        if translation:
            # A final cue again, now with its translations: kept for resume and never dropped, like a final;
            # the region may show a newer cue by now, so its open partial stays.
            self.ring_append(message)
            self.counters["translations"] += 1
            self._fan_out(_Message("final", text, cue.index, cue.region))
            return
        self._measure(update, now)
        if update.final:
            self.open_partials.pop(cue.region, None)
            if not retracted:
                self.ring_append(message)
                self.counters["finals"] += 1
            self._fan_out(_Message("final", text, cue.index, cue.region))
        else:
            self.open_partials[cue.region] = (message["seq"], text)
            self.counters["partials"] += 1
            self._fan_out(_Message("partial", text, cue.index, cue.region))

    def ring_append(self, message: dict[str, Any]) -> None:
        """Keep a final for clients that resume; note the seq of what falls out of the ring."""
        if len(self.ring) == self.ring.maxlen:
            self.ring_lost = self.ring[0][0]
        self.ring.append((message["seq"], message))

    def publish_status(self, state: str, detail: dict[str, Any] | None = None) -> None:
        """Source state for clients: connecting, connected, reconnecting, ended, error."""
        self.status = {"state": state, **(detail or {}), "wall": time.time()}
        message = self._next({"type": "status", **self.status})
        self._fan_out(_Message("status", json.dumps(message)))

    def _measure(self, update: CueUpdate, now: float) -> None:
        cue = update.cue
        assert cue is not None
        if cue.index not in self._seen_ids and cue.wall_start is not None:
            self._seen_ids.add(cue.index)
            self.first_delays.append(now - cue.wall_start)
        if update.final:
            self._seen_ids.discard(cue.index)
            if cue.wall_end is not None:
                self.final_delays.append(now - cue.wall_end)

    def _fan_out(self, message: _Message) -> None:
        for client in list(self.clients):
            self._offer(client, message)

    def _offer(self, client: _Client, message: _Message) -> None:
        """Queue ``message`` for one client without ever blocking the others."""
        queue = client.queue
        for old in [m for m in queue if message.supersedes(m)]:
            queue.remove(old)
        if len(queue) >= client.limit:
            victim = next((m for m in queue if m.kind in _DROPPABLE), None)
            if victim is not None:
                queue.remove(victim)
                self.counters["dropped"] += 1
            elif message.kind in _DROPPABLE:
                self.counters["dropped"] += 1
                return
            else:  # a final that does not fit: the client must reconnect and resume
                self._evict(client)
                return
        queue.append(message)
        client.wake.set()

    def _evict(self, client: _Client) -> None:
        self.clients.discard(client)
        client.closing = True
        client.queue.clear()
        self.counters["evicted"] += 1
        log.info("closing a slow client (%s): its queue is full of final cues", client.ws.remote_address)
        if client.relay is not None:
            client.relay.cancel()  # it may be blocked writing to a client that reads nothing
        closing = asyncio.ensure_future(self._close_slow(client.ws))
        self._closing.add(closing)  # keep a reference until done (asyncio holds tasks weakly)
        closing.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_slow(ws: ServerConnection) -> None:
        """1013 with a close handshake if the client still reads; cut the TCP connection if not."""
        try:
            await asyncio.wait_for(ws.close(CLOSE_TRY_AGAIN, "too slow; reconnect with ?since=LAST_SEQ"), 3)
        except (asyncio.TimeoutError, ConnectionClosed):
            pass
        if ws.transport is not None and not ws.transport.is_closing():
            ws.transport.abort()

    # -- connections ---------------------------------------------------------

    def _authorized(self, request: Request, query: dict[str, list[str]]) -> bool:
        if not self.tokens:
            return True
        offered = query.get("token", [])
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            offered.append(header[7:].strip())
        return any(hmac.compare_digest(o.encode(), t) for o in offered for t in self.tokens)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if upgrade:
            if url.path not in _WEBSOCKET_PATHS:
                return connection.respond(HTTPStatus.NOT_FOUND, "no WebSocket here; use / or /ws\n")
            if not self._authorized(request, query):
                self.counters["unauthorized"] += 1
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
            return None
        if url.path in ("/", "/overlay", "/overlay.html"):
            return self._http(connection, HTTPStatus.OK, self._overlay, "text/html; charset=utf-8")
        if url.path == "/healthz":
            body = {"status": "ok", "source": self.status.get("state"), "clients": len(self.clients), "seq": self.seq}
            return self._http(connection, HTTPStatus.OK, json.dumps(body).encode(), "application/json")
        if url.path == "/stats":
            if not self._authorized(request, query):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
            return self._http(connection, HTTPStatus.OK, json.dumps(self.stats()).encode(), "application/json")
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    @staticmethod
    def _http(connection: ServerConnection, status: HTTPStatus, body: bytes, content_type: str) -> Response:
        response = connection.respond(status, "")
        response.body = body
        del response.headers["Content-Length"]
        del response.headers["Content-Type"]
        response.headers["Content-Length"] = str(len(body))
        response.headers["Content-Type"] = content_type
        response.headers["Cache-Control"] = "no-store"
        return response

    def _hello_and_replay(self, since: int | None) -> list[str]:
        """What a new client gets first: hello, missed finals (``replay: true``), then the cues on screen."""
        start = -1 if since is None else since
        finals = [message for seq, message in self.ring if seq > start] if since is not None else []
        hello = {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "server": f"subflow/{__version__}",
            "session": self.session,
            "seq": self.seq,
            "since": since,
            "replay": len(finals),
            "gap": since is not None and since < self.ring_lost,
            "status": self.status,
            **self.info,
        }
        backlog = [json.dumps(hello, ensure_ascii=False)]
        backlog += [json.dumps({**message, "replay": True}, ensure_ascii=False) for message in finals]
        backlog += [text for seq, text in sorted(self.open_partials.values()) if seq > start]
        return backlog

    @staticmethod
    def _since(query: dict[str, list[str]], session: str) -> int | None:
        """``since`` from the query; a resume from another session (server restarted) replays all it has."""
        raw = query.get("since", [None])[0]
        if raw is None:
            return None
        try:
            since = int(raw)
        except ValueError:
            return None
        if query.get("session", [session])[0] != session:
            return 0
        return max(0, since)

    async def _handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        since = self._since(query, self.session)
        client = _Client(ws, self.config.client_queue, self._hello_and_replay(since))
        self.clients.add(client)  # registered in the same step as the replay snapshot: no gap, no duplicate
        self.counters["connections"] += 1
        client.relay = relay = asyncio.create_task(self._relay(client))
        bad = 0
        try:
            async for raw in ws:
                reply = self._answer(raw)
                if reply.get("type") == "error":
                    bad += 1
                    if bad > _MAX_BAD_MESSAGES:
                        await ws.close(CLOSE_POLICY, "too many malformed messages")
                        break
                self._offer(client, _Message("reply", json.dumps(reply)))
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            relay.cancel()

    async def _relay(self, client: _Client) -> None:
        try:
            for text in client.backlog:
                await client.ws.send(text)
            client.backlog = []
            while not client.closing:
                if not client.queue:
                    client.wake.clear()
                    await client.wake.wait()
                    continue
                await client.ws.send(client.queue.popleft().text)
                self.counters["sent"] += 1
        except ConnectionClosed:
            pass

    def _answer(self, raw: str | bytes) -> dict[str, Any]:
        """Reply to one client message; malformed ones get an error, not a disconnect."""
        if isinstance(raw, bytes):
            return {"type": "error", "error": "bad_message", "detail": "binary messages are not part of the protocol"}
        try:
            message = json.loads(raw)
        except ValueError:
            return {"type": "error", "error": "bad_message", "detail": "not JSON"}
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return {"type": "error", "error": "bad_message", "detail": 'expected an object with a "type"'}
        kind = message["type"]
        if kind == "ping":
            return {"type": "pong", "id": message.get("id"), "wall": time.time(), "seq": self.seq}
        if kind == "stats":
            return {"type": "stats", **self.stats()}
        return {"type": "error", "error": "unknown_type", "detail": f"unknown message type {kind[:40]!r}"}

    # -- introspection -------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Session figures for the stats message and ``/stats``."""
        out: dict[str, Any] = {
            "session": self.session,
            "seq": self.seq,
            "uptime": round(time.time() - self.started, 3),
            "status": self.status.get("state"),
            "clients": len(self.clients),
            "client_queues": sorted((len(c.queue) for c in self.clients), reverse=True)[:10],
            "finals": self.counters["finals"],
            "partials": self.counters["partials"],
            "translations": self.counters["translations"],
            "messages_sent": self.counters["sent"],
            "dropped_for_slow_clients": self.counters["dropped"],
            "slow_clients_closed": self.counters["evicted"],
            "rejected_tokens": self.counters["unauthorized"],
            "latency": {
                "first_seen_p50": _percentile(self.first_delays, 0.5),
                "first_seen_p95": _percentile(self.first_delays, 0.95),
                "final_p50": _percentile(self.final_delays, 0.5),
                "final_p95": _percentile(self.final_delays, 0.95),
            },
        }
        if self.source_stats is not None:
            out.update(self.source_stats())
        return out
