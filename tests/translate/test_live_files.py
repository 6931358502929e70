"""Files written by `subflow live --translate` (a real process, a real WebSocket client, a scripted
OpenAI-compatible endpoint over real HTTP): the translated tracks extract would write, NAME.LANG.EXT and
NAME.bi.EXT, aligned cue for cue with the original file and read back by `srt` and pysubs2; JSON Lines
with each cue's translation revision. A translator that answers late, dies, or never answers loses
nothing: the original file is complete, every translated track has one entry per original cue, in order,
and the untranslated cues are marked as extract marks them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pysubs2
import pytest
import srt

from .conftest import ROOT, SAMPLES
from hunyuan_env import vllm_env
from .scripted_server import echo
from .test_live_translate import live_session

pytestmark = pytest.mark.translate

TRUTH = list(srt.parse((SAMPLES / "en_basic.srt").read_text()))


def outputs(tmp_path: Path) -> list[str]:
    return ["--srt", str(tmp_path / "o.srt"), "--vtt", str(tmp_path / "o.vtt"), "--jsonl", str(tmp_path / "o.jsonl")]


def cues_in(path: Path) -> int:
    return path.read_text().count(" --> ") if path.exists() else 0


def timings(subs) -> list[tuple[int, float, float]]:
    return [(sub.index, sub.start.total_seconds(), sub.end.total_seconds()) for sub in subs]


def check_aligned(tmp_path: Path, originals: list[str]) -> list[dict]:
    """The translated SRT and WebVTT have the original files' cues, numbers and times; the JSON Lines file
    has each original line and, later and in cue order, one translation revision of it. Returns the revisions."""
    original = list(srt.parse((tmp_path / "o.srt").read_text()))
    translated = list(srt.parse((tmp_path / "o.fr.srt").read_text()))
    assert [sub.content for sub in original] == originals
    assert timings(translated) == timings(original)
    vtt, vtt_fr = pysubs2.load(str(tmp_path / "o.vtt")), pysubs2.load(str(tmp_path / "o.fr.vtt"))
    assert [(e.start, e.end) for e in vtt_fr] == [(e.start, e.end) for e in vtt] == [
        (round(s.start.total_seconds() * 1000), round(s.end.total_seconds() * 1000)) for s in original]
    assert [e.plaintext for e in vtt_fr] == [s.content for s in translated]
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    finals = [row for row in rows if not row.get("translation")]
    revisions = [row for row in rows if row.get("translation")]
    assert [row["text"] for row in finals] == originals and "translations" not in finals[0]
    assert [row["index"] for row in revisions] == [row["index"] for row in finals]
    for final, revision in zip(finals, revisions):
        assert rows.index(revision) > rows.index(final)
        assert {k: revision[k] for k in ("start", "end", "text")} == {k: final[k] for k in ("start", "end", "text")}
    return revisions


def test_live_writes_the_translated_tracks_cue_for_cue(scripted, tmp_path):
    # The second cue's translation comes last: the files still hold every cue in order.
    server = scripted(lambda n, body, ids: ("sleep", 1.5, echo(n, body, ids)) if ids == ["2"] else echo(n, body, ids))
    messages, _ = live_session("en_basic.mp4", server.url, *outputs(tmp_path), "--bilingual")
    texts = [sub.content for sub in TRUTH]
    revisions = check_aligned(tmp_path, texts)
    expected = [f"T{i} {text.upper()}" for i, text in enumerate(texts, 1)]
    assert [sub.content for sub in srt.parse((tmp_path / "o.fr.srt").read_text())] == expected
    assert [row["translations"] for row in revisions] == [{"fr": text} for text in expected]
    assert not any(row.get("flags") for row in revisions)
    bilingual = list(srt.parse((tmp_path / "o.bi.srt").read_text()))
    assert [sub.content for sub in bilingual] == [f"{a}\n{b}" for a, b in zip(texts, expected)]
    assert timings(bilingual) == timings(TRUTH)
    assert [e.plaintext for e in pysubs2.load(str(tmp_path / "o.bi.vtt"))] == [f"{a}\n{b}" for a, b in zip(texts, expected)]
    # the files say what the WebSocket clients were told
    sent = {m["id"]: m["cue"]["translations"] for m in messages if m.get("translation")}
    assert [sent[row["index"]] for row in revisions] == [row["translations"] for row in revisions]
    # and `subflow translate` reads the live JSON Lines back as one cue per original, translated
    from subflow.translate.readers import read_cues

    cues, _, _ = read_cues(tmp_path / "o.jsonl")
    assert [(c.text, c.translations) for c in cues] == [(t, {"fr": e}) for t, e in zip(texts, expected)]


def test_a_translator_that_never_answers_leaves_every_track_whole(scripted, tmp_path):
    # The first three cues are translated; then the endpoint accepts requests and never answers.
    server = scripted(lambda n, body, ids: echo(n, body, ids) if int(ids[0]) <= 3 else ("sleep", 60, echo(n, body, ids)))
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "subflow.cli", "live", str(SAMPLES / "en_basic.mp4"), "--translate", "fr",
         "--translator-endpoint", server.url, "--set", "translate.timeout=30", *outputs(tmp_path)],
        cwd=ROOT, env=vllm_env(), capture_output=True, text=True, timeout=90)
    assert process.returncode == 0, process.stderr[-3000:]
    assert time.monotonic() - started < 40  # the session waits 5 s for the missing translations, not 30
    texts = [sub.content for sub in TRUTH]
    revisions = check_aligned(tmp_path, texts)
    translated = [sub.content for sub in srt.parse((tmp_path / "o.fr.srt").read_text())]
    assert translated == [f"T{i} {t.upper()}" for i, t in enumerate(texts[:3], 1)] + texts[3:]  # as extract: the original
    assert [row.get("flags", []) for row in revisions] == [[]] * 3 + [["untranslated:fr"]] * (len(texts) - 3)
    assert f"translate: 3 translated, {len(texts) - 3} untranslated" in process.stderr
    assert "the session ended before it came" in process.stderr


def test_sigterm_with_a_failing_translator_flushes_every_track(scripted, tmp_path):
    # The endpoint fails (HTTP 503) from the third cue on; the session is stopped by SIGTERM mid-stream.
    server = scripted(lambda n, body, ids: echo(n, body, ids) if int(ids[0]) <= 2 else 503)
    command = [sys.executable, "-m", "subflow.cli", "live", str(SAMPLES / "en_basic.mp4"), "--realtime",
               "--translate", "fr", "--translator-endpoint", server.url, "--set", "translate.backoff=0.1",
               *outputs(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, env=vllm_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and cues_in(tmp_path / "o.srt") < 4:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err[-3000:]
    original = list(srt.parse((tmp_path / "o.srt").read_text()))
    assert 4 <= len(original) < len(TRUTH)
    texts = [sub.content for sub in TRUTH[: len(original)]]
    revisions = check_aligned(tmp_path, texts)
    translated = [sub.content for sub in srt.parse((tmp_path / "o.fr.srt").read_text())]
    assert translated == [f"T{i} {t.upper()}" for i, t in enumerate(texts[:2], 1)] + texts[2:]
    assert [row.get("flags", []) for row in revisions] == [[]] * 2 + [["untranslated:fr"]] * (len(texts) - 2)


def test_appending_keeps_the_tracks_numbered_alike(tmp_path):
    from subflow.live.files import open_live_files
    from subflow.records import Cue
    from subflow.sinks import SinkError

    earlier = open_live_files([(str(tmp_path / "s.srt"), "srt")])  # a session without --translate
    earlier.write(Cue(1, 0.0, 1.0, ["one"]))
    earlier.close()
    with pytest.raises(SinkError, match=r"s\.fr\.srt numbers 0 cues and .*s\.srt 1: appending"):
        open_live_files([(str(tmp_path / "s.srt"), "srt")], languages=["fr"])
    assert not (tmp_path / "s.fr.srt").exists()  # refused: nothing made
    (tmp_path / "s.fr.srt").write_text((tmp_path / "s.srt").read_text())  # aligned again: both go on
    files = open_live_files([(str(tmp_path / "s.srt"), "srt")], languages=["fr"])
    files.write(Cue(1, 2.0, 3.0, ["two"]))
    files.revise(Cue(1, 2.0, 3.0, ["two"], translations={"fr": "deux"}))
    files.close()
    assert [(s.index, s.content) for s in srt.parse((tmp_path / "s.fr.srt").read_text())] == [(1, "one"), (2, "deux")]
