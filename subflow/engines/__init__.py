"""OCR engines, created by name.

Engines are imported lazily so that ``subflow`` imports fast and the GPU
engines' heavy dependencies (torch, vllm) are only needed when chosen.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Engine, EngineError

# name -> "module:Class"
ENGINES: dict[str, str] = {
    "rapid": "subflow.engines.rapid:RapidEngine",
    "hunyuan": "subflow.engines.hunyuan:HunyuanVLLMEngine",
    "hunyuan-api": "subflow.engines.hunyuan_api:HunyuanAPIEngine",
    "hunyuan-transformers": "subflow.engines.hunyuan_transformers:HunyuanTransformersEngine",
    "tesseract": "subflow.engines.tesseract:TesseractEngine",
}

DEFAULT_ENGINE = "rapid"


def engine_class(name: str) -> type[Engine]:
    try:
        target = ENGINES[name]
    except KeyError:
        raise EngineError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}") from None
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"engine {name!r} cannot load: {exc}; run `subflow doctor` for the fix") from exc
    return getattr(module, class_name)


def create_engine(name: str, **options: Any) -> Engine:
    """Build the engine ``name`` with its options (the ``[engines.NAME]`` config table)."""
    return engine_class(name)(**options)


__all__ = ["Engine", "EngineError", "ENGINES", "DEFAULT_ENGINE", "create_engine", "engine_class"]
