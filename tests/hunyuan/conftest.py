"""Shared, session-wide fixtures for the HunyuanOCR engine tests.

Real software only: vLLM's CPU build in its own environment (built by
``setup_vllm_env.sh``, skipped with the reason when it cannot be built), a
tiny random HunyuanOCR-shaped checkpoint built at test time, ONE pair of
vLLM OpenAI servers for the whole session, and a short rendered video with
exact ground truth.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from hunyuan_env import CACHE, HERE, VENV, Video, load_generator, start_server, vllm_env, wait_ready


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The vLLM environment's python, built (idempotently) by the setup script."""
    if os.environ.get("SUBFLOW_SKIP_VLLM"):
        pytest.skip("SUBFLOW_SKIP_VLLM is set")
    started = time.monotonic()
    result = subprocess.run(["bash", str(HERE / "setup_vllm_env.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"the vLLM CPU environment could not be built ({time.monotonic() - started:.0f} s): "
                    f"{(result.stdout + result.stderr).strip().splitlines()[-1:]}")
    return VENV / "bin" / "python"


@pytest.fixture(scope="session")
def tiny_checkpoint(vllm_python: Path) -> Path:
    """The random HunyuanOCR-shaped checkpoint, rebuilt only when its builder changes."""
    key = hashlib.sha256((HERE / "tiny_checkpoint.py").read_bytes()).hexdigest()[:12]
    out = CACHE / f"tiny-{key}"
    if not (out / "model.safetensors").exists():
        subprocess.run([str(vllm_python), str(HERE / "tiny_checkpoint.py"), str(out)], check=True,
                       capture_output=True, env=vllm_env())
    return out


@pytest.fixture(scope="session")
def servers(vllm_python: Path, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two vLLM OpenAI servers on the tiny checkpoint, started together, shared by the session.

    The second one exists to be killed (test_killed_endpoint_is_survived runs last).
    """
    logs = tmp_path_factory.mktemp("vllm-servers")
    pair = [start_server(vllm_python, tiny_checkpoint, logs / f"server{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 240
        for server in pair:
            wait_ready(server, deadline)
        yield pair
    finally:
        for server in pair:
            server.kill()


@pytest.fixture(scope="session")
def short_video(tmp_path_factory: pytest.TempPathFactory) -> Video:
    """3.2 s at 640x360 with three bottom cues separated by blanks, and its exact ground truth."""
    gen = load_generator()
    events = [
        gen.Event(5, 30, ("Good morning, everyone.",)),
        gen.Event(38, 55, ("See you at seven.",)),
        gen.Event(62, 78, ("你好，世界",)),
    ]
    spec = gen.VideoSpec("hunyuan_short", 640, 360, 25, 80, events, [gen.Scene(0, "plasma", 3)], crf=20)
    path = gen.render(spec, tmp_path_factory.mktemp("video") / "short.mp4")
    return Video(path, gen.ground_truth(spec))
