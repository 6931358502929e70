"""The merger on hand-built event streams: voting, splitting, joining, partials."""

from __future__ import annotations

from subflow.config import MergerConfig
from subflow.detector import BandBlank, SegmentClosed, SegmentOpened
from subflow.merger import Merger, meaningful, similarity
from subflow.recognizer import Read
from subflow.records import Box, Recognition
from subflow.region import Band

BOTTOM = Band("bottom", Box(0, 540, 1280, 720))
TOP = Band("top", Box(0, 0, 1280, 144))
BOX = Box(400, 600, 880, 650)


class Script:
    """Builds the detector/recogniser event stream of segments with their reads."""

    def __init__(self) -> None:
        self.events: list = []
        self.next_id = 0

    def segment(self, start: float, end: float, *reads: tuple[str, float], band: Band = BOTTOM, blank_after: bool = True,
                continues: bool = False):
        self.next_id += 1
        sid = self.next_id
        self.events.append(SegmentOpened(sid, band, start, start, BOX, sid - 1 if continues else None))
        for text, confidence in reads:
            self.events.append(Read(sid, band, start, Recognition(tuple(text.split("\n")), confidence)))
        self.events.append(SegmentClosed(sid, band, end, end))
        if blank_after:
            self.events.append(BandBlank(band, end, end))
        return self

    def run(self, config: MergerConfig | None = None):
        return list(Merger(config or MergerConfig()).process(self.events))


def finals(updates):
    return [(u.cue.start, u.cue.end, u.cue.text) for u in updates if u.final and not u.meta.get("retracted")]


def test_ocr_variants_of_one_line_are_one_cue_with_the_voted_text():
    script = Script()
    script.segment(1.0, 2.0, ("Hel1o there", 0.7), blank_after=False)  # scene cut split the subtitle
    script.segment(2.0, 4.0, ("Hello there", 0.95), ("Hello there", 0.9))
    assert finals(script.run()) == [(1.0, 4.0, "Hello there")]


def test_vote_weighs_screen_time_and_confidence():
    script = Script()
    script.segment(0.0, 3.0, ("Good morning", 0.9), blank_after=False)
    script.segment(3.0, 3.5, ("Good mornlng", 0.99))
    assert finals(script.run()) == [(0.0, 3.5, "Good morning")]


def test_same_line_twice_with_a_blank_between_is_two_cues():
    script = Script().segment(1.0, 2.0, ("Again", 0.9)).segment(2.5, 3.0, ("Again", 0.9))
    assert finals(script.run()) == [(1.0, 2.0, "Again"), (2.5, 3.0, "Again")]


def test_max_gap_joins_across_short_blanks_when_asked():
    script = Script().segment(1.0, 2.0, ("Again", 0.9)).segment(2.04, 3.0, ("Again", 0.9))
    assert finals(script.run(MergerConfig(max_gap=0.05))) == [(1.0, 3.0, "Again")]


def test_back_to_back_different_lines_split_at_the_change():
    script = Script().segment(1.0, 2.0, ("One thing", 0.9), blank_after=False).segment(2.0, 3.0, ("Something else", 0.9))
    assert finals(script.run()) == [(1.0, 2.0, "One thing"), (2.0, 3.0, "Something else")]


def test_lines_keep_their_order_and_any_number():
    text = "第一行\nsecond line\nthird\nfourth\nfifth"
    assert finals(Script().segment(0.0, 1.0, (text, 0.9)).run()) == [(0.0, 1.0, text)]


def test_short_cues_are_retracted_and_empty_reads_make_no_cue():
    script = Script().segment(0.0, 0.05, ("Blink", 0.9)).segment(1.0, 2.0, ("", 0.0)).segment(3.0, 4.0, ("___\n--", 0.6))
    updates = script.run()
    assert finals(updates) == []
    assert [u.meta for u in updates if u.final] == [{"retracted": True}]


def test_updates_come_as_partial_then_final_then_clear():
    updates = Script().segment(1.0, 2.0, ("Live text", 0.9)).run()
    kinds = [("clear" if u.cue is None else "final" if u.final else "partial") for u in updates]
    assert kinds == ["partial", "final", "clear"]
    partial, final = updates[0].cue, updates[1].cue
    assert partial is final and final.index == 1 and updates[1].revision > updates[0].revision


def test_top_and_bottom_are_separate_cues_with_their_region():
    script = Script()
    script.events += [
        SegmentOpened(1, TOP, 1.0, 1.0, BOX),
        Read(1, TOP, 1.0, Recognition(("Sign: EXIT",), 0.9)),
        SegmentOpened(2, BOTTOM, 1.5, 1.5, BOX),
        Read(2, BOTTOM, 1.5, Recognition(("Dialogue",), 0.9)),
        SegmentClosed(2, BOTTOM, 2.5, 2.5),
        BandBlank(BOTTOM, 2.5, 2.5),
        SegmentClosed(1, TOP, 3.0, 3.0),
        BandBlank(TOP, 3.0, 3.0),
    ]
    cues = [u.cue for u in script.run() if u.final]
    assert [(c.region, c.text, c.start, c.end) for c in cues] == [("bottom", "Dialogue", 1.5, 2.5), ("top", "Sign: EXIT", 1.0, 3.0)]


def test_similarity_and_meaningful():
    assert similarity("Hello  there", "hello there") == 1.0
    assert similarity("Hello there", "Hel1o there") > 0.8
    assert similarity("Hello there", "Goodbye") < 0.5
    assert meaningful("♪") and meaningful("好") and meaningful("3")
    assert not meaningful("__") and not meaningful(" -- ")


def test_the_clean_read_wins_when_no_two_reads_agree():
    script = Script()
    script.segment(0.0, 0.6, ("Would you like teaior coffee?", 0.95), blank_after=False)
    script.segment(0.6, 1.2, ("Would you like tea or coffee?", 0.9), blank_after=False)
    script.segment(1.2, 1.8, ('i."Would you like tea or coffee?', 0.97))
    assert finals(script.run()) == [(0.0, 1.8, "Would you like tea or coffee?")]


def test_an_unread_continuation_extends_its_cue_and_an_unread_new_segment_does_not():
    script = Script().segment(1.0, 2.0, ("Same words", 0.9), blank_after=False)
    script.segment(2.0, 3.5, blank_after=False, continues=True)  # its chain was settled: not read again
    script.segment(3.5, 4.0, ("Same words", 0.9))
    assert finals(script.run()) == [(1.0, 4.0, "Same words")]
    script = Script().segment(1.0, 2.0, ("Same words", 0.9), blank_after=False).segment(2.0, 3.5)
    assert finals(script.run()) == [(1.0, 2.0, "Same words")]


def test_a_cue_carries_the_crop_its_winning_read_came_from():
    import numpy as np

    crops = {text: np.full((8, 8, 3), value, np.uint8) for value, text in enumerate(["Hel1o there", "Hello there", "Hello there!"])}
    script = Script()
    script.segment(1.0, 2.0, ("Hel1o there", 0.7), blank_after=False)
    script.segment(2.0, 4.0, ("Hello there", 0.95), ("Hello there", 0.9))
    for event in script.events:
        if isinstance(event, Read):
            event.crop = crops[event.recognition.text]
    [cue] = [u.cue for u in script.run() if u.final]
    assert cue.text == "Hello there"
    assert cue.image is crops["Hello there"]
    assert "image" not in cue.to_dict() and "translations" not in cue.to_dict()
    cue.translations["en"] = "Hi"
    cue.flags.append("untranslated")
    assert cue.to_dict()["translations"] == {"en": "Hi"} and cue.to_dict()["flags"] == ["untranslated"]
