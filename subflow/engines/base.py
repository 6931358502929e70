"""The one interface every OCR engine implements.

An engine takes a batch of colour crops (RGB ``uint8`` arrays of shape
``(h, w, 3)``, each one subtitle band cut from one frame) and a :class:`Task`,
and returns one :class:`Recognition` per crop, in order. It is async so that
engines that serve many requests at once (vLLM, remote endpoints) can keep
several batches in flight, while CPU engines run their work in a thread.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..records import Recognition, Task


class EngineError(RuntimeError):
    """An engine cannot do its work; the message is meant for the user."""


class Engine(abc.ABC):
    """Base class of OCR engines.

    ``max_batch`` is how many crops one ``recognize`` call should get;
    ``max_inflight`` is how many calls the recogniser may run at once.
    """

    name: ClassVar[str]
    max_batch: int = 8
    max_inflight: int = 1

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    async def recognize(self, crops: Sequence[np.ndarray], task: Task) -> list[Recognition]:
        """Read every crop; the result has exactly one entry per crop."""

    def load(self) -> None:
        """Load models now instead of on the first call (a Ray engine actor does so while the first
        videos start decoding). By default there is nothing to load ahead."""

    async def aclose(self) -> None:
        """Release models, sessions and connections."""

    def reset(self) -> None:
        """A new input begins: forget what was learnt from the last one (models stay loaded)."""

    def for_input(self) -> "Engine":
        """The engine to read one input with, beside others that share it (a Ray engine actor serves many
        videos at once): this engine itself, whose calls may mix crops of many inputs, unless it keeps
        state per input (what :meth:`reset` forgets); then a view that shares the loaded models."""
        return self

    def describe(self) -> str:
        """One line for logs and the end summary."""
        return self.name


class CPUEngine(Engine):
    """An engine that reads text only, one batch at a time in a worker thread (its :meth:`read`)."""

    async def recognize(self, crops: Sequence[np.ndarray], task: Task) -> list[Recognition]:
        if task.kind != "recognize":
            raise EngineError(
                f"the {self.name} engine only reads text; task {task.kind!r} needs a VLM engine (e.g. --engine hunyuan)"
            )
        return await asyncio.to_thread(self.read, list(crops))

    @abc.abstractmethod
    def read(self, crops: list[np.ndarray]) -> list[Recognition]:
        """Synchronous :meth:`recognize` (for benchmarks and non-async callers)."""


Options = TypeVar("Options")


def parse_options(cls: type[Options], options: dict[str, Any], table: str, limits: dict | None = None) -> Options:
    """An engine's options dataclass from its ``[engines.NAME]`` table: known keys, the defaults' types,
    and the allowed ranges in ``limits`` (name -> :class:`~subflow.config.Limit`). Strings from the command
    line (``--set engines.rapid.threads=1``) are converted as config settings are."""
    from ..config import ConfigError, check_limit, coerce

    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in options.items():
        if key not in fields:
            raise EngineError(f"unknown [{table}] option {key!r}; known: {', '.join(fields)}")
        name = f"{table}.{key}"
        try:
            values[key] = coerce(value, type(fields[key].default), name, "engine options")
            check_limit(name, values[key], (limits or {}).get(key), "engine options")
        except ConfigError as exc:
            raise EngineError(str(exc)) from None
    return cls(**values)
