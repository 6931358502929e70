"""Shared parts of the live benchmarks: the `subflow live` process, its resource use, and stream inputs.

The RTSP server is the tests' fixture (tests/live/rtsp_server.py: Debian's
gst-rtsp-server under /usr/bin/python3), so benchmarks and tests fault and
time the same real server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "live"))

from rtsp_server import RtspServer, free_port  # noqa: E402

from subflow.score import load_cues  # noqa: E402

__all__ = ["LiveProcess", "RtspServer", "free_port", "ground_truth_for", "test_clip", "ROOT"]


class LiveProcess:
    """``python -m subflow.cli live URL --ws ...`` with its log in ``workdir``."""

    def __init__(self, url: str, workdir: Path, *extra: str, token: str | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / "live.log"
        args = [sys.executable, "-m", "subflow.cli", "live", url, "-v", "--ws", f"127.0.0.1:{self.port}", *extra]
        if token:
            tokens = workdir / "tokens.txt"
            tokens.write_text(token + "\n")
            args += ["--token-file", str(tokens)]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log, cwd=ROOT)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            return json.load(response)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"subflow live exited ({self.proc.returncode}); see {self.log_path}")
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("subflow live did not come up")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a clean stop) and the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._log.close()


def ground_truth_for(video: Path) -> list:
    """The sample's ground truth: the SRT next to it."""
    srt_path = video.with_suffix(".srt")
    if not srt_path.exists():
        raise SystemExit(f"{video}: no ground truth {srt_path.name} beside it")
    return load_cues(srt_path)


def test_clip(workdir: Path) -> Path:
    """The live tests' clip (5 captions, 30 s), with its ground truth as SRT beside it."""
    from clip import make_clip, timeline

    return make_clip(workdir / "live_clip.mp4", timeline())


def with_gop(video: Path, seconds: float, workdir: Path) -> Path:
    """The same video (same frames, same pts) re-encoded with a keyframe every ``seconds``.

    A stream is decodable only from a keyframe, so joining (or rejoining) one costs
    up to a GOP; cameras and live encoders use 1-2 s, file encoders often 10 s.
    """
    import av

    target = workdir / f"{video.stem}.gop{seconds:g}.mp4"
    with av.open(str(video)) as src, av.open(str(target), "w") as out:
        vin = src.streams.video[0]
        rate = vin.average_rate or 25
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.time_base = vout.codec_context.time_base = vin.time_base  # exact pts, also for VFR input
        vout.options = {"g": str(max(1, round(float(rate) * seconds))), "bf": "0", "preset": "veryfast", "crf": "18"}
        for frame in src.decode(vin):
            frame.time_base = vin.time_base
            for packet in vout.encode(frame):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)
    target.with_suffix(".srt").write_bytes(video.with_suffix(".srt").read_bytes())
    return target
