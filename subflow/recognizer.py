"""Recognition stage: read the detector's shots with an OCR engine, in batches.

The engine runs on an asyncio loop in a background thread, so decoding and
change detection go on while crops are read; several batches may be in
flight (``engine.max_inflight``) for engines that serve many requests at once.
Events leave this stage in the order they came in, with each :class:`Shot`
replaced by a :class:`Read`. A segment's later shots are read only while its
text is unsettled: once two reads agree, further frames of it are skipped.
Segments the detector marks as continuing the previous one (the same text,
only clutter beside it changed) share its reads, and the whole chain is read
at most ``chain_reads`` times.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .config import RecognizerConfig
from .detector import Event, SegmentClosed, SegmentOpened, Shot, Tick
from .engines import Engine
from .records import Box, Position, Recognition, Task
from .region import Band
from .source import rgb_crop

# Unanswered crops allowed before the producer waits: bounds memory (a 1080p band crop is ~1.5 MB)
# when OCR is slower than decoding, while leaving engines that batch widely enough to work with.
_MAX_PENDING = 64

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def engine_loop() -> asyncio.AbstractEventLoop:
    """The process-wide event loop engines run on.

    One loop for the whole process, so an engine holding loop-bound resources
    (vLLM's AsyncLLM, HTTP clients) can serve many pipelines one after another.
    """
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="subflow-engines", daemon=True).start()
        return _loop


def run_on_engine_loop(coroutine):
    """Run a coroutine on :func:`engine_loop` from synchronous code and return its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, engine_loop()).result()


@dataclass
class Read:
    """The engine's answer for one shot (``recognition`` is None when the shot was not needed).

    ``crop`` is the RGB image that was read, kept so that a cue can show (or
    translate) the frame its winning read came from.
    """

    segment: int
    band: Band
    time: float
    recognition: Recognition | None
    crop: np.ndarray | None = field(default=None, repr=False)
    box: Box | None = None  # where ``crop`` sits in the frame (full-frame pixels)


class Recognizer:
    """Feeds shots to an engine and yields the event stream with reads in place of shots."""

    def __init__(self, engine: Engine, config: RecognizerConfig) -> None:
        self.engine = engine
        self.config = config
        self.task = Task(kind=config.task, target=config.target)  # type: ignore[arg-type]
        self.batch_size = config.batch_size or engine.max_batch
        self.crops_read = 0
        self.busy_seconds = 0.0  # time the engine spent on calls (summed over overlapping calls)
        self.wait_seconds = 0.0  # time the pipeline stood still waiting for answers
        self._loop = engine_loop()
        self._tasks: set[asyncio.Task] = set()  # this recogniser's work on the engine loop (touched there only)
        self._queue: asyncio.Queue = run_on_engine_loop(self._make_queue())
        self._spawn(self._batch_loop())
        self._segment_reads: dict[int, list[Future]] = {}  # reads of each open segment (or chain), until it closes
        self._last_closed: dict[Position, tuple[int, list[Future]]] = {}  # per band: a chain the next segment may continue
        self._continuations: set[int] = set()  # open segments that continue a chain

    async def _make_queue(self) -> asyncio.Queue:
        return asyncio.Queue()

    def process(self, events: Iterable[Event]) -> Iterator[Event | Read]:
        # Shots are replaced at once by a Read waiting for its answer, so no decoded frame stays referenced.
        pending: deque[tuple[Event | Read, Future | None]] = deque()
        for event in events:
            if isinstance(event, Tick):
                # No new event may come for a while (a subtitle staying on screen): hand on
                # the reads that are done now, not when the next event arrives.
                while pending and (event.flush or pending[0][1] is None or pending[0][1].done()):
                    yield self._finish(*pending.popleft())
                continue
            if isinstance(event, Shot):
                crop = rgb_crop(event.frame.image, event.box)
                future = self._submit(event, crop)
                pending.append((Read(event.segment, event.band, event.frame.time, None, crop, event.box), future))
            else:
                if isinstance(event, SegmentOpened):
                    self._opened(event)
                elif isinstance(event, SegmentClosed):
                    self._last_closed[event.band.position] = (event.segment, self._segment_reads.pop(event.segment, []))
                    self._continuations.discard(event.segment)
                pending.append((event, None))
            while pending and (pending[0][1] is None or pending[0][1].done() or len(pending) > _MAX_PENDING):
                yield self._finish(*pending.popleft())
        while pending:
            yield self._finish(*pending.popleft())

    def _opened(self, event: SegmentOpened) -> None:
        closed = self._last_closed.pop(event.band.position, None)
        if event.continues is not None and closed is not None and closed[0] == event.continues:
            self._segment_reads[event.segment] = closed[1]  # the chain's reads, shared
            self._continuations.add(event.segment)

    def _submit(self, shot: Shot, crop: np.ndarray) -> Future:
        earlier = self._segment_reads.setdefault(shot.segment, [])
        chain = shot.segment in self._continuations
        if shot.first and not chain:
            future = self._spawn(self._read(crop))
        else:
            future = self._spawn(self._read_if_needed(list(earlier), crop, chain))
        earlier.append(future)
        return future

    def _spawn(self, coroutine) -> Future:
        """Run ``coroutine`` on the engine loop as a task that :meth:`close` can cancel and wait for."""
        return asyncio.run_coroutine_threadsafe(self._tracked(coroutine), self._loop)

    async def _tracked(self, coroutine):
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            return await coroutine
        finally:
            self._tasks.discard(task)

    def _finish(self, event: Event | Read, future: Future | None) -> Event | Read:
        if future is not None:
            assert isinstance(event, Read)
            started = time.perf_counter()
            event.recognition = future.result()
            self.wait_seconds += time.perf_counter() - started
            if event.recognition is None:
                event.crop = None  # not read: nothing to show for it
        return event

    async def _read_if_needed(self, earlier: list[Future], crop: np.ndarray, chain: bool = False) -> Recognition | None:
        """Read a later frame of a segment unless the earlier reads already settle its text:
        two of them agree, the first is at least ``min_confidence`` sure, or (a chain of
        segments split by clutter) ``chain_reads`` of them read text. A chain with a blank read
        is never settled: there the text came and went beside static scenery (a word on a white
        apron), and each piece must be read to know whether it still shows."""
        answers = [answer for answer in [await asyncio.wrap_future(f) for f in earlier] if answer is not None]
        texts = [answer.lines for answer in answers if answer.lines]
        if chain and len(texts) < len(answers):
            return await self._read(crop)  # a piece of the chain read blank: text came and went in it
        if len(texts) != len(set(texts)):
            return None
        if answers and answers[0].lines and answers[0].confidence >= self.config.min_confidence:
            return None
        if chain and len(texts) >= self.config.chain_reads:
            return None
        return await self._read(crop)

    async def _read(self, crop: np.ndarray) -> Recognition:
        done: asyncio.Future = self._loop.create_future()
        await self._queue.put((crop, done))
        return await done

    async def _batch_loop(self) -> None:
        slots = asyncio.Semaphore(max(1, self.engine.max_inflight))
        while True:
            batch = [await self._queue.get()]
            deadline = self._loop.time() + self.config.max_wait_ms / 1000
            while len(batch) < self.batch_size:
                timeout = deadline - self._loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            await slots.acquire()
            self._loop.create_task(self._tracked(self._run_batch(batch, slots)))

    async def _run_batch(self, batch: list, slots: asyncio.Semaphore) -> None:
        started = time.perf_counter()
        try:
            answers = await self.engine.recognize([crop for crop, _ in batch], self.task)
            if len(answers) != len(batch):
                raise RuntimeError(f"engine {self.engine.name} returned {len(answers)} answers for {len(batch)} crops")
            for (_, done), answer in zip(batch, answers):
                done.set_result(answer)
            self.crops_read += len(batch)
        except Exception as exc:  # every waiting crop learns of the failure; none is dropped silently
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
        finally:
            self.busy_seconds += time.perf_counter() - started
            slots.release()

    def close(self) -> None:
        """Stop batching and cancel the reads still pending (the run was interrupted, or its consumer
        stopped early), and wait until they have ended, so no task is left behind half-way. The
        engine stays open: its owner closes it."""
        run_on_engine_loop(self._cancel_all())

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
