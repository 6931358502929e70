"""The short version of the soak (benchmarks/live_soak.py): faults, churning clients, a stalled client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from live_support import needs_rtsp

pytestmark = [needs_rtsp, pytest.mark.live]
ROOT = Path(__file__).parents[2]


def test_short_soak_loses_nothing_and_leaks_no_handles(live_clip, tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "live_soak.py"), "--seconds", "35", "--fault-every", "9",
         "--video", str(live_clip), "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    verdict = json.loads(out.read_text())
    assert proc.returncode == 0, (verdict["problems"], proc.stderr[-3000:])
    # The broadcast shows ~6 captions in 35 s; a fault that lands on a caption may cost it (the stream was
    # away while it was on screen), so the count is a floor, and what did arrive must read right.
    assert verdict["finals"] >= 2 and verdict["srt_cues"] >= verdict["finals"]
    assert verdict["text_exact_share"] >= 0.6
    assert len(verdict["faults"]) >= 3 and verdict["reconnects"] >= 2
    assert sum(verdict["churn_finals"]) > 0
