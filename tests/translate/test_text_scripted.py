"""The text translator against a scripted OpenAI-compatible server over real HTTP: the failures a real
model cannot be made to produce on demand (merged, dropped and split cues, 5xx, a server that dies, a
hang), glossary checks, bounded concurrency, and `subflow translate` end to end."""

from __future__ import annotations

import json
import threading
import time

import pytest
import srt

from subflow import extract
from subflow.cli import main
from subflow.config import Config
from subflow.records import Cue, CueUpdate
from subflow.translate import TranslationStage, build_translators, plan_translation

from .conftest import SAMPLES
from .scripted_server import asked, echo

pytestmark = pytest.mark.translate


def stage_for(url: str, languages="fr", glossaries=None, **settings) -> TranslationStage:
    overrides = {"translate.languages": languages, "translate.endpoint": url, "translate.backoff": 0.05, **{
        f"translate.{k}": v for k, v in settings.items()}}
    config = Config.load(None, overrides)
    translators = build_translators(config, plan_translation(config, images=False), None)
    return TranslationStage(translators, glossaries, context=config.translate.context)


def run(stage: TranslationStage, count: int) -> list[Cue]:
    cues = [Cue(i, float(i), i + 0.8, [f"line number {i}"]) for i in range(1, count + 1)]
    out = [update.cue for update in stage.process(CueUpdate(cue, final=True) for cue in cues)]
    assert [(c.index, c.start, c.end) for c in out] == [(c.index, c.start, c.end) for c in cues]  # never re-timed
    return out


def test_a_reply_that_merges_cues_is_retried_then_halved_and_never_shifts_text(scripted):
    def merges_cue_5(number, body, ids):
        if "5" in ids:  # cue 5's text lands in cue 4 and 5 is missing, whatever the batch
            reply = echo(number, body, ids)
            if "4" in reply:
                reply["4"] += " " + reply.pop("5")
            else:
                reply["5"] = ""
            return reply
        return echo(number, body, ids)

    server = scripted(merges_cue_5)
    stage = stage_for(server.url, batch_size=10, retries=1)
    out = run(stage, 20)
    for cue in out:
        if cue.index == 5:
            assert cue.translations == {} and cue.flags == ["untranslated:fr"]
        else:  # every other cue has its own translation, not a neighbour's
            assert cue.translations == {"fr": f"T{cue.index} LINE NUMBER {cue.index}"}, cue
    stats = stage.collect()
    assert (stats.translated, stats.untranslated) == (19, 1)
    # 10 cues -> 2 tries, halved to 5 (2 tries) + 5 (ok), 5 -> 2 + 3, 3 -> 1 + 2, 2 -> 1 + 1: cue 5 alone fails twice
    assert stats.usage.splits == 4 and stats.usage.bad_replies == 10
    rejected = [r for r in server.requests if "Your previous reply was rejected" in r["messages"][-1]["content"]]
    assert rejected and "missing 5" in rejected[0]["messages"][-1]["content"]  # the retry says why
    assert "bad reply" in max(stats.reasons, key=stats.reasons.get)


def test_split_and_extra_cues_are_rejected_too(scripted):
    server = scripted(lambda n, body, ids: {**echo(n, body, ids), "999": "extra"} if n == 0 else echo(n, body, ids))
    out = run(stage_for(server.url, batch_size=5), 5)
    assert all(cue.translations["fr"].startswith(f"T{cue.index} ") for cue in out)
    assert len(server.requests) == 2


def test_transient_server_errors_are_retried_with_backoff(scripted):
    server = scripted(lambda n, body, ids: 503 if n < 2 else echo(n, body, ids))
    stage = stage_for(server.url, batch_size=10, concurrency=1)
    started = time.monotonic()
    out = run(stage, 10)
    assert all(cue.translations for cue in out)
    usage = stage.collect().usage
    assert (usage.requests, usage.failed_requests) == (3, 2)
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff 0.05 s, doubled


def test_an_endpoint_that_dies_mid_run_leaves_every_cue_and_marks_the_rest(scripted):
    holder = {}

    def dies_after_two(number, body, ids):
        if number < 2:
            return echo(number, body, ids)
        threading.Thread(target=holder["server"].stop).start()  # gone: later connections are refused
        return 503

    server = holder["server"] = scripted(dies_after_two)
    stage = stage_for(server.url, batch_size=10, concurrency=1, http_retries=2)
    started = time.monotonic()
    out = run(stage, 60)
    assert time.monotonic() - started < 10
    assert [bool(c.translations) for c in out] == [True] * 20 + [False] * 40
    assert all(c.flags == ["untranslated:fr"] for c in out[20:])
    stats = stage.collect()
    assert (stats.translated, stats.untranslated) == (20, 40)
    assert "endpoint down" in stats.summary()
    # the third batch tried 3 times (http_retries 2); later batches skip the dead endpoint, no waiting on it
    assert len(server.requests) <= 2 + 3


def test_glossary_terms_are_sent_with_the_batch_and_missing_ones_flagged(scripted, tmp_path):
    from subflow.translate import load_glossaries

    (tmp_path / "terms.tsv").write_text("number 2\tnuméro deux\tspell it out\n")

    def ignores_the_glossary(number, body, ids):
        return {i: "traduit " + text for i, text in asked(body).items()}

    server = scripted(ignores_the_glossary)
    stage = stage_for(server.url, glossaries=load_glossaries(str(tmp_path / "terms.tsv"), ["fr"]), batch_size=3)
    out = run(stage, 6)
    prompts = {tuple(asked(r)): r["messages"][-1]["content"] for r in server.requests}  # batches run concurrently
    assert "number 2 => numéro deux (spell it out)" in prompts[("1", "2", "3")]
    assert "numéro deux" not in prompts[("4", "5", "6")]
    assert [c.flags for c in out] == [[], ["glossary:fr"], [], [], [], []]
    assert stage.collect().flagged == 1


def test_concurrency_is_bounded(scripted):
    server = scripted(lambda n, body, ids: ("sleep", 0.3, echo(n, body, ids)))
    stage = stage_for(server.url, batch_size=2, concurrency=3)
    run(stage, 16)
    assert server.peak_inflight == 3


def test_subflow_translate_writes_aligned_files_and_counts(scripted, tmp_path, capsys):
    server = scripted()
    source = tmp_path / "en_basic.srt"
    source.write_text((SAMPLES / "en_basic.srt").read_text())
    code = main(["translate", str(source), "--to", "fr,de", "--translator-endpoint", server.url, "--bilingual",
                 "--set", "translate.batch_size=4"])
    assert code == 0
    original = list(srt.parse(source.read_text()))
    for lang in ("fr", "de"):
        translated = list(srt.parse((tmp_path / f"en_basic.{lang}.srt").read_text()))
        assert [(s.start, s.end) for s in translated] == [(s.start, s.end) for s in original]
        assert [s.content for s in translated] == [f"T{s.index} " + s.content.upper() for s in original]
    assert (tmp_path / "en_basic.fr.bi.ass").exists() and (tmp_path / "en_basic.de.bi.srt").exists()
    err = capsys.readouterr().err
    assert "20 translated, 0 untranslated" in err and "6 requests" in err and "600 + 120 tokens" in err


def test_subflow_translate_exits_1_and_keeps_the_original_when_the_endpoint_fails(scripted, tmp_path, capsys):
    server = scripted(lambda n, body, ids: 500)
    source = tmp_path / "ep.srt"
    source.write_text((SAMPLES / "en_basic.srt").read_text())
    assert main(["translate", str(source), "--to", "fr", "--translator-endpoint", server.url,
                 "--set", "translate.http_retries=0"]) == 1
    translated = list(srt.parse((tmp_path / "ep.fr.srt").read_text()))
    assert [s.content for s in translated] == [s.content for s in srt.parse(source.read_text())]
    assert "10 cue translation(s) missing" in capsys.readouterr().err


def test_a_dead_endpoint_fails_at_start_in_one_line(tmp_path, capsys):
    source = tmp_path / "ep.srt"
    source.write_text((SAMPLES / "en_basic.srt").read_text())
    assert main(["translate", str(source), "--to", "fr", "--translator-endpoint", "http://127.0.0.1:9/v1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not answer" in err[0] and not (tmp_path / "ep.fr.srt").exists()


def test_the_public_generator_yields_cues_with_their_translations(scripted):
    server = scripted()
    cues = list(extract(str(SAMPLES / "en_basic.mp4"), translate__languages=["fr"], translate__endpoint=server.url))
    truth = list(srt.parse((SAMPLES / "en_basic.srt").read_text()))
    assert [c.text for c in cues] == [s.content for s in truth]
    assert [c.translations for c in cues] == [{"fr": f"T{c.index} " + c.text.upper()} for c in cues]


def test_an_endpoint_without_structured_outputs_is_asked_for_json_in_the_prompt(scripted):
    def no_json_schema(number, body, ids):
        if "response_format" in body:
            return 400  # scripted 400 (the message names nothing): refused for good
        return "```json\n" + json.dumps(echo(number, body, ids)) + "\n```"

    refusing = scripted(no_json_schema)
    assert all(cue.flags == ["untranslated:fr"] for cue in run(stage_for(refusing.url, batch_size=4), 4))

    def unsupported(number, body, ids):
        if "response_format" in body:
            return ("error", 400, "response_format json_schema is not supported by this model")
        return "```json\n" + json.dumps(echo(number, body, ids)) + "\n```"

    server = scripted(unsupported)
    out = run(stage_for(server.url, batch_size=4, concurrency=1), 12)
    assert all(cue.translations["fr"].startswith(f"T{cue.index} ") for cue in out)
    assert ["response_format" in r for r in server.requests] == [True, False, False, False]


@pytest.mark.batch
def test_batch_writes_every_language_track_and_lists_it_in_the_manifest(scripted, tmp_path):
    server = scripted()
    videos = tmp_path / "in"
    videos.mkdir()
    (videos / "en_basic.mp4").symlink_to(SAMPLES / "en_basic.mp4")
    out = tmp_path / "subs"
    assert main(["batch", str(videos), "--out-dir", str(out), "--workers", "1", "--quiet",
                 "--translate", "fr", "--translator-endpoint", server.url]) == 0
    original = list(srt.parse((out / "en_basic.srt").read_text()))
    translated = list(srt.parse((out / "en_basic.fr.srt").read_text()))
    assert [(s.start, s.end) for s in translated] == [(s.start, s.end) for s in original]
    assert [s.content for s in translated] == [f"T{s.index} " + s.content.upper() for s in original]
    [record] = [json.loads(line) for line in (out / "subflow-batch.jsonl").read_text().splitlines()]
    assert record["status"] == "done" and sorted(record["outputs"]) == ["en_basic.fr.srt", "en_basic.srt"]
