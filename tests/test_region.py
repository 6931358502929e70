"""Where subtitles sit: auto's watermark and top-band evidence, on stroke masks drawn here."""

from __future__ import annotations

import av
import cv2
import numpy as np

from subflow.config import DetectorConfig, RegionConfig
from subflow.detector import Detector, SegmentOpened
from subflow.records import Box
from subflow.region import Band, _subtitles_at_top, _watermark, auto_bands
from subflow.source import Frame

H, W = 360, 640  # half of 720p, as auto samples
SAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "samples"


def strokes(text: str, x: int, y: int, scale: float = 1.0) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.putText(mask, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 1, 2)
    return mask.astype(bool)


LINES = ["We leave at dawn", "Pack the bags", "Not again, please", "Where is he now", "Run!", "I knew it"]


def samples(n: int, logo: bool) -> list[np.ndarray]:
    out = []
    for k in range(n):
        mask = strokes(LINES[k % len(LINES)], 200, 330)  # a different subtitle each time
        if logo:
            mask |= strokes("TV5", 560, 30, 0.7)  # the same mark in every sample
        out.append(mask)
    return out


TIMES = [2.0 * k for k in range(12)]  # a sample every 2 s


def test_a_mark_in_every_sample_is_a_watermark_changing_subtitles_are_not():
    marked = _watermark(samples(12, logo=True), TIMES, share=0.8, seconds=8.0)
    assert marked[10:40, 555:620].any()  # the logo
    assert not marked[300:345].any()  # six subtitles, each at the same place
    assert not _watermark(samples(12, logo=False), TIMES, share=0.8, seconds=8.0).any()


def test_one_long_subtitle_is_not_a_watermark_when_it_leaves_for_a_while():
    masks = [strokes("The same line", 200, 330)] * 6 + [np.zeros((H, W), bool)] * 6
    assert not _watermark(masks, TIMES, share=0.8, seconds=8.0).any()


def test_one_subtitle_through_a_short_file_is_not_a_watermark():
    """A short file is sampled densely: a subtitle on screen through all of a 6 s clip is in every
    sample, yet it stays no longer than subtitles do; the same mark for 22 s is a watermark."""
    masks = [strokes("The same line", 200, 330)] * 12
    assert not _watermark(masks, [0.5 * k for k in range(12)], share=0.8, seconds=8.0).any()
    assert _watermark(masks, TIMES, share=0.8, seconds=8.0).any()


def test_top_band_needs_several_different_centred_lines():
    config = RegionConfig()
    none = np.zeros((H, W), bool)
    top_subtitles = [strokes(LINES[k % 6], 200, 40) for k in range(10)] + [none] * 10
    assert _subtitles_at_top(top_subtitles, none, 72, config)
    sign = [strokes("HOTEL ASTORIA", 200, 40)] * 10 + [none] * 10  # one text, however often
    assert not _subtitles_at_top(sign, none, 72, config)
    corner = [strokes(LINES[k % 6], 420, 40, 0.6) for k in range(10)] + [none] * 10  # not centred
    assert not _subtitles_at_top(corner, none, 72, config)


def test_centred_shapes_on_different_rows_and_of_different_heights_are_not_top_subtitles():
    """Scenery that the line finder chains into centred line-like shapes (a wreath of flowers in a
    real clip): different from shot to shot, but never on one row at one height as subtitles are."""
    config = RegionConfig()
    none = np.zeros((H, W), bool)
    shapes = [("oOoOo", 270, 30, 0.8), ("-=-=-=-=-", 230, 68, 1.0), ("xXxXxXx", 250, 50, 0.5)]
    scenery = [strokes(*shape) for shape in shapes for _ in range(3)]
    assert not _subtitles_at_top(scenery + [none] * 10, none, 72, config)


def bands(name: str, **settings: float) -> list[Band]:
    from dataclasses import replace

    return auto_bands(str(SAMPLES / f"{name}.mp4"), replace(RegionConfig(), **settings), DetectorConfig())


def test_a_short_file_with_two_keyframes_finds_its_top_subtitles():
    """samples/top.mp4 (15 s, 2 keyframes): seeking gives 2 samples, decoding forward from them 48."""
    assert [band.position for band in bands("top")] == ["top", "bottom"]
    assert [band.position for band in bands("top", auto_decode_seconds=0)] == ["bottom"]  # the bound holds


def test_a_logo_in_the_band_of_a_short_file_is_masked():
    """samples/logo.mp4: 12 s, 2 keyframes, a logo at (1120, 605) inside the bottom band on every frame."""
    found = bands("logo")
    assert [band.position for band in found] == ["bottom"]
    (logo,) = found[0].ignore
    assert logo.x0 <= 1125 and logo.x1 >= 1190 and logo.y0 <= 610 and logo.y1 >= 630 and logo.width < 200


def test_bottom_only_samples_stay_bottom_only():
    for name in ("en_basic", "scenetext", "signs"):
        assert [(band.position, band.ignore) for band in bands(name)] == [("bottom", ())], name


def test_the_detector_never_sees_text_inside_a_masked_watermark():
    rgb = np.full((720, 1280, 3), 30, np.uint8)
    cv2.putText(rgb, "LOGO", (1110, 600), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (235, 235, 235), 4)
    image = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")

    def opened(band: Band) -> int:
        detector = Detector(band, DetectorConfig())
        events = [e for k in range(6) for e in detector.push(Frame(k, k / 25, 0.0, image))]
        return sum(isinstance(e, SegmentOpened) for e in events + list(detector.finish()))

    box = Box(0, 540, 1280, 720)
    assert opened(Band("bottom", box)) == 1  # the logo reads as text...
    assert opened(Band("bottom", box, ignore=(Box(1100, 560, 1260, 620),))) == 0  # ...unless masked


def learned(name: str, seconds: float) -> list[str] | None:
    from pathlib import Path

    from subflow.region import BandLearner
    from subflow.source import VideoSource

    path = Path(__file__).resolve().parent.parent / "samples" / f"{name}.mp4"
    with VideoSource(path) as source:
        learner = BandLearner(RegionConfig(), DetectorConfig(), source.width, source.height, seconds)
        for frame in source.frames():
            bands = learner.push(frame)
            if bands is not None:
                return [band.position for band in bands]
    return None


def test_a_stream_learns_its_top_band_from_its_first_seconds():
    assert learned("top", 13.0) == ["top", "bottom"]  # four different top lines in 13 s
    assert learned("en_basic", 13.0) == ["bottom"]


def test_thin_low_contrast_top_subtitles_open_the_top_band(tmp_path):
    """Sampling uses the detector's adaptive contrast: thin grey capitals at the top on a light wall
    (samples/lowcontrast.mp4 moved up) open the top band; with the plain threshold they do not."""
    import dataclasses
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("samples_generate", SAMPLES / "generate.py")
    generate = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(generate)  # registered first: its dataclasses look their module up by name
    low = generate.sample_lowcontrast()
    video = generate.render(dataclasses.replace(low, events=[dataclasses.replace(e, top=True) for e in low.events]),
                            tmp_path / "lowtop.mp4")
    found = auto_bands(str(video), RegionConfig(), DetectorConfig())
    assert [band.position for band in found] == ["top", "bottom"]
    plain = auto_bands(str(video), RegionConfig(), DetectorConfig(contrast_share=0.0))
    assert [band.position for band in plain] == ["bottom"]
