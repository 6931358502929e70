"""HunyuanOCR engine parts that need no model: output hygiene, crop preparation, options, endpoint errors."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from subflow.engines import EngineError, create_engine
from subflow.engines.hunyuan_api import HunyuanAPIEngine, normalise_endpoint
from subflow.engines.hunyuan_common import (
    CONFIDENCE_CLEAN,
    CONFIDENCE_EMPTY,
    CONFIDENCE_NONSENSE,
    CONFIDENCE_SUSPECT,
    PROMPTS,
    Answer,
    HunyuanOptions,
    clean_answer,
    grid_size,
    prepare_crop,
)
from subflow.records import Task

RECOGNIZE = Task()
PROMPT = PROMPTS["recognize"]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def clean(text: str, task: Task = RECOGNIZE, truncated: bool = False):
    return clean_answer(Answer(text, truncated), PROMPT, task)


# ------------------------------------------------------------------ output hygiene


@pytest.mark.parametrize(
    ("answer", "lines"),
    [
        ("我们明天见。", ("我们明天见。",)),
        ("我们明天见。\nSee you tomorrow.", ("我们明天见。", "See you tomorrow.")),  # bilingual: two lines
        ("# 我们明天见。", ("我们明天见。",)),  # stray markdown heading
        ("```\nSee you tomorrow.\n```", ("See you tomorrow.",)),
        ("**See** you *tomorrow*.", ("See you tomorrow.",)),
        ("- See you tomorrow.", ("See you tomorrow.",)),
        ("| 我们明天见。 | See you tomorrow. |\n|---|---|", ("我们明天见。 See you tomorrow.",)),
        ("See you<br>tomorrow.", ("See you", "tomorrow.")),
        ("<｜hy_place▁holder▁no▁2｜>See you tomorrow.<｜hy_User｜>", ("See you tomorrow.",)),
        (PROMPT + "\n我们明天见。", ("我们明天见。",)),  # prompt echo on its own line
        (PROMPT + "我们明天见。", ("我们明天见。",)),  # and glued to the answer
        ("  See you tomorrow.  \n\n", ("See you tomorrow.",)),
        ("(12,40),(980,96) See you tomorrow.", ("See you tomorrow.",)),  # spotting coordinates
        ("Ha ha ha!", ("Ha ha ha!",)),  # three copies are speech, not runaway decoding
        ("哈哈哈！", ("哈哈哈！",)),
    ],
)
def test_clean_answers_keep_the_subtitle(answer, lines):
    read = clean(answer)
    assert read.lines == lines
    assert read.confidence == CONFIDENCE_CLEAN


def test_runaway_repetition_is_collapsed_and_suspect():
    read = clean("plastic, plastic, plastic, plastic, plastic, plastic, plastic, plastic, plastic", truncated=True)
    assert read.lines == ("plastic,",) or read.lines == ("plastic, plastic",)
    assert read.confidence == CONFIDENCE_SUSPECT
    char_run = clean("好" * 40)
    assert char_run.lines == ("好好好",) and char_run.confidence == CONFIDENCE_SUSPECT


def test_repeated_lines_and_too_many_lines_are_suspect():
    assert clean("See you.\nSee you.\nSee you.") .lines == ("See you.",)
    assert clean("See you.\nSee you.").confidence == CONFIDENCE_SUSPECT
    many = clean("\n".join(f"line {i}" for i in range(9)))
    assert len(many.lines) == 4 and many.confidence == CONFIDENCE_SUSPECT


def test_truncated_answer_is_suspect():
    assert clean("The train leaves at seven, so we", truncated=True).confidence == CONFIDENCE_SUSPECT


@pytest.mark.parametrize("answer", ["", "   \n  ", "```\n```", PROMPT, "<｜hy_place▁holder▁no▁2｜>"])
def test_empty_answers_have_zero_confidence(answer):
    read = clean(answer)
    assert read.lines == () and read.confidence == CONFIDENCE_EMPTY


@pytest.mark.parametrize("answer", ["!!!... ???", "\ufffd\ufffd好", "—— —— ——", "$$$ %%% ^^^"])
def test_nonsense_has_low_confidence(answer):
    assert clean(answer).confidence == CONFIDENCE_NONSENSE


def test_translation_keeps_the_target_script():
    answer = "我们明天见。\nSee you tomorrow."
    assert clean(answer, Task("translate", "en")).lines == ("See you tomorrow.",)
    assert clean(answer, Task("translate", "zh")).lines == ("我们明天见。",)
    assert clean("See you tomorrow.", Task("translate", "zh")).lines == ("See you tomorrow.",)  # nothing better


# ------------------------------------------------------------------ crop preparation


@pytest.mark.parametrize(
    ("shape", "limits"),
    [((192, 1920), (512 * 512, 2048 * 2048)), ((40, 300), (512 * 512, 2048 * 2048)),
     ((1080, 1920), (512 * 512, 1024 * 1024)), ((37, 601), (32 * 32, 64 * 1024)), ((5, 3000), (32 * 32, 64 * 1024))],
)
def test_grid_size_is_on_the_grid_within_limits(shape, limits):
    h, w = grid_size(*shape, *limits)
    assert h % 32 == 0 and w % 32 == 0 and h >= 32 and w >= 32
    assert h * w <= limits[1]
    assert h * w >= limits[0] or (h, w) == (32, 32)
    assert abs(np.log((w / h) / (shape[1] / shape[0]))) < 1.2 or min(h, w) == 32  # aspect kept unless clamped


def test_grid_size_leaves_a_1920x192_strip_alone():
    assert grid_size(192, 1920, 512 * 512, 2048 * 2048) == (192, 1920)


def band_with_text(text: str, width: int = 1280, height: int = 180) -> np.ndarray:
    image = Image.new("RGB", (width, height), (60, 70, 80))
    ImageDraw.Draw(image).text((width // 2 - 200, 70), text, font=ImageFont.truetype(FONT, 40), fill=(250, 250, 250),
                               stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def test_crop_is_tight_around_the_text_and_on_the_grid():
    options = HunyuanOptions(min_pixels=32 * 32, max_pixels=2048 * 2048)
    band = band_with_text("See you tomorrow.")
    image = prepare_crop(band, options)
    assert image is not None and image.dtype == np.uint8 and image.shape[2] == 3
    assert image.shape[0] % 32 == 0 and image.shape[1] % 32 == 0
    assert image.shape[1] < 0.6 * band.shape[1], "width drives cost: the crop must hug the line"
    assert image.std() > 20, "the text survived the crop"
    whole = prepare_crop(band, HunyuanOptions(min_pixels=32 * 32, tight=False))
    assert whole.shape[1] > image.shape[1]


def test_blank_crop_is_never_sent_and_reads_empty():
    options = HunyuanOptions()
    assert prepare_crop(np.full((120, 800, 3), 90, np.uint8), options) is None
    engine = HunyuanAPIEngine(endpoints=["http://127.0.0.1:9/v1"])  # never reached: nothing to send
    reads = asyncio.run(engine.recognize([np.zeros((100, 600, 3), np.uint8)], RECOGNIZE))
    assert reads[0].lines == () and reads[0].confidence == CONFIDENCE_EMPTY


def test_crop_without_found_lines_is_sent_whole():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 120, (96, 400, 3), dtype=np.uint8)  # busy, but no bright strokes
    image = prepare_crop(noise, HunyuanOptions(min_pixels=32 * 32))
    assert image is not None and image.shape == (96, 384, 3)  # 400 px rounded to the grid, not cut


def test_bad_crop_shape_is_a_clear_error():
    with pytest.raises(EngineError, match="RGB crop"):
        prepare_crop(np.zeros((10, 10), np.uint8), HunyuanOptions())


# ------------------------------------------------------------------ options, prompts, sampling


def test_versions_have_their_own_sampling_defaults():
    old, new = HunyuanOptions(version="1.0").sampling(), HunyuanOptions(version="1.5").sampling()
    assert old.temperature == new.temperature == 0.0
    assert (old.top_k, old.repetition_penalty) == (1, 1.0)
    assert (new.top_k, new.repetition_penalty) == (-1, 1.08)
    assert HunyuanOptions(repetition_penalty=1.2, max_tokens=48).sampling().repetition_penalty == 1.2


def test_prompts_follow_the_task_and_can_be_overridden():
    options = HunyuanOptions(prompts={"recognize": "Extract the subtitles from the image."})
    assert options.prompt(RECOGNIZE) == "Extract the subtitles from the image."
    assert options.prompt(Task("translate", "en")).endswith("翻译为英文。")
    assert options.prompt(Task("translate", "zh")).endswith("翻译为中文。")
    with pytest.raises(EngineError, match="English or Chinese"):
        options.prompt(Task("translate", "fr"))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_tokns": 5}, "unknown option.*max_tokns"), ({"version": "2.0"}, "version must be one of"),
     ({"prompts": {"spot": "x"}}, "unknown prompt key"), ({"min_pixels": 10, "max_pixels": 5}, "min_pixels")],
)
def test_bad_options_are_clear_errors(options, message):
    with pytest.raises(EngineError, match=message):
        create_engine("hunyuan-api", **options)


# ------------------------------------------------------------------ endpoints


@pytest.mark.parametrize(
    ("given", "expected"),
    [("http://gpu1:8000", "http://gpu1:8000/v1"), ("http://gpu1:8000/v1/", "http://gpu1:8000/v1"),
     ("https://ocr.example/api/v1", "https://ocr.example/api/v1")],
)
def test_endpoint_urls_are_normalised(given, expected):
    assert normalise_endpoint(given) == expected


@pytest.mark.parametrize("bad", ["gpu1:8000", "ftp://gpu1/v1", "http://", "http://gpu1:80x0/v1"])
def test_bad_endpoint_urls_are_clear_errors(bad):
    with pytest.raises(EngineError, match="bad endpoint"):
        HunyuanAPIEngine(endpoints=[bad])


def test_endpoints_from_a_comma_separated_flag():
    engine = HunyuanAPIEngine(endpoints="http://a:8000,http://b:8000/v1")
    assert [e.url for e in engine.endpoints] == ["http://a:8000/v1", "http://b:8000/v1"]
    assert engine.max_inflight * engine.max_batch >= 2 * engine.settings.concurrency


def test_unreachable_endpoint_fails_fast_and_names_it():
    with socket.socket() as s:  # a port nobody listens on: connections are refused for real
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    engine = HunyuanAPIEngine(endpoints=[url], retries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(EngineError, match=rf"after 3 attempts.*{port}.*ConnectError"):
        asyncio.run(engine.recognize([band_with_text("Hello")], RECOGNIZE))
    assert time.monotonic() - started < 5


def test_options_given_as_text_on_the_command_line_are_typed():
    engine = create_engine("hunyuan-api", concurrency="8", timeout="2.5", tight="false", temperature="none",
                           prompts='{"recognize": "Extract the subtitles from the image."}')
    s = engine.settings
    assert (s.concurrency, s.timeout, s.tight, s.temperature) == (8, 2.5, False, None)
    assert s.prompts == {"recognize": "Extract the subtitles from the image."}
    with pytest.raises(EngineError, match="concurrency must be int"):
        create_engine("hunyuan-api", concurrency="many")


# ------------------------------------------------------------------ subflow doctor


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "subflow.cli", "doctor", *args], capture_output=True, text=True,
                          timeout=60)


def test_doctor_names_each_check_and_the_fix(tmp_path):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    config = tmp_path / "subflow.toml"
    config.write_text(f'[engines.hunyuan]\nmodel = "{checkpoint}"\n')
    result = doctor("--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line[:5].strip() in ("ok", "warn", "FAIL")}
    assert {"python", "pyav/ffmpeg", "gpu", "torch", "model"} <= set(lines)
    assert lines["python"].startswith("ok") and lines["pyav/ffmpeg"].startswith("ok")
    assert "local checkpoint" in lines["model"]
    assert all("->" in line for line in lines.values() if line.startswith("warn")), "every warning carries its fix"
    assert "engines usable here: " in result.stdout and "rapid" in result.stdout.splitlines()[-1]


def test_doctor_fails_on_an_endpoint_that_is_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = doctor("--endpoint", f"http://127.0.0.1:{port}", "--endpoint", "gpu1:8000")
    assert result.returncode == 1
    assert "FAIL  endpoint" in result.stdout and f"127.0.0.1:{port}/v1 unreachable" in result.stdout
    assert "bad endpoint 'gpu1:8000'" in result.stdout


def test_default_config_lists_every_hunyuan_option_with_its_default():
    import dataclasses
    import tomllib
    from pathlib import Path

    from subflow.engines.hunyuan import VLLMOptions
    from subflow.engines.hunyuan_api import APIOptions
    from subflow.engines.hunyuan_transformers import TransformersOptions

    tables = tomllib.loads((Path(__file__).parents[2] / "configs" / "default.toml").read_text())["engines"]

    def own(cls, base=HunyuanOptions):
        shared = {f.name for f in dataclasses.fields(base)}
        return {k: v for k, v in dataclasses.asdict(cls()).items() if k not in shared and v is not None}

    shared = {k: v for k, v in dataclasses.asdict(HunyuanOptions()).items() if v is not None}
    assert tables["hunyuan"] == {**shared, **own(VLLMOptions)}
    assert tables["hunyuan-api"] == own(APIOptions)
    assert tables["hunyuan-transformers"] == own(TransformersOptions)


# ------------------------------------------------------------------ vLLM releases


def test_vllm_releases_with_their_own_model_get_runner_and_architecture():
    from subflow.engines.hunyuan import ARCHITECTURE, describe_adjustments, vllm_adjustments

    assert vllm_adjustments(native_model=False) == [], "releases that read the config through transformers need nothing"
    args = {}
    for adjustment in vllm_adjustments(native_model=True):
        args |= adjustment.args
    assert args == {"runner": "generate", "hf_overrides": {"architectures": [ARCHITECTURE]}}
    assert [a.env for a in vllm_adjustments(True) if a.env] == [{"VLLM_USE_V2_MODEL_RUNNER": "0"}]
    assert describe_adjustments(vllm_adjustments(True)) == (
        f"runner=generate; hf_overrides.architectures=[{ARCHITECTURE}]; VLLM_USE_V2_MODEL_RUNNER=0")
    assert describe_adjustments([]) == "nothing"


def test_installed_vllm_is_found_without_importing_it(tmp_path, monkeypatch):
    """A vLLM tree with models/hunyuan_vision.py is a release with the native model; nothing is imported."""
    import importlib.metadata

    from subflow.engines import hunyuan

    package = tmp_path / "vllm"
    (package / "model_executor" / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.26.0" if name == "vllm" else None)
    assert hunyuan.installed_vllm() == ("0.26.0", False)
    (package / "model_executor" / "models" / "hunyuan_vision.py").write_text("")
    assert hunyuan.installed_vllm() == ("0.26.0", True)
