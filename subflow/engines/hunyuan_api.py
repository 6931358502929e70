"""``hunyuan-api``: HunyuanOCR behind one or more OpenAI-compatible endpoints (``vllm serve``, or any
compatible VLM server).

Each crop is one chat-completions request. Requests go to the least-loaded
live endpoint, at most ``concurrency`` in flight per endpoint. A request that
fails (connection refused or reset, timeout, 5xx) takes its endpoint out for
a while (``revive_after``, doubling while it keeps failing) and is retried,
with backoff, on another endpoint. A crop is never dropped: it gets an answer
or the whole call raises :class:`EngineError` saying which endpoints failed
and why. Answers that are errors by nature (4xx: bad model name, bad URL) are
reported at once.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from .base import EngineError
from .hunyuan_common import Answer, HunyuanEngine, HunyuanOptions, chat_messages


@dataclass
class APIOptions(HunyuanOptions):
    endpoints: list[str] = field(default_factory=lambda: ["http://127.0.0.1:8000/v1"])  # API bases (".../v1")
    api_key: str = ""  # sent as a bearer token; "" = $SUBFLOW_API_KEY or none
    served_model: str = ""  # the model name the server knows; "" = ask each endpoint's /models
    concurrency: int = 32  # requests in flight per endpoint (vLLM batches them)
    timeout: float = 60.0  # seconds for one request
    connect_timeout: float = 5.0
    retries: int = 4  # further attempts for a crop after its first failed one
    backoff: float = 0.25  # seconds before the first retry, doubled each time
    revive_after: float = 5.0  # a failed endpoint is tried again after this (doubling, at most 16x)


_REFUSED = "refused"  # release marker: the endpoint answered with a client error (EngineError raised)


class _Retryable(Exception):
    """The endpoint failed in a way another endpoint (or a later try) may not."""


@dataclass
class Endpoint:
    url: str
    slots: int
    inflight: int = 0
    failures: int = 0  # consecutive
    dead_until: float = 0.0
    last_error: str = ""
    served_model: str = ""
    answered: int = 0  # requests answered, for stats and tests

    def alive(self, now: float) -> bool:
        return now >= self.dead_until

    def load(self) -> float:
        return self.inflight / self.slots


def normalise_endpoint(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; rejects what cannot be an HTTP API base."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineError(f"bad endpoint {url!r}: expected an API base like http://gpu1:8000/v1")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise EngineError(f"bad endpoint {url!r}: the port is not a number") from None
    return text if parts.path else text + "/v1"


class HunyuanAPIEngine(HunyuanEngine):
    name = "hunyuan-api"
    options_class = APIOptions
    max_batch = 8

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # a string of endpoints (from a flag) is split at commas
        self.settings: APIOptions
        s = self.settings
        if not s.endpoints:
            raise EngineError("engine 'hunyuan-api' needs at least one endpoint (--endpoint http://host:8000/v1)")
        if s.concurrency < 1 or s.retries < 0 or s.timeout <= 0:
            raise EngineError("engine 'hunyuan-api': need concurrency >= 1, retries >= 0, timeout > 0")
        urls = list(dict.fromkeys(normalise_endpoint(u) for u in s.endpoints))
        self.endpoints = [Endpoint(url, s.concurrency) for url in urls]
        self.max_inflight = max(1, len(self.endpoints) * s.concurrency // self.max_batch)
        self._api_key = s.api_key or os.environ.get("SUBFLOW_API_KEY", "")
        self._client: Any = None
        self._changed: asyncio.Condition | None = None
        self.peak_inflight = 0

    # ------------------------------------------------------------ plumbing

    def _http(self) -> Any:
        """The HTTP client and the routing condition, made on the loop that uses them."""
        if self._client is None:
            try:
                import httpx
            except ImportError as exc:
                raise EngineError("engine 'hunyuan-api' needs httpx: pip install 'subflow[api]'") from exc
            s = self.settings
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(s.timeout, connect=s.connect_timeout),
                limits=httpx.Limits(max_connections=len(self.endpoints) * s.concurrency, max_keepalive_connections=None),
                headers=headers,
            )
            self._changed = asyncio.Condition()
        return self._client

    async def _acquire(self, avoid: set[str]) -> Endpoint:
        """The least-loaded live endpoint with a free slot, waiting for one.

        Endpoints that already failed this crop are used only when no other is
        live. When every endpoint is out, the one due back soonest is probed
        (the crop's own backoff spaces the probes), so a wrong URL or a dead
        cluster fails in seconds with a clear error.
        """
        assert self._changed is not None
        async with self._changed:
            while True:
                now = time.monotonic()
                live = [e for e in self.endpoints if e.alive(now)] or [min(self.endpoints, key=lambda e: e.dead_until)]
                preferred = [e for e in live if e.url not in avoid] or live
                free = [e for e in preferred if e.inflight < e.slots]
                if free:
                    endpoint = min(free, key=Endpoint.load)
                    endpoint.inflight += 1
                    self.peak_inflight = max(self.peak_inflight, sum(e.inflight for e in self.endpoints))
                    return endpoint
                await self._changed.wait()

    async def _release(self, endpoint: Endpoint, error: str | None) -> None:
        """Free the slot; ``error`` None = answered, _REFUSED = a 4xx (the endpoint is fine), else it failed."""
        assert self._changed is not None
        async with self._changed:
            endpoint.inflight -= 1
            if error is _REFUSED:
                pass
            elif error is None:
                endpoint.failures, endpoint.last_error = 0, ""
                endpoint.answered += 1
            else:
                endpoint.failures += 1
                endpoint.last_error = error
                pause = self.settings.revive_after * 2 ** min(endpoint.failures - 1, 4)
                endpoint.dead_until = time.monotonic() + pause
            self._changed.notify_all()

    # ------------------------------------------------------------ requests

    async def _model_name(self, endpoint: Endpoint) -> str:
        """The served model name: configured, or the one the endpoint lists."""
        if self.settings.served_model:
            return self.settings.served_model
        if not endpoint.served_model:
            data = await self._get_json(endpoint, "/models")
            names = [m.get("id", "") for m in data.get("data", [])]
            if not names:
                raise EngineError(f"endpoint {endpoint.url} serves no model (GET /models is empty)")
            endpoint.served_model = self.settings.model if self.settings.model in names else names[0]
        return endpoint.served_model

    async def _get_json(self, endpoint: Endpoint, path: str) -> dict:
        import httpx

        try:
            response = await self._http().get(endpoint.url + path)
        except httpx.HTTPError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        return self._checked(endpoint, path, response)

    def _checked(self, endpoint: Endpoint, path: str, response: Any) -> dict:
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code == 404:
            raise EngineError(
                f"endpoint {endpoint.url} answered 404 for {path} ({_message(response)}): check that the URL is "
                "the API base (ending in /v1) of an OpenAI-compatible server and that it serves the model asked for"
            )
        if response.status_code >= 400:
            raise EngineError(f"endpoint {endpoint.url} refused the request (HTTP {response.status_code}): {_message(response)}")
        try:
            return response.json()
        except ValueError:
            raise EngineError(f"endpoint {endpoint.url} answered {path} with something that is not JSON") from None

    async def _post(self, endpoint: Endpoint, body: dict) -> Answer:
        import httpx

        body = dict(body, model=await self._model_name(endpoint))
        try:
            response = await self._http().post(endpoint.url + "/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        data = self._checked(endpoint, "/chat/completions", response)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EngineError(f"endpoint {endpoint.url} gave an answer without choices[0].message.content") from None
        return Answer(text, truncated=choice.get("finish_reason") == "length")

    def _body(self, image: np.ndarray, prompt: str) -> dict:
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise EngineError("could not encode a crop as PNG")
        url = "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")
        s = self.sampling
        return {
            "messages": chat_messages(prompt, {"type": "image_url", "image_url": {"url": url}}),
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "top_k": s.top_k,
            "repetition_penalty": s.repetition_penalty,
            "skip_special_tokens": True,
        }

    async def _one(self, image: np.ndarray, prompt: str) -> Answer:
        # PNG encoding costs milliseconds per crop: in a worker thread (OpenCV releases the GIL), so the
        # crops of a call encode in parallel and the event loop keeps serving answers meanwhile.
        body = await asyncio.to_thread(self._body, image, prompt)
        tried: set[str] = set()
        errors: list[str] = []
        for attempt in range(self.settings.retries + 1):
            if attempt:
                await asyncio.sleep(self.settings.backoff * 2 ** (attempt - 1))
            endpoint = await self._acquire(avoid=tried)
            error: str | None = _REFUSED
            try:
                answer = await self._post(endpoint, body)
                error = None
                return answer
            except _Retryable as exc:
                error = str(exc) or type(exc).__name__
                tried.add(endpoint.url)
                errors.append(f"{endpoint.url}: {error}")
            finally:
                await self._release(endpoint, error)
        raise EngineError(
            f"no endpoint could read a crop after {len(errors)} attempts ({len(self.endpoints)} endpoint(s)): "
            + "; ".join(dict.fromkeys(errors))
        )

    async def _generate(self, images: list[np.ndarray], prompt: str) -> list[Answer]:
        self._http()
        results = await asyncio.gather(*(self._one(image, prompt) for image in images), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0] if isinstance(failed[0], EngineError) else EngineError(f"hunyuan-api: {failed[0]!r}")
        return list(results)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def describe(self) -> str:
        return f"hunyuan-api ({len(self.endpoints)} endpoint(s), {self.settings.concurrency} requests each)"


def _message(response: Any) -> str:
    """The error text of an OpenAI-style error answer, else the start of the body."""
    try:
        data = response.json()
        error = data.get("error", data)
        return str(error.get("message", error) if isinstance(error, dict) else error)[:300]
    except ValueError:
        return response.text[:300]
