"""The committed sample videos and their ground truth are what the generator says they are.

Everything else in the suite scores subflow against these files, so a drift
between a video, its SRT and the manifest would silently make scores wrong.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import srt

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _load_generator():
    spec = importlib.util.spec_from_file_location("samples_generate", SAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
ENTRIES = {e["name"]: e for e in MANIFEST["samples"]}


@dataclass
class Decoded:
    times: list[float]  # frame times relative to the first frame, presentation order
    end: float  # stream end relative to the first frame
    start_time: float  # first pts, seconds
    width: int
    height: int


_decoded: dict[str, Decoded] = {}


def decode(name: str) -> Decoded:
    """Frame times of a sample, read with PyAV the way subflow reads them (pts, not index/fps)."""
    if name not in _decoded:
        with av.open(str(SAMPLES / ENTRIES[name]["file"])) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            pts = [f.pts for f in container.decode(stream)]
            first = pts[0]
            end = (stream.start_time + stream.duration - first) * tb
            _decoded[name] = Decoded([float((p - first) * tb) for p in pts], float(end), float(first * tb),
                                     stream.width, stream.height)
    return _decoded[name]


def cues(name: str) -> list[srt.Subtitle]:
    return list(srt.parse((SAMPLES / ENTRIES[name]["srt"]).read_text(encoding="utf-8")))


def test_manifest_matches_generator() -> None:
    assert [e["name"] for e in MANIFEST["samples"]] == list(gen.SAMPLES)
    assert MANIFEST["samples"] == [gen.manifest_entry(make()) for make in gen.SAMPLES.values()]


def test_committed_samples_stay_small() -> None:
    total = sum((SAMPLES / e["file"]).stat().st_size for e in MANIFEST["samples"])
    assert total < 8 * 1024 * 1024  # 15 samples of a few seconds each; a clone stays small


@pytest.mark.parametrize("name", list(ENTRIES))
def test_sample_decodes_as_described(name: str) -> None:
    entry, video = ENTRIES[name], decode(name)
    assert (video.width, video.height) == (entry["width"], entry["height"])
    assert len(video.times) == entry["frames"]
    assert video.start_time == pytest.approx(entry["start_time"], abs=1e-6)
    assert video.end == pytest.approx(entry["duration"], abs=1e-3)  # the muxer rounds the last duration
    pts = gen.frame_pts(gen.SAMPLES[name]())
    assert np.array_equal(np.round(np.array(video.times) * gen.TICKS).astype(int), pts[:-1] - pts[0])
    steps = np.round(np.diff(video.times + [entry["duration"]]) * gen.TICKS).astype(int)
    assert np.all(steps > 0)
    if entry["vfr"]:
        assert len(set(steps)) > 2
    else:
        assert set(steps) == {gen.TICKS // entry["fps"]}


@pytest.mark.parametrize("name", list(ENTRIES))
def test_ground_truth_sits_on_frame_boundaries(name: str) -> None:
    boundaries = np.array(decode(name).times + [ENTRIES[name]["duration"]])
    subs = cues(name)
    assert len(subs) == ENTRIES[name]["cues"]
    for cue in subs:
        for t in (cue.start.total_seconds(), cue.end.total_seconds()):
            assert np.abs(boundaries - t).min() <= 0.0005, f"{cue.content!r}: {t} is not a frame time"
        assert cue.end > cue.start
    assert srt.compose(subs) == srt.compose(gen.ground_truth(gen.SAMPLES[name]()))


def _all_cues() -> list[tuple[str, srt.Subtitle]]:
    return [(name, cue) for name in ENTRIES for cue in cues(name)]


def test_samples_cover_the_hard_cases() -> None:
    """The cases users report as broken in other extractors are all present."""
    frame = {name: 1 / e["fps"] for name, e in ENTRIES.items()}
    everything = _all_cues()
    bottom = {name: [c for c in cues(name) if not c.content.startswith(gen.TOP_TAG)] for name in ENTRIES}

    def pairs():
        for name, rows in bottom.items():
            yield from ((name, a, b) for a, b in zip(rows, rows[1:]))

    assert any(a.end == b.start and a.content != b.content for _, a, b in pairs()), "back-to-back change"
    assert any(a.end < b.start and a.content == b.content for _, a, b in pairs()), "same line twice"
    assert any(c.start.total_seconds() == 0 for _, c in everything), "cue on the first frame"
    assert any(c.end.total_seconds() == pytest.approx(ENTRIES[n]["duration"], abs=1e-3) for n, c in everything)
    assert any((c.end - c.start).total_seconds() <= 5 * frame[n] + 1e-3 for n, c in everything), "4-5 frame cue"
    assert any(len(re.sub(r"\W", "", c.content)) == 1 for _, c in everything), "1-character cue"
    assert any("\n" in c.content and re.search(r"[\u4e00-\u9fff]", c.content.split("\n")[0])
               and re.search(r"[a-z]", c.content.split("\n")[-1]) for _, c in everything), "bilingual cue"
    tops = [(n, c) for n, c in everything if c.content.startswith(gen.TOP_TAG)]
    assert tops and any(b.start < t.end and t.start < b.end for n, t in tops for b in bottom[n]), "top with bottom"
    assert any(e["start_time"] > 0 for e in ENTRIES.values()) and any(e["vfr"] for e in ENTRIES.values())


@pytest.fixture(scope="module")
def ocr():
    from rapidocr import RapidOCR

    return RapidOCR()


def _read_line(crop: np.ndarray, lang: str, ocr) -> str:
    """The default model's recogniser alone; scripts it lacks (--lang ru, ko) with the tesseract engine."""
    from subflow.engines import create_engine
    from subflow.engines.languages import engine_for

    if engine_for("rapid", lang) != "tesseract":
        return "".join(ocr(crop, use_det=False, use_cls=False, use_rec=True).txts or ())
    engine = create_engine("tesseract", lang=lang)
    try:
        return "".join(engine.read([np.ascontiguousarray(crop[:, :, ::-1])])[0].lines)
    finally:
        engine.close()


def _normal(text: str) -> str:
    return re.sub(r"[\W_]", "", text.replace(gen.TOP_TAG, "")).lower()


@pytest.mark.parametrize("name", list(ENTRIES))
def test_subtitles_are_legible(name: str, ocr) -> None:
    """OCR reads each line of the longest cue of each sample at its middle frame: real-world legible text.

    Lines are cut out where the generator placed them and read by the recogniser alone (the DB
    detector would cost seconds per frame on a busy CI machine).
    """
    spec = gen.SAMPLES[name]()
    event = max(spec.events, key=lambda e: len(gen.cue_text(e, spec.width, spec.height)))
    pts = gen.frame_pts(spec)
    middle = float((pts[(event.start + event.end) // 2] - pts[0]) / gen.TICKS)
    video = decode(name)
    with av.open(str(SAMPLES / ENTRIES[name]["file"])) as container:
        image = next(f for f in container.decode(video=0)
                     if f.time - video.start_time >= middle - 1e-6).to_ndarray(format="bgr24")
    read = []
    for line in gen.layout(event, spec.width, spec.height).lines:
        m = line.size // 4
        crop = image[max(0, line.y0 - m) : line.y1 + m, max(0, line.x0 - m) : line.x1 + m]
        read.append(_read_line(crop, spec.lang, ocr))
    truth = gen.cue_text(event, spec.width, spec.height)
    ratio = difflib.SequenceMatcher(None, _normal("".join(read)), _normal(truth)).ratio()
    assert ratio >= 0.9, f"read {read!r} for {truth!r}"


def test_generator_renders_a_short_video_deterministically(tmp_path: Path) -> None:
    paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for path in paths:
        assert gen.main(["bench", "--duration", "2", "--height", "240", "--lang", "bi", "--seed", "3",
                         "--preset", "ultrafast", "--out", str(path)]) == 0
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(digests) == 1
    assert (tmp_path / "a.srt").read_text(encoding="utf-8") == (tmp_path / "b.srt").read_text(encoding="utf-8")
    with av.open(str(paths[0])) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 50 and (frames[0].width, frames[0].height) == (426, 240)
    subs = list(srt.parse((tmp_path / "a.srt").read_text(encoding="utf-8")))
    assert subs and subs[0].start.total_seconds() == 0 and subs[-1].end.total_seconds() <= 2.0


def test_bad_input_gives_a_one_line_error(capsys, monkeypatch) -> None:
    assert gen.main(["bench", "--duration", "-1", "--out", "/tmp/never.mp4"]) == 2
    assert "duration must be positive" in capsys.readouterr().err
    monkeypatch.setitem(gen.FONTS, "cjk", (("/nonexistent/font.ttc",), "fonts-wqy-zenhei"))
    gen.font_file.cache_clear()
    try:
        with pytest.raises(gen.GenerateError, match="apt-get install -y fonts-wqy-zenhei"):
            gen.font_file("cjk")
    finally:
        monkeypatch.undo()
        gen.font_file.cache_clear()


def test_samples_cover_real_video_hard_cases() -> None:
    """Issue 14's classes each have a committed sample: scene text (a watermark on every frame, a
    sign through shots, sparks between cues), fades, bright plates, thin low-contrast text."""
    specs = {name: make() for name, make in gen.SAMPLES.items()}
    marks = [mark for spec in specs.values() for mark in spec.marks]
    assert any(m.start == 0 and m.end == spec.frames for spec in specs.values() for m in spec.marks), "watermark"
    assert any(m.end - m.start <= 8 and len(m.text) == 1 for m in marks), "spark"
    assert any(len(m.text) > 4 and m.end - m.start > 100 for m in marks), "sign"
    assert any(e.fade for spec in specs.values() for e in spec.events), "fade"
    assert any(s.kind == "plate" for spec in specs.values() for s in spec.scenes), "bright plate"
    assert any(e.style.outline == 0 and not e.style.shadow and e.style.sizes[0] <= 0.035
               for spec in specs.values() for e in spec.events), "thin low-contrast text"


def test_a_fade_crosses_half_strength_on_the_cue_boundaries() -> None:
    event = gen.Event(10, 20, ("x",), fade=8)
    assert gen.fade_strength(event, 9) < 0.5 <= gen.fade_strength(event, 10)
    assert gen.fade_strength(event, 19) >= 0.5 > gen.fade_strength(event, 20)
    assert gen.fade_strength(event, 15) == 1.0
    assert gen.fade_strength(event, gen.shown_frames(event).start) > 0
    assert gen.fade_strength(event, gen.shown_frames(event).start - 1) == 0
