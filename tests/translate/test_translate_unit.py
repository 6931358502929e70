"""Translation parts without a server: answer parsing, JSON replies, glossaries, language tags, planning,
output naming, and every format written and read back (by `srt`, pysubs2 and subflow's own readers)."""

from __future__ import annotations

import json
from datetime import timedelta

import pysubs2
import pytest
import srt

from subflow.cli import main
from subflow.config import Config, ConfigError
from subflow.engines.hunyuan_common import PROMPTS, Answer, clean_answer
from subflow.records import Cue, Recognition, Task
from subflow.sinks import language_path, open_tracks, track_outputs
from subflow.translate import TranslateError, plan_translation
from subflow.translate.glossary import Glossary, load_glossaries
from subflow.translate.lang import language_name, normalize_tag, parse_languages
from subflow.translate.parse import ReplyError, parse_image_answer, parse_reply
from subflow.translate.readers import read_cues

from .conftest import SAMPLES

SOURCE = ["今天天气很好"]

pytestmark = pytest.mark.translate


@pytest.mark.parametrize(
    "lines, confidence, text, unsure",
    [
        (["The weather is nice today."], 0.95, "The weather is nice today.", False),
        (["今天天气很好", "The weather is nice today."], 0.95, "The weather is nice today.", False),  # source first
        (["原文：今天天气很好", "译文：The weather is nice today."], 0.95, "The weather is nice today.", False),
        (["Translation: The weather is nice today."], 0.95, "The weather is nice today.", False),
        (["提取的文字：", "今天天气很好", "英文翻译：", "The weather is nice today."], 0.95, "The weather is nice today.", False),
        (["Source text: 今天天气很好", "English translation: The weather is nice today."], 0.95,
         "The weather is nice today.", False),
        (["今天天气很好 - The weather is nice today."], 0.95, "The weather is nice today.", False),
        (["今天天气很好（The weather is nice today.）"], 0.95, "The weather is nice today.", False),
        (["The weather is nice today."], 0.4, "The weather is nice today.", True),  # hygiene collapsed a run-on
        (["The weather is nice today.", "The weather is nice today!"], 0.95, "The weather is nice today.", True),
        (["a", "b", "c", "d"], 0.95, "a\nb", True),  # ran on past a one-line subtitle
        (["今天天气很好"], 0.95, None, True),  # only the source: nothing translated
        (["明天会下雨"], 0.95, "明天会下雨", True),  # not in the target's script
        ([], 0.0, None, True),
    ],
)
def test_image_answer_shapes(lines, confidence, text, unsure):
    parsed = parse_image_answer(Recognition(tuple(lines), confidence), SOURCE, "en")
    assert (parsed.text, parsed.unsure) == (text, unsure)


def test_image_answer_into_chinese_drops_the_repeated_english():
    parsed = parse_image_answer(Recognition(("Good morning, everyone.", "大家早上好。"), 0.95), ["Good morning, everyone."], "zh")
    assert (parsed.text, parsed.unsure) == ("大家早上好。", False)


def test_raw_markdown_answer_through_the_engines_hygiene_then_the_parser():
    raw = "```markdown\n**今天天气很好**\n\nThe weather is nice today.\n```<｜hy_place▁holder▁no▁2｜>"
    task = Task("translate", "en")
    recognition = clean_answer(Answer(raw), PROMPTS["translate_en"], task)
    assert parse_image_answer(recognition, SOURCE, "en").text == "The weather is nice today."


@pytest.mark.parametrize(
    "content, error",
    [
        ('{"1": "Hello", "2": "World"}', None),
        ('```json\n{"1": "Hello", "2": "World"}\n```', None),
        ('{"translations": {"1": "Hello", "2": "World"}}', None),
        ('{"1": "Hello World"}', "missing 2"),  # two cues merged into one
        ('{"1": "Hello World", "2": ""}', "empty"),
        ('{"1": "Hello", "2": "Wor", "3": "ld"}', "unexpected 3"),  # a cue split in two
        ('{"1": "Hello", "2": ["World"]}', "not a string"),
        ('{"1": "Hello", "2": "Wo', "cut off"),
        ("", "empty"),
        ('["Hello", "World"]', "keyed by cue id"),
    ],
)
def test_json_replies_are_checked_against_the_ids_asked(content, error):
    if error is None:
        assert parse_reply(content, ["1", "2"]) == {"1": "Hello", "2": "World"}
    else:
        with pytest.raises(ReplyError, match=error):
            parse_reply(content, ["1", "2"])


def test_glossary_file_terms_and_checks(tmp_path):
    path = tmp_path / "terms.tsv"
    path.write_text("# term\ttranslation\tnote\n林克\tLink\tthe hero\n\nAnn\tAnne\nHyrule Castle\tChâteau d'Hyrule\n",
                    encoding="utf-8")
    glossary = Glossary.load(path)
    assert [t.source for t in glossary.terms] == ["林克", "Ann", "Hyrule Castle"] and glossary.terms[0].note == "the hero"
    assert [t.source for t in glossary.found_in("林克 went to hyrule castle")] == ["林克", "Hyrule Castle"]
    assert glossary.found_in("Annual report") == []  # whole words for Latin terms
    assert [t.target for t in glossary.missing("林克 and Ann", "Link et Ann")] == ["Anne"]
    assert glossary.missing("林克 and Ann", "LINK et ANNE") == []  # case-insensitive
    assert set(load_glossaries(str(path), ["fr", "de"])) == {"fr", "de"}
    assert set(load_glossaries(f"fr={path}", ["fr", "de"])) == {"fr"}
    (tmp_path / "bad.tsv").write_text("only one field\n")
    with pytest.raises(ConfigError, match="line 1"):
        Glossary.load(tmp_path / "bad.tsv")
    with pytest.raises(ConfigError, match="not found"):
        Glossary.load(tmp_path / "missing.tsv")


def test_language_tags():
    assert parse_languages("fr, PT_br,zh-hans,fr") == ["fr", "pt-BR", "zh-Hans"]
    assert parse_languages(["de"]) == ["de"]
    assert language_name("pt-BR") == "Brazilian Portuguese (pt-BR)"
    assert language_name("zh-Hant") == "Traditional Chinese (zh-Hant)"
    with pytest.raises(ConfigError, match="not a language tag"):
        normalize_tag("french!")


def config(**translate) -> Config:
    return Config.load(None, {f"translate.{k}": v for k, v in translate.items()})


def test_plan_picks_a_translator_per_language_or_fails_naming_the_two_ways():
    hunyuan = config(languages="en,zh")
    hunyuan.recognizer.engine = "hunyuan-api"
    assert plan_translation(hunyuan) == {"en": "image", "zh": "image"}
    assert plan_translation(config(languages="fr", endpoint="http://mt:8000/v1")) == {"fr": "openai"}
    for bad, why in [
        (config(languages="en"), "reads but does not translate"),  # rapid, no endpoint
        (config(languages="fr", translator="image"), "reads but does not translate"),
        (config(languages="fr", translator="openai"), "needs an endpoint"),
    ]:
        with pytest.raises(TranslateError, match=why) as info:
            plan_translation(bad)
        message = str(info.value)
        assert "\n" not in message and "--engine hunyuan" in message and "--translator-endpoint" in message
    hunyuan.translate.languages = ["fr"]
    with pytest.raises(TranslateError, match="en and zh only"):
        plan_translation(hunyuan)
    with pytest.raises(TranslateError, match="no image"):
        plan_translation(config(languages="en", translator="image"), images=False)
    hunyuan.recognizer.task, hunyuan.translate.languages = "translate", ["en"]
    with pytest.raises(TranslateError, match="--task translate"):
        plan_translation(hunyuan)


def test_extract_fails_at_start_before_decoding_when_nothing_can_translate(tmp_path, capsys):
    out = tmp_path / "out.srt"
    assert main(["extract", str(SAMPLES / "en_basic.mp4"), "-o", str(out), "--translate", "fr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("subflow: error: cannot translate into fr")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_output_names_per_language_and_bilingual(tmp_path):
    assert language_path("ep01.srt", "pt-BR").name == "ep01.pt-BR.srt"
    names = lambda outputs: [(p.name, fmt, t.lang, t.bilingual) for p, fmt, t in outputs]  # noqa: E731
    assert names(track_outputs(tmp_path / "ep01.srt", "srt", ["en"], bilingual=True)) == [
        ("ep01.srt", "srt", None, False), ("ep01.en.srt", "srt", "en", False),
        ("ep01.bi.srt", "srt", "en", True), ("ep01.bi.ass", "ass", "en", True),
    ]
    assert names(track_outputs(tmp_path / "ep01.jsonl", "jsonl", ["fr", "de"], bilingual=True)) == [
        ("ep01.jsonl", "jsonl", None, False),  # one file, every language in each cue
        ("ep01.fr.bi.ass", "ass", "fr", True), ("ep01.de.bi.ass", "ass", "de", True),
    ]
    assert names(track_outputs(tmp_path / "ep01.vtt", "vtt", ["fr"], original=False)) == [("ep01.fr.vtt", "vtt", "fr", False)]


def cues() -> list[Cue]:
    return [
        Cue(1, 1.0, 2.5, ["湖边的旅馆"], region="top", translations={"en": "The inn by the lake"}),
        Cue(2, 2.0, 4.0, ["你好", "世界"], translations={"en": "Hello\nworld", "fr": "Bonjour le monde"}),
        Cue(3, 4.5, 6.0, ["再见 {注}"], flags=["untranslated:en"]),  # untranslated: the tracks keep the original
    ]


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass", "jsonl"])
def test_every_format_per_language_is_aligned_and_reads_back(tmp_path, fmt):
    base = tmp_path / f"ep.{fmt}"
    with open_tracks(base, languages=["en", "fr"], bilingual=True, video_size=(1280, 720)) as sink:
        for cue in cues():
            sink.write(cue)
    original, _, _ = read_cues(base)
    assert [(c.start, c.end, c.lines, c.region) for c in original] == [(c.start, c.end, c.lines, c.region) for c in cues()]
    if fmt == "jsonl":
        rows = [json.loads(line) for line in base.read_text().splitlines()]
        assert [r.get("translations") for r in rows] == [c.translations or None for c in cues()]
        assert rows[2]["flags"] == ["untranslated:en"]
    else:
        english, _, _ = read_cues(tmp_path / f"ep.en.{fmt}")
        assert [(c.start, c.end) for c in english] == [(c.start, c.end) for c in original]
        assert [c.text for c in english] == ["The inn by the lake", "Hello\nworld", "再见 {注}"]
        assert [c.region for c in english] == ["top", "bottom", "bottom"]
        assert [c.text for c in read_cues(tmp_path / f"ep.fr.{fmt}")[0]] == ["湖边的旅馆", "Bonjour le monde", "再见 {注}"]
    bilingual = pysubs2.load(str(tmp_path / "ep.en.bi.ass"))
    assert {"Default", "Original"} <= set(bilingual.styles)
    assert bilingual.styles["Original"].fontsize < bilingual.styles["Default"].fontsize
    assert [(e.start, e.end) for e in bilingual.events] == [(1000, 2500), (2000, 4000), (4500, 6000)]
    assert bilingual.events[0].text.startswith("{\\an8}{\\rOriginal}湖边的旅馆\\N{\\r}")  # top cues stay on top
    assert bilingual.events[1].plaintext == "你好\n世界\nHello\nworld"


def test_bilingual_srt_is_the_original_then_the_translation(tmp_path):
    with open_tracks(tmp_path / "ep.srt", languages=["en"], bilingual=True) as sink:
        for cue in cues():
            sink.write(cue)
    subs = list(srt.parse((tmp_path / "ep.bi.srt").read_text()))
    assert [s.content for s in subs] == ["{\\an8}湖边的旅馆\nThe inn by the lake", "你好\n世界\nHello\nworld", "再见 {注}"]
    assert [s.start for s in subs] == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4.5)]
