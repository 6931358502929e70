"""The command line as a user meets it: real processes, real files, exit codes, one-line errors."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import srt

from synth import Shown, frames, moving, write_audio_only, write_video

pytestmark = pytest.mark.cli

SHOWN = [Shown(5, 30, ("Hello from subflow",)), Shown(40, 60, ("A second line",))]
LONGER = Path(__file__).resolve().parent.parent / "samples" / "clutter.mp4"  # 15 s: long enough to interrupt
SLOW_CLI = [sys.executable, str(Path(__file__).parent / "slow_engine.py")]  # the CLI, with --engine slow-rapid


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
        (["extract", "{clip}", "--set", "detector.lost_threshold=5"], "detector.lost_threshold must be more than 0 and at most 1"),
        (["extract", "{clip}", "--set", "detector.lost_threshold=-1"], "detector.lost_threshold must be more than 0"),
        (["extract", "{clip}", "--set", "merger.similarity=1.5"], "merger.similarity must be between 0 and 1"),
        (["extract", "{clip}", "--set", "detector.persist_frames=0"], "detector.persist_frames must be 1 or more"),
        (["extract", "{clip}", "--set", "engines.rapid.threads=-1"], "engines.rapid.threads must be 0 or more"),
        (["extract", "{clip}", "--set", "engines.rapid.dark_text=maybe"], "engines.rapid.dark_text must be bool"),
        (["extract", "{clip}", "-o", "-", "--format", "srt"], "output '-' (stdout) is JSON Lines"),
        (["extract", "{clip}", "-o", "{tmp}/x.srt", "--format", "vtt"], "is a .srt name but the format asked for is vtt"),
        (["extract", "{clip}", "-o", "{clip}", "--format", "srt"], "is an input"),
        (["extract", "{clip}", "{clip}", "-o", "{tmp}/"], "is given twice"),
        (["extract", "{clip}", "{tmp}/other.mp4", "-o", "{tmp}/all.srt"], "with several inputs the output must be a folder"),
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


def test_an_output_never_replaces_its_input(clip, tmp_path):
    victim = tmp_path / "victim.mp4"
    shutil.copy(clip, victim)
    before = victim.read_bytes()
    for output in (str(victim), str(tmp_path / "." / "victim.mp4")):
        assert_one_line_error(subflow("extract", str(victim), "-o", output, "--format", "srt"), 2, "is an input")
    assert victim.read_bytes() == before


def test_two_inputs_never_write_one_file(clip, tmp_path):
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        shutil.copy(clip, tmp_path / folder / "clip.mp4")
    result = subflow("extract", "d1/clip.mp4", "d2/clip.mp4", "-o", "same/", cwd=tmp_path)
    assert_one_line_error(result, 2, "d1/clip.mp4 and d2/clip.mp4 would both write same/clip.srt")
    assert not (tmp_path / "same").exists()  # refused before any work


def test_several_inputs_into_a_folder_that_does_not_exist_yet(clip, tmp_path):
    shutil.copy(clip, tmp_path / "other.mp4")
    result = subflow("extract", str(clip), str(tmp_path / "other.mp4"), "-o", str(tmp_path / "subs" / "new"), "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "subs" / "new").iterdir()) == ["clip.srt", "other.srt"]


def test_engine_options_from_the_command_line_get_their_types(clip, tmp_path):
    out = tmp_path / "typed.srt"
    result = subflow("extract", str(clip), "-o", str(out), "-q", "--set", "engines.rapid.threads=1",
                     "--set", "engines.rapid.dark_text=false", "--set", "engines.rapid.fallback_below=0.9")
    assert result.returncode == 0, result.stderr
    assert [c.content for c in srt.parse(out.read_text())] == ["Hello from subflow", "A second line"]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
@pytest.mark.parametrize("command", [["extract", "{clip}"], ["live", "{clip}", "--json"]])
def test_an_engine_whose_package_is_missing_is_one_line(clip, command):
    result = subflow(*[a.format(clip=clip) for a in command], "--engine", "hunyuan")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "engine 'hunyuan' needs vllm, which is not installed" in lines[0], result.stderr
    assert "pip install -e '" in lines[0] and "[vllm]'" in lines[0]  # from a source checkout, as this one is


def _interrupted(send: signal.Signals, tmp_path: Path) -> subprocess.CompletedProcess:
    """Start an extraction, wait until it is well under way, and send it ``send``."""
    out = tmp_path / "never.srt"
    proc = subprocess.Popen([*SLOW_CLI, "extract", str(LONGER), "-o", str(out), "--engine", "slow-rapid"],
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # the first progress line: frames are being decoded
    time.sleep(1.0)  # reads are in flight (the slow engine is far behind)
    proc.send_signal(send)
    _, rest = proc.communicate(timeout=120)
    assert not out.exists()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", first + rest)


@pytest.mark.parametrize("send", [signal.SIGINT, signal.SIGTERM])
def test_interrupts_end_cleanly(tmp_path, send):
    result = _interrupted(send, tmp_path)
    assert result.returncode == 130, result.stderr
    assert "interrupted; unfinished outputs were not written" in result.stderr
    assert "Task was destroyed" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_closed_pipe_ends_cleanly():
    """`subflow extract movie.mp4 -o - | head -1`"""
    proc = subprocess.Popen([*SLOW_CLI, "extract", str(LONGER), "-o", "-", "-q", "--engine", "slow-rapid"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert '"text"' in proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(120)
    assert "Task was destroyed" not in err and "Traceback" not in err and "Exception ignored" not in err, err


def test_breaking_out_of_extract_leaves_no_read_pending():
    """`for cue in extract(...): break` must cancel the reads in flight and wait for them, not leave them to
    be destroyed pending at exit ("Task was destroyed but it is pending!")."""
    import asyncio

    import slow_engine
    from subflow import extract
    from subflow.recognizer import run_on_engine_loop

    async def recognizer_tasks() -> list[str]:
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        return [task.get_coro().__qualname__ for task in tasks if task.get_coro().__qualname__.startswith("Recognizer.")]

    slow_engine.register()
    for cue in extract(str(LONGER), engine="slow-rapid"):
        assert cue.text
        break
    assert run_on_engine_loop(recognizer_tasks()) == []


def test_the_last_progress_report_counts_every_cue(clip):
    from subflow.pipeline import Pipeline
    from subflow.source import VideoSource

    reports = []
    pipeline = Pipeline(on_progress=lambda stats: reports.append((stats.position, stats.cues)))
    try:
        with VideoSource(str(clip)) as source:
            cues = [u for u in pipeline.updates(source) if u.final and u.cue is not None]
    finally:
        pipeline.close()
    assert len(cues) == 2 and reports[-1][1] == 2  # not "cues 0" at 100 % while the summary says 2


def test_api_option_mistakes_name_the_api_not_the_command_line(clip):
    from subflow import extract
    from subflow.config import ConfigError

    with pytest.raises(ConfigError, match=r"^extract\(\) options: unknown setting region.bnd"):
        list(extract(str(clip), region__bnd="top"))


def test_doctor_suggests_installs_that_fit_a_source_checkout():
    result = subflow("doctor")
    fixes = [line.split("-> ", 1)[1] for line in result.stdout.splitlines() if "pip install" in line]
    if not fixes:
        pytest.skip("every optional engine is installed here")
    assert all("pip install -e '" in fix and "'subflow[" not in fix for fix in fixes), fixes
