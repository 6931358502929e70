"""Sinks: what they write parses back (srt library, ffmpeg), files mode is atomic, append mode stays valid."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import srt
from hypothesis import given, settings
from hypothesis import strategies as st

from subflow.records import Box, Cue
from subflow.sinks import JsonStreamSink, SinkError, open_sink


def visible(lines: list[str]) -> list[str]:
    """What a text subtitle file can keep of the lines: split at line breaks, trimmed, blank ones dropped."""
    parts = [p.strip() for line in lines for p in re.split(r"\r\n|\r|\n", line)]
    return [p for p in parts if p]


# Any text UTF-8 can hold (OCR answers are decoded text, never lone surrogates), plus lines that
# look like SRT indexes and timestamps (the parts of SRT syntax that could appear inside a cue).
line_text = (
    st.text(st.sampled_from("0123456789:,.-> \n\r") | st.characters(codec="utf-8"), max_size=30)
    | st.from_regex(r"-?[0-9]{1,3}\.?", fullmatch=True)
    | st.from_regex(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}([,.][0-9]{3})?( --> [0-9:,]+)?( PM)?", fullmatch=True)
)
cue_lists = st.lists(
    st.builds(
        lambda start, length, lines, top: Cue(0, start, start + length, lines, region="top" if top else "bottom"),
        st.floats(0, 360_000, allow_nan=False),
        st.floats(0, 30, allow_nan=False),
        st.lists(line_text, min_size=1, max_size=4),
        st.booleans(),
    ),
    max_size=8,
)


def sample_cues() -> list[Cue]:
    return [
        Cue(2, 3.5, 5.25, ["a<b & c> --> {x}", "second line"], region="top"),
        Cue(1, 1.0, 2.0, ["Hello", "world"]),
        Cue(3, 6.0, 7.125, ["back\\Nslash"], region="custom", box=Box(100, 600, 300, 650)),
    ]


def write_all(path: Path, cues: list[Cue], **kwargs) -> str:
    with open_sink(path, **kwargs) as sink:
        for cue in cues:
            sink.write(cue)
    return path.read_text(encoding="utf-8")


@settings(max_examples=100, deadline=None)
@given(cue_lists)
def test_srt_round_trip_keeps_times_and_text(cues):
    with tempfile.TemporaryDirectory() as tmp:
        text = write_all(Path(tmp) / "out.srt", cues)
    kept = [c for c in sorted(cues, key=lambda c: c.start) if visible(c.lines)]
    parsed = list(srt.parse(text))
    assert [s.index for s in parsed] == list(range(1, len(kept) + 1))
    for cue, sub in zip(kept, parsed, strict=True):
        start_ms = round(cue.start * 1000)
        assert sub.start.total_seconds() * 1000 == pytest.approx(start_ms)
        assert sub.end.total_seconds() * 1000 == pytest.approx(max(start_ms, round(cue.end * 1000)))
        prefix = "{\\an8}" if cue.region == "top" else ""
        # the writer may add zero-width spaces (see the next test)
        assert sub.content.replace("\u200b", "") == prefix + "\n".join(visible(cue.lines)).replace("\u200b", "")


def test_srt_number_line_before_time_line_stays_text(tmp_path):
    cues = [Cue(1, 0, 1, ["Day", "2", "10:30:00 PM"]), Cue(2, 2, 3, ["next"])]
    subs = list(srt.parse(write_all(tmp_path / "out.srt", cues)))
    assert [s.content for s in subs] == ["Day\n2\u200b\n10:30:00 PM", "next"]


def test_files_mode_sorts_and_renumbers(tmp_path):
    text = write_all(tmp_path / "out.srt", sample_cues())
    subs = list(srt.parse(text))
    assert [s.index for s in subs] == [1, 2, 3]
    assert [s.content for s in subs] == ["Hello\nworld", "{\\an8}a<b & c> --> {x}\nsecond line", "back\\Nslash"]


def test_cue_without_visible_text_is_skipped_without_using_a_number(tmp_path):
    cues = [Cue(1, 1, 2, ["  ", ""]), Cue(2, 3, 4, ["kept"])]
    subs = list(srt.parse(write_all(tmp_path / "out.srt", cues)))
    assert [(s.index, s.content) for s in subs] == [(1, "kept")]


def test_vtt_structure_and_escaping(tmp_path):
    text = write_all(tmp_path / "out.vtt", sample_cues())
    assert text.startswith("WEBVTT\n\n")
    blocks = text.strip("\n").split("\n\n")
    assert blocks[1:] == [
        "1\n00:00:01.000 --> 00:00:02.000\nHello\nworld",
        "2\n00:00:03.500 --> 00:00:05.250 line:0%\na&lt;b &amp; c&gt; --&gt; {x}\nsecond line",
        "3\n00:00:06.000 --> 00:00:07.125\nback\\Nslash",
    ]


def test_ass_structure(tmp_path):
    text = write_all(tmp_path / "out.ass", sample_cues(), video_size=(1280, 720))
    for section in ("[Script Info]", "[V4+ Styles]", "[Events]"):
        assert section in text
    assert "PlayResX: 1280\n" in text and "PlayResY: 720\n" in text
    dialogues = [line for line in text.splitlines() if line.startswith("Dialogue:")]
    assert dialogues == [
        "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\an2}Hello\\Nworld",
        "Dialogue: 0,0:00:03.50,0:00:05.25,Default,,0,0,0,,{\\an8}a<b & c> --> \\{x\\}\\Nsecond line",
        "Dialogue: 0,0:00:06.00,0:00:07.12,Default,,0,0,0,,{\\an2\\pos(200,650)}back\\\u200bNslash",
    ]


def test_jsonl_lines_are_cue_dicts(tmp_path):
    cues = sample_cues()
    text = write_all(tmp_path / "out.jsonl", cues)
    records = [json.loads(line) for line in text.splitlines()]
    assert records == [c.to_dict() for c in sorted(cues, key=lambda c: c.start)]


def test_json_stream_sink_flushes_one_object_per_cue():
    stream = io.StringIO()
    with JsonStreamSink(stream) as sink:
        for cue in sample_cues():
            sink.write(cue)
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [c.to_dict() for c in sample_cues()]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")
@pytest.mark.parametrize("suffix", ["srt", "vtt", "ass"])
def test_ffmpeg_reads_what_we_write(tmp_path, suffix):
    cues = [
        Cue(1, 1.0, 2.5, ["Hello & <world>", "line two"]),
        Cue(2, 3.0, 4.0, ["at the top"], region="top"),
        Cue(3, 62.25, 65.0, ["Ünïcødé 字幕"]),
    ]
    path = tmp_path / f"out.{suffix}"
    write_all(path, cues, video_size=(640, 360))
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "srt", "-"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    subs = list(srt.parse(run.stdout))
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [(1.0, 2.5), (3.0, 4.0), (62.25, 65.0)]
    plain = [re.sub(r"\{[^}]*\}|</?font[^>]*>", "", s.content) for s in subs]
    if suffix != "srt":  # ffmpeg reads SRT text as markup, so "<world>" is a tag there
        assert plain[0] == "Hello & <world>\nline two"
    assert plain[1:] == ["at the top", "Ünïcødé 字幕"]


def test_exception_inside_with_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.srt"
    target.write_bytes(b"1\r\n00:00:00,000 --> 00:00:01,000\r\nold\r\n\r\n")
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), open_sink(target) as sink:
        sink.write(Cue(1, 0, 1, ["new"]))
        assert len(list(tmp_path.iterdir())) == 2  # the temporary file sits beside the target
        raise RuntimeError("boom")
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]


def test_ctrl_c_inside_with_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.vtt"
    target.write_text("WEBVTT\n\n")
    with pytest.raises(KeyboardInterrupt), open_sink(target) as sink:
        sink.write(Cue(1, 0, 1, ["new"]))
        raise KeyboardInterrupt
    assert target.read_text() == "WEBVTT\n\n"
    assert list(tmp_path.iterdir()) == [target]


def test_close_replaces_target_keeping_its_mode(tmp_path):
    target = tmp_path / "out.srt"
    target.write_text("old")
    target.chmod(0o640)
    sink = open_sink(target)
    sink.write(Cue(1, 0, 1, ["new"]))
    assert target.read_text() == "old"  # nothing visible until close
    sink.close()
    assert [s.content for s in srt.parse(target.read_text())] == ["new"]
    assert target.stat().st_mode & 0o777 == 0o640
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(SinkError, match="closed"):
        sink.write(Cue(2, 1, 2, ["late"]))


def test_new_file_is_world_readable(tmp_path):
    write_all(tmp_path / "out.ass", sample_cues())
    assert (tmp_path / "out.ass").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "suffix, check",
    [
        ("srt", lambda text, n: len(list(srt.parse(text))) == n),
        ("vtt", lambda text, n: text.startswith("WEBVTT\n\n") and text.count(" --> ") == n),
        ("ass", lambda text, n: "[Events]" in text and text.count("\nDialogue: ") == n),
        ("jsonl", lambda text, n: len([json.loads(line) for line in text.splitlines()]) == n),
    ],
)
def test_append_mode_file_is_valid_after_every_write(tmp_path, suffix, check):
    path = tmp_path / f"live.{suffix}"
    cues = [Cue(i, 10 - i, 11 - i, [f"cue {i}"]) for i in range(1, 5)]  # arrival order is kept
    with open_sink(path, append=True) as sink:
        assert check(path.read_text(), 0)
        for n, cue in enumerate(cues, 1):
            sink.write(cue)
            assert check(path.read_text(), n)
    assert check(path.read_text(), len(cues))


def test_append_continues_srt_numbering_and_keeps_old_cues(tmp_path):
    path = tmp_path / "live.srt"
    write_all(path, [Cue(1, 0, 1, ["one"]), Cue(2, 1, 2, ["two"])], append=True)
    write_all(path, [Cue(3, 2, 3, ["three"])], append=True)
    subs = list(srt.parse(path.read_text()))
    assert [(s.index, s.content) for s in subs] == [(1, "one"), (2, "two"), (3, "three")]


def test_abort_in_append_mode_keeps_what_was_written(tmp_path):
    path = tmp_path / "live.vtt"
    with pytest.raises(RuntimeError), open_sink(path, append=True) as sink:
        sink.write(Cue(1, 0, 1, ["kept"]))
        raise RuntimeError
    assert path.read_text() == "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nkept\n\n"


def test_append_refuses_a_file_of_another_format(tmp_path):
    path = tmp_path / "notes.vtt"
    path.write_text("shopping list\n")
    with pytest.raises(SinkError, match="not a WebVTT file"):
        open_sink(path, append=True)
    assert path.read_text() == "shopping list\n"


def test_format_from_suffix_or_explicit(tmp_path):
    text = write_all(tmp_path / "out.txt", [Cue(1, 0, 1, ["x"])], format="webvtt")
    assert text.startswith("WEBVTT")
    with pytest.raises(SinkError, match=r"cannot tell the output format of '.*out\.txt'"):
        open_sink(tmp_path / "out.txt")
    with pytest.raises(SinkError, match="unknown output format 'docx'"):
        open_sink(tmp_path / "out.srt", "docx")
    assert list(tmp_path.iterdir()) == [tmp_path / "out.txt"]


@pytest.mark.parametrize("append", [False, True])
def test_unwritable_places_fail_at_open_with_one_line(tmp_path, append):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir.srt").mkdir()
    for path, reason in [
        (tmp_path / "missing" / "out.srt", "No such file or directory"),
        (tmp_path / "a_file" / "out.srt", "Not a directory"),
        (tmp_path / "a_dir.srt", "is a directory"),
    ]:
        with pytest.raises(SinkError) as info:
            open_sink(path, append=append)
        message = str(info.value)
        assert reason in message and str(path) in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir.srt", "a_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_directory_fails_at_open(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(SinkError, match="Permission denied"):
        open_sink(locked / "out.srt")


# ------------------------------------------------------------------ output naming (extract, and batch after it)


def test_plan_outputs_names_each_output_by_extracts_rule(tmp_path):
    from subflow.sinks import Output, plan_outputs

    movie = str(tmp_path / "movie.mp4")
    assert plan_outputs([movie], None) == [Output(movie, tmp_path / "movie.srt", "srt")]
    assert plan_outputs([movie], None, "vtt") == [Output(movie, tmp_path / "movie.vtt", "vtt")]
    assert plan_outputs([movie], None, None, "ass") == [Output(movie, tmp_path / "movie.ass", "ass")]
    assert plan_outputs([movie], str(tmp_path / "x.jsonl"), None, "ass")[0].format == "jsonl"  # the suffix beats the config
    assert plan_outputs([movie], "-") == [Output(movie, None, "jsonl")]
    subs = tmp_path / "subs" / "new"
    plans = plan_outputs([movie, str(tmp_path / "other.mkv")], str(subs))
    assert [p.path for p in plans] == [subs / "movie.srt", subs / "other.srt"] and subs.is_dir()
    assert plan_outputs(["rtsp://cam.local/live/stream"], None)[0].path == Path("stream.srt")


@pytest.mark.parametrize(
    "inputs, output, fmt, message",
    [
        (["a/clip.mp4"], "a/clip.mp4", "srt", "is an input"),
        (["a/clip.mp4", "b/clip.mp4"], "out/", None, "a/clip.mp4 and b/clip.mp4 would both write out/clip.srt"),
        (["a/clip.mp4", "a/./clip.mp4"], None, None, "is given twice"),
        (["a/clip.srt"], None, None, "is an input"),  # next to it, with the same name
        (["a/clip.mp4"], "-", "vtt", "JSON Lines"),
        (["a/clip.mp4"], "x.vtt", "srt", "make them agree"),
        (["a/clip.mp4", "b/other.mp4"], "all.srt", None, "must be a folder"),
    ],
)
def test_plan_outputs_refuses_what_would_lose_data(tmp_path, monkeypatch, inputs, output, fmt, message):
    from subflow.sinks import plan_outputs

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SinkError, match=re.escape(message)):
        plan_outputs(inputs, output, fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # refused before anything was created
