"""`subflow live` options and errors, in-process, and what a user sees of it, as a process."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys

import pytest
import srt

from subflow.live import cli as live_cli
from subflow.cli import build_parser


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["live", *argv])


def test_the_main_cli_has_the_subcommand_with_the_shared_options():
    args = parse("rtsp://cam/stream", "--ws", ":8765", "--region", "top", "--transport", "udp", "--set", "live.queue=8")
    assert args.run is live_cli.run
    config = live_cli._config(args)
    assert (config.region.band, config.live.transport, config.live.queue) == ("top", "udp", 8)


@pytest.mark.parametrize(
    "argv, message",
    [
        (("clip.mp4",), "nothing to do"),
        (("clip.mp4", "--json", "--set", "live.queue"), "SECTION.KEY=VALUE"),
        (("clip.mp4", "--json", "--set", "live.nope=1"), "unknown setting live.nope"),
        (("clip.mp4", "--ws", "localhost:http"), "expected HOST:PORT"),
        (("clip.mp4", "--ws", ":0", "--token-file", "/nonexistent/tokens"), "cannot read token file"),
        (("clip.mp4", "--set", "recognizer.engine=nope", "--json"), "unknown engine 'nope'"),
        (("/nonexistent/clip.mp4", "--json"), "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert live_cli.run(parse(*argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("subflow live: error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_a_file_runs_through_to_growing_files_and_json_stdout(live_clip, ground_truth, tmp_path, capsys):
    """Without --realtime a file is read at full speed and nothing is dropped; the files are complete."""
    out_srt, out_jsonl = tmp_path / "out.srt", tmp_path / "out.jsonl"
    assert live_cli.run(parse(str(live_clip), "--srt", str(out_srt), "--jsonl", str(out_jsonl), "--json")) == 0
    expected = [cue.text for cue in ground_truth]
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [c["text"] for c in printed] == expected
    cues = list(srt.parse(out_srt.read_text()))
    assert [c.content for c in cues] == expected
    assert [round(c.start.total_seconds(), 2) for c in cues] == [cue.start for cue in ground_truth]
    assert [json.loads(line)["text"] for line in out_jsonl.read_text().splitlines()] == expected


def live(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "subflow.cli", "live", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_user_learns_the_addresses_and_that_a_file_ended(live_clip, ground_truth, tmp_path):
    proc = live(str(live_clip), "--ws", "127.0.0.1:0", "--srt", str(tmp_path / "out.srt"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert lines[0].startswith("subflow live: captions on ws://127.0.0.1:") and "/ws, overlay on http://127.0.0.1:" in lines[0]
    assert lines[-1] == f"subflow live: {live_clip}: the source ended after {len(ground_truth)} cues; outputs complete"


@pytest.mark.parametrize("send", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_live_with_130_and_complete_files(live_clip, tmp_path, send):
    out = tmp_path / "out.srt"
    proc = live(str(live_clip), "--realtime", "--ws", ":0", "--srt", str(out))
    first = proc.stderr.readline()  # the addresses: the session is up
    assert "overlay on http://localhost:" in first and "(all interfaces)" in first, first
    proc.send_signal(send)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped after" in err and "Traceback" not in err and "Task was destroyed" not in err, err
    srt.compose(list(srt.parse(out.read_text())))  # a valid file, however far it got


def test_a_missing_file_is_one_line_without_python_internals():
    proc = live("/nonexistent/clip.mp4", "--json")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip() == "subflow live: error: /nonexistent/clip.mp4: no such file", err


def test_status_changes_read_as_words():
    from subflow.live.source import describe_status

    assert describe_status("reconnecting", {"attempt": 2, "retry_in": 1.0, "reason": "Connection refused"}) == (
        "reconnecting in 1 s (attempt 2): Connection refused")
    assert describe_status("connected", {"width": 640, "height": 360, "fps": 24.0}) == "connected (640x360, 24 fps)"
    assert describe_status("ended", {"reason": ""}) == "ended"
