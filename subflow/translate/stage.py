"""The translation stage: after the merger, it adds translations to final cues; it never changes timing.

Final cues go to one lane per target language; a lane gathers them into
batches of its translator's ``batch_size`` (with the cues just before as
context) and runs them on the engine loop, at most ``concurrency`` batches of
a translator at once. Two ways to hand the result on:

* inline (``extract``, files, ``stream``): updates leave in their order, a
  final once its translations are in. At most ``window`` updates wait (by
  default twice what the translators take at once), so translation overlaps
  decoding and memory stays bounded.
* revise (live, ``on_revision`` given): every update leaves at once, the
  original final too; when a cue's translations are in, ``on_revision`` gets
  a copy of the final with them, one revision later. A slow or dead
  translator never delays a caption.

A translator's failure never raises here: the cue keeps its original text and
is flagged ``untranslated:LANG``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass, field

from ..records import Cue, CueUpdate
from ..recognizer import engine_loop
from .base import Translation, TranslationStats, Translator, Usage
from .glossary import Glossary

log = logging.getLogger(__name__)


@dataclass
class _Lane:
    """One target language: its translator, the batch being gathered and the cues before it."""

    lang: str
    translator: Translator
    glossary: Glossary | None
    size: int
    recent: collections.deque[Cue]
    batch: list[tuple[Cue, Future]] = field(default_factory=list)  # each cue with the promise of its translation
    context: list[Cue] = field(default_factory=list)


Promises = dict[str, Future]  # language -> the Translation of one cue, when it comes


class TranslationStage:
    """Adds translations to the final cues of an update stream (see the module doc for the two modes)."""

    def __init__(
        self,
        translators: dict[str, Translator],
        glossaries: dict[str, Glossary] | None = None,
        *,
        context: int = 3,
        on_revision: Callable[[CueUpdate], None] | None = None,
        window: int | None = None,
    ) -> None:
        self.on_revision = on_revision
        # Enough waiting finals to keep every translator busy twice over, and no more: each holds its crop.
        busy = sum(t.batch_size * t.concurrency for t in dict.fromkeys(translators.values()))
        self.window = window if window is not None else min(256, max(16, 2 * busy))
        self.stats = TranslationStats()
        glossaries = glossaries or {}
        self._lanes = [
            _Lane(lang, translator, glossaries.get(lang), 1 if on_revision else translator.batch_size,
                  collections.deque(maxlen=context))
            for lang, translator in translators.items()
        ]
        self._translators = list(dict.fromkeys(translators.values()))
        for translator in self._translators:
            translator.usage = Usage()
        self._loop = engine_loop()
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._outstanding: set[Future] = set()

    @property
    def languages(self) -> list[str]:
        return [lane.lang for lane in self._lanes]

    # ------------------------------------------------------------ driving

    def process(self, updates: Iterable[CueUpdate]) -> Iterator[CueUpdate]:
        if self.on_revision is not None:
            yield from self._revise(updates)
        else:
            yield from self._inline(updates)

    def _inline(self, updates: Iterable[CueUpdate]) -> Iterator[CueUpdate]:
        pending: collections.deque[tuple[CueUpdate, Promises | None]] = collections.deque()
        for update in updates:
            pending.append((update, self._submit(update.cue) if update.standing else None))
            while pending and (pending[0][1] is None or all(p.done() for p in pending[0][1].values())):
                yield self._finish(*pending.popleft())
            while len(pending) > self.window:
                yield self._finish(*pending.popleft())
        while pending:
            yield self._finish(*pending.popleft())

    def _revise(self, updates: Iterable[CueUpdate]) -> Iterator[CueUpdate]:
        for update in updates:
            yield update  # the original goes out at once
            if update.standing:
                self._revision_when_done(update, self._submit(update.cue))

    def _revision_when_done(self, update: CueUpdate, promises: Promises) -> None:
        """Once every language of the cue is in, hand a translated copy of the final to ``on_revision``
        (on the engine loop's thread; the original cue object, maybe being sent, is not touched)."""
        assert update.cue is not None and self.on_revision is not None
        remaining = set(promises)
        original, revision, on_revision = update.cue, update.revision + 1, self.on_revision

        def done(lang: str) -> None:
            remaining.discard(lang)
            if remaining:
                return
            cue = dataclasses.replace(original, translations=dict(original.translations), flags=list(original.flags))
            self._apply(cue, promises)
            on_revision(CueUpdate(cue, final=True, revision=revision, meta={"translation": True}))

        for lang, promise in promises.items():
            promise.add_done_callback(lambda _, lang=lang: done(lang))

    def drain(self, timeout: float | None = None) -> bool:
        """Send what is gathered and wait (at most ``timeout`` s) for every translation in flight; True if all came."""
        self._flush()
        _, not_done = wait(list(self._outstanding), timeout)
        return not not_done

    # ------------------------------------------------------------ lanes and batches

    def _submit(self, cue: Cue) -> Promises:
        promises: Promises = {}
        for lane in self._lanes:
            if not lane.batch:
                lane.context = list(lane.recent)
            promise: Future = Future()
            lane.batch.append((cue, promise))
            promises[lane.lang] = promise
            if len(lane.batch) >= lane.size:
                self._send(lane)
        return promises

    def _send(self, lane: _Lane) -> None:
        batch, context = lane.batch, lane.context
        cues = [cue for cue, _ in batch]
        lane.recent.extend(cues)
        lane.batch, lane.context = [], []
        future = asyncio.run_coroutine_threadsafe(self._translate(lane, cues, context), self._loop)
        self._outstanding.add(future)

        def deliver(done: Future) -> None:
            self._outstanding.discard(done)
            try:
                results = done.result()
            except BaseException as exc:  # cancelled with the loop: nothing came
                results = [Translation(None, reason=f"{type(exc).__name__}: {exc}") for _ in batch]
            for (_, promise), translation in zip(batch, results):
                promise.set_result(translation)

        future.add_done_callback(deliver)

    def _flush(self) -> None:
        for lane in self._lanes:
            if lane.batch:
                self._send(lane)

    async def _translate(self, lane: _Lane, batch: list[Cue], context: list[Cue]) -> list[Translation]:
        translator = lane.translator
        slots = self._slots.get(id(translator))
        if slots is None:
            slots = self._slots[id(translator)] = asyncio.Semaphore(translator.concurrency)
        async with slots:
            started = time.perf_counter()
            try:
                out = await translator.translate(batch, lane.lang, context, lane.glossary)
                if len(out) != len(batch):
                    raise RuntimeError(f"translator {translator.name} returned {len(out)} translations for {len(batch)} cues")
            except Exception as exc:  # a translator bug or crash: the originals stay, the cues are marked
                log.warning("translation into %s failed: %s", lane.lang, exc)
                out = [Translation(None, reason=f"{type(exc).__name__}: {exc}") for _ in batch]
            finally:
                self.stats.seconds += time.perf_counter() - started
        if lane.glossary is not None:
            out = [_checked(cue, t, lane.glossary) for cue, t in zip(batch, out)]
        return out

    # ------------------------------------------------------------ results

    def _finish(self, update: CueUpdate, promises: Promises | None) -> CueUpdate:
        if promises is not None:
            if not all(promise.done() for promise in promises.values()):
                self._flush()  # its batch may still be gathering
                wait(list(promises.values()))
            assert update.cue is not None
            self._apply(update.cue, promises)
        return update

    def _apply(self, cue: Cue, promises: Promises) -> None:
        for lang, promise in promises.items():
            translation: Translation = promise.result()
            if translation.text is None:
                cue.flags.append(f"untranslated:{lang}")
                self.stats.untranslated += 1
                self.stats.reasons[translation.reason] = self.stats.reasons.get(translation.reason, 0) + 1
                continue
            cue.translations[lang] = translation.text
            cue.flags.extend(f"{flag}:{lang}" for flag in translation.flags)
            self.stats.translated += 1
            self.stats.flagged += bool(translation.flags)

    def collect(self) -> TranslationStats:
        """The run's figures, with what the translators spent."""
        usage = Usage()
        for translator in self._translators:
            usage.add(translator.usage)
        self.stats.usage = usage
        return self.stats


def _checked(cue: Cue, translation: Translation, glossary: Glossary) -> Translation:
    if translation.text is None or not glossary.missing(cue.text, translation.text):
        return translation
    return dataclasses.replace(translation, flags=(*translation.flags, "glossary"))
