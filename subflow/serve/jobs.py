"""The job queue: one queue per engine, a few worker threads per queue, one engine shared by them.

Each engine (``rapid``, ``hunyuan``...) is loaded once and shared by every job
that uses it and by re-reads, so a GPU engine batches crops across jobs that
run at the same time (``serve.jobs_per_engine`` of them). A job runs through
:class:`subflow.pipeline.Pipeline` like ``subflow extract``; each final cue
is committed to the database as it closes, with the crop it was read from.

A job that is running when the server stops stays ``running`` in the
database; the next start puts it back in the queue and runs it from the start.
"""

from __future__ import annotations

import argparse
import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError
from ..engines import ENGINES, Engine, EngineError, create_engine
from ..pipeline import Pipeline, Stats
from ..recognizer import run_on_engine_loop
from ..sinks import SinkError
from ..source import SourceError, VideoSource
from .media import save_png
from .store import Store, cue_row

log = logging.getLogger(__name__)

_PROGRESS_SAVE_EVERY = 2.0  # seconds between progress writes to the database
# Job options that are flags of `subflow extract` (the rest of its settings go through "set").
JOB_FLAGS = ("region", "engine", "task", "target", "sample_every", "fast")


def job_config(server: argparse.Namespace, options: dict[str, Any]) -> Config:
    """The config of one job, built as ``subflow extract`` builds it: the server's ``--config`` and
    ``--set``, then the job's ``set`` and flags (its engine defaults to the server's ``--engine``)."""
    from ..cli import load_config, pipeline_defaults  # the CLI's own mapping of flags to settings

    sets = list(server.set)
    for key, value in (options.get("set") or {}).items():
        if key.startswith("engines."):
            raise ConfigError(f"set {key}: engine settings belong to the server (engines are shared by jobs)")
        if key.startswith("serve."):
            raise ConfigError(f"set {key}: server settings cannot be changed by a job")
        sets.append(f"{key}={value}")
    flags = {flag: options.get(flag) for flag in JOB_FLAGS}
    flags["engine"] = flags["engine"] or server.engine
    flags["fast"] = bool(flags["fast"])
    config = load_config(pipeline_defaults(config=server.config, set=sets, **flags))
    if config.recognizer.engine not in ENGINES:
        raise ConfigError(f"unknown engine {config.recognizer.engine!r}; choose one of: {', '.join(ENGINES)}")
    return config


@dataclass
class EngineUse:
    engine: Engine
    running: int = 0  # jobs using it now
    peak: int = 0  # most jobs that used it at once
    jobs: int = 0  # jobs run on it
    rereads: int = 0


class Engines:
    """One engine per name, created on first use and shared by every job and re-read."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._uses: dict[str, EngineUse] = {}
        self._lock = threading.Lock()
        self._loading = collections.defaultdict(threading.Lock)  # one per engine: loading a GPU model blocks only its users

    def get(self, name: str) -> EngineUse:
        with self._loading[name]:
            use = self._uses.get(name)
            if use is None:
                use = EngineUse(create_engine(name, **self.config.engine_options(name)))
                with self._lock:
                    self._uses[name] = use
            return use

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"name": name, "loaded": name in self._uses, "description": self._uses[name].engine.describe() if name in self._uses else None,
                 **({k: getattr(self._uses[name], k) for k in ("running", "peak", "jobs", "rereads")} if name in self._uses else {})}
                for name in ENGINES
            ]  # fmt: skip

    def close(self) -> None:
        with self._lock:
            for use in self._uses.values():
                try:
                    run_on_engine_loop(use.engine.aclose())
                except Exception:  # closing is best effort at shutdown
                    log.exception("closing an engine failed")
            self._uses.clear()


class Jobs:
    """Queues and workers (see the module doc)."""

    def __init__(self, store: Store, engines: Engines, data_dir: Path, server: argparse.Namespace, per_engine: int) -> None:
        self.store = store
        self.engines = engines
        self.data_dir = data_dir
        self.server = server  # the server's --config, --set and --engine: every job starts from them
        self.per_engine = max(1, per_engine)
        self.progress: dict[str, dict[str, Any]] = {}
        self._queues: dict[str, queue.Queue[str | None]] = {}
        self._threads: list[threading.Thread] = []
        self._cancel: dict[str, threading.Event] = collections.defaultdict(threading.Event)
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def folder(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    def start(self) -> None:
        """Queue every job that was queued or running when the server last stopped."""
        for job_id in self.store.requeue_interrupted():
            job = self.store.job(job_id)
            if job is not None:
                self.submit(job_id, job["engine"])

    def submit(self, job_id: str, engine: str) -> None:
        with self._lock:
            if engine not in self._queues:
                self._queues[engine] = queue.Queue()
                for n in range(self.per_engine):
                    thread = threading.Thread(target=self._worker, args=(engine,), name=f"serve-{engine}-{n}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
            self._queues[engine].put(job_id)

    def cancel(self, job_id: str) -> None:
        """A queued job is dropped from the queue; a running one stops at its next cue (cues so far are kept)."""
        self._cancel[job_id].set()
        job = self.store.job(job_id)
        if job is not None and job["state"] == "queued":
            self.store.update_job(job_id, state="cancelled", finished=time.time())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers; running jobs stay ``running`` in the database and are re-queued on start."""
        self._stopping.set()
        with self._lock:
            for q in self._queues.values():
                for _ in range(self.per_engine):
                    q.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _worker(self, engine: str) -> None:
        q = self._queues[engine]
        while not self._stopping.is_set():
            job_id = q.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception:  # a worker never dies with a job: the job fails, the next one runs
                log.exception("job %s failed", job_id)
                self.store.update_job(job_id, state="failed", error="internal error (see the server log)", finished=time.time())
            finally:
                self.progress.pop(job_id, None)

    def _run(self, job_id: str) -> None:
        job = self.store.job(job_id)
        if job is None or job["state"] != "queued" or self._cancel[job_id].is_set():
            return
        self.store.clear_cues(job_id)
        self.store.update_job(job_id, state="running", started=time.time(), finished=None, error=None, position=0.0)
        crops = self.folder(job_id) / "crops"
        crops.mkdir(parents=True, exist_ok=True)
        saved = [0.0]

        def on_progress(stats: Stats) -> None:
            self.progress[job_id] = _progress(stats)
            if time.monotonic() - saved[0] >= _PROGRESS_SAVE_EVERY:
                saved[0] = time.monotonic()
                self.store.update_job(job_id, position=stats.position)

        try:
            config = job_config(self.server, job["options"])
            use = self.engines.get(config.recognizer.engine)
        except (ConfigError, EngineError) as exc:
            self.store.update_job(job_id, state="failed", error=str(exc), finished=time.time())
            return
        with self._lock:
            use.running += 1
            use.peak = max(use.peak, use.running)
            use.jobs += 1
        pipeline = Pipeline(config, use.engine, on_progress=on_progress)
        state, error = "done", None
        try:
            with VideoSource(job["media"], config.source) as source:
                for update in pipeline.updates(source):
                    if self._stopping.is_set():
                        return  # stays "running": re-queued on the next start
                    if self._cancel[job_id].is_set():
                        state = "cancelled"
                        break
                    cue = update.cue
                    if update.standing:
                        crop = None
                        if cue.image is not None:
                            crop = f"c{cue.index}.png"
                            save_png(cue.image, crops / crop)
                        self.store.add_cue(job_id, cue_row(cue, crop))
        except (SourceError, SinkError, EngineError, ConfigError) as exc:
            state, error = "failed", str(exc).replace(job["media"], job["name"])
        finally:
            with self._lock:
                use.running -= 1
        stats = pipeline.stats
        self.store.update_job(
            job_id,
            state=state,
            error=error,
            finished=time.time(),
            position=stats.position,
            stats={**_progress(stats), "crops_read": stats.crops_read, "engine": use.engine.describe(),
                   "seconds": {"decode": stats.decode, "detect": stats.detect, "recognize": stats.recognize, "merge": stats.merge}},
        )  # fmt: skip


def _progress(stats: Stats) -> dict[str, Any]:
    return {
        "position": round(stats.position, 3),
        "duration": stats.duration,
        "frames": stats.frames,
        "cues": stats.cues,
        "fps": round(stats.fps, 1),
        "realtime_factor": round(stats.realtime_factor, 2),
        "elapsed": round(stats.elapsed, 2),
    }
