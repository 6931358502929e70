"""Merge stage: segments and their reads become timed cues.

A cue spans one or more consecutive segments of a band whose reads are the
same line (similarity >= ``similarity``): the detector may split one subtitle
where its background changed, and OCR may read it slightly differently each
time. The cue's text is a vote over its reads, each weighted by the screen
time it stands for and its confidence. A blank between two showings of the
same line makes two cues (unless ``max_gap`` allows joining them).

Updates leave as soon as they are known: a partial when a cue opens or its
voted text changes, a final when the band changes or goes blank, and a clear
(``cue=None``) when the band goes blank.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np

from .config import MergerConfig
from .detector import BandBlank, Event, SegmentClosed, SegmentOpened
from .records import Box, Cue, CueUpdate, Position
from .recognizer import Read


def normalize(text: str) -> str:
    """Text as compared for sameness: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def meaningful(line: str) -> bool:
    """A line worth keeping has a letter, digit or symbol (music notes count); bare punctuation
    (``_``, ``--``, ``|``) is OCR reading edges of the background."""
    return any(unicodedata.category(char)[0] in "LN" or unicodedata.category(char) == "So" for char in line)


def similarity(a: str, b: str) -> float:
    """0..1 similarity of two reads of a line (1.0 = identical after normalising)."""
    a, b = normalize(a), normalize(b)
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


@dataclass
class _Segment:
    start: float
    wall: float
    box: Box
    end: float | None = None
    reads: list[tuple[tuple[str, ...], float, np.ndarray | None, Box | None]] = field(default_factory=list)  # lines, confidence, crop, its box
    continues: bool = False  # the same text as the segment before it (the detector says so)
    blank: bool = False  # read, and no text found: it does not carry on the cue before it


@dataclass
class _OpenCue:
    cue: Cue
    reads: list[tuple[tuple[str, ...], float, float]] = field(default_factory=list)  # lines, confidence, seconds
    revision: int = 0
    images: dict[tuple[str, ...], tuple[float, np.ndarray, Box | None]] = field(default_factory=dict)  # lines -> surest crop

    def vote(
        self, lines: tuple[str, ...], confidence: float, seconds: float, crop: np.ndarray | None = None, box: Box | None = None
    ) -> None:
        self.reads.append((lines, confidence, seconds))
        if crop is not None and confidence >= self.images.get(lines, (-1.0, None, None))[0]:
            self.images[lines] = (confidence, crop, box)

    def winner(self) -> tuple[str, ...]:
        """The weighted medoid: the read most similar to all reads, each weighted by screen time
        and confidence. Reads disturbed by clutter differ from each other, so the clean reading
        wins even when no two reads are exactly alike."""
        texts = {lines: "\n".join(lines) for lines, _, _ in self.reads}

        def support(candidate: tuple[str, ...]) -> float:
            return sum(
                seconds * max(confidence, 1e-3) * similarity(texts[candidate], texts[lines])
                for lines, confidence, seconds in self.reads
            )

        return max(sorted(texts), key=support)

    def confidence(self, lines: tuple[str, ...]) -> float:
        """Time-weighted mean confidence of the reads of ``lines``."""
        matching = [(confidence, seconds) for read, confidence, seconds in self.reads if read == lines]
        total = sum(seconds for _, seconds in matching)
        return sum(c * s for c, s in matching) / total if total > 0 else matching[0][0]


class Merger:
    """Per band, turns the event stream into :class:`CueUpdate` objects."""

    def __init__(self, config: MergerConfig, first_index: int = 1) -> None:
        self.config = config
        self.next_index = first_index
        self.seconds = 0.0  # time spent merging (for the run summary)
        self._segments: dict[int, _Segment] = {}
        self._open: dict[Position, _OpenCue] = {}

    def process(self, events: Iterable[Event | Read]) -> Iterator[CueUpdate]:
        for event in events:
            started = time.perf_counter()
            updates = list(self._handle(event))
            self.seconds += time.perf_counter() - started
            yield from updates
        for position in list(self._open):
            yield from self._finalize(position)

    def _handle(self, event: Event | Read) -> Iterator[CueUpdate]:
        if isinstance(event, SegmentOpened):
            yield from self._opened(event)
        elif isinstance(event, Read):
            yield from self._read(event)
        elif isinstance(event, SegmentClosed):
            yield from self._closed(event)
        elif isinstance(event, BandBlank):
            yield from self._blank(event)

    def _opened(self, event: SegmentOpened) -> Iterator[CueUpdate]:
        self._segments[event.segment] = _Segment(event.start, event.wall, event.box, continues=event.continues is not None)
        current = self._open.get(event.band.position)
        if current is not None and event.start - current.cue.end > self.config.max_gap:
            yield from self._finalize(event.band.position)

    def _read(self, event: Read) -> Iterator[CueUpdate]:
        segment = self._segments.get(event.segment)
        if segment is None or event.recognition is None:
            return
        lines = tuple(line.strip() for line in event.recognition.lines if meaningful(line))
        if not lines:
            segment.blank = True
            return
        first = not segment.reads
        segment.reads.append((lines, event.recognition.confidence, event.crop, event.box))
        if not first:
            return
        # The segment's first read decides whether it continues the open cue or starts a new one.
        position = event.band.position
        current = self._open.get(position)
        if current is not None and similarity("\n".join(lines), current.cue.text) < self.config.similarity:
            yield from self._finalize(position)
            current = None
        if current is None:
            cue = Cue(
                index=self.next_index,
                start=segment.start,
                end=segment.start,
                lines=list(lines),
                confidence=event.recognition.confidence,
                region=position,
                box=segment.box,
                wall_start=segment.wall,
            )
            self.next_index += 1
            current = self._open[position] = _OpenCue(cue)
            current.vote(lines, event.recognition.confidence, 1e-6, event.crop, event.box)  # a winner for partials until the segment closes
            yield CueUpdate(cue, final=False, revision=current.revision)

    def _closed(self, event: SegmentClosed) -> Iterator[CueUpdate]:
        segment = self._segments.pop(event.segment, None)
        if segment is None:
            return
        segment.end = event.end
        current = self._open.get(event.band.position)
        if current is None:
            return
        cue = current.cue
        if not segment.reads:
            # Unread because its chain's text was settled: it shows the open cue's text, if the
            # segment it continues was part of that cue (which then ended where this one began).
            if segment.continues and not segment.blank and cue.end == segment.start:
                cue.end = segment.end
                cue.wall_end = event.wall
            return
        seconds = (segment.end - segment.start) / len(segment.reads)
        for lines, confidence, crop, box in segment.reads:
            current.vote(lines, confidence, seconds, crop, box)
        cue.end = segment.end
        cue.wall_end = event.wall
        if cue.box is not None:
            cue.box = _union(cue.box, segment.box)
        winner = current.winner()
        if list(winner) != cue.lines:
            cue.lines = list(winner)
            current.revision += 1
            yield CueUpdate(cue, final=False, revision=current.revision)

    def _blank(self, event: BandBlank) -> Iterator[CueUpdate]:
        if self.config.max_gap <= 0:
            yield from self._finalize(event.band.position)
        yield CueUpdate(None, final=False, meta={"region": event.band.position, "time": event.time})

    def _finalize(self, position: Position) -> Iterator[CueUpdate]:
        current = self._open.pop(position, None)
        if current is None:
            return
        cue = current.cue
        winner = current.winner()
        cue.lines = list(winner)
        cue.confidence = round(current.confidence(winner), 4)
        if winner in current.images:
            _, cue.image, cue.image_box = current.images[winner]
        retracted = cue.duration < self.config.min_duration
        yield CueUpdate(cue, final=True, revision=current.revision + 1, meta={"retracted": True} if retracted else {})


def _union(a: Box, b: Box) -> Box:
    return Box(min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1))
