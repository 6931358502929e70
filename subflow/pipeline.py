"""The pipeline: source -> detector -> recogniser -> merger (-> translation), as lazy generators.

``extract()`` is the public API (a generator of final cues, like
faster-whisper's ``transcribe``); ``stream()`` also yields partial cues and
clears for live consumers. The CLI, the WebSocket server and batch workers all
consume one of these two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, ConfigError
from .detector import Detector, Event, Tick
from .engines import Engine, EngineError, create_engine
from .engines.languages import LanguageError, engine_for
from .merger import Merger
from .recognizer import Recognizer, run_on_engine_loop
from .records import Cue, CueUpdate
from .region import Band, BandLearner, auto_bands, parse_bands
from .source import Frame, StreamBreak, VideoSource
from .style import StyleFilter
from .translate import TranslationStage, TranslationStats, Translator, build_translators, load_glossaries, plan_translation

log = logging.getLogger(__name__)


@dataclass
class Stats:
    """Progress and per-stage cost of one run (stage times are seconds of wall time)."""

    duration: float | None = None  # media length, when known
    position: float = 0.0  # media time reached
    frames: int = 0
    crops_read: int = 0
    cues: int = 0
    decode: float = 0.0
    detect: float = 0.0
    recognize: float = 0.0  # engine busy time (runs alongside decoding)
    ocr_wait: float = 0.0  # time decoding stood still waiting for OCR answers
    merge: float = 0.0
    rejected: int = 0  # cues read but rejected as scene text (not in the subtitle style)
    dropped: int = 0  # lines of scene text read with a subtitle, dropped from its text
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    source_errors: int = 0
    translation: TranslationStats | None = None  # when translating

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        """Media seconds processed per wall second."""
        return self.position / self.elapsed if self.elapsed > 0 else 0.0


class Pipeline:
    """Runs sources through the stages with one engine (and translators), which it keeps between runs.

    With ``[translate] languages`` set, final cues get their translations
    before they leave (``on_revision`` None), or leave at once and come again
    translated through ``on_revision`` (live). A translation request that
    nothing configured can serve fails here, before any decoding.
    """

    def __init__(
        self,
        config: Config | None = None,
        engine: Engine | None = None,
        on_progress: Callable[[Stats], None] | None = None,
        progress_interval: float = 0.5,
        on_revision: Callable[[CueUpdate], None] | None = None,
    ) -> None:
        self.config = config or Config()
        self._engine = engine
        self._owns_engine = engine is None
        self.on_progress = on_progress
        self.progress_interval = progress_interval
        self.on_revision = on_revision
        self.stats = Stats()
        self.bands: list[Band] = []
        self._last_report = 0.0
        self.translation_plan = plan_translation(self.config)
        self.glossaries = load_glossaries(self.config.translate.glossary, list(self.translation_plan))
        self._translators: dict[str, Translator] | None = None

    @property
    def engine(self) -> Engine:
        """The OCR engine, created on first use (model loading is the slow part of start-up)."""
        if self._engine is None:
            recognizer = self.config.recognizer
            try:
                name = engine_for(recognizer.engine, recognizer.lang)
            except LanguageError as exc:
                raise EngineError(str(exc)) from None
            options = self.config.engine_options(name)
            if name == "tesseract" and recognizer.lang:
                options["lang"] = recognizer.lang
            self._engine = create_engine(name, **options)
        return self._engine

    @property
    def translators(self) -> dict[str, Translator]:
        """Target language -> translator, built on first use (the image translator shares the OCR engine)."""
        if self._translators is None:
            needs_engine = "image" in self.translation_plan.values()
            self._translators = build_translators(self.config, self.translation_plan, self.engine if needs_engine else None)
        return self._translators

    def check_translators(self) -> None:
        """Fail now (``TranslateError``) when a translator cannot work at all, e.g. its endpoint does not answer."""
        for translator in dict.fromkeys(self.translators.values()):
            run_on_engine_loop(translator.check())

    def updates(self, source: VideoSource) -> Iterator[CueUpdate]:
        """Partial, final and clear updates for ``source``, in media order."""
        self.stats = stats = Stats(duration=source.duration)
        self.bands = self.resolve_bands(source)
        detectors = [Detector(band, self.config.detector) for band in self.bands]
        self.engine.reset()
        learner = self._band_learner(source)
        stage = None
        if self.translation_plan:  # made first: a translator that cannot be built fails before anything starts
            stage = TranslationStage(self.translators, self.glossaries, context=self.config.translate.context,
                                     on_revision=self.on_revision)
        recognizer = Recognizer(self.engine, self.config.recognizer)
        merger = Merger(self.config.merger)
        # A file is judged after a first look at its subtitles; a live stream is never held back.
        style = StyleFilter(self.config.style, source.width, source.height, hold=isinstance(source, VideoSource))
        merged = style.process(merger.process(recognizer.process(self._detect(source, detectors, learner))))
        if stage is not None:  # after the style check: scene text is never translated
            merged = stage.process(merged)
        try:
            for update in merged:
                self._collect(recognizer, merger)
                stats.rejected, stats.dropped = style.rejected, style.dropped
                if update.standing:
                    stats.cues += 1
                    self._report()  # cues close after decoding has moved on (OCR runs behind it)
                yield update
            self._report(force=True)
        finally:
            if stage is not None:
                if self.on_revision is not None:
                    stage.drain(timeout=5.0)  # the last cues' translations, if they come soon
                stats.translation = stage.collect()
            recognizer.close()
            stats.finished = time.perf_counter()
            stats.source_errors = getattr(source, "errors", 0)
            self._collect(recognizer, merger)

    def cues(self, source: VideoSource) -> Iterator[Cue]:
        """The final cues of ``source`` as they close (what ``extract()`` yields), keeping this engine."""
        for update in self.updates(source):
            if update.standing:
                yield update.cue

    def _collect(self, recognizer: Recognizer, merger: Merger) -> None:
        self.stats.crops_read = recognizer.crops_read
        self.stats.recognize = recognizer.busy_seconds
        self.stats.ocr_wait = recognizer.wait_seconds
        self.stats.merge = merger.seconds

    def resolve_bands(self, source: VideoSource) -> list[Band]:
        spec = self.config.region.band
        if spec.strip().lower() == "auto":
            if "://" in source.spec:
                log.info("region auto: %s is a stream; the bottom band until its first seconds show more", source.spec)
                spec = "bottom"
            else:
                return auto_bands(source.spec, self.config.region, self.config.detector)
        return parse_bands(spec, source.width, source.height, self.config.region)

    def _band_learner(self, source: VideoSource) -> BandLearner | None:
        """A stream with band "auto" cannot be sampled ahead: it learns its bands as it plays."""
        seconds = self.config.region.live_learn_seconds
        if self.config.region.band.strip().lower() != "auto" or "://" not in source.spec or seconds <= 0:
            return None
        return BandLearner(self.config.region, self.config.detector, source.width, source.height, seconds)

    def _adopt(self, bands: list[Band], detectors: list[Detector]) -> None:
        """Learned bands take effect from the next frame: a new band gets a detector, and the
        watermarks found are masked in the bands already watched."""
        for band in bands:
            watching = [detector for detector in detectors if detector.band.position == band.position]
            if watching:
                watching[0].mask_out(band.ignore)
            else:
                detectors.append(Detector(band, self.config.detector))
                log.info("region auto: subtitles at the %s too, watched from %.1f s on", band.position, self.stats.position)
        self.bands = [detector.band for detector in detectors]

    def _detect(self, source: VideoSource, detectors: list[Detector], learner: BandLearner | None = None) -> Iterator[Event]:
        stats = self.stats
        every = max(1, self.config.detector.sample_every)
        for frame in self._timed(source.frames()):
            if isinstance(frame, StreamBreak):  # a live stream dropped: what was on screen ends now
                for detector in detectors:
                    yield from detector.interrupt()
                yield Tick(frame.time, flush=True)
                continue
            stats.frames += 1
            stats.position = frame.time
            if learner is not None:
                learned = learner.push(frame)
                if learned is not None:
                    learner = None
                    self._adopt(learned, detectors)
            if frame.index % every == 0:
                started = time.perf_counter()
                events = [event for detector in detectors for event in detector.push(frame)]
                stats.detect += time.perf_counter() - started
                yield from events
                yield Tick(frame.time)
            self._report()
        for detector in detectors:
            yield from detector.finish()

    def _report(self, force: bool = False) -> None:
        """Call ``on_progress`` at most every ``progress_interval`` seconds (and at the end)."""
        now = time.perf_counter()
        if self.on_progress is not None and (force or now - self._last_report >= self.progress_interval):
            self._last_report = now
            self.on_progress(self.stats)

    def _timed(self, iterator: Iterator[Frame | StreamBreak]) -> Iterator[Frame | StreamBreak]:
        """Yield the source's frames, adding the time spent decoding each to ``stats.decode``."""
        iterator = iter(iterator)
        while True:
            before = time.perf_counter()
            try:
                frame = next(iterator)
            except StopIteration:
                return
            self.stats.decode += time.perf_counter() - before
            yield frame

    def close(self) -> None:
        """Close the translators, and the engine if this pipeline created it."""
        for translator in dict.fromkeys((self._translators or {}).values()):
            run_on_engine_loop(translator.aclose())
        self._translators = None
        if self._owns_engine and self._engine is not None:
            run_on_engine_loop(self._engine.aclose())
            self._engine = None


def build_config(config: Config | None, config_file: str | Path | None, overrides: dict[str, Any]) -> Config:
    """A config from an object or file plus ``section__key=value`` (or ``"section.key"``) overrides."""
    flat = {key.replace("__", "."): value for key, value in overrides.items()}
    for key in flat:
        if "." not in key:
            raise ConfigError(f"unknown option {key!r}; use section__key, e.g. detector__sample_every=5")
    if config is None:
        return Config.load(config_file, flat, origin="extract() options")
    config.override(flat, origin="extract() options")
    return config


def stream(
    source: str | Path | VideoSource,
    *,
    config: Config | None = None,
    config_file: str | Path | None = None,
    engine: Engine | str | None = None,
    on_progress: Callable[[Stats], None] | None = None,
    **overrides: Any,
) -> Iterator[CueUpdate]:
    """Open ``source`` now (errors raise here) and return a lazy generator of updates."""
    config = build_config(config, config_file, overrides)
    if isinstance(engine, str):
        config.recognizer.engine = engine
        engine = None
    pipeline = Pipeline(config, engine, on_progress)  # a translation nothing can serve fails here
    opened = source if isinstance(source, VideoSource) else VideoSource(source, config.source)
    return _run(pipeline, opened, close_source=opened is not source)


def _run(pipeline: Pipeline, source: VideoSource, close_source: bool) -> Iterator[CueUpdate]:
    try:
        yield from pipeline.updates(source)
    finally:
        pipeline.close()
        if close_source:
            source.close()


def extract(source: str | Path | VideoSource, **options: Any) -> Iterator[Cue]:
    """Final cues of ``source`` as they close: a lazy generator.

    Options: ``config`` (a :class:`Config`), ``config_file`` (TOML path), ``engine``
    (a name or an :class:`Engine`), ``on_progress`` (called with :class:`Stats`),
    and any setting as ``section__key=value`` (e.g. ``region__band="auto"``).
    With ``translate__languages=["fr"]`` (and a translator) each cue carries
    ``cue.translations["fr"]``; cues that could not be translated are flagged.
    """
    updates = stream(source, **options)
    return (update.cue for update in updates if update.standing)


__all__ = ["Pipeline", "Stats", "extract", "stream", "build_config", "Frame"]
