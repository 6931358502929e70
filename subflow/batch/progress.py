"""What a batch shows: one overall progress line, a final table, a JSON summary for scripts."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from ..cli import _clock
from .manifest import Record

_TABLE_ROWS = 40  # past this many videos, the table lists only the failed ones


@dataclass
class Tally:
    """Counts and media time of a batch run so far."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    media: float = 0.0  # media seconds of the videos finished in this run
    started: float = field(default_factory=time.perf_counter)
    records: list[Record] = field(default_factory=list)
    engines: list[dict] = field(default_factory=list)  # Ray mode, each engine actor: calls, requests, crops, load and call seconds

    @property
    def finished(self) -> int:
        return self.skipped + self.done + self.failed

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def add(self, record: Record) -> None:
        self.records.append(record)
        if record.status == "done":
            self.done += 1
            self.media += record.duration or 0.0
        else:
            self.failed += 1

    def to_dict(self, interrupted: bool = False) -> dict:
        elapsed = self.elapsed
        return {
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "left": self.total - self.finished,
            "interrupted": interrupted,
            "media_seconds": round(self.media, 3),
            "wall_seconds": round(elapsed, 3),
            "media_seconds_per_second": round(self.media / elapsed, 3) if elapsed > 0 else 0.0,
            "engines": self.engines,
            "videos": [
                {k: getattr(r, k) for k in ("key", "status", "outputs", "duration", "cues", "realtime", "error")}
                for r in self.records
            ],
        }


class Progress:
    """One overall line on stderr: redrawn on a terminal, a line every 10 s (and at the end) otherwise."""

    def __init__(self, tally: Tally, quiet: bool) -> None:
        self.tally = tally
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if not self.tty and not force and now - self.last < 10:
            return
        self.last = now
        line = self.line()
        sys.stderr.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        sys.stderr.flush()

    def line(self) -> str:
        t = self.tally
        share = t.finished / t.total if t.total else 1.0
        ran = t.done + t.failed
        left = t.total - t.finished
        eta = t.elapsed / ran * left if ran else 0.0
        rate = t.media / t.elapsed if t.elapsed > 0 else 0.0
        failed = f", {t.failed} failed" if t.failed else ""
        return (
            f"batch: [{'#' * int(share * 20):<20}] {t.finished}/{t.total} videos{failed}, "
            f"{t.media / 3600:.2f} h of video, {rate:.1f} media-s/s, ETA {_clock(eta) if ran else '?'}"
        )

    def end(self) -> None:
        if not self.quiet and self.tty:
            sys.stderr.write("\r\x1b[K")


def table(records: list[Record]) -> str:
    """A plain-text table of the videos run (only the failed ones when there are many)."""
    rows = records if len(records) <= _TABLE_ROWS else [r for r in records if r.status != "done"]
    lines = [f"{'video':<40} {'status':<7} {'length':>8} {'cues':>5} {'x real':>7}  outputs / error"]
    for r in rows:
        length = _clock(r.duration) if r.duration is not None else "-"
        speed = f"{r.realtime:.1f}" if r.realtime else "-"
        detail = ", ".join(r.outputs) if r.status == "done" else r.error
        name = r.key if len(r.key) <= 40 else "..." + r.key[-37:]
        lines.append(f"{name:<40} {r.status:<7} {length:>8} {r.cues:>5} {speed:>7}  {detail}")
    if len(rows) < len(records):
        lines.append(f"({len(records) - len(rows)} done videos not listed; the manifest has them all)")
    return "\n".join(lines)
