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


def band_cue(index: int, start: float, end: float, *lines: tuple[str, int, int, float]) -> Cue:
    """A cue whose crop is the whole bottom band (frame rows 540-720), with each line drawn as
    (text, horizontal centre, baseline in the crop, scale), white with a dark outline."""
    crop = np.full((180, WIDTH, 3), 60, np.uint8)
    for text, centre, baseline, scale in lines:
        (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        origin = (centre - width // 2, baseline)
        cv2.putText(crop, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 6, cv2.LINE_AA)
        cv2.putText(crop, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return Cue(index, start, end, [text for text, *_ in lines], confidence=0.97, image=crop,
               image_box=Box(0, 540, WIDTH, 720), box=Box(0, 540, WIDTH, 720))


SIGN = ("EXIT", 150, 40, 0.7)  # small, left, high in the band: a sign on a wall behind the speakers


def kept(updates: list[CueUpdate]) -> list[Cue]:
    return [u.cue for u in updates if u.final and not u.meta.get("retracted")]


def test_a_sign_read_with_a_subtitle_leaves_its_text_with_the_reason_kept():
    mixed = band_cue(3, 6.0, 7.5, SIGN, ("Where is he now", 640, 124, 1.2))
    updates = list(StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=True).process(finals(SUBTITLES[:2] + [mixed] + SUBTITLES[2:])))
    assert [c.text for c in kept(updates)] == ["We leave at dawn", "Pack the bags", "Where is he now", "Not again"]
    (text, reason), = mixed.dropped
    assert text == "EXIT" and "subtitle style" in reason
    assert mixed.to_dict()["dropped"] == [{"text": "EXIT", "rejected": reason}]
    assert mixed.box is not None and mixed.box.x0 > 300  # where the subtitle sits, not the sign


def test_a_subtitle_of_two_lines_is_one_block_and_stays_whole():
    two = band_cue(3, 6.0, 7.5, ("We leave at dawn", 640, 84, 1.2), ("and not later", 640, 124, 1.2))
    dialogue = band_cue(5, 10.0, 11.5, ("- Who?", 520, 84, 1.2), ("- The man at the door", 640, 124, 1.2))
    dialogue.image[:] = 60  # left-aligned lines: redraw both from one left edge
    for text, baseline in (("- Who?", 84), ("- The man at the door", 124)):
        for colour, thickness in (((0, 0, 0), 6), ((255, 255, 255), 2)):
            cv2.putText(dialogue.image, text, (470, baseline), cv2.FONT_HERSHEY_SIMPLEX, 1.2, colour, thickness, cv2.LINE_AA)
    updates = list(StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=True).process(finals(SUBTITLES + [two, dialogue])))
    assert [c.lines for c in kept(updates)][-2:] == [["We leave at dawn", "and not later"], ["- Who?", "- The man at the door"]]
    assert not two.dropped and not dialogue.dropped


def test_a_cue_split_where_a_sign_came_is_joined_again():
    """The merger splits a subtitle where a sign comes (its reads change); without the sign's line
    the two pieces are one cue again. The same line after a gap stays two cues."""
    before = band_cue(3, 6.0, 6.8, ("Where is he now", 640, 124, 1.2))
    after = band_cue(4, 6.8, 7.5, SIGN, ("Where is he now", 640, 124, 1.2))
    again = band_cue(5, 7.9, 8.6, SIGN, ("Where is he now", 640, 124, 1.2))
    updates = list(StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=True).process(finals(SUBTITLES[:2] + [before, after, again])))
    assert [(c.start, c.end, c.text) for c in kept(updates)][2:] == [(6.0, 7.5, "Where is he now"), (7.9, 8.6, "Where is he now")]
    assert [u.cue.index for u in updates] == [1, 2, 3, 5]  # in order; the piece joined is not handed on


def test_live_drops_sign_lines_as_it_goes():
    style = StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=False)
    mixed = band_cue(3, 6.0, 7.5, SIGN, ("Where is he now", 640, 124, 1.2))
    out = [u for update in finals(SUBTITLES[:2] + [mixed]) for u in style.process([update])]
    assert [u.cue.text for u in out] == ["We leave at dawn", "Pack the bags", "Where is he now"]


def test_the_crop_of_a_cue_without_its_sign_shows_the_subtitle_alone():
    """What an image translator or a reviewer sees: the sign's rows and columns are cut away."""
    mixed = band_cue(3, 6.0, 7.5, SIGN, ("Where is he now", 640, 124, 1.2))
    list(StyleFilter(StyleConfig(), WIDTH, HEIGHT, hold=True).process(finals(SUBTITLES[:2] + [mixed])))
    assert mixed.image_box is not None and mixed.image_box.x0 > 300 and mixed.image_box.y0 > 590
    assert mixed.image.shape[:2] == (mixed.image_box.height, mixed.image_box.width)
    assert [mixed.lines] == [["Where is he now"]] and look_of(mixed, WIDTH, HEIGHT) is not None
