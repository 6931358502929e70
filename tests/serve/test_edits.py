"""The editing operations (pure functions over cue rows) and the store's undo/redo on a real SQLite file."""

from __future__ import annotations

import pytest

from subflow.serve import edits
from subflow.serve.media import ServeError
from subflow.serve.store import Store

pytestmark = pytest.mark.serve

TIMES = [round(i * 0.04, 2) for i in range(101)]  # 25 fps, 4 s, then the end of the video


def row(cue_id=1, start=1.0, end=2.0, lines=("Hello there,", "my friend."), **extra):
    return {"id": cue_id, "idx": cue_id, "start": start, "end": end, "lines": list(lines), "confidence": 0.9, "region": "bottom",
            "box": [10, 600, 300, 650], "wall_start": None, "wall_end": None, "translations": {}, "flags": [], "crop": "c1.png", **extra}  # fmt: skip


def test_times_land_on_frames_and_a_cue_keeps_at_least_one_frame():
    change = edits.update(row(), TIMES, start=1.013, end=1.51)
    assert (change.after["start"], change.after["end"]) == (1.0, 1.52)
    assert edits.nudge(row(), TIMES, "end", -3).after["end"] == 1.88
    assert edits.nudge(row(end=3.96), TIMES, "end", 1).after["end"] == 4.0  # the end of the video is the last step
    with pytest.raises(ServeError, match="past the video"):
        edits.nudge(row(end=4.0), TIMES, "end", 1)
    with pytest.raises(ServeError, match="at least one frame"):
        edits.nudge(row(start=1.0, end=1.04), TIMES, "start", 1)
    with pytest.raises(ServeError, match="empty"):
        edits.update(row(), TIMES, text=" \n ")


def test_split_at_the_caret_between_lines_or_in_the_middle():
    head, tail = edits.split(row(), TIMES, next_idx=7, caret=len("Hello there,"))
    assert head.after["lines"] == ["Hello there,"] and tail.after["lines"] == ["my friend."]
    assert head.after["end"] == tail.after["start"] and tail.before is None and tail.after["idx"] == 7 and "id" not in tail.after
    assert head.after["end"] in TIMES and 1.0 < head.after["end"] < 2.0  # in proportion to the text, on a frame
    head, tail = edits.split(row(lines=("One line",)), TIMES, next_idx=7)
    assert head.after["lines"] == tail.after["lines"] == ["One line"] and head.after["end"] in (1.48, 1.52)  # the middle
    with pytest.raises(ServeError, match="too short"):
        edits.split(row(start=1.0, end=1.04), TIMES, next_idx=7)


def test_merge_keeps_one_copy_of_a_repeated_line_and_joins_translations():
    first = row(1, 1.0, 2.0, ("Wait",), translations={"fr": "Attends"}, flags=["x"])
    second = row(2, 2.0, 3.0, ("for me!",), translations={"fr": "moi !"}, confidence=0.5)
    kept, gone = edits.merge(second, first)  # either order
    assert kept.after["lines"] == ["Wait", "for me!"] and kept.after["translations"] == {"fr": "Attends\nmoi !"}
    assert (kept.after["start"], kept.after["end"], kept.after["confidence"]) == (1.0, 3.0, 0.5)
    assert gone.before["id"] == 2 and gone.after is None
    same, _ = edits.merge(row(1, lines=("Again",)), row(2, 2.0, 3.0, ("Again",)))
    assert same.after["lines"] == ["Again"]


def test_replace_plain_regex_case_and_translations():
    rows = [row(1, lines=("a.b A.B",)), row(2, lines=("nothing",), translations={"fr": "a.b"})]
    assert [c.after["lines"] for c in edits.replace(rows, "a.b", "x")] == [["x A.B"]]  # plain text: the dot is a dot
    assert [c.after["lines"] for c in edits.replace(rows, "a.b", "x", case=False)] == [["x x"]]
    assert [c.after["lines"] for c in edits.replace(rows, r"(\w)\.(\w)", r"\2\1", regex=True)] == [["ba BA"]]
    assert [c.after["translations"] for c in edits.replace(rows, "a.b", "c", lang="fr")] == [{"fr": "c"}]
    assert edits.replace(rows, "nothing", "") == []  # a replacement never empties a cue
    with pytest.raises(ServeError, match="regular expression"):
        edits.replace(rows, "(", "", regex=True)


def test_undo_and_redo_replay_whole_edits_and_a_new_edit_drops_the_redo(tmp_path):
    store = Store(tmp_path / "s.db")
    store.add_job("j", name="v.mp4", media="/v.mp4", engine="rapid")
    first = store.cue("j", store.add_cue("j", {k: v for k, v in row().items() if k != "id"}))
    split = store.edit("j", "split", "split", edits.split(first, TIMES, next_idx=2))
    assert len(store.cues("j")) == 2
    store.edit("j", "update", "text", [edits.update(store.cues("j")[0], TIMES, text="Changed")])
    assert store.undo("j")["kind"] == "update" and store.cues("j")[0]["lines"] == ["Hello there,"]
    assert store.undo("j")["id"] == split["id"] and store.cues("j") == [first]
    assert store.undo("j") is None
    assert store.redo("j")["kind"] == "split" and len(store.cues("j")) == 2
    store.edit("j", "delete", "delete", [edits.Change(store.cues("j")[1], None)])
    assert store.redo("j") is None  # the undone text edit was superseded
    assert [e["state"] for e in store.edits("j")] == ["done", "dropped", "done"]
    store.close()
    reopened = Store(tmp_path / "s.db")
    assert [c["lines"] for c in reopened.cues("j")] == [["Hello there,"]] and len(reopened.edits("j")) == 3
