"""The rapid engine reads rendered subtitles (real fonts, plain and cluttered backgrounds) offline."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from benchmarks.engine_rapid import CJK_FONT, render_band
from subflow.engines import EngineError, create_engine
from subflow.engines.rapid import _clean
from subflow.records import RECOGNIZE, Recognition, Task
from subflow.score import edit_distance

CASES = {
    "one line": (["你好，世界！今天天气很好。"], (1280, 180), False, 0.5),
    "zh over en": (["我们明天早上八点出发", "We leave at eight tomorrow morning"], (1280, 180), True, 0.5),
    "three lines 1080p": (["第一行", "Second line here", "第三行字幕"], (1920, 270), True, 0.5),
    "one character": (["好"], (1280, 180), True, 0.3),
    "two letters off centre": (["OK"], (1920, 270), False, 0.75),
    "thin glyph": (["三"], (1280, 180), False, 0.5),
    "latin punctuation": (["Wait... what's that?!"], (1280, 180), True, 0.4),
    "chinese pause space": (["别担心 一切都会好起来的", "Don't worry"], (1920, 270), False, 0.5),
}


def cer(expected: list[str], got: tuple[str, ...]) -> float:
    truth = "\n".join(expected)
    return edit_distance(truth, "\n".join(got)) / len(truth)


@pytest.fixture(scope="module")
def engines():
    made = {mode: create_engine("rapid", detect=mode) for mode in ("lines", "model", "auto")}
    yield made
    for engine in made.values():
        asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def bands():
    return {name: render_band(lines, size, clutter=clutter, x_center=x, seed=n)
            for n, (name, (lines, size, clutter, x)) in enumerate(CASES.items())}


@pytest.mark.parametrize("mode", ["lines", "model", "auto"])
def test_reads_every_case_in_one_batch(engines, bands, mode):
    results = asyncio.run(engines[mode].recognize(list(bands.values()), RECOGNIZE))
    assert len(results) == len(bands)
    errors = {name: cer(CASES[name][0], r.lines) for name, r in zip(bands, results)}
    assert all(r.confidence >= 0.5 for r in results), results
    assert sum(errors.values()) / len(errors) <= 0.03, errors
    assert max(errors.values()) <= 0.15, errors
    # Lines come top to bottom, one per rendered line.
    assert [len(r.lines) for r in results] == [len(lines) for lines, *_ in CASES.values()]


def test_blank_crops_read_as_nothing(engines):
    blank = np.full((180, 1280, 3), 40, dtype=np.uint8)
    empty = np.zeros((0, 1280, 3), dtype=np.uint8)
    for engine in engines.values():
        assert asyncio.run(engine.recognize([blank, empty], RECOGNIZE)) == [Recognition((), 0.0)] * 2


def test_auto_falls_back_to_the_detector_where_the_line_finder_sees_nothing(engines):
    """White text with no outline on a grey wall: the finder wants an outline, the DB detector does not."""
    image = Image.new("RGB", (1280, 180), (125, 125, 125))
    ImageDraw.Draw(image).text((400, 100), "没有描边的字幕", font=ImageFont.truetype(CJK_FONT, 40), fill=(255, 255, 255))
    crop = np.asarray(image)
    lines_only, auto = (asyncio.run(engines[m].recognize([crop], RECOGNIZE))[0] for m in ("lines", "auto"))
    assert lines_only == Recognition((), 0.0)
    assert auto.lines == ("没有描边的字幕",)


def test_dark_text_on_a_bright_plate_is_read_as_one_line_when_asked_for():
    image = Image.new("RGB", (1280, 180), (235, 235, 225))
    ImageDraw.Draw(image).text((300, 90), "黑色的字 on a plate", font=ImageFont.truetype(CJK_FONT, 40), fill=(10, 10, 10))
    engine = create_engine("rapid", detect="lines", dark_text=True)
    (result,) = asyncio.run(engine.recognize([np.asarray(image)], RECOGNIZE))
    assert result.lines == ("黑色的字 on a plate",)


def test_translate_is_refused_with_a_clear_message(engines):
    with pytest.raises(EngineError, match="only reads text"):
        asyncio.run(engines["lines"].recognize([np.zeros((10, 10, 3), np.uint8)], Task("translate", "en")))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"detect": "everything"}, "detect must be one of"),
        ({"threads": "two"}, "threads must be int"),
        ({"thread": 2}, "unknown .engines.rapid. option 'thread'"),
        ({"rec_model": "/nonexistent/rec.onnx"}, "OCR model not found"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(EngineError, match=message):
        engine = create_engine("rapid", **options)
        asyncio.run(engine.recognize([render_band(["好"])], RECOGNIZE))


def test_works_with_the_network_unreachable(monkeypatch):
    """Models come from the wheel; nothing is downloaded at run time."""

    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    engine = create_engine("rapid", detect="auto", threads=1)
    (result,) = asyncio.run(engine.recognize([render_band(["离线也能读"], clutter=True)], RECOGNIZE))
    assert result.lines == ("离线也能读",)


def test_pause_space_in_chinese_is_kept_only_where_it_is_seen(engines, bands):
    with_space, without = render_band(["我们先去吃饭 然后再说"]), render_band(["我们先去吃饭然后再说"])
    results = asyncio.run(engines["lines"].recognize([with_space, without], RECOGNIZE))
    assert [r.lines for r in results] == [("我们先去吃饭 然后再说",), ("我们先去吃饭然后再说",)]


def test_cleanup_only_touches_whitespace():
    assert _clean(" 你 好 ，世界 ") == "你好，世界"
    assert _clean("Hello   world 你好") == "Hello world 你好"


def test_a_crop_reads_the_same_whatever_else_is_in_its_batch(engines, bands):
    """How crops are grouped into engine calls depends on timing; the answers must not."""
    engine = engines["lines"]
    names = list(bands)
    alone = {name: engine.read([bands[name]])[0] for name in names}
    together = dict(zip(names, engine.read([bands[name] for name in names])))
    reversed_pairs = dict(zip(names[::-1], engine.read([bands[name] for name in names[::-1]])))
    assert together == alone and reversed_pairs == alone
