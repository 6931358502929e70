"""The command line as a user meets it: real processes, real files, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import srt

from synth import Shown, frames, moving, write_audio_only, write_video

SHOWN = [Shown(5, 30, ("Hello from subflow",)), Shown(40, 60, ("A second line",))]


def subflow(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "subflow.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2.8 s of 720p H.264 with two subtitles over a moving background."""
    path = tmp_path_factory.mktemp("cli") / "clip.mp4"
    write_video(path, frames(70, SHOWN, moving))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("subflow: error:") and text in lines[0], result.stderr


def test_extract_writes_srt_next_to_the_video(clip):
    result = subflow("extract", str(clip))
    assert result.returncode == 0, result.stderr
    cues = list(srt.parse(clip.with_suffix(".srt").read_text()))
    assert [c.content for c in cues] == ["Hello from subflow", "A second line"]
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [(0.2, 1.2), (1.6, 2.4)]
    assert "2 cues" in result.stderr and "real time" in result.stderr and "decode" in result.stderr


@pytest.mark.parametrize("suffix, marker", [(".vtt", "WEBVTT"), (".ass", "[Events]"), (".jsonl", '"text": "A second line"')])
def test_format_follows_the_suffix(clip, tmp_path, suffix, marker):
    out = tmp_path / ("out" + suffix)
    result = subflow("extract", str(clip), "-o", str(out), "--quiet")
    assert result.returncode == 0 and result.stderr == ""
    assert marker in out.read_text()


def test_json_to_stdout(clip):
    result = subflow("extract", str(clip), "-o", "-", "-q")
    assert result.returncode == 0
    assert [line.count('"text"') for line in result.stdout.splitlines()] == [1, 1]


def test_a_batch_survives_one_bad_file(clip, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    result = subflow("extract", str(bad), str(clip), "-o", str(tmp_path), "-q")
    assert result.returncode == 1
    assert "bad.mp4: not a video" in result.stderr and "1 of 2 inputs failed" in result.stderr
    assert (tmp_path / "clip.srt").read_text().count("-->") == 2


@pytest.mark.parametrize(
    "args, text",
    [
        (["extract", "/nonexistent/movie.mp4"], "no such file"),
        (["extract", "{clip}", "-o", "/nonexistent/dir/out.srt"], "cannot write"),
        (["extract", "{clip}", "-o", "{tmp}/out.xyz"], "format"),
        (["extract", "{clip}", "--region", "0.5,0.5"], "region"),
        (["extract", "{clip}", "--set", "detector.nonsense=1"], "unknown setting detector.nonsense"),
        (["extract", "{clip}", "--config", "/nonexistent.toml"], "config file not found"),
        (["extract", "{clip}", "--sample-every", "0"], "sample-every"),
        (["score", "/nonexistent.srt", "{clip}"], "no such file"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(clip, tmp_path, args, text):
    args = [a.format(clip=clip, tmp=tmp_path) for a in args]
    assert_one_line_error(subflow(*args), 2, text)


def test_audio_only_input(tmp_path):
    path = tmp_path / "sound.wav"
    write_audio_only(path)
    assert_one_line_error(subflow("extract", str(path)), 2, "no video stream")


def test_version_and_help():
    assert subflow("--version").stdout.startswith("subflow ")
    help_text = subflow("extract", "--help").stdout
    for option in ("--output", "--format", "--region", "--engine", "--task", "--sample-every", "--set", "--config", "--quiet"):
        assert option in help_text
