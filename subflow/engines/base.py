"""The one interface every OCR engine implements.

An engine takes a batch of colour crops (RGB ``uint8`` arrays of shape
``(h, w, 3)``, each one subtitle band cut from one frame) and a :class:`Task`,
and returns one :class:`Recognition` per crop, in order. It is async so that
engines that serve many requests at once (vLLM, remote endpoints) can keep
several batches in flight, while CPU engines run their work in a thread.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

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

    async def aclose(self) -> None:
        """Release models, sessions and connections."""

    def describe(self) -> str:
        """One line for logs and the end summary."""
        return self.name
