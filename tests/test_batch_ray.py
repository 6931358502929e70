"""`subflow batch --ray` on a real Ray cluster on this machine: a head node and a second node process.

The cluster is small on purpose (3 CPUs, 80 MB object stores) since the CI machine has 2 cores.
Outputs must equal `subflow extract`'s byte for byte; a corrupt file, a killed task worker,
a rerun and Ctrl-C are each checked against the manifest and the files.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_support import (
    assert_same_as_extract, batch_inputs, cmdline, config_file, extract_reference, interrupt_after_first, manifest, start, subflow,
    video_tree, wait_for,
)
from slow_engine import SlowRapid
from synth import draw, plain
from subflow.config import Config
from subflow.engines import ENGINES, Engine
from subflow.records import Task

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.batch, pytest.mark.slow]

RAY = str(Path(sys.executable).parent / "ray")
STORE = str(80 * 1024 * 1024)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ray start --head` plus one more node, each in the foreground (--block) so that stopping them
    stops exactly the processes they started, none of anyone else's."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tmp_path_factory.mktemp("ray")
    # A loopback-only test cluster: no token auth (Ray turns it on by itself once a token file exists
    # in ~/.ray, and then its own `ray status` cannot connect); the batch drivers inherit this.
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env = dict(os.environ)
    common = ["--object-store-memory", STORE, "--block", "--disable-usage-stats"]
    head = subprocess.Popen(
        [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
         "--include-dashboard", "false", "--temp-dir", str(temp), *common],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    nodes = [head]
    try:
        status = lambda: subprocess.run([RAY, "status", "--address", address], capture_output=True, text=True, env=env)  # noqa: E731
        wait_for(lambda: status().returncode == 0, 90, "the Ray head")
        nodes.append(subprocess.Popen(
            [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1", *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        wait_for(lambda: status().stdout.count("node_") >= 2, 90, "the second Ray node")
        yield address
    finally:
        for node in reversed(nodes):
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def first_run(cluster, tmp_path_factory) -> dict:
    inputs = batch_inputs(tmp_path_factory)
    out = tmp_path_factory.mktemp("ray-batch") / "subs"
    args = ["batch", str(inputs["tree"]), "--out-dir", str(out), "--ray", cluster, "--config", str(inputs["config"])]
    return {**inputs, "out": out, "args": args, "result": subflow(*args, "--json")}


def test_ray_batch_equals_extract_and_survives_a_corrupt_file(first_run):
    result, out = first_run["result"], first_run["out"]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert_same_as_extract(out, first_run["refs"])
    records = manifest(out)
    assert records["broken.mp4"]["status"] == "failed" and "not a video FFmpeg can read" in records["broken.mp4"]["error"]
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["failed"]) == (4, 1)
    # The engine ran in an actor (one per 4 CPUs: one here), every crop of every video through it.
    [engine] = summary["engines"]
    assert engine["crops"] > 0 and engine["requests"] >= engine["calls"] > 0
    # and says what it cost: its load, its engine time, its longest call (where a slow start would show)
    assert 0 < engine["load_s"] < summary["wall_seconds"] and 0 < engine["slowest_call_s"] <= engine["call_s"]
    assert engine["omp_threads"] == "1"  # Ray's setting for an actor reserving under one CPU (3 here: it reserves 0)


def test_a_rerun_on_ray_skips_completed_work(first_run):
    before = {p: p.stat().st_mtime_ns for p in first_run["out"].rglob("*.srt")}
    again = subflow(*first_run["args"], "--json")
    summary = json.loads(again.stdout)
    assert again.returncode == 1 and (summary["skipped"], summary["done"], summary["failed"]) == (4, 0, 1)
    assert {p: p.stat().st_mtime_ns for p in first_run["out"].rglob("*.srt")} == before


def _ray_processes(title: str) -> list[int]:
    """Ray worker processes by title: Ray names them after the task or actor they run."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and cmdline(int(p.name)).startswith(title)]


def test_a_killed_worker_s_videos_still_finish(first_run, tmp_path):
    """A task worker killed mid-video (Ray retries the task), then the engine actor killed (Ray restarts
    it and retries its calls): every video still finishes, with extract's output."""
    out = tmp_path / "subs"
    proc = start("batch", str(first_run["tree"]), "--out-dir", str(out), "--ray", first_run["args"][5],
                 "--config", str(first_run["config"]), "--quiet")
    wait_for(lambda: _ray_processes("ray::_extract_task"), 90, "a task running a video")
    os.kill(_ray_processes("ray::_extract_task")[0], signal.SIGKILL)
    wait_for(lambda: _ray_processes("ray::EngineActor.recognize"), 90, "the engine actor reading crops")
    os.kill(_ray_processes("ray::EngineActor")[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 1, stderr  # broken.mp4 only
    records = manifest(out)
    assert [k for k, r in records.items() if r["status"] != "done"] == ["broken.mp4"]
    assert_same_as_extract(out, first_run["refs"])


def test_ctrl_c_on_ray_then_resume(first_run, tmp_path):
    """Also with --hwaccel cuda: the tasks see the GPUs (none here), fall back to the CPU, same files."""
    out = tmp_path / "subs"
    args = ["batch", str(first_run["tree"]), "--out-dir", str(out), "--ray", first_run["args"][5], "--config", str(first_run["config"]),
            "--hwaccel", "cuda"]
    code, stderr = interrupt_after_first(start(*args), out)
    assert code == 130 and "interrupted" in stderr, stderr[:3000]
    first = manifest(out)
    done_before = sum(r["status"] == "done" for r in first.values())
    assert not list(out.rglob("*.part"))
    rest = subflow(*args, "--json")
    summary = json.loads(rest.stdout)
    assert summary["skipped"] == done_before and summary["done"] == 4 - done_before, rest.stderr
    assert "hardware decoding (cuda) is not available here" in rest.stderr
    assert_same_as_extract(out, first_run["refs"])


def test_each_video_keeps_its_own_script_check_on_the_shared_actor(cluster, tmp_path):
    # One actor reads both videos, English first: a script check shared by them would count the
    # English lines and never switch ru_basic to Tesseract, as extract does (it lost its subtitles).
    names = ["en_basic", "ru_basic"]
    tree = video_tree(tmp_path, names)
    config = config_file(tmp_path)
    out = tmp_path / "subs"
    result = subflow("batch", str(tree), "--out-dir", str(out), "--ray", cluster, "--config", str(config),
                     "--set", "batch.videos_per_engine=1", "-q")
    assert result.returncode == 0, result.stderr
    for i, name in enumerate(names):
        video = next(tree.rglob(f"{name}.mp4"))
        ref = extract_reference(video, tmp_path / "ref" / f"{name}.srt", config)
        assert (out / ("season2/" if i % 2 else "") / f"{name}.srt").read_bytes() == ref, f"{name}: batch and extract differ"


class RecordingRapid(SlowRapid):
    """The slow rapid engine, noting when each call ran and on which engine (a video's view or the engine itself)."""

    name = "recording-rapid"
    calls: list[tuple[int, float, float]] = []

    async def recognize(self, crops, task):
        started = time.monotonic()
        try:
            return await super().recognize(crops, task)
        finally:
            RecordingRapid.calls.append((id(self), started, time.monotonic()))


class RecordingShared(RecordingRapid):
    """The same, keeping no state per video: every video reads through the engine itself (as the GPU engines do)."""

    name = "recording-shared"
    for_input = Engine.for_input


def _overlap(a: tuple[int, float, float], b: tuple[int, float, float]) -> bool:
    return a[1] < b[2] and b[1] < a[2]


@pytest.mark.parametrize("engine, side_by_side", [("recording-rapid", True), ("recording-shared", False)])
def test_the_engine_actor_reads_videos_side_by_side_each_video_in_order(monkeypatch, engine, side_by_side):
    """Each video's view of the engine runs one call at a time, in order (so its reads, and its script check,
    are as in extract); the views of different videos run at the same time, as the engines of local mode's
    workers do. An engine that all videos share keeps its own bound (``max_inflight``, 1 here)."""
    from subflow.batch.ray_runner import EngineActor

    monkeypatch.setitem(ENGINES, engine, f"{__name__}:{'RecordingRapid' if side_by_side else 'RecordingShared'}")
    monkeypatch.setattr(RecordingRapid, "calls", [])
    config = Config()
    config.recognizer.engine = engine
    config.batch.engine_batch = 1  # one crop per call: a video's two requests are two calls
    actor = EngineActor(config)
    texts = {"a": ["FIRST LINE", "SECOND LINE"], "b": ["THIRD LINE", "FOURTH LINE"]}
    crops = {video: [draw(plain(0, None), [text], "bottom")[-120:] for text in lines] for video, lines in texts.items()}

    async def read_all():
        requests = [actor.recognize([crop], Task(), video) for video in texts for crop in crops[video]]
        return await asyncio.gather(*requests)

    answers = asyncio.run(read_all())
    assert [answer.lines for [answer] in answers] == [(text,) for lines in texts.values() for text in lines]
    calls = RecordingRapid.calls
    assert len(calls) == 4
    same = [(x, y) for i, x in enumerate(calls) for y in calls[i + 1:] if x[0] == y[0]]
    assert same and not any(_overlap(x, y) for x, y in same)  # one call at a time per engine
    across = [(x, y) for i, x in enumerate(calls) for y in calls[i + 1:] if x[0] != y[0]]
    assert any(_overlap(x, y) for x, y in across) == side_by_side
    assert len({engine for engine, _, _ in calls}) == (2 if side_by_side else 1)
