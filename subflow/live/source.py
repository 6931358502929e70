"""Live input: a source that never ends silently and never falls behind.

:class:`LiveSource` wraps :class:`~subflow.source.VideoSource` (the same decode
stage as ``extract``) and looks like one to the pipeline, but

* a decoding thread reads the stream while the pipeline works; between them a
  queue drops the *oldest* frames once they lag the newest by more than
  ``max_lag`` seconds (or exceed ``queue`` frames, a memory cap), so a short
  hiccup loses nothing while a pipeline slower than the stream stays current
  instead of lagging further and further;
* on a network source, end of stream, a timeout or a refused connection is a
  reconnect with capped exponential backoff, announced through ``on_status``;
* media time and frame numbers continue across reconnects (the stream's own
  pts restart at arbitrary values), with the outage's wall time added, so the
  session's cues keep increasing times and numbers;
* a file can be played at its own pace (``realtime``) to rehearse a live show.

A blocked FFmpeg read cannot be interrupted; only its timeout ends it. So the
reader is a daemon thread and :meth:`close` does not wait for it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av

from ..config import LiveConfig, SourceConfig
from ..source import Frame, SourceError, StreamBreak, VideoSource

log = logging.getLogger(__name__)

StatusCallback = Callable[[str, dict[str, Any]], None]

_NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp", "rtp")


def is_network(spec: str | Path) -> bool:
    """Network streams reconnect at their end; files end for good."""
    scheme, sep, _ = str(spec).partition("://")
    return bool(sep) and scheme.lower() in _NETWORK_SCHEMES


def live_options(spec: str, live: LiveConfig) -> dict[str, str]:
    """FFmpeg options that make a network read low-delay and bounded in time.

    FFmpeg's own socket timeout is the generous connect bound: it also covers
    the handshake. A stall during reading is caught sooner, by the read timeout
    that :class:`LiveSource` gives PyAV (``live.timeout``). No
    ``fflags=nobuffer``: it throws away the packets read while probing the
    stream, the first keyframe among them, so decoding began a whole GOP late
    and a subtitle on screen at the join was lost.
    """
    scheme = spec.partition("://")[0].lower()
    timeout_us = str(int(max(live.connect_timeout, live.timeout) * 1e6))
    if scheme in ("rtsp", "rtsps"):
        return {
            "rtsp_transport": live.transport,
            "timeout": timeout_us,
            "analyzeduration": "500000",
            "probesize": "500000",
        }
    if scheme in ("http", "https"):
        return {
            "reconnect": "1",
            "reconnect_streamed": "1",
            "reconnect_on_network_error": "1",
            "reconnect_delay_max": str(int(max(1, live.backoff_max))),
            "rw_timeout": timeout_us,
            "live_start_index": "-1",
        }
    return {}


@dataclasses.dataclass
class LiveStats:
    state: str = "connecting"
    connects: int = 0
    reconnects: int = 0
    frames_in: int = 0  # decoded
    frames_dropped: int = 0  # stale frames dropped from the queue
    frames_out: int = 0  # handed to the pipeline
    source_errors: int = 0
    last_error: str = ""


class _StreamSource(VideoSource):
    """A VideoSource for live reads: a read timeout ends the connection at once.

    For files, VideoSource skips unreadable packets and retries; on a stream
    FFmpeg reports a stalled server as an exit/timeout error, and retrying that
    50 times would freeze the captions for minutes instead of reconnecting.
    """

    def _bad_packet(self, exc: Exception, consecutive: int) -> int:
        if isinstance(exc, (av.error.ExitError, TimeoutError)):
            raise SourceError(f"{self.spec}: stalled (no data within the read timeout)") from None
        return super()._bad_packet(exc, consecutive)


class LiveSource:
    """A reconnecting, non-blocking source with a monotonic media clock (see the module doc)."""

    def __init__(
        self,
        spec: str | Path,
        source: SourceConfig | None = None,
        live: LiveConfig | None = None,
        *,
        realtime: bool = False,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.spec = str(spec)
        self.live = live or LiveConfig()
        self.network = is_network(self.spec)
        self.realtime = realtime
        self.on_status = on_status
        self.config = self._source_config(source or SourceConfig())
        self.stats = LiveStats()
        self.width = 0
        self.height = 0
        self.fps = 25.0
        self.duration: float | None = None
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._done = False  # the reader has finished (file end, fatal error or close)
        self._fatal: SourceError | None = None
        self._media_end = 0.0  # session media time of the last frame
        self._wall_end = 0.0  # monotonic clock when it was decoded
        self._next_index = 0
        self._thread = threading.Thread(target=self._run, name="subflow-live-reader", daemon=True)
        self._thread.start()

    def _source_config(self, base: SourceConfig) -> SourceConfig:
        """Explicit decoder threads (frame threading adds threads-1 frames of delay) and low-delay options."""
        options = {**live_options(self.spec, self.live), **base.options}
        threads = base.threads or self.live.decoder_threads
        return dataclasses.replace(base, threads=threads, options=options)

    # -- the pipeline's side -------------------------------------------------

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first connection gave the picture size; raise if a file cannot be opened."""
        ready = self._ready.wait(timeout)
        if self._fatal is not None:
            raise self._fatal
        return ready

    def frames(self) -> Iterator[Frame | StreamBreak]:
        """Frames in session order until :meth:`close` or the end of a file, with a
        :class:`StreamBreak` where a network stream dropped (its subtitles end there)."""
        self.wait_ready()
        while True:
            with self._cond:
                while not self._queue and not self._done:
                    self._cond.wait()
                if not self._queue:
                    if self._fatal is not None:
                        raise self._fatal
                    return
                frame = self._queue.popleft()
                self._cond.notify_all()
            self.stats.frames_out += 1
            yield frame

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def errors(self) -> int:
        return self.stats.source_errors

    def close(self) -> None:
        """Stop: the frame iterator ends at once, the reader when its current read returns."""
        self._stop.set()
        with self._cond:
            self._done = True
            self._cond.notify_all()
        self._ready.set()

    def __enter__(self) -> "LiveSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the reader thread ---------------------------------------------------

    def _status(self, state: str, **detail: Any) -> None:
        self.stats.state = state
        level = logging.WARNING if state == "reconnecting" else logging.INFO  # a fatal "error" is the caller's to report
        log.log(level, "live source %s: %s", self.spec, describe_status(state, detail))
        if self.on_status is not None:
            try:
                self.on_status(state, detail)
            except Exception:  # a broken observer must not stop the stream
                log.exception("status callback failed")

    def _run(self) -> None:
        attempt = 0
        reason = ""
        while not self._stop.is_set():
            if not self.stats.connects and attempt == 0:
                self._status("connecting")
            try:
                timeout = (max(self.live.connect_timeout, self.live.timeout), self.live.timeout) if self.network else None
                source = _StreamSource(self.spec, self.config, timeout=timeout)
            except SourceError as exc:
                if not self.network:
                    self._finish(exc)
                    return
                reason = str(exc)
                attempt = self._backoff(attempt, reason)
                continue
            self.stats.connects += 1
            self.stats.reconnects = self.stats.connects - 1
            got_frames = False
            try:
                with source:
                    self._adopt(source)
                    self._status("connected", width=self.width, height=self.height, fps=self.fps)
                    for frame in self._paced(source.frames()):
                        if self._stop.is_set():
                            break
                        got_frames = True
                        self._push(frame)
                    reason = "end of stream"
            except (SourceError, av.error.FFmpegError, OSError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.stats.last_error = reason
            finally:
                self.stats.source_errors += source.errors
            if got_frames and self.network and not self._stop.is_set():
                self._push(StreamBreak(self._media_end + 1.0 / self.fps))
            if self._stop.is_set() or not self.network:
                break
            attempt = 0 if got_frames else attempt
            attempt = self._backoff(attempt, reason)
        self._finish(None)

    def _finish(self, fatal: SourceError | None) -> None:
        self._fatal = fatal
        self._status("error" if fatal else "ended", reason=str(fatal) if fatal else "")
        with self._cond:
            self._done = True
            self._cond.notify_all()
        self._ready.set()

    def _backoff(self, attempt: int, reason: str) -> int:
        delay = min(self.live.backoff_max, self.live.backoff_min * (2**attempt))
        self.stats.last_error = reason
        self._status("reconnecting", attempt=attempt + 1, retry_in=round(delay, 3), reason=reason)
        self._stop.wait(delay)
        return attempt + 1

    def _adopt(self, source: VideoSource) -> None:
        if self._ready.is_set() and (source.width, source.height) != (self.width, self.height):
            log.warning("%s: picture size changed to %dx%d after a reconnect", self.spec, source.width, source.height)
        self.width, self.height, self.fps = source.width, source.height, source.fps
        self.duration = None if self.network else source.duration
        self._ready.set()

    def _paced(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """Re-time one connection's frames onto the session clock (and pace files in realtime)."""
        step = 1.0 / self.fps
        first: float | None = None
        offset = 0.0
        start_wall = 0.0
        for frame in frames:
            now = time.monotonic()
            if first is None:
                first = frame.time
                if self._next_index == 0:
                    offset = 0.0 if self.network else frame.time
                else:  # after an outage: continue past the last frame by the wall time that passed
                    offset = self._media_end + max(step, now - self._wall_end)
                start_wall = now
            media = offset + (frame.time - first)
            if self.realtime:
                delay = start_wall + (frame.time - first) - now
                if delay > 0 and self._stop.wait(delay):
                    return
            if media <= self._media_end and self._next_index:
                media = self._media_end + 1e-6
            self._media_end, self._wall_end = media, time.monotonic()
            yield dataclasses.replace(frame, index=self._next_index, time=media)
            self._next_index += 1

    def _push(self, frame: Frame | StreamBreak) -> None:
        """Queue a frame. A stream drops its stale frames; a file waits for room (nothing is late in a file)."""
        live = self.network or self.realtime
        with self._cond:
            if not live:
                while len(self._queue) >= self.live.queue and not self._done:
                    self._cond.wait()
            self._queue.append(frame)
            if isinstance(frame, Frame):
                self.stats.frames_in += 1
            self.stats.frames_dropped += drop_stale(self._queue, self.live.queue, self.live.max_lag if live else None)
            self._cond.notify_all()


def describe_status(state: str, detail: dict[str, Any]) -> str:
    """A status change as words for people (the WebSocket protocol sends ``state`` and ``detail`` as data)."""
    reason = detail.get("reason") or ""
    if state == "connected" and detail.get("width"):
        return f"connected ({detail['width']}x{detail['height']}, {detail['fps']:g} fps)"
    if state == "reconnecting":
        return f"reconnecting in {detail['retry_in']:g} s (attempt {detail['attempt']})" + (f": {reason}" if reason else "")
    return f"{state}: {reason}" if reason else state


def drop_stale(queue: collections.deque, cap: int, max_lag: float | None) -> int:
    """Drop the oldest frames while the queue holds more than ``cap`` or spans more than ``max_lag`` seconds.

    A :class:`StreamBreak` is never dropped (it ends the cue that was showing when
    the stream dropped; lose it and that cue stays open until frames return): it
    stays at the head, ahead of the frames that survive. Returns how many frames went.
    """
    newest = queue[-1].time
    breaks: list[StreamBreak] = []
    dropped = 0
    while len(queue) > cap or (max_lag is not None and newest - queue[0].time > max_lag):
        old = queue.popleft()
        if isinstance(old, StreamBreak):
            breaks.append(old)
        else:
            dropped += 1
    queue.extendleft(reversed(breaks))
    return dropped


__all__ = ["LiveSource", "LiveStats", "drop_stale", "is_network", "live_options"]
