"""Ray mode: decoding and detection as Ray tasks, the OCR engine as Ray actors that many videos share.

Why Ray core (tasks and actors) and not Ray Data's ``map_batches``: a video is
one stream whose reads feed back into it (the recogniser skips a segment's
later frames once two reads agree, and the merger needs every read of a video
in order), so it is not a table of independent rows. Each video is one task
running the same :class:`~subflow.pipeline.Pipeline` as ``subflow extract``;
only its engine is a :class:`RemoteEngine`, which forwards each ``recognize``
batch to an :class:`EngineActor`. Engines are behind one interface, so nothing
else in the pipeline knows it is remote.

- Batching across videos: an actor serves many videos at once; while its engine
  is busy, requests queue, and the next engine call takes every queued crop (up
  to ``batch.engine_batch``). On a GPU, one engine call reads crops of many
  videos. An engine that keeps state per video (``Engine.for_input``) gives each
  video a view of its loaded model instead; the views of different videos read
  side by side, each one call at a time, as the engines of local mode's workers do.
- Back-pressure: each video keeps at most ``batch.inflight`` requests in flight
  (the recogniser's own bound), and the driver gives an actor at most
  ``batch.videos_per_engine`` videos at a time (Ray's documented pattern of
  bounding pending work with ``ray.wait``). A fast decoder waits for its
  answers; it cannot flood an actor.
- Failures, configured rather than defaulted: a decode task whose worker dies is
  retried by Ray (``max_retries = batch.attempts - 1``; errors of the video
  itself are results, not retried). An engine actor that dies is restarted
  (``max_restarts = batch.restarts``) and the calls it had are retried
  (``max_task_retries``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

try:
    import ray
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("Ray mode needs Ray: pip install 'subflow[ray]'") from exc

from ..config import Config, ConfigError
from ..engines import Engine, EngineError, create_engine
from ..pipeline import Pipeline
from ..records import Recognition, Task
from .inputs import Item
from .work import GPU_ENGINES, VideoResult, extract_video, worker_name


@dataclass(eq=False)  # told apart by identity (they hold arrays)
class _Request:
    crops: list[np.ndarray]
    task: Task
    engine: Engine  # the video's engine (see Engine.for_input)
    answer: asyncio.Future


class EngineActor:
    """One OCR engine in a Ray actor, serving the crops of many videos in shared batches."""

    def __init__(self, config: Config) -> None:
        name = config.recognizer.engine
        started = time.perf_counter()
        self.engine = create_engine(name, **config.engine_options(name))
        self.engine.load()  # now, while the first tasks start, not on their first crops
        self.load_s = time.perf_counter() - started  # a GPU engine's compilation shows here
        self.limit = config.batch.engine_batch or 4 * self.engine.max_batch
        self.videos: dict[str, Engine] = {}  # video -> the engine it reads with (Engine.for_input)
        self.waiting: list[_Request] = []
        self.busy: dict[int, int] = {}  # id of an engine (or view) -> its calls running now
        self.calls = self.crops = self.requests = 0
        self.call_s = self.slowest_call_s = 0.0  # engine time, and the longest call (a recompilation shows there)

    def info(self) -> dict:
        return {"max_batch": self.engine.max_batch, "describe": self.engine.describe(), "worker": worker_name()}

    def stats(self) -> dict:
        # Ray sets OMP_NUM_THREADS to the actor's reserved CPUs (at least 1): torch's CPU threads follow it
        return {"calls": self.calls, "crops": self.crops, "requests": self.requests, "load_s": round(self.load_s, 2),
                "call_s": round(self.call_s, 2), "slowest_call_s": round(self.slowest_call_s, 2),
                "omp_threads": os.environ.get("OMP_NUM_THREADS", "")}

    async def recognize(self, crops: Sequence[np.ndarray], task: Task, video: str) -> list[Recognition]:
        engine = self.videos.get(video)
        if engine is None:  # a video's first crops: per-video state starts fresh, as extract's does
            engine = self.videos[video] = self.engine.for_input()
        request = _Request(list(crops), task, engine, asyncio.get_running_loop().create_future())
        self.waiting.append(request)
        self._start_calls()
        return await request.answer

    def forget(self, video: str) -> None:
        """A video is finished: drop its engine view."""
        self.videos.pop(video, None)

    def _start_calls(self) -> None:
        while batch := self._take():
            engine = id(batch[0].engine)
            self.busy[engine] = self.busy.get(engine, 0) + 1
            asyncio.get_running_loop().create_task(self._call(batch))

    def _take(self) -> list[_Request]:
        """Queued requests for one engine call, none if every waiting request's engine is busy.

        Each engine (a view per video, or the one engine all videos share) runs at most its
        ``max_inflight`` calls at once, as it would in ``extract``; views of different videos run
        side by side, like the engines of local mode's workers. A call takes the oldest request
        whose engine has a free slot and the later ones of the same engine and task, in their
        order, up to ``limit`` crops."""
        first = next((r for r in self.waiting if self.busy.get(id(r.engine), 0) < max(1, r.engine.max_inflight)), None)
        if first is None:
            return []
        batch, size = [], 0
        for request in list(self.waiting):
            if request.engine is not first.engine or request.task != first.task:
                continue
            if batch and size + len(request.crops) > self.limit:
                break  # a later request of this engine must not go before this one
            batch.append(request)
            size += len(request.crops)
            self.waiting.remove(request)
        return batch

    async def _call(self, batch: list[_Request]) -> None:
        started = time.perf_counter()
        try:
            answers = await batch[0].engine.recognize([crop for r in batch for crop in r.crops], batch[0].task)
            start = 0
            for request in batch:
                request.answer.set_result(answers[start : start + len(request.crops)])
                start += len(request.crops)
            self.calls += 1
            self.crops += start
            self.requests += len(batch)
        except Exception as exc:  # each waiting video learns of the failure
            for request in batch:
                if not request.answer.done():
                    request.answer.set_exception(exc)
        finally:
            seconds = time.perf_counter() - started
            self.call_s += seconds
            self.slowest_call_s = max(self.slowest_call_s, seconds)
            engine = id(batch[0].engine)
            self.busy[engine] -= 1
            if not self.busy[engine]:
                del self.busy[engine]
            self._start_calls()


class RemoteEngine(Engine):
    """The pipeline's side of an :class:`EngineActor`: ``recognize`` is a call to the actor.

    The actor's :meth:`EngineActor.info` comes as a reference, fetched when the pipeline first
    needs it (its batch size), so a task opens its video while the actor is still loading.
    """

    name = "ray"

    def __init__(self, actor: "ray.actor.ActorHandle", info: "ray.ObjectRef", inflight: int) -> None:
        super().__init__()
        self.actor = actor
        self.video = uuid.uuid4().hex  # this video's engine state on the actor (a retried task starts afresh)
        self.max_inflight = inflight
        self._info_ref = info
        self._info: dict | None = None

    @property
    def info(self) -> dict:
        if self._info is None:
            self._info = ray.get(self._info_ref)
        return self._info

    @property
    def max_batch(self) -> int:  # type: ignore[override]
        return self.info["max_batch"]

    async def recognize(self, crops: Sequence[np.ndarray], task: Task) -> list[Recognition]:
        return await asyncio.wrap_future(self.actor.recognize.remote(list(crops), task, self.video).future())

    def describe(self) -> str:
        return f"{self.info['describe']}, in a Ray actor"


def _extract_task(item: Item, config: Config, actor: "ray.actor.ActorHandle", info: list) -> VideoResult:
    """A Ray task: one video through the pipeline, reading crops through ``actor``
    (``info``: the actor's info reference, in a list so that Ray does not wait for it before starting the task)."""
    remote = RemoteEngine(actor, info[0], config.batch.inflight)
    try:
        return extract_video(Pipeline(config, engine=remote), item)
    finally:
        actor.forget.remote(remote.video)


class RayRunner:
    """Runs videos as Ray tasks on a cluster, with a pool of engine actors."""

    def __init__(self, config: Config, address: str) -> None:
        self.config = config
        self.address = None if address == "local" else address
        self.actors: list = []
        self.infos: list = []  # each actor's info() reference: it answers once the engine has loaded
        self.engine: dict = {}
        self.per_engine = 1
        self.gpus = 0.0
        self.cpus = 0.0  # reserved by each engine actor

    def start(self) -> None:
        """Connect (or start a one-machine cluster for ``local``) and start creating the engine actors.

        Nothing waits for the actors here: they load their engines while :meth:`run` starts the first
        tasks, and :meth:`run` checks that they came up."""
        batch = self.config.batch
        try:
            ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=True, configure_logging=True)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            reason = str(exc).split(". ")[0].splitlines()[0]
            raise ConfigError(
                f"cannot reach the Ray cluster {self.address!r} ({reason}); start one with `ray start --head`, "
                "give its address (--ray HOST:PORT or ray://HOST:10001), or use --ray local"
            ) from None
        resources = ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        use_gpus = self.config.recognizer.engine in GPU_ENGINES and gpus >= batch.gpus_per_engine > 0
        self.gpus = batch.gpus_per_engine if use_gpus else 0.0
        count = batch.engines or (int(gpus // batch.gpus_per_engine) if use_gpus else max(1, int(cpus // 4)))
        self.cpus = _engine_cpus(batch.cpus_per_engine, cpus, count)
        actor_class = ray.remote(EngineActor).options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_restarts=batch.restarts,
            max_task_retries=batch.restarts,
            max_concurrency=1000,  # async calls waiting for a batch; the real bound is set by the driver and the videos
        )
        self.actors = [actor_class.remote(self.config) for _ in range(count)]
        self.infos = [actor.info.remote() for actor in self.actors]
        free = max(batch.cpus_per_task, cpus - count * self.cpus)
        self.per_engine = batch.videos_per_engine or max(1, int(free // batch.cpus_per_task) // count)

    def _engines_up(self) -> dict:
        """The first actor's info, once every actor has loaded its engine; one that cannot is a usage error."""
        if not self.engine:
            try:
                self.engine = ray.get(self.infos)[0]
            except ray.exceptions.RayActorError as exc:
                raise EngineError(f"the engine actor cannot start: {_one_line(exc)}") from None
        return self.engine

    def describe(self) -> str:
        where = f"{self.gpus:g} GPU each" if self.gpus else f"{self.cpus:g} CPU each"
        return (
            f"ray: {len(self.actors)} engine actors ({self.engine.get('describe') or self.config.recognizer.engine}; {where}), "
            f"up to {self.per_engine} videos per actor"
        )

    def run(self, items: list[Item], stop: threading.Event) -> Iterator[VideoResult]:
        """Results as videos finish; returns early, cancelling the running tasks, once ``stop`` is set."""
        options: dict = {}
        if self.config.source.hwaccel:
            # Ray hides the GPUs from tasks that reserve none (CUDA_VISIBLE_DEVICES=""), and NVDEC with
            # them; a decoder uses the GPU's video engine, not the compute the engine actors reserve.
            options["runtime_env"] = {"env_vars": {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}}
        task = ray.remote(_extract_task).options(
            num_cpus=self.config.batch.cpus_per_task,
            max_retries=max(0, self.config.batch.attempts - 1),
            retry_exceptions=False,
            **options,
        )
        config_ref = ray.put(self.config)
        todo = deque(items)
        load = [0] * len(self.actors)
        running: dict = {}
        try:
            while todo or running:
                while todo and min(load) < self.per_engine:
                    index = load.index(min(load))
                    item = todo.popleft()
                    running[task.remote(item, config_ref, self.actors[index], [self.infos[index]])] = (item, index)
                    load[index] += 1
                self._engines_up()  # the first tasks are starting meanwhile
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
                if stop.is_set():
                    return
                for ref in ready:
                    item, index = running.pop(ref)
                    load[index] -= 1
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as exc:  # retries used up: the worker kept dying
                        yield VideoResult(item.key, error=f"lost on the Ray cluster: {_one_line(exc)}")
        finally:
            for ref in running:  # stopped: end what is still running
                ray.cancel(ref, force=True)

    def engine_stats(self) -> list[dict]:
        try:
            return ray.get([actor.stats.remote() for actor in self.actors], timeout=10)
        except ray.exceptions.RayError:
            return []

    def close(self) -> None:
        if ray.is_initialized():
            ray.shutdown()


def _engine_cpus(setting: float, cluster_cpus: float, actors: int) -> float:
    """CPUs an engine actor reserves: the setting, or for -1 (auto) one CPU, except on a cluster with
    fewer than 4 CPUs per actor. There the actor's reserved CPU would leave a decoder idle: its work is
    done for the tasks that wait on its answers, which already hold CPUs (on 2 cores, one task and an
    actor holding a CPU each ran the batch slower than two tasks sharing the actor, docs/batch.md)."""
    if setting >= 0:
        return setting
    return 1.0 if cluster_cpus >= 4 * actors else 0.0


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
