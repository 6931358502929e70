"""Change detection: split a band's frames into stretches of unchanged text.

Per frame the detector computes a stroke mask of the band (see
:mod:`subflow.textmask`) at reduced resolution. Strokes that stay put for
``persist_frames`` frames are text; moving backgrounds do not survive that
test, and a scene cut behind a subtitle leaves its strokes in place. A
stretch ("segment") holds a reference mask ``R`` of its text and ends at
the first frame where a large share of ``R`` is gone (confirmed by the next
frame, so a one-frame dropout does not split a cue), or where enough new
stable strokes appear (a line added or replaced without a blank).

The detector looks ``persist_frames - 1`` frames ahead, so it reports each
frame that many frames late; start and end times are still exact frame times.
It sends frames to OCR only inside segments: a blank band costs no OCR call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .config import DetectorConfig
from .records import Box
from .region import Band
from .source import Frame, luma_rows
from .textmask import MaskParams, stroke_mask


@dataclass
class SegmentOpened:
    segment: int
    band: Band
    start: float
    wall: float
    box: Box  # where the text strokes sit, full-frame pixels
    continues: int | None = None  # the segment just closed, when only clutter around the same text changed


@dataclass
class Shot:
    """A frame of an open segment to read, and where in it the text is."""

    segment: int
    band: Band
    frame: Frame
    first: bool  # the segment's first shot; later ones are read only if needed
    box: Box  # the text's strokes with a margin, inside the band: the crop OCR gets


@dataclass
class SegmentClosed:
    segment: int
    band: Band
    end: float  # time of the first frame without the segment's text
    wall: float


@dataclass
class BandBlank:
    """The band holds no text from ``time`` on."""

    band: Band
    time: float
    wall: float


@dataclass
class Tick:
    """A frame went by: later stages may hand on work that finished meanwhile (live latency).

    ``flush``: no frame will come for a while (the stream dropped): hand on everything, waiting
    for work still under way, so the end of what was on screen goes out now."""

    time: float
    flush: bool = False


Event = SegmentOpened | Shot | SegmentClosed | BandBlank | Tick

_KERNEL = np.ones((3, 3), np.uint8)
# A loss that leaves at least this share of the reference, with nothing new appearing, is clutter
# leaving the band rather than a new line (a new line at the same place keeps at most ~0.5).
_CLUTTER_KEEP = 0.6


@dataclass
class _Look:
    frame: Frame
    mask: np.ndarray  # stroke mask, uint8 0/1


class Detector:
    """Turns the frames of one band into segment events (see module doc)."""

    _next_segment = 0  # segment ids are unique across bands and detectors of a process

    def __init__(self, band: Band, config: DetectorConfig) -> None:
        self.band = band
        self.config = config
        self.step = max(1, config.scale)
        box = band.box
        self.params = MaskParams.for_detector(config, self.step)
        self._ignore: list[tuple[slice, slice]] = []
        self.mask_out(band.ignore)
        area = len(range(box.y0, box.y1, self.step)) * len(range(box.x0, box.x1, self.step))
        self.min_pixels = max(4, int(config.min_text_pixels * area))
        self.persist = max(1, config.persist_frames)
        self._window: deque[_Look] = deque()
        self._segment: int | None = None
        self._reference: np.ndarray | None = None  # the open segment's text strokes
        self._reference_size = 0
        self._delta: np.ndarray | None = None  # the strokes whose appearance opened the segment
        self._known: np.ndarray | None = None  # the reference grown a little: strokes that are not new
        self._refine_left = 0
        self._last: _Look | None = None  # the last frame judged, for the segment's closing shot
        self._shots = 0  # shots taken of the open segment
        self._opened_at = 0.0
        self._last_shot_index = -1
        self._last_shot_time = 0.0
        self._blank_reported = False
        self._previous_time: float | None = None
        self._frame_gap = 0.04
        # (frame index, segment, reference, grown reference, size) of a segment closed on that frame
        self._just_closed: tuple[int, int, np.ndarray, np.ndarray, int] | None = None

    def mask_out(self, boxes: tuple[Box, ...]) -> None:
        """Never see strokes inside ``boxes`` (watermarks; full-frame pixels) from now on."""
        box = self.band.box
        for m in boxes:
            if min(m.x1, box.x1) > max(m.x0, box.x0) and min(m.y1, box.y1) > max(m.y0, box.y0):
                rows = slice(max(0, m.y0 - box.y0) // self.step, -(-(m.y1 - box.y0) // self.step))
                columns = slice(max(0, m.x0 - box.x0) // self.step, -(-(m.x1 - box.x0) // self.step))
                self._ignore.append((rows, columns))

    def push(self, frame: Frame) -> Iterator[Event]:
        """Feed one frame; yields the events it settles (for a frame ``persist_frames - 1`` back)."""
        if self._previous_time is not None:
            self._frame_gap = max(1e-3, frame.time - self._previous_time)
        self._previous_time = frame.time
        luma = luma_rows(frame.image, self.band.box.y0, self.band.box.y1, self.band.box.x0, self.band.box.x1, self.step)
        mask = stroke_mask(luma, self.params).view(np.uint8)
        for rows, columns in self._ignore:
            mask[rows, columns] = 0
        self._window.append(_Look(frame, mask))
        if len(self._window) >= self.persist:
            yield from self._judge()
            self._last = self._window.popleft()

    def finish(self) -> Iterator[Event]:
        """End of input: settle the frames still in the window and close an open segment."""
        while self._window:
            yield from self._judge()
            self._last = self._window.popleft()
        if self._segment is not None and self._last is not None:
            end = self._last.frame.time + self._frame_gap
            yield from self._close(end, self._last.frame.wall)

    def interrupt(self) -> Iterator[Event]:
        """The stream broke off (a live source reconnects): end what was on screen after the last
        frame, as at the end of input, and report the band blank, instead of holding a cue open
        through the outage. Frames after the break start afresh."""
        yield from self.finish()
        if not self._blank_reported and self._last is not None:
            self._blank_reported = True
            yield BandBlank(self.band, self._last.frame.time + self._frame_gap, self._last.frame.wall)

    def _judge(self) -> Iterator[Event]:
        """Decide about the oldest frame of the window, using the frames after it."""
        look = self._window[0]
        t, wall = look.frame.time, look.frame.wall
        core = self._core()
        if self._segment is not None:
            new = cv2.bitwise_and(core, 1 - self._known)
            gained = cv2.countNonZero(new) >= self._gain_pixels()
            kept = self._kept(self._reference, 0)
            text_lost = self._lost(self._reference)
            if self._lost(self._delta) or (text_lost and (kept < _CLUTTER_KEEP or gained)):
                yield from self._close(t, wall)  # and see below whether new text starts on this frame
            elif text_lost:
                # A minority of the strokes left and nothing new came: clutter that sat by the
                # text (a light switching off), not a new line. Keep what stayed.
                self._set_reference(cv2.bitwise_and(self._reference, look.mask), self._delta)
                return
            elif gained:
                yield from self._close(t, wall)
                yield from self._open(core, look, delta=new)
                return
            else:
                self._refine(look)
                if self._shots < self.config.reads_per_segment - 1 and t - self._last_shot_time >= self.config.read_interval:
                    yield self._shot(look.frame, first=False)
                return
        # Near the end of the input the window is short and cannot prove persistence: open nothing there.
        if len(self._window) >= self.persist and cv2.countNonZero(core) >= self.min_pixels:
            yield from self._open(core, look)
        elif not self._blank_reported:
            self._blank_reported = True
            yield BandBlank(self.band, t, wall)

    def _gain_pixels(self) -> int:
        """New stable stroke area that means text was added (capped, so that a reference full
        of static scenery cannot hide a subtitle appearing over it)."""
        return max(self.min_pixels, int(self.config.gain_threshold * min(self._reference_size, 8 * self.min_pixels)))

    def _kept(self, mask: np.ndarray, offset: int) -> float:
        """Share of ``mask``'s strokes still present in window frame ``offset``.

        The raw mask, not the grown one: a static subtitle keeps >= 0.99 of its strokes under H.264
        (crf 23-30, across scene cuts), while a different line at the same place keeps at most ~0.5.
        """
        size = max(1, cv2.countNonZero(mask))
        return cv2.countNonZero(cv2.bitwise_and(mask, self._window[offset].mask)) / size

    def _lost(self, mask: np.ndarray) -> bool:
        """Most of ``mask`` is gone, in this frame and the next (a one-frame dropout is no change)."""
        floor = 1.0 - self.config.lost_threshold
        return self._kept(mask, 0) < floor and (len(self._window) < 2 or self._kept(mask, 1) < floor)

    def _core(self) -> np.ndarray:
        """Strokes of the oldest window frame that stay on the very same pixels through the window.

        Raw masks, not grown ones: burned-in text is pixel-stable under compression,
        while clutter that drifts even one pixel a frame drops out.
        """
        core = self._window[0].mask
        for look in list(self._window)[1 : self.persist]:
            core = cv2.bitwise_and(core, look.mask)
        return core

    def _open(self, core: np.ndarray, look: _Look, delta: np.ndarray | None = None) -> Iterator[Event]:
        """Start a segment on ``core``; ``delta`` is what changed (the strokes that appeared), if not all of it."""
        continues = self._continued(core, look)
        Detector._next_segment += 1
        self._segment = Detector._next_segment
        self._set_reference(core, core if delta is None else delta)
        self._refine_left = 2 * self.persist
        self._blank_reported = False
        yield SegmentOpened(self._segment, self.band, look.frame.time, look.frame.wall, self._text_box(core), continues)
        # Read the opening frame itself: later frames of the window may already belong to the next segment.
        self._shots = 0
        self._opened_at = look.frame.time
        yield self._shot(look.frame, first=True)

    def _continued(self, core: np.ndarray, look: _Look) -> int | None:
        """The segment closed on this very frame, if the new one holds the same text.

        Clutter that comes and goes beside a subtitle splits it into segments (a gain, then the
        gained strokes leaving); marking the pieces lets later stages read the text once per
        subtitle instead of once per piece. The test is the clutter rule's: most of the old
        strokes stay (a new line at the same place keeps at most ~0.5 of them) and what is new is
        less than ``gain_threshold`` of their area (an added line brings about as much again).
        """
        closed = self._just_closed
        self._just_closed = None
        if closed is None or closed[0] != look.frame.index:
            return None
        _, segment, reference, known, size = closed
        kept = cv2.countNonZero(cv2.bitwise_and(reference, look.mask)) / size
        added = cv2.countNonZero(cv2.bitwise_and(core, 1 - known))
        if kept >= _CLUTTER_KEEP and added < self.config.gain_threshold * size:
            return segment
        return None

    def _shot(self, frame: Frame, first: bool) -> Shot:
        assert self._segment is not None
        self._shots += 1
        self._last_shot_index, self._last_shot_time = frame.index, frame.time
        return Shot(self._segment, self.band, frame, first=first, box=self._crop_box())

    def _close(self, end: float, wall: float) -> Iterator[Event]:
        assert self._segment is not None
        last = self._last
        # The closing frame is read too, unless the stretch was too short to need a second look
        # (most such stretches are clutter that sat still for a moment).
        if (
            self._shots < self.config.reads_per_segment
            and last is not None
            and last.frame.index > self._last_shot_index
            and end - self._opened_at >= self.config.read_interval
        ):
            yield self._shot(last.frame, first=False)
        yield SegmentClosed(self._segment, self.band, end, wall)
        if self._reference is not None and self._known is not None and self._window:
            index = self._window[0].frame.index
            self._just_closed = (index, self._segment, self._reference, self._known, self._reference_size)
        self._segment = None
        self._reference = self._delta = None

    def _refine(self, look: _Look) -> None:
        """Early in a segment, drop reference pixels that were passing clutter, not text."""
        if self._refine_left <= 0:
            return
        self._refine_left -= 1
        refined = cv2.bitwise_and(self._reference, look.mask)
        if cv2.countNonZero(refined) >= self.min_pixels:
            self._set_reference(refined, cv2.bitwise_and(self._delta, look.mask))

    def _set_reference(self, mask: np.ndarray, delta: np.ndarray) -> None:
        self._reference = mask
        self._reference_size = max(1, cv2.countNonZero(mask))
        self._delta = delta
        self._known = cv2.dilate(mask, _KERNEL, iterations=2)

    def _crop_box(self) -> Box:
        """The reference's strokes plus a margin of about one letter, clipped to the band.

        Clutter beside the text never reaches OCR (where it reads as stray
        punctuation), and narrower crops are cheaper for every engine.
        """
        text, band = self._text_box(self._reference), self.band.box
        margin_x = max(16, text.height)
        margin_y = max(8, text.height // 4)
        return Box(
            max(band.x0, text.x0 - margin_x) & ~1,
            max(band.y0, text.y0 - margin_y) & ~1,
            min(band.x1, text.x1 + margin_x),
            min(band.y1, text.y1 + margin_y),
        )

    def _text_box(self, mask: np.ndarray) -> Box:
        x, y, w, h = cv2.boundingRect(mask)
        box, s = self.band.box, self.step
        return Box(box.x0 + x * s, box.y0 + y * s, min(box.x1, box.x0 + (x + w) * s), min(box.y1, box.y0 + (y + h) * s))
