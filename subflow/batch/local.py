"""Local mode: a pool of worker processes on this machine, one engine in each.

Each worker builds one :class:`~subflow.pipeline.Pipeline` (its engine loads
once) and runs whole videos through it, so decoding, detection and OCR of
different videos overlap on all cores. One engine per worker, because a shared
engine process did no better on the CPU (docs/batch.md has the figures): a
crop read in the worker needs no copy to another process, the embedded engine
gains nothing from bigger batches, and no single engine stage holds up the
workers as cores grow.

A worker that dies (killed, out of memory, a crash in a decoder) breaks the
pool: the pool is rebuilt and the videos that were in it are tried again, up
to ``batch.attempts`` times. Workers ignore SIGINT; the driver stops them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..config import Config
from ..pipeline import Pipeline
from .inputs import Item
from .work import GPU_ENGINES, VideoResult, extract_video

_pipeline: Pipeline | None = None  # the worker process's pipeline, kept across its videos


def _start_worker(config: Config) -> None:
    global _pipeline
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the driver decides
    _pipeline = Pipeline(config)


def _run_video(item: Item) -> VideoResult:
    assert _pipeline is not None
    return extract_video(_pipeline, item)


class LocalRunner:
    """Runs videos on ``workers`` processes, yielding each result as it completes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        # A GPU model loaded once per core would not fit: one worker unless told otherwise
        # (``--ray local`` shares one GPU engine among many decoding processes).
        gpu = config.recognizer.engine in GPU_ENGINES
        self.workers = config.batch.workers or (1 if gpu else os.cpu_count() or 1)
        self.attempts = max(1, config.batch.attempts)

    def describe(self) -> str:
        text = f"local: {self.workers} worker processes, one {self.config.recognizer.engine} engine each"
        if self.config.recognizer.engine in GPU_ENGINES and not self.config.batch.workers:
            text += " (a GPU engine: --ray local lets many decoders share it)"
        return text

    def close(self) -> None:
        """Nothing outlives :meth:`run` here (its pool ends with it); Ray mode has a cluster to leave."""

    def engine_stats(self) -> list[dict]:
        """Engines live inside the workers here; only Ray mode's shared engines have calls to report."""
        return []

    def run(self, items: list[Item], stop: threading.Event) -> Iterator[VideoResult]:
        """Results as videos finish; returns early, stopping the workers, once ``stop`` is set."""
        todo = list(reversed(items))
        tries: dict[str, int] = {}
        while todo:
            pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(self.config,)
            )
            running: dict[Future, Item] = {}
            try:
                while todo or running:
                    # Only as many videos as workers are handed out, so a broken pool
                    # charges a retry to the videos that were really being worked on.
                    while todo and len(running) < self.workers:
                        item = todo.pop()
                        tries[item.key] = tries.get(item.key, 0) + 1
                        running[pool.submit(_run_video, item)] = item
                    done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                    if stop.is_set():
                        return
                    broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
                    if broken:  # every video in the pool is lost with it: collect them all
                        done, _ = wait(running)
                    for future in done:
                        item = running.pop(future)
                        result = self._outcome(future, item, tries, todo)
                        if result is not None:
                            yield result
                    if broken:
                        break  # a new pool for what is left
            finally:
                if running:  # stopped: end the workers now, not after their videos
                    for child in multiprocessing.active_children():
                        child.terminate()
                pool.shutdown(wait=True, cancel_futures=True)

    def _outcome(self, future: Future, item: Item, tries: dict[str, int], todo: list[Item]) -> VideoResult | None:
        """The video's result; None when its worker died and it goes back in the queue."""
        try:
            result = future.result()
        except BrokenProcessPool:
            if tries[item.key] < self.attempts:
                todo.append(item)
                return None
            result = VideoResult(item.key, error=f"the worker process died {tries[item.key]} times on it (crash or killed)")
        result.attempts = tries[item.key]
        return result
