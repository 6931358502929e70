"""`subflow batch` in local mode, as a user runs it: real processes, real sample videos, real files.

Outputs are compared byte for byte with `subflow extract` of the same video; a corrupt file,
a missing one, a killed worker and Ctrl-C must each leave the batch (and its manifest) whole.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from subflow.score import load_cues, score

from batch_support import SAMPLES, assert_same_as_extract, batch_inputs, children, cmdline, interrupt_after_first, manifest, start, subflow, wait_for

pytestmark = [pytest.mark.batch, pytest.mark.slow]

@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict:
    """One batch over the sample tree (with a corrupt video) and a list naming a missing file."""
    inputs = batch_inputs(tmp_path_factory)
    root = tmp_path_factory.mktemp("batch")
    listing = root / "more.txt"
    listing.write_text("# one missing file\nnowhere/missing.mp4\n")
    out = root / "subs"
    result = subflow("batch", str(inputs["tree"]), str(listing), "--out-dir", str(out), "--format", "srt,ass", "--json",
                     "--config", str(inputs["config"]))
    return {**inputs, "listing": listing, "out": out, "result": result}


def test_outputs_mirror_the_tree_and_equal_extract(work):
    result, out, refs = work["result"], work["out"], work["refs"]
    assert result.returncode == 1, result.stderr  # two inputs failed, the others were written
    assert "Traceback" not in result.stderr
    assert_same_as_extract(out, refs)
    assert (out / "en_basic.ass").read_bytes() == refs["en_basic.ass"]
    for name in ("en_basic", "season2/vfr"):  # and right, against the samples' ground truth
        truth = load_cues(SAMPLES / f"{Path(name).name}.srt")
        assert score(truth, load_cues(out / f"{name}.srt")).f1 == 1.0
    assert not list(out.rglob("*.part")) and not (out / "notes.srt").exists()


def test_bad_inputs_are_recorded_with_one_line(work):
    records = manifest(work["out"])
    assert records["broken.mp4"]["status"] == "failed" and "not a video FFmpeg can read" in records["broken.mp4"]["error"]
    missing = records["missing.mp4"]  # keys of a list are relative to the common folder of its entries
    assert missing["status"] == "failed" and "no such file" in missing["error"]
    for record in records.values():
        assert "\n" not in record["error"]
    done = [r for r in records.values() if r["status"] == "done"]
    assert len(done) == 4 and all(r["cues"] > 0 and r["duration"] > 0 and r["realtime"] > 0 for r in done)
    summary = json.loads(work["result"].stdout)
    assert (summary["done"], summary["failed"], summary["skipped"], summary["left"]) == (4, 2, 0, 0)
    assert summary["media_seconds"] == pytest.approx(sum(r["duration"] for r in done))


def test_rerun_skips_done_work_and_retries_failures(work):
    out = work["out"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.srt")}
    args = ["batch", str(work["tree"]), str(work["listing"]), "--out-dir", str(out), "--format", "srt,ass", "--config", str(work["config"])]
    status = subflow(*args, "--status")
    assert status.returncode == 0 and status.stdout.startswith("6 videos: 4 done, 2 failed, 0 left"), status.stdout
    again = subflow(*args, "--json")
    summary = json.loads(again.stdout)
    assert again.returncode == 1 and (summary["skipped"], summary["failed"], summary["done"]) == (4, 2, 0)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.srt")} == before
    # Other options are other outputs: a video done with srt,ass is not done for srt alone.
    changed = subflow(*args[:-4], "--format", "srt", "--config", str(work["config"]), "--status")
    assert "0 done" in changed.stdout and "done before with other options" in changed.stdout


def test_a_killed_worker_s_video_is_done_again(work, tmp_path):
    out = tmp_path / "subs"
    # --hwaccel cuda on this GPU-less machine also shows the fallback: one line, then the CPU decodes as usual.
    proc = start("batch", str(work["tree"] / "season2"), "--out-dir", str(out), "--workers", "1", "--config", str(work["config"]),
                 "--hwaccel", "cuda", "--quiet")
    workers = lambda: [p for p in children(proc.pid) if "spawn_main" in cmdline(p)]  # noqa: E731
    wait_for(lambda: workers(), 60, "a worker process")
    wait_for(lambda: any(name.startswith("onnxruntime") for name in _maps(workers()[0])), 60, "the worker to load its engine")
    os.kill(workers()[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    fallback = [line for line in stderr.splitlines() if line.strip()]
    assert fallback and all("hardware decoding (cuda) is not available here" in line and "CPU" in line for line in fallback)
    assert len(fallback) <= 2  # once per worker process (the killed one, then its replacement)
    records = manifest(out)
    assert {r["status"] for r in records.values()} == {"done"} and max(r["attempts"] for r in records.values()) == 2
    assert (out / "offset_start.srt").read_bytes() == work["refs"]["offset_start"]  # the folder itself was the input
    assert (out / "vfr.srt").read_bytes() == work["refs"]["vfr"]


def _maps(pid: int) -> list[str]:
    """Names of the shared libraries a process has loaded."""
    try:
        return [Path(line.split()[-1]).name for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if ".so" in line]
    except OSError:
        return []


def test_sigterm_stops_cleanly_and_a_rerun_finishes(work, tmp_path):
    """SIGTERM (as a job scheduler sends it) here; the Ray test sends Ctrl-C: one path for both."""
    out = tmp_path / "subs"
    args = ["batch", str(work["tree"]), "--out-dir", str(out), "--workers", "1", "--config", str(work["config"])]
    code, stderr = interrupt_after_first(start(*args), out, signal.SIGTERM)
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr
    first = manifest(out)
    assert 1 <= len(first) < 5 and not list(out.rglob("*.part"))
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.srt")}
    assert written == {o for r in first.values() if r["status"] == "done" for o in r["outputs"]}
    done_before = sum(r["status"] == "done" for r in first.values())
    rest = subflow(*args, "--json")
    summary = json.loads(rest.stdout)
    assert rest.returncode == 1  # broken.mp4 fails again; everything else is done now
    assert summary["skipped"] == done_before and (summary["done"], summary["failed"]) == (4 - done_before, 1)
    assert_same_as_extract(out, work["refs"])


def test_usage_errors_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, text in [
        (["batch", str(empty), "--out-dir", str(tmp_path / "o")], "no video files found"),
        (["batch", "/nonexistent", "--out-dir", str(tmp_path / "o")], "no such file or folder"),
        (["batch", str(empty), "--out-dir", str(tmp_path / "o"), "--format", "doc"], "unknown output format"),
    ]:
        result = subflow(*args)
        assert result.returncode == 2 and result.stderr.startswith("subflow: error:") and text in result.stderr, result.stderr


def test_inputs_lists_urls_and_collisions(tmp_path):
    from subflow.batch.inputs import Item, collect
    from subflow.config import ConfigError

    (tmp_path / "a" / "s1").mkdir(parents=True)
    (tmp_path / "a" / "s1" / "ep1.mkv").write_bytes(b"")
    (tmp_path / "a" / "readme.txt").write_text("a list? no: inside a folder only videos are picked")
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\n\na/s1/ep1.mkv\nhttps://cdn.example/show/ep2.mp4\n")
    assert collect([str(tmp_path / "a")]) == [Item(str(tmp_path / "a" / "s1" / "ep1.mkv"), "s1/ep1.mkv")]
    assert [i.key for i in collect([str(listing)])] == ["cdn.example/show/ep2.mp4", "ep1.mkv"]
    assert Item("x", "s1/ep1.mkv").outputs(tmp_path, ["srt", "vtt"]) == [tmp_path / "s1/ep1.srt", tmp_path / "s1/ep1.vtt"]
    (tmp_path / "b" / "s1").mkdir(parents=True)
    (tmp_path / "b" / "s1" / "ep1.mkv").write_bytes(b"")
    with pytest.raises(ConfigError, match="would both write s1/ep1.mkv"):
        collect([str(tmp_path / "a"), str(tmp_path / "b")])


def test_manifest_survives_a_torn_line_and_notices_changed_inputs(tmp_path):
    from subflow.batch.inputs import Item
    from subflow.batch.manifest import Manifest, Record, fingerprint

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    (tmp_path / "v.srt").write_text("1\n")
    size, mtime = fingerprint(str(video))
    Manifest(tmp_path).append(Record("v.mp4", str(video), "done", ["v.srt"], size=size, mtime=mtime, options="o1"))
    with open(tmp_path / "subflow-batch.jsonl", "a") as f:
        f.write('{"key": "w.mp4", "inp')  # a crash mid-write
    item = Item(str(video), "v.mp4")
    manifest = Manifest(tmp_path)
    assert list(manifest.records) == ["v.mp4"] and manifest.is_done(item, "o1", tmp_path)
    assert not manifest.is_done(item, "o2", tmp_path)  # other options
    video.write_bytes(b"y" * 11)
    assert not manifest.is_done(item, "o1", tmp_path)  # the input changed
    manifest.append(Record("w.mp4", "w.mp4", "failed", error="no such file"))
    assert Manifest(tmp_path).records["w.mp4"].error == "no such file"  # not glued to the torn line
