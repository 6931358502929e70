"""The style check: cues outside the learned subtitle style are rejected, with the reason kept."""

from __future__ import annotations

import json

import cv2
import numpy as np

from subflow.config import StyleConfig
from subflow.records import Box, Cue, CueUpdate
from subflow.score import load_cues
from subflow.sinks import open_sink
from subflow.style import Look, StyleFilter, judge, look_of

WIDTH, HEIGHT = 1280, 720


def text_crop(text: str, scale: float) -> np.ndarray:
    """White outlined text on a dark-grey crop, as burned-in subtitles look."""
    size, _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    crop = np.full((size[1] * 3, size[0] + 40, 3), 60, np.uint8)
    origin = (20, size[1] * 2)
    cv2.putText(crop, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 6, cv2.LINE_AA)
    cv2.putText(crop, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return crop


def cue(index: int, text: str, centre_x: int, bottom: int, scale: float = 1.2) -> Cue:
    image = text_crop(text, scale)
    h, w = image.shape[:2]
    box = Box(centre_x - w // 2, bottom - h, centre_x - w // 2 + w, bottom)
    return Cue(index, index * 2.0, index * 2.0 + 1.5, [text], confidence=0.97, image=image, image_box=box)


def finals(cues: list[Cue]) -> list[CueUpdate]:
    return [CueUpdate(c, final=True) for c in cues]


SUBTITLES = [cue(1, "We leave at dawn", 640, 690), cue(2, "Pack the bags", 640, 690), cue(4, "Not again", 640, 690)]


def test_a_subtitle_is_measured_from_its_letters():
    look = look_of(SUBTITLES[0], WIDTH, HEIGHT)
    assert look is not None
    assert abs(look.centre - 0.5) < 0.03
    assert 0.9 < look.anchor <= 690 / HEIGHT + 0.01
    assert 15 <= look.line_height <= 40


def test_scene_text_off_place_and_off_row_is_rejected_with_the_reason():
    sign = cue(3, "EXIT", 1100, 560, scale=0.7)  # small, right, higher up: a sign in the picture
    updates = list(StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=True).process(finals(SUBTITLES[:2] + [sign] + SUBTITLES[2:])))
    assert [u.cue.index for u in updates] == [1, 2, 3, 4]  # order kept
    rejected = [u for u in updates if u.meta.get("rejected")]
    assert [u.cue.index for u in rejected] == [3]
    assert rejected[0].meta["retracted"] and "subtitle style" in rejected[0].cue.rejected
    assert all(not u.cue.rejected for u in updates if u.cue.index != 3)


def test_one_miss_is_allowed_a_subtitle_moved_up_stays():
    moved = cue(3, "Look up there", 640, 560)  # same centre and size, higher: a subtitle clearing a caption
    updates = list(StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=True).process(finals(SUBTITLES[:2] + [moved])))
    assert not any(u.meta.get("rejected") for u in updates)


def test_nothing_is_judged_before_the_style_is_known():
    looks = [Look(0.5, 0.4, 0.95, 30.0)]
    assert judge(Look(0.9, 0.85, 0.7, 12.0), looks, StyleConfig(), HEIGHT) == ""  # one reference is not a style
    assert judge(Look(0.9, 0.85, 0.7, 12.0), looks * 2, StyleConfig(), HEIGHT) != ""


def test_live_judges_as_it_goes_without_holding():
    style = StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=False)
    sign = cue(3, "EXIT", 1100, 560, scale=0.7)
    out = [next(iter(style.process([u]))) for u in finals(SUBTITLES[:2] + [sign])]
    assert [bool(u.meta.get("rejected")) for u in out] == [False, False, True]


def test_json_keeps_the_rejected_cue_subtitle_files_do_not(tmp_path):
    sign = cue(3, "EXIT", 1100, 560, scale=0.7)
    sign.rejected = "not in the subtitle style: test"
    for suffix in ("srt", "jsonl"):
        with open_sink(tmp_path / f"out.{suffix}") as sink:
            for c in SUBTITLES + [sign]:
                sink.write(c)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r.get("rejected", "") for r in records if r["text"] == "EXIT"] == ["not in the subtitle style: test"]
    assert "EXIT" not in (tmp_path / "out.srt").read_text()
    assert [c.text for c in load_cues(tmp_path / "out.jsonl")] == [c.text for c in SUBTITLES]  # scoring skips it


def test_a_short_lowercase_cue_in_place_is_kept_a_short_one_off_place_is_not():
    short_line = cue(3, "no", 640, 690, scale=0.9)  # x-height only: much shorter lines than the subtitles'
    short_line.end = short_line.start + 0.3
    spark = cue(5, "V", 900, 690)
    spark.end = spark.start + 0.3
    updates = list(StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=True).process(finals(SUBTITLES + [short_line, spark])))
    assert [u.cue.text for u in updates if u.meta.get("rejected")] == ["V"]
