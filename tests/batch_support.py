"""What the batch tests share: a tree of sample videos, running the CLI, reading the manifest."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
# The rapid engine reads the line images of one call as a padded batch, so a read can change with its
# batch-mates, which depend on timing (extract itself differs between runs on a loaded machine).
# One line per rec call makes every read a function of its crop alone: then "the same output as
# extract" is a claim a test can check byte for byte.
DETERMINISTIC = "[engines.rapid]\nrec_batch = 1\n"


def subflow(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "subflow.cli", *args], capture_output=True, text=True, timeout=timeout)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "subflow.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def video_tree(root: Path, names: list[str]) -> Path:
    """Sample videos under ``root/in``, every other one in a subfolder (so the output tree must mirror it)."""
    tree = root / "in"
    for i, name in enumerate(names):
        target = tree / ("season2" if i % 2 else "") / f"{name}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / f"{name}.mp4", target)
    return tree


def config_file(root: Path) -> Path:
    path = root / "deterministic.toml"
    path.write_text(DETERMINISTIC)
    return path


def manifest(out: Path) -> dict[str, dict]:
    """The last record of every key; every line must be whole JSON (the manifest is never torn)."""
    records = {}
    for line in (out / "subflow-batch.jsonl").read_text().splitlines():
        record = json.loads(line)
        records[record["key"]] = record
    return records


VIDEOS = ["en_basic", "offset_start", "zh_basic", "vfr"]  # offset_start and vfr land in season2/
_inputs: dict = {}


def batch_inputs(tmp_path_factory) -> dict:
    """A tree of samples (with a corrupt video and a file that is no video), the deterministic config,
    and what `subflow extract` writes for each video: made once per test session, shared by the
    local and Ray tests."""
    if not _inputs:
        root = tmp_path_factory.mktemp("batch-inputs")
        tree = video_tree(root, VIDEOS)
        (tree / "broken.mp4").write_bytes(os.urandom(50_000))
        (tree / "notes.md").write_text("not a video, and not picked from a folder")
        config = config_file(root)
        refs = {name: extract_reference(next(tree.rglob(f"{name}.mp4")), root / "ref" / f"{name}.srt", config) for name in VIDEOS}
        refs["en_basic.ass"] = extract_reference(tree / "en_basic.mp4", root / "ref" / "en_basic.ass", config)
        _inputs.update(root=root, tree=tree, config=config, refs=refs)
    return _inputs


def assert_same_as_extract(out: Path, refs: dict[str, bytes], names: list[str] = VIDEOS) -> None:
    for name in names:
        folder = "season2/" if VIDEOS.index(name) % 2 else ""
        assert (out / f"{folder}{name}.srt").read_bytes() == refs[name], f"{name}: batch and extract differ"


def extract_reference(video: Path, target: Path, config: Path) -> bytes:
    target.parent.mkdir(parents=True, exist_ok=True)
    result = subflow("extract", str(video), "-o", str(target), "-q", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return target.read_bytes()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc: no extra package)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def interrupt_after_first(proc: subprocess.Popen, out: Path, signum: int = signal.SIGINT, timeout: float = 120) -> tuple[int, str]:
    """Ctrl-C (SIGINT to the driver alone), or ``signum``, once a first video is done; (exit code, stderr)."""
    path = out / "subflow-batch.jsonl"
    wait_for(lambda: path.exists() and '"status": "done"' in path.read_text(), timeout, "a first video done")
    os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr
