"""Translation end to end through real vLLM (CPU build): text translation by a tiny random causal LM behind
`vllm serve` (JSON-schema structured outputs), image translation by the tiny HunyuanOCR checkpoint behind
`vllm serve`. Random weights write garbage by construction: what is asserted is alignment, files, formats
parsed back, flags and counts, not wording."""

from __future__ import annotations

import json

import pysubs2
import pytest
import srt

from subflow.cli import main
from subflow.engines.hunyuan_api import HunyuanAPIEngine
from subflow.pipeline import Pipeline
from subflow.config import Config
from subflow.source import VideoSource

from .conftest import SAMPLES
from hunyuan_env import TINY_OPTIONS

pytestmark = [pytest.mark.vllm, pytest.mark.translate]


def test_text_translation_of_an_extracted_video_through_vllm(vllm_servers, tmp_path, capsys):
    """Any engine reads (rapid here), an LLM behind `vllm serve` translates: per-language files on the
    original's timing, bilingual SRT and ASS, JSON Lines with every language, counts in the summary."""
    out = tmp_path / "en_basic.srt"
    code = main(["extract", str(SAMPLES / "en_basic.mp4"), "-o", str(out), "--translate", "fr,de",
                 "--translator-endpoint", vllm_servers["mt"].url, "--bilingual", "--set", "translate.batch_size=4"])
    err = capsys.readouterr().err
    assert code == 0, err
    original = list(srt.parse(out.read_text()))
    truth = list(srt.parse((SAMPLES / "en_basic.srt").read_text()))
    assert [(s.start, s.end, s.content) for s in original] == [(s.start, s.end, s.content) for s in truth]
    for lang in ("fr", "de"):
        translated = list(srt.parse((tmp_path / f"en_basic.{lang}.srt").read_text()))
        assert [(s.start, s.end) for s in translated] == [(s.start, s.end) for s in original]
        assert all(s.content.strip() and s.content != o.content for s, o in zip(translated, original))
    bilingual = list(srt.parse((tmp_path / "en_basic.fr.bi.srt").read_text()))
    assert [s.content.split("\n")[0] for s in bilingual] == [s.content.split("\n")[0] for s in original]
    ass = pysubs2.load(str(tmp_path / "en_basic.de.bi.ass"))
    assert len(ass.events) == len(original) and ass.styles["Original"].fontsize < ass.styles["Default"].fontsize
    # 10 cues in batches of 4 per language: 3 requests each when every reply fits the schema
    assert "20 translated, 0 untranslated" in err and "6 requests (0 failed, 0 bad replies, 0 splits)" in err
    assert " tokens" in err


def test_subflow_translate_reads_jsonl_and_keeps_every_language(vllm_servers, tmp_path, capsys):
    source = tmp_path / "ep.jsonl"
    rows = [{"index": 7 + i, "start": s.start.total_seconds(), "end": s.end.total_seconds(), "text": s.content,
             "translations": {"es": "ya"}} for i, s in enumerate(srt.parse((SAMPLES / "zh_basic.srt").read_text()))]
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    assert main(["translate", str(source), "--to", "en", "--translator-endpoint", vllm_servers["mt"].url]) == 0
    out = [json.loads(line) for line in (tmp_path / "ep.translated.jsonl").read_text().splitlines()]
    assert [(r["index"], r["start"], r["end"], r["text"]) for r in out] == [(r["index"], r["start"], r["end"], r["text"]) for r in rows]
    assert all(set(r["translations"]) == {"es", "en"} and r["translations"]["en"] for r in out)


def test_image_translation_once_per_cue_through_vllm(vllm_servers, short_video):
    """HunyuanOCR (tiny random checkpoint behind `vllm serve`) reads the video and translates each cue from
    the crop its vote chose: one translation read per cue, however many reads recognition took."""
    config = Config.load(None, {"translate.languages": "en", "recognizer.engine": "hunyuan-api"})
    engine = HunyuanAPIEngine(endpoints=[vllm_servers["ocr"].url], **TINY_OPTIONS)
    pipeline = Pipeline(config, engine=engine)
    try:
        with VideoSource(short_video.path) as source:
            cues = [u.cue for u in pipeline.updates(source) if u.final and u.cue and not u.meta.get("retracted")]
    finally:
        pipeline.close()
    stats = pipeline.stats
    assert len(cues) == len(short_video.truth)
    for cue, expected in zip(cues, short_video.truth):
        assert (round(cue.start, 3), round(cue.end, 3)) == (expected.start.total_seconds(), expected.end.total_seconds())
        assert cue.image is not None
        assert ("en" in cue.translations) != ("untranslated:en" in cue.flags)
    translation = stats.translation
    assert translation is not None and translation.translated + translation.untranslated == len(cues)
    assert translation.usage.requests == len(cues) < stats.crops_read  # once per cue, not once per read
    assert translation.translated >= 1  # the random model's answers do reach the cues
    run_on = [cue for cue in cues if "en" in cue.translations]
    assert all(cue.translations["en"].strip() for cue in run_on)
