"""The change detector on frames with known subtitle boundaries."""

from __future__ import annotations

import pytest

from subflow.config import DetectorConfig, RegionConfig
from subflow.detector import BandBlank, Detector, SegmentClosed, SegmentOpened, Shot
from subflow.region import parse_bands

from synth import FPS, HEIGHT, WIDTH, Shown, cut_at, frames, moving, plain, with_clutter


def run(frame_list, where: str = "bottom", config: DetectorConfig | None = None):
    band = parse_bands(where, WIDTH, HEIGHT, RegionConfig())[0]
    detector = Detector(band, config or DetectorConfig())
    events = []
    for frame in frame_list:
        events.extend(detector.push(frame))
    events.extend(detector.finish())
    return events


def spans(events) -> list[tuple[int, int]]:
    """Segments as (first frame, first frame without) at FPS."""
    opened = {e.segment: e.start for e in events if isinstance(e, SegmentOpened)}
    closed = {e.segment: e.end for e in events if isinstance(e, SegmentClosed)}
    return [(round(opened[s] * FPS), round(closed[s] * FPS)) for s in opened]


def joined(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent segments joined: what a cue covers when its text did not change."""
    out: list[tuple[int, int]] = []
    for start, end in pairs:
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


@pytest.mark.parametrize("background", ["plain", "moving"])
def test_boundaries_are_frame_exact_and_blank_costs_nothing(background):
    shown = [Shown(10, 30, ("First line",)), Shown(30, 50, ("Another one here",)), Shown(56, 70, ("First line",))]
    events = run(frames(80, shown, moving if background == "moving" else plain))
    assert spans(events) == [(10, 30), (30, 50), (56, 70)]  # a replacement on the very same frame splits
    for shot in (e for e in events if isinstance(e, Shot)):
        assert any(a <= shot.frame.index < b for a, b in [(10, 30), (30, 50), (56, 70)])
    blanks = [round(e.time * FPS) for e in events if isinstance(e, BandBlank)]
    assert 0 in blanks and 50 in blanks and 70 in blanks


def test_moving_background_alone_is_blank():
    events = run(frames(60, [], moving))
    assert not [e for e in events if isinstance(e, (SegmentOpened, Shot))]


def test_scene_cut_behind_a_subtitle_does_not_end_it():
    events = run(frames(60, [Shown(10, 45, ("Still here",))], cut_at(25)))
    assert joined(spans(events)) == [(10, 45)]


def test_one_frame_dropout_does_not_split():
    events = run(frames(50, [Shown(5, 40, ("Steady text",))], hide=[20]))
    assert spans(events) == [(5, 40)]


def test_added_second_line_starts_a_new_segment():
    shown = [Shown(5, 20, ("Top line of two",)), Shown(20, 40, ("Top line of two", "and a second"))]
    events = run(frames(50, shown))
    assert spans(events) == [(5, 20), (20, 40)]
    assert [e.continues for e in events if isinstance(e, SegmentOpened)] == [None, None]  # new text: read it


def test_clutter_coming_and_going_beside_a_subtitle_marks_the_pieces_as_one_text():
    events = run(frames(60, [Shown(5, 55, ("A steady subtitle line",))], with_clutter([(15, 22), (30, 37)])))
    opened = [e for e in events if isinstance(e, SegmentOpened)]
    assert joined(spans(events)) == [(5, 55)] and len(opened) >= 3  # split where the clutter came and went
    assert opened[0].continues is None
    assert [e.continues for e in opened[1:]] == [e.segment for e in opened[:-1]]


def test_a_new_line_in_the_same_place_is_not_a_continuation():
    shown = [Shown(5, 25, ("The first of two lines",)), Shown(25, 45, ("Something else entirely",))]
    events = run(frames(50, shown, with_clutter([(10, 15)])))
    assert spans(events)[-1] == (25, 45)
    assert [e for e in events if isinstance(e, SegmentOpened)][-1].continues is None


def test_short_and_tiny_subtitles_are_found():
    events = run(frames(40, [Shown(5, 9, ("Quick",)), Shown(20, 26, ("OK",))]))
    assert spans(events) == [(5, 9), (20, 26)]


def test_top_band_sees_only_top_text():
    shown = [Shown(5, 30, ("At the top",), "top"), Shown(10, 20, ("At the bottom",))]
    assert spans(run(frames(40, shown), "top")) == [(5, 30)]
    assert spans(run(frames(40, shown), "bottom")) == [(10, 20)]


def test_subtitle_through_the_last_frame_ends_after_it():
    events = run(frames(30, [Shown(0, 30, ("To the end",))]))
    assert spans(events) == [(0, 30)]


def test_times_come_from_the_frames_not_from_counting():
    times = [i * 0.05 + (0.02 if i % 3 == 0 else 0) for i in range(40)]  # uneven spacing
    events = run(frames(40, [Shown(10, 25, ("VFR",))], times=times))
    opened = [e.start for e in events if isinstance(e, SegmentOpened)]
    closed = [e.end for e in events if isinstance(e, SegmentClosed)]
    assert opened == [times[10]] and closed == [times[25]]


def test_sampling_every_nth_frame_snaps_to_sampled_frames():
    every = 3  # the pipeline passes only every Nth frame to the detector
    frame_list = [f for f in frames(60, [Shown(10, 40, ("Sampled",))]) if f.index % every == 0]
    events = run(frame_list)
    (start, end), = spans(events)
    assert 10 <= start < 10 + every and 40 <= end < 40 + every


def test_a_stream_break_ends_what_is_on_screen_there_and_the_next_frames_start_afresh():
    band = parse_bands("bottom", WIDTH, HEIGHT, RegionConfig())[0]
    detector = Detector(band, DetectorConfig())
    before = list(frames(20, [Shown(5, 20, ("On screen when the stream dropped",))]))
    events = [event for frame in before for event in detector.push(frame)]
    events += list(detector.interrupt())  # the stream broke off after frame 19
    after = [f for f in frames(40, [Shown(0, 40, ("On screen when the stream dropped",))])][25:]
    events += [event for frame in after for event in detector.push(frame)] + list(detector.finish())
    assert spans(events) == [(5, 20), (25, 40)]
    blanks = [round(e.time * FPS) for e in events if isinstance(e, BandBlank)]
    assert 20 in blanks  # the band goes blank at the break, so the cue is final at once


def test_thin_grey_capitals_on_a_light_wall_are_strokes_and_dim_detail_elsewhere_is_not():
    """Light grey capitals stand ~45 levels above a light grey wall, under ``contrast_min`` (50):
    the detector's mask keeps them because that is most of the room between the wall and video
    white. The same 45 levels over a mid-grey background (more room) are no stroke, nor is a thin
    line 35 levels above a lit window on a night sky (the sky around it is dark)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from subflow.textmask import stroke_mask

    params = Detector(parse_bands("bottom", WIDTH, HEIGHT, RegionConfig())[0], DetectorConfig()).params
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 13)  # 25 px at half resolution

    def band(background: int, text: int) -> tuple[np.ndarray, np.ndarray]:
        image = Image.new("L", (320, 40), background)
        ImageDraw.Draw(image).text((10, 12), "WE LEAVE FROM THE NORTH GATE", font=font, fill=text)
        luma = np.asarray(image)
        return luma, luma >= text - 5  # the strokes' cores

    luma, strokes = band(172, 218)  # grey 238 on a 180 wall, as limited-range video carries them
    assert stroke_mask(luma, params)[strokes].mean() > 0.9
    luma, strokes = band(125, 170)
    assert not stroke_mask(luma, params).any()
    sky = np.full((40, 320), 20, np.uint8)
    sky[16:24, 106:114] = 215  # a lit window (13 px at 720p, as in the city backdrop), wider than the kernel
    sky[19:21, 90:130] = 250  # a thin bright line across it (and the sky)
    window = stroke_mask(sky, params)[:, 106:114]
    assert not window.any()


def test_without_contrast_share_the_stroke_mask_is_the_plain_top_hat_threshold():
    """The look-up-table form of the mask equals top-hat >= contrast_min and luma >= bright_min."""
    import cv2
    import numpy as np

    from subflow.textmask import MaskParams, stroke_mask

    rng = np.random.default_rng(3)
    params = MaskParams(contrast_min=50, bright_min=170, stroke_max=5)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    for smooth in (1, 3, 7):
        luma = cv2.GaussianBlur(rng.integers(0, 256, (90, 640), dtype=np.uint8), (smooth, smooth), 0)
        tophat = cv2.morphologyEx(luma, cv2.MORPH_TOPHAT, kernel)
        expected = (tophat >= 50) & (luma >= 170)
        assert expected.any() and (stroke_mask(luma, params) == expected).all()
