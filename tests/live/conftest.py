"""Fixtures for the live tests: a test clip with known captions and a real RTSP server.

Helpers the tests import live in live_support.py (a conftest is not a module to import by name)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from clip import GroundTruth, make_clip, timeline  # noqa: E402
from rtsp_server import RtspServer  # noqa: E402


@pytest.fixture(scope="session")
def ground_truth() -> list[GroundTruth]:
    return timeline()


@pytest.fixture(scope="session")
def live_clip(tmp_path_factory, ground_truth) -> Path:
    return make_clip(tmp_path_factory.mktemp("live") / "clip.mp4", ground_truth)


@pytest.fixture(scope="session")
def clip_duration(ground_truth) -> float:
    return ground_truth[-1].end + 1.0


@pytest.fixture
def rtsp_server(live_clip, clip_duration):
    server = RtspServer(live_clip, clip_duration, loop=False)
    try:
        yield server
    finally:
        server.kill()
