"""A Python client for ``subflow live``'s WebSocket server.

    async for message in CaptionClient("ws://localhost:8765/ws", token="..."):
        if message["type"] == "cue" and message["final"]:
            print(message["cue"]["text"])

It reconnects by itself (capped backoff) and resumes with ``?since=SEQ`` so
that no final cue is lost or repeated across drops; after a server restart
(a new session) it starts over with what the new session has. Only a refused
token or a wrong URL end the iteration, with :class:`ClientError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

log = logging.getLogger(__name__)

_FATAL_STATUS = (400, 401, 403, 404)


class ClientError(RuntimeError):
    """The server refused us for good (bad token, wrong path); retrying cannot help."""


class CaptionClient:
    """Async iterator of server messages (dicts) with automatic reconnect and resume."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        since: int | None = None,
        session: str | None = None,
        backoff_min: float = 0.2,
        backoff_max: float = 5.0,
        include_replay: bool = True,
    ) -> None:
        self.url = url
        self.token = token
        self.last_seq = since
        self.session = session  # with ``since``: resume a session another client object followed
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.include_replay = include_replay
        self.connects = 0

    def _url(self) -> str:
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("since", "session")]
        if self.last_seq is not None:
            query.append(("since", str(self.last_seq)))
            if self.session:
                query.append(("session", self.session))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        delay = self.backoff_min
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        while True:
            try:
                async with connect(self._url(), additional_headers=headers, open_timeout=10, max_size=2**22) as ws:
                    self.connects += 1
                    delay = self.backoff_min
                    async for raw in ws:
                        message = json.loads(raw)
                        if not self._accept(message):
                            continue
                        yield message
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in _FATAL_STATUS:
                    raise ClientError(f"{self.url}: server refused the connection (HTTP {status})") from None
                log.info("caption server answered HTTP %s; retrying", status)
            except (ConnectionClosed, InvalidHandshake, OSError, asyncio.TimeoutError) as exc:
                log.info("caption connection lost (%s); reconnecting", exc)
            await asyncio.sleep(delay)
            delay = min(self.backoff_max, delay * 2)

    def _accept(self, message: dict[str, Any]) -> bool:
        """Track session and seq; drop anything already seen (a resume never repeats a final)."""
        if message.get("type") == "hello":
            if message.get("session") != self.session:
                if self.session is not None:  # the server restarted: it replays the new session from its start
                    log.info("caption server restarted (new session); starting over")
                    self.last_seq = 0
                self.session = message.get("session")
            if self.last_seq is None:  # a fresh start: resume from here after a drop
                self.last_seq = message.get("seq", 0)
            return True
        seq = message.get("seq")
        if isinstance(seq, int):
            if self.last_seq is not None and seq <= self.last_seq and message.get("type") in ("cue", "clear", "status"):
                return False
            self.last_seq = seq
        if message.get("replay") and not self.include_replay:
            return False
        return True


async def final_cues(url: str, **options: Any) -> AsyncIterator[dict[str, Any]]:
    """Just the final cues (``message["cue"]`` dicts), live and replayed, each once."""
    async for message in CaptionClient(url, **options):
        if message.get("type") == "cue" and message.get("final") and not message.get("retracted"):
            yield message["cue"]
