"""One video of a batch: run it through the pipeline, then write its files.

Both runners (local processes, Ray tasks) call :func:`extract_video` with a
:class:`~subflow.pipeline.Pipeline` that keeps its engine between videos, the
very pipeline ``subflow extract`` uses, and hand the result back to the
driver, which writes the outputs with :func:`write_outputs` through the same
sinks as ``extract``. So a video's files are byte-identical to what
``subflow extract`` writes for it, and files only need to be reachable from the
driver (Ray workers on other machines send their cues, not files).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..engines import EngineError
from ..pipeline import Pipeline
from ..records import Cue
from ..sinks import SinkError, open_tracks, track_outputs
from ..source import SourceError, VideoSource
from .inputs import Item

# Engines that load a model onto a GPU: one per GPU (Ray actors), never one per worker process.
GPU_ENGINES = frozenset({"hunyuan", "hunyuan-transformers"})


@dataclass
class VideoResult:
    """A video's cues, or the one-line reason it failed."""

    key: str
    cues: list[Cue] = field(default_factory=list)
    error: str = ""
    video_size: tuple[int, int] | None = None
    duration: float | None = None  # media seconds
    elapsed: float = 0.0
    crops: int = 0
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds: decode, detect, ocr (engine busy), ocr_wait
    worker: str = ""
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return not self.error


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def extract_video(pipeline: Pipeline, item: Item) -> VideoResult:
    """Every final cue of one video. A bad input or a failing engine is this video's error, never the batch's."""
    started = time.perf_counter()
    result = VideoResult(item.key, worker=worker_name())
    try:
        with VideoSource(item.spec, pipeline.config.source) as source:
            result.video_size = (source.width, source.height)
            for cue in pipeline.cues(source):
                cue.image = None  # not written to any file; no need to ship it to the driver
                result.cues.append(cue)
            result.duration = source.duration or pipeline.stats.position
            stats = pipeline.stats
            result.crops = stats.crops_read
            result.stages = {
                name: round(value, 3)
                for name, value in (("decode", stats.decode), ("detect", stats.detect), ("ocr", stats.recognize), ("ocr_wait", stats.ocr_wait))
            }
    except (SourceError, EngineError, SinkError) as exc:
        result.error = str(exc)
    except Exception as exc:  # an unexpected failure on one video must not end the others
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    result.elapsed = time.perf_counter() - started
    return result


def write_outputs(
    result: VideoResult, paths: list[Path], formats: list[str], languages: Sequence[str] = (), bilingual: bool = False
) -> list[Path]:
    """Write each format's files atomically (temp file + rename), as ``extract`` does: the original and,
    with translations, ``NAME.LANG.EXT`` per language (and the bilingual files). Returns every file written."""
    written: list[Path] = []
    for path, fmt in zip(paths, formats):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from None
        with open_tracks(path, fmt, languages=languages, bilingual=bilingual, video_size=result.video_size) as sink:
            for cue in result.cues:
                sink.write(cue)
        written += [target for target, _, _ in track_outputs(path, fmt, languages, bilingual)]
    return written
