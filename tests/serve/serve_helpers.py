"""A real ``subflow serve`` process on a real port, driven over HTTP (httpx) and by a real Chromium.

Not a conftest: ``tests/live`` imports names from its conftest by module name, and a second conftest.py
would shadow it. Test modules import the ``serve`` fixture from here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "en_basic.mp4"  # 20 s, 25 fps, 10 cues with exact ground truth
sys.path.insert(0, str(ROOT / "tests" / "live"))
from browser import Chromium  # noqa: E402,F401 (Debian's chromium over DevTools, shared with the overlay tests)

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """``python -m subflow.cli serve`` in a subprocess; restartable on the same port and data folder."""

    def __init__(self, data: Path, *args: str, token: str | None = None) -> None:
        self.data = data
        self.args = args
        self.port = free_port()
        self.token = token
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.stderr = ""
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "Serve":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "subflow.cli", "serve", "--port", str(self.port), "--data", str(self.data), *self.args]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("subflow serve: http://"), f"serve did not start: {line}{self.proc.stderr.read()}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.client().get("/api/settings").status_code in (200, 401):
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("serve did not answer")

    def client(self, token: str | None = "default") -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.returncode = self.proc.returncode
            self.stderr = self.proc.stderr.read()
            self.proc.stdout.close()
            self.proc.stderr.close()
        self.proc = None

    def wait_job(self, job_id: str, states=("done", "failed", "cancelled"), timeout: float = 90) -> dict:
        client = self.client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["state"] in states:
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still {job['state']}")


@pytest.fixture
def serve(tmp_path):
    """Start servers with ``serve(*args)``; all are stopped at the end."""
    started: list[Serve] = []

    def start(*args: str, token: str | None = None, data: Path | None = None) -> Serve:
        server = Serve(data or tmp_path / "data", *args, token=token).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
