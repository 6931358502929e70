"""Helpers of the HunyuanOCR engine tests: where the vLLM environment is, how to start a server."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = Path(os.environ.get("SUBFLOW_VLLM_VENV", ROOT / ".venv-vllm"))
CACHE = ROOT / ".cache" / "hunyuan-tests"

# Engine options that make the tiny checkpoint fast on two CPU cores.
TINY_OPTIONS = {"min_pixels": 32 * 32, "max_pixels": 64 * 1024, "max_tokens": 16}
VLLM_CPU_ENV = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; vLLM otherwise sizes itself from NUMA node 0 and fails
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "TOKENIZERS_PARALLELISM": "false",
}


def vllm_env() -> dict[str, str]:
    return {**os.environ, **VLLM_CPU_ENV, "PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_server(python: Path, checkpoint: Path, log: Path) -> Server:
    port = free_port()
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint),
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "1024",
        "--enforce-eager", "--distributed-executor-backend", "uni", "--max-num-seqs", "32",
        # the flags docs/hunyuan.md recommends for HunyuanOCR
        "--no-enable-prefix-caching", "--mm-processor-cache-gb", "0", "--limit-mm-per-prompt", '{"image": 1}',
    ]
    handle = log.open("w")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=vllm_env(), start_new_session=True)
    return Server(f"http://127.0.0.1:{port}/v1", process, log)


def wait_ready(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"vLLM server exited during start-up; log tail:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(server.url + "/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"vLLM server not ready in time; log tail:\n{server.log.read_text()[-3000:]}")


def load_generator():
    spec = importlib.util.spec_from_file_location("samples_generate", ROOT / "samples" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@dataclass
class Video:
    path: Path
    truth: list  # srt.Subtitle, in start order
