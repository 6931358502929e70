"""Text translation through an OpenAI-compatible chat endpoint (``vllm serve`` with a translation model
such as Hunyuan-MT, or a hosted API), into any language.

A request carries about ``batch_size`` cues keyed by cue id, the few cues
before them as context, and the glossary terms they contain. The reply is
forced to a JSON schema with exactly those ids as keys (``response_format``
``json_schema``: vLLM's structured outputs), and checked again on arrival
(:func:`subflow.translate.parse.parse_reply`). An endpoint that refuses
``response_format`` (HTTP 400 naming it) is asked again without it, for the
rest of the run: the prompt still asks for the same JSON. A reply that drops, merges or
splits cues is asked again (``retries``, with the reason), then the batch is
halved, down to single cues; a cue that still fails is left untranslated. So
a bad reply never moves text onto the wrong cue.

Transport failures (connection errors, timeouts, HTTP 5xx and 429) are
retried with doubling backoff (``http_retries``). When a batch finds the
endpoint dead, later batches skip it for ``revive_after`` seconds and leave
their cues untranslated at once, so a dead service costs seconds, not a
timeout per batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from ..config import TranslateConfig
from ..engines import EngineError
from ..engines.hunyuan_api import _message, normalise_endpoint
from ..records import Cue
from .base import TranslateError, Translation, Translator
from .glossary import Glossary
from .lang import language_name
from .parse import ReplyError, parse_reply

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are a professional subtitle translator for film and television."


class _Unavailable(Exception):
    """The endpoint did not answer after every retry."""


class _Refused(Exception):
    """The endpoint answered with a client error (4xx): retrying the same request cannot help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def normalise_base(url: str) -> str:
    """``http://mt:8000`` -> ``http://mt:8000/v1``; what cannot be an HTTP API base is a TranslateError."""
    try:
        return normalise_endpoint(url)
    except EngineError as exc:
        raise TranslateError(f"translator endpoint: {exc}") from None


def reply_schema(ids: Sequence[str], max_lengths: Sequence[int]) -> dict[str, Any]:
    """A JSON object with exactly these ids as keys, each a non-empty string of bounded length
    (a subtitle's translation that runs past a few times its source's length is runaway decoding)."""
    return {
        "type": "object",
        "properties": {i: {"type": "string", "minLength": 1, "maxLength": n} for i, n in zip(ids, max_lengths)},
        "required": list(ids),
        "additionalProperties": False,
    }


def cue_ids(cues: Sequence[Cue]) -> list[str]:
    """The keys of a request: cue indexes, or positions when indexes repeat (cues from appended files)."""
    ids = [str(cue.index) for cue in cues]
    return ids if len(set(ids)) == len(ids) else [str(i) for i in range(1, len(cues) + 1)]


def max_length(source: str) -> int:
    return max(48, 4 * len(source))


class TextTranslator(Translator):
    name = "openai"

    def __init__(self, config: TranslateConfig) -> None:
        super().__init__()
        if not config.endpoint:
            raise TranslateError("the text translator needs an endpoint (--translator-endpoint http://host:8000/v1)")
        if config.batch_size < 1 or config.concurrency < 1 or config.retries < 0 or config.http_retries < 0 \
                or config.timeout <= 0 or config.context < 0:
            raise TranslateError("[translate] needs batch_size >= 1, concurrency >= 1, retries >= 0, "
                                 "http_retries >= 0, context >= 0 and timeout > 0")
        self.config = config
        self.base = normalise_base(config.endpoint)
        self.batch_size = config.batch_size
        self.concurrency = config.concurrency
        self.model = config.model
        self._api_key = config.api_key or os.environ.get("SUBFLOW_TRANSLATE_API_KEY", "")
        self._client: Any = None
        self._down_until = 0.0
        self._down_reason = ""
        self.structured = True  # send response_format json_schema (False once the endpoint refused it)

    def serves(self, lang: str) -> bool:
        return True

    def _http(self) -> Any:
        if self._client is None:
            try:
                import httpx
            except ImportError as exc:
                raise TranslateError("the text translator needs httpx: pip install 'subflow[api]'") from exc
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.config.timeout, connect=min(5.0, self.config.timeout)),
                limits=httpx.Limits(max_connections=self.concurrency * 2),
                headers=headers,
            )
        return self._client

    # ------------------------------------------------------------ start-up check

    async def check(self) -> None:
        """The endpoint answers and serves a model (its name is learnt here when not configured)."""
        import httpx

        try:
            response = await self._http().get(self.base + "/models", timeout=10.0)
        except httpx.HTTPError as exc:
            raise TranslateError(f"translator endpoint {self.base} does not answer ({type(exc).__name__}: {exc}); "
                                 "start it or fix --translator-endpoint") from None
        if response.status_code != 200:
            raise TranslateError(f"translator endpoint {self.base} answered HTTP {response.status_code} for /models: "
                                 "is it the API base (ending in /v1) of an OpenAI-compatible server?")
        try:
            names = [m.get("id", "") for m in response.json().get("data", [])]
        except (ValueError, AttributeError):
            names = []
        if not self.model:
            if not names:
                raise TranslateError(f"translator endpoint {self.base} lists no model; give one with --translator-model")
            self.model = names[0]
        elif names and self.model not in names:
            raise TranslateError(f"translator endpoint {self.base} does not serve {self.model!r} (it serves: {', '.join(names)})")

    # ------------------------------------------------------------ requests

    def _messages(self, cues: Sequence[Cue], target: str, context: Sequence[Cue], glossary: Glossary | None,
                  rejected: str) -> list[dict[str, str]]:
        source = f" from {language_name(self.config.source)}" if self.config.source else ""
        parts = [f"Translate the subtitles below{source} into {language_name(target)}."]
        if context:
            parts.append("Earlier subtitles, for context only (do not translate them):\n"
                         + "\n".join(cue.text.replace("\n", " / ") for cue in context))
        if glossary is not None:
            terms = glossary.found_in("\n".join(cue.text for cue in cues))
            if terms:
                parts.append("Glossary: always translate these terms this way:\n" + "\n".join(
                    f"{t.source} => {t.target}" + (f" ({t.note})" if t.note else "") for t in terms))
        parts.append("Subtitles to translate, as a JSON object from subtitle id to text:\n"
                     + json.dumps(dict(zip(cue_ids(cues), (cue.text for cue in cues))), ensure_ascii=False))
        parts.append("Reply with one JSON object with exactly the same ids as keys and the translation of each "
                     "subtitle as its value. Translate every subtitle on its own: never merge, split, skip or "
                     "reorder subtitles. Keep a line break (\\n) inside a subtitle where the original has one.")
        if rejected:
            parts.append(f"Your previous reply was rejected: {rejected}. Answer again, following the rules exactly.")
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]

    def _body(self, cues: Sequence[Cue], target: str, context: Sequence[Cue], glossary: Glossary | None,
              rejected: str) -> dict[str, Any]:
        ids = cue_ids(cues)
        lengths = [max_length(cue.text) for cue in cues]
        body = {
            "model": self.model,
            "messages": self._messages(cues, target, context, glossary, rejected),
            "temperature": self.config.temperature,
            "max_tokens": sum(lengths) + 8 * len(ids) + sum(len(i) for i in ids) + 16,
        }
        if self.structured:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "subtitle_translations", "strict": True, "schema": reply_schema(ids, lengths)},
            }
        return body

    async def _post(self, body: dict[str, Any]) -> str:
        """The reply's content, after retrying transport failures with backoff."""
        import httpx

        errors = []
        for attempt in range(self.config.http_retries + 1):
            if attempt:
                await asyncio.sleep(self.config.backoff * 2 ** (attempt - 1))
            self.usage.requests += 1
            try:
                response = await self._http().post(self.base + "/chat/completions", json=body)
            except httpx.HTTPError as exc:
                self.usage.failed_requests += 1
                errors.append(f"{type(exc).__name__}: {exc}".rstrip(": "))
                continue
            if response.status_code >= 500 or response.status_code == 429:
                self.usage.failed_requests += 1
                errors.append(f"HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                self.usage.failed_requests += 1
                raise _Refused(response.status_code, _message(response))
            try:
                data = response.json()
                content = data["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                return ""  # an answer without content: a bad reply, handled by the caller
            usage = data.get("usage") or {}
            self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
            return content
        raise _Unavailable("; ".join(dict.fromkeys(errors)))

    async def _post_structured_or_not(self, body: dict[str, Any]) -> str:
        """Post; if the endpoint refuses ``response_format``, stop sending it and post again."""
        try:
            return await self._post(body)
        except _Refused as exc:
            if "response_format" not in body or exc.status != 400 or not any(
                    word in exc.message.lower() for word in ("response_format", "json_schema", "structured")):
                raise
        self.structured = False
        log.warning("%s refuses response_format json_schema; asking for JSON in the prompt only", self.base)
        return await self._post({key: value for key, value in body.items() if key != "response_format"})

    async def _batch(self, cues: Sequence[Cue], target: str, context: Sequence[Cue],
                     glossary: Glossary | None) -> list[Translation]:
        ids = cue_ids(cues)
        rejected = ""
        for _ in range(self.config.retries + 1):
            content = await self._post_structured_or_not(self._body(cues, target, context, glossary, rejected))
            try:
                texts = parse_reply(content, ids)
            except ReplyError as exc:
                self.usage.bad_replies += 1
                rejected = str(exc)
                continue
            return [Translation(texts[i]) for i in ids]
        if len(cues) == 1:
            return [Translation(None, reason=f"bad reply: {rejected}")]
        self.usage.splits += 1
        half = len(cues) // 2
        first = await self._batch(cues[:half], target, context, glossary)
        keep = self.config.context
        later_context = (list(context) + list(cues[:half]))[-keep:] if keep else []
        return first + await self._batch(cues[half:], target, later_context, glossary)

    async def translate(self, cues: Sequence[Cue], target: str, context: Sequence[Cue],
                        glossary: Glossary | None) -> list[Translation]:
        if time.monotonic() < self._down_until:
            return [Translation(None, reason=f"endpoint down: {self._down_reason}") for _ in cues]
        if not self.model:
            try:
                await self.check()
            except TranslateError as exc:
                self._down_until, self._down_reason = time.monotonic() + self.config.revive_after, str(exc)
                return [Translation(None, reason=str(exc)) for _ in cues]
        try:
            return await self._batch(cues, target, context, glossary)
        except _Unavailable as exc:
            self._down_until = time.monotonic() + self.config.revive_after
            self._down_reason = f"{self.base}: {exc}"
            return [Translation(None, reason=f"endpoint down: {self._down_reason}") for _ in cues]
        except _Refused as exc:
            return [Translation(None, reason=f"endpoint refused: {exc}") for _ in cues]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def describe(self) -> str:
        return f"openai ({self.base}, model {self.model or '?'}, {self.batch_size} cues a request, {self.concurrency} in flight)"
