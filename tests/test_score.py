"""Scoring: hand-built cases with known answers, the file readers, and the CLI plumbing."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subflow.records import Cue
from subflow.score import ScoreError, add_parser, edit_distance, load_cues, match, run, score
from subflow.sinks import open_sink


def cue(start: float, end: float, text: str, region: str = "bottom") -> Cue:
    return Cue(0, start, end, text.split("\n"), region=region)


GT = [
    cue(1.0, 3.0, "Hello there."),
    cue(4.0, 6.0, "General Kenobi!\nYou are a bold one."),
    cue(7.0, 9.5, "Kill him.", region="top"),
]


def test_perfect_prediction():
    s = score(GT, [Cue(9, c.start, c.end, list(c.lines), region=c.region) for c in GT])
    assert (s.gt, s.pred, s.matched, s.fragments) == (3, 3, 3, 0)
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert s.cer == 0.0 and s.exact_rate == 1.0
    assert s.start_p95_ms == 0.0 and s.end_p95_ms == 0.0


def test_shifted_cue_gives_exact_ms_and_frame_errors():
    pred = [GT[0], cue(4.12, 5.96, GT[1].text), GT[2]]
    s = score(GT, pred, frame_duration=0.04)
    assert s.matched == 3
    # errors 0, 120, 0 ms at the start: p50 0, p95 interpolates 90% of the way to 120
    assert s.start_p50_ms == pytest.approx(0.0)
    assert s.start_p95_ms == pytest.approx(108.0)
    assert s.start_bias_ms == pytest.approx(40.0)
    assert s.end_bias_ms == pytest.approx(-40 / 3)
    one = score([GT[1]], [pred[1]], frame_duration=0.04)
    assert one.start_p50_ms == pytest.approx(120.0) and one.end_p50_ms == pytest.approx(40.0)
    assert one.to_dict()["start_p50_frames"] == pytest.approx(3.0)
    assert "3.0 / 3.0 frames" in one.format()


def test_split_cue_counts_one_fragment():
    gt = [cue(0.0, 4.0, "A long line that stays up")]
    pred = [cue(0.0, 2.2, "A long line that stays up"), cue(2.2, 4.0, "A long line that stays up")]
    s = score(gt, pred)
    assert (s.matched, s.fragments) == (1, 1)
    assert (s.precision, s.recall) == (0.5, 1.0)
    assert s.f1 == pytest.approx(2 / 3)
    assert score(gt, pred[1:]).matched == 0  # IoU 0.45 alone is not a match


def test_merged_repeat_loses_recall():
    gt = [cue(1.0, 2.0, "No!"), cue(2.0, 3.0, "No!")]
    s = score(gt, [cue(1.0, 3.0, "No!")])
    assert (s.matched, s.fragments) == (1, 0)
    assert (s.precision, s.recall) == (1.0, 0.5)


def test_regions_do_not_match_each_other():
    gt = [cue(1.0, 2.0, "Sign text", region="top"), cue(1.0, 2.0, "Dialogue")]
    s = score(gt, [cue(1.0, 2.0, "Dialogue", region="top")])
    assert s.matched == 1 and s.cer > 0.5  # matched the top cue, whatever its text
    s = score(gt[:1], [cue(1.0, 2.0, "Sign text")])
    assert (s.matched, s.precision, s.recall) == (0, 0.0, 0.0)


def test_low_overlap_is_no_match():
    s = score([cue(0.0, 2.0, "x")], [cue(1.5, 3.5, "x")])  # IoU 0.5 / 3.5
    assert s.matched == 0 and s.cer is None and s.start_p50_ms is None
    assert "CER n/a" in s.format()


def test_cer_exact_value_and_whitespace_collapse():
    gt = [cue(0, 1, "the quick fox"), cue(1, 2, "Hello\nworld")]
    pred = [cue(0, 1, "the quack fax"), cue(1, 2, "  Hello   world ")]
    s = score(gt, pred)
    assert s.cer == pytest.approx(2 / (13 + 11))
    assert s.exact_rate == 0.5


def test_empty_inputs():
    assert score([], []).f1 == 1.0
    s = score(GT, [])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


spans = st.lists(
    st.builds(
        lambda start, length, top: cue(start, start + length, "x", region="top" if top else "bottom"),
        st.integers(0, 60).map(lambda t: t / 4),
        st.integers(0, 24).map(lambda t: t / 4),
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(spans, spans)
def test_match_equals_greedy_over_all_pairs(gt, pred):
    """The time index used by match() must not lose candidates."""
    candidates = sorted(
        (-iou, gi, pi)
        for gi, g in enumerate(gt)
        for pi, p in enumerate(pred)
        if g.region == p.region
        and (
            iou := max(0, min(g.end, p.end) - max(g.start, p.start))
            / max(1e-12, max(g.end, p.end) - min(g.start, p.start))
        )
        >= 0.5
    )
    pairs, used_gt, used_pred = [], set(), set()
    for _, gi, pi in candidates:
        if gi not in used_gt and pi not in used_pred:
            used_gt.add(gi)
            used_pred.add(pi)
            pairs.append((gi, pi))
    assert match(gt, pred) == sorted(pairs)


def _reference_distance(a: str, b: str) -> int:
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


@settings(max_examples=300, deadline=None)
@given(st.text("abcあ ", max_size=12), st.text("abcあ ", max_size=12))
def test_edit_distance_matches_textbook_table(a, b):
    assert edit_distance(a, b) == _reference_distance(a, b)


def test_known_edit_distances():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "字幕") == 2
    assert edit_distance("flaw", "lawn") == 2


# --- readers -----------------------------------------------------------------------------


def test_srt_reader_regions_and_tags(tmp_path):
    path = tmp_path / "gt.srt"
    path.write_text(
        "\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n{\\an8}<i>Top</i> line\r\n\r\n"
        "2\r\n00:00:03,000 --> 00:00:04,000\r\n{\\an2}Bottom {\\b1}bold{\\b0}\r\nsecond <3\r\n\r\n"
        "3\r\n00:00:05,000 --> 00:00:06,000\r\n{\\pos(10,10)\\an9}Right top\r\n",
        encoding="utf-8",
        newline="",
    )
    cues = load_cues(path)
    assert [(c.start, c.end, c.lines, c.region) for c in cues] == [
        (1.0, 2.5, ["Top line"], "top"),
        (3.0, 4.0, ["Bottom bold", "second <3"], "bottom"),
        (5.0, 6.0, ["Right top"], "top"),
    ]


def test_vtt_reader(tmp_path):
    path = tmp_path / "gt.vtt"
    path.write_text(
        "WEBVTT - demo\n\nNOTE a comment\nspanning lines\n\n"
        "00:01.000 --> 00:02.000 line:0% align:center\n<v Bob>Fish &amp; chips</v>\n\n"
        "intro\n01:00:03.250 --> 01:00:04.000 line:-1\n&lt;tag&gt; text\nline two\n",
        encoding="utf-8",
    )
    cues = load_cues(path)
    assert [(c.start, c.end, c.lines, c.region) for c in cues] == [
        (1.0, 2.0, ["Fish & chips"], "top"),
        (3603.25, 3604.0, ["<tag> text", "line two"], "bottom"),
    ]


def test_jsonl_reader(tmp_path):
    path = tmp_path / "pred.jsonl"
    records = [Cue(1, 0.5, 1.5, ["a", "b"], region="top").to_dict(), {"start": 2, "end": 3, "text": "c\nd"},
               {**Cue(1, 0.5, 1.5, ["a", "b"], region="top", translations={"en": "x"}).to_dict(), "translation": True}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    cues = load_cues(path)
    assert [(c.start, c.end, c.lines, c.region) for c in cues] == [
        (0.5, 1.5, ["a", "b"], "top"),
        (2, 3, ["c", "d"], "bottom"),
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10_000_000),  # start in ms
            st.integers(10, 20_000),  # duration in ms
            st.lists(st.text(st.sampled_from("{}\\<>&;N -") | st.characters(codec="utf-8"), max_size=20), min_size=1, max_size=3),
            st.booleans(),
        ),
        max_size=6,
    ),
    st.sampled_from(["srt", "vtt", "ass", "jsonl"]),
)
def test_reads_back_what_the_sinks_write(items, suffix):
    cues = [Cue(0, s / 1000, (s + d) / 1000, lines, region="top" if top else "bottom") for s, d, lines, top in items]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"out.{suffix}"
        with open_sink(path) as sink:
            for c in cues:
                sink.write(c)
        back = load_cues(path)
    expected = sorted(cues, key=lambda c: c.start)
    if suffix != "jsonl":  # text formats keep only visible, trimmed lines
        expected = [c for c in expected if any(line.strip() for line in c.text.split("\n"))]
    assert len(back) == len(expected)
    tick = 0.01 if suffix == "ass" else 0.001  # ASS stores centiseconds
    for want, got in zip(expected, back):
        assert got.region == want.region
        assert abs(got.start - want.start) <= tick / 2 + 1e-9 and abs(got.end - want.end) <= tick / 2 + 1e-9
        if suffix == "jsonl":
            assert got.lines == want.lines
        elif suffix != "srt":  # SRT has no escape for tag-like text, its reader strips tags
            assert got.lines == [p.strip() for p in want.text.replace("\r", "\n").split("\n") if p.strip()]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.srt", None, "missing.srt: no such file"),
        ("bad.srt", "this is not\n\nan srt file\n", "bad.srt: cannot parse as SRT"),
        ("bad.vtt", "1\n00:00:01.000 --> 00:00:02.000\nx\n", "bad.vtt: cannot parse as VTT: no WEBVTT header"),
        ("bad.jsonl", '{"start": 1}\n', "bad.jsonl: cannot parse as JSONL: line 1"),
        ("latin1.srt", b"1\n00:00:01,000 --> 00:00:02,000\n\xe9t\xe9\n", "latin1.srt: not UTF-8 text"),
        ("notes.txt", "", "notes.txt: unknown subtitle format"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ScoreError) as info:
        load_cues(path)
    assert message in str(info.value) and "\n" not in str(info.value)


# --- CLI plumbing -------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="subflow")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_json_output(tmp_path, capsys):
    gt, pred = tmp_path / "gt.srt", tmp_path / "pred.vtt"
    for path, cues in ((gt, GT), (pred, [GT[0], cue(4.1, 6.0, "General Kenobi! You are a bold one")])):
        with open_sink(path) as sink:
            for c in cues:
                sink.write(c)
    assert run(parse(["score", str(gt), str(pred), "--json", "--fps", "25"])) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["gt"], result["pred"], result["matched"]) == (3, 2, 2)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["start_p95_ms"] == pytest.approx(95.0)
    assert result["start_p95_frames"] == pytest.approx(95 / 40)
    assert result["cer"] == pytest.approx(1 / (len("Hello there.") + len("General Kenobi! You are a bold one.")))


def test_cli_text_output_and_errors(tmp_path, capsys):
    gt = tmp_path / "gt.srt"
    with open_sink(gt) as sink:
        sink.write(GT[0])
    assert run(parse(["score", str(gt), str(gt)])) == 0
    assert "precision 1.000  recall 1.000  F1 1.000" in capsys.readouterr().out
    with pytest.raises(ScoreError, match="nope.srt: no such file"):
        run(parse(["score", str(gt), str(tmp_path / "nope.srt")]))
    with pytest.raises(SystemExit) as info:
        parse(["score", str(gt), str(gt), "--fps", "0"])
    assert info.value.code == 2
