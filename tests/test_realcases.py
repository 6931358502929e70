"""Real clips that nobody here made (../shared/realcases, ground truth read frame by frame), with
the default options: every cue found, no phantom cue, CER <= 2 %, start/end p95 <= 1 frame.

The clips are film excerpts and are not part of this repository; the tests skip, saying so, where
the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from subflow import extract
from subflow.score import load_cues, score

pytestmark = pytest.mark.realcases

REALCASES = Path(__file__).resolve().parent.parent.parent / "shared" / "realcases"
CLIPS = ["rapidvideocr_1", "rapidvideocr_test_a", "vsr_test_old"]


def frame_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    return 1 / float(rate)


@pytest.mark.parametrize("name", CLIPS)
def test_real_clip_meets_the_targets_with_default_options(name):
    video = REALCASES / f"{name}.mp4"
    if not video.is_file():
        pytest.skip(f"{video} is absent: the real clips live beside the repository, in ../shared/realcases")
    cues = list(extract(video))
    frame = frame_duration(video)
    result = score(load_cues(REALCASES / f"{name}.srt"), cues, frame_duration=frame)
    report = result.format() + "\n" + "\n".join(str(cue) for cue in cues)
    assert result.recall == 1.0, report  # every cue found
    assert result.pred == result.gt, report  # no phantom cue, no fragment
    assert result.cer <= 0.02, report
    one_frame_ms = 1000 * frame + 0.5
    assert result.start_p95_ms <= one_frame_ms and result.end_p95_ms <= one_frame_ms, report
