"""OCR engines, created by name.

Engines are imported lazily so that ``subflow`` imports fast and the GPU
engines' heavy dependencies (torch, vllm) are only needed when chosen.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tomllib
from pathlib import Path
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

# name -> (modules it imports that are not core dependencies, the optional extra that installs them)
REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "hunyuan": (("vllm",), "vllm"),
    "hunyuan-api": (("httpx",), "api"),
    "hunyuan-transformers": (("torch", "transformers"), "transformers"),
}

DEFAULT_ENGINE = "rapid"


def source_checkout() -> Path | None:
    """The source tree this copy of subflow runs from (an editable install or PYTHONPATH), if any."""
    root = Path(__file__).resolve().parents[2]
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if project.get("name") == "subflow" else None


def install_hint(extra: str = "") -> str:
    """The command that installs subflow (with an optional extra) the way this copy was installed."""
    python = Path(sys.executable)
    try:
        python = python.relative_to(Path.cwd())  # .venv/bin/python when run from the checkout
    except ValueError:
        pass
    spec = f"[{extra}]" if extra else ""
    root = source_checkout()
    if root is None:
        return f"{python} -m pip install 'subflow{spec}'"
    where = "." if root == Path.cwd().resolve() else os.fspath(root)
    return f"{python} -m pip install -e '{where}{spec}'"


def engine_class(name: str) -> type[Engine]:
    try:
        target = ENGINES[name]
    except KeyError:
        raise EngineError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}") from None
    modules, extra = REQUIREMENTS.get(name, ((), ""))
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise EngineError(f"engine {name!r} needs {' and '.join(missing)}, which is not installed: {install_hint(extra)}")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"engine {name!r} cannot load: {exc}; run `subflow doctor` for the fix") from exc
    return getattr(module, class_name)


def create_engine(name: str, **options: Any) -> Engine:
    """Build the engine ``name`` with its options (the ``[engines.NAME]`` config table)."""
    return engine_class(name)(**options)


__all__ = ["Engine", "EngineError", "ENGINES", "DEFAULT_ENGINE", "REQUIREMENTS", "create_engine", "engine_class", "install_hint"]
