"""Fixtures for the translation tests: a scripted OpenAI-compatible server (real HTTP), and real vLLM
(CPU build) serving a tiny random causal LM (text translation) and the tiny HunyuanOCR checkpoint
(image translation).

The vLLM environment, the HunyuanOCR checkpoint and the short video come from
``tests/hunyuan/conftest.py`` (the same fixtures, loaded from there, not copied).
This directory is a package so that its conftest does not take the module name
``conftest``, which tests elsewhere import at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hunyuan"))

from hunyuan_env import CACHE, Server, free_port, start_server, vllm_env, wait_ready  # noqa: E402

from .scripted_server import ScriptedServer  # noqa: E402


def _hunyuan_fixtures():
    spec = importlib.util.spec_from_file_location("hunyuan_conftest", HERE.parent / "hunyuan" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_hunyuan = _hunyuan_fixtures()
vllm_python = _hunyuan.vllm_python
tiny_checkpoint = _hunyuan.tiny_checkpoint
short_video = _hunyuan.short_video

ROOT = HERE.parents[1]
SAMPLES = ROOT / "samples"


@pytest.fixture
def scripted():
    """Start a :class:`ScriptedServer` with a script; stopped after the test."""
    started: list[ScriptedServer] = []

    def start(script=None, **kwargs) -> ScriptedServer:
        server = ScriptedServer(script, **kwargs) if script else ScriptedServer(**kwargs)
        started.append(server.__enter__())
        return server

    yield start
    for server in started:
        try:
            server.stop()
        except OSError:
            pass


@pytest.fixture(scope="session")
def tiny_lm(vllm_python: Path) -> Path:
    """The random causal LM of ``tiny_lm.py``, rebuilt only when its builder changes."""
    key = hashlib.sha256((HERE / "tiny_lm.py").read_bytes()).hexdigest()[:12]
    out = CACHE / f"tiny-lm-{key}"
    if not (out / "model.safetensors").exists():
        subprocess.run([str(vllm_python), str(HERE / "tiny_lm.py"), str(out)], check=True, capture_output=True,
                       env=vllm_env())
    return out


def start_mt_server(python: Path, checkpoint: Path, log: Path) -> Server:
    """``vllm serve`` for the text translator: structured outputs by xgrammar, no free whitespace in JSON
    (a random model would fill it with spaces), CPU settings as for the HunyuanOCR servers."""
    port = free_port()
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint),
        "--served-model-name", "tiny-mt", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
        "--max-model-len", "2048", "--enforce-eager", "--distributed-executor-backend", "uni", "--max-num-seqs", "16",
        "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]
    handle = log.open("w")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=vllm_env(), start_new_session=True)
    return Server(f"http://127.0.0.1:{port}/v1", process, log)


@pytest.fixture(scope="session")
def vllm_servers(vllm_python: Path, tiny_lm: Path, tiny_checkpoint: Path, tmp_path_factory):
    """One text-translation server (tiny LM) and one HunyuanOCR server (tiny checkpoint), started together."""
    logs = tmp_path_factory.mktemp("translate-vllm")
    servers = {
        "mt": start_mt_server(vllm_python, tiny_lm, logs / "mt.log"),
        "ocr": start_server(vllm_python, tiny_checkpoint, logs / "ocr.log"),
    }
    try:
        deadline = time.monotonic() + 240
        for server in servers.values():
            wait_ready(server, deadline)
        yield servers
    finally:
        for server in servers.values():
            server.kill()
