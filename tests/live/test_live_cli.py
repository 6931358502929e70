"""`subflow live` options and errors, run in-process (the RTSP end-to-end test runs it as a process)."""

from __future__ import annotations

import argparse
import json

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
