"""Jobs, cues and edits in SQLite: an edit is committed the moment it is made.

One connection in WAL mode with ``synchronous=FULL`` (a commit survives a
crash of the process or the machine), shared by the request threads and the
job workers under a lock. An edit is stored as the list of cue rows it
changed, each with its state before and after, so undo and redo replay them
backwards or forwards; undone edits that a new edit supersedes are kept as
``dropped`` history, never deleted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import Box, Cue

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    media TEXT NOT NULL,              -- absolute path (upload or under a media root) or URL
    uploaded INTEGER NOT NULL,        -- 1: the server owns the media file (deleted with the job)
    options TEXT NOT NULL,            -- JSON: the extract options of this job
    engine TEXT NOT NULL,
    state TEXT NOT NULL,              -- queued, running, done, failed, cancelled
    error TEXT,
    position REAL NOT NULL DEFAULT 0, -- media seconds reached
    duration REAL,
    width INTEGER,
    height INTEGER,
    fps REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    stats TEXT                        -- JSON: the run's figures (cues, crops read, stage times)
);
CREATE TABLE IF NOT EXISTS cues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,             -- the pipeline's cue index (JSON Lines keeps it)
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    lines TEXT NOT NULL,              -- JSON list of lines
    confidence REAL NOT NULL,
    region TEXT NOT NULL,
    box TEXT,                         -- JSON [x0, y0, x1, y1] or NULL
    wall_start REAL,
    wall_end REAL,
    translations TEXT NOT NULL,       -- JSON {lang: text}
    flags TEXT NOT NULL,              -- JSON list
    crop TEXT                         -- file name of the crop the text was read from
);
CREATE INDEX IF NOT EXISTS cues_by_job ON cues(job_id, start);
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    changes TEXT NOT NULL,            -- JSON [{"id": cue id, "before": row|null, "after": row|null}]
    state TEXT NOT NULL DEFAULT 'done' -- done, undone, dropped (undone, then superseded by a new edit)
);
CREATE INDEX IF NOT EXISTS edits_by_job ON edits(job_id, id);
"""

_JSON_COLUMNS = ("lines", "box", "translations", "flags")
CUE_COLUMNS = ("idx", "start", "end", "lines", "confidence", "region", "box", "wall_start", "wall_end", "translations", "flags", "crop")


@dataclass
class Change:
    """One cue row before and after an edit (None: the row did not exist)."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None


def cue_row(cue: Cue, crop: str | None) -> dict[str, Any]:
    """The stored form of a pipeline cue."""
    box = cue.box
    return {
        "idx": cue.index,
        "start": cue.start,
        "end": cue.end,
        "lines": list(cue.lines),
        "confidence": cue.confidence,
        "region": cue.region,
        "box": [box.x0, box.y0, box.x1, box.y1] if box is not None else None,
        "wall_start": cue.wall_start,
        "wall_end": cue.wall_end,
        "translations": dict(cue.translations),
        "flags": list(cue.flags),
        "crop": crop,
    }


def row_cue(row: dict[str, Any]) -> Cue:
    """A stored cue as the pipeline's record, for the sinks."""
    box = row["box"]
    return Cue(
        index=row["idx"],
        start=row["start"],
        end=row["end"],
        lines=list(row["lines"]),
        confidence=row["confidence"],
        region=row["region"],
        box=Box(*box) if box else None,
        wall_start=row["wall_start"],
        wall_end=row["wall_end"],
        translations=dict(row["translations"]),
        flags=list(row["flags"]),
    )


class Store:
    """The database of one server (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed as a whole or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- jobs ------------------------------------------------------------------

    def add_job(self, job_id: str, **fields: Any) -> dict[str, Any]:
        fields = {"created": time.time(), "state": "queued", "uploaded": 0, "position": 0.0, **fields}
        fields["options"] = json.dumps(fields.get("options") or {})
        names = ["id", *fields]
        with self._tx() as db:
            db.execute(
                f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [job_id, *fields.values()],
            )
        return self.job(job_id)  # type: ignore[return-value]

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC").fetchall()
        return [_job(row) for row in rows]

    def update_job(self, job_id: str, **fields: Any) -> None:
        if "stats" in fields and fields["stats"] is not None:
            fields["stats"] = json.dumps(fields["stats"])
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*fields.values(), job_id])

    def delete_job(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def requeue_interrupted(self) -> list[str]:
        """Jobs that were running when the server stopped go back to the queue, their partial cues
        dropped (the run starts over); returns every queued job, oldest first."""
        with self._tx() as db:
            running = [row[0] for row in db.execute("SELECT id FROM jobs WHERE state = 'running'")]
            for job_id in running:
                db.execute("DELETE FROM cues WHERE job_id = ?", (job_id,))
                db.execute("UPDATE jobs SET state = 'queued', position = 0, started = NULL WHERE id = ?", (job_id,))
            return [row[0] for row in db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created")]

    # -- cues ------------------------------------------------------------------

    def add_cue(self, job_id: str, row: dict[str, Any]) -> int:
        with self._tx() as db:
            return _insert_cue(db, job_id, row)

    def clear_cues(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM cues WHERE job_id = ?", (job_id,))

    def cues(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute('SELECT * FROM cues WHERE job_id = ? ORDER BY start, "end", id', (job_id,)).fetchall()
        return [_cue(row) for row in rows]

    def summary(self, job_id: str) -> tuple[int, list[str]]:
        """How many cues a job has, and the languages of their translations."""
        with self._lock:
            count = self._db.execute("SELECT COUNT(*) FROM cues WHERE job_id = ?", (job_id,)).fetchone()[0]
            langs = self._db.execute(
                "SELECT DISTINCT t.key FROM cues, json_each(cues.translations) AS t WHERE cues.job_id = ? ORDER BY t.key", (job_id,)
            ).fetchall()
        return count, [row[0] for row in langs]

    def next_idx(self, job_id: str) -> int:
        """The pipeline index a new cue gets: one past the highest, so JSON Lines indexes stay unique."""
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM cues WHERE job_id = ?", (job_id,)).fetchone()[0]

    def cue(self, job_id: str, cue_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM cues WHERE job_id = ? AND id = ?", (job_id, cue_id)).fetchone()
        return _cue(row) if row else None

    # -- edits -----------------------------------------------------------------

    def edit(self, job_id: str, kind: str, summary: str, changes: list[Change]) -> dict[str, Any]:
        """Apply and record one edit in one transaction; returns it with the ids of new cues filled in."""
        with self._tx() as db:
            recorded = []
            for change in changes:
                if change.before is None:
                    assert change.after is not None
                    cue_id = _insert_cue(db, job_id, change.after)
                    after = {**change.after, "id": cue_id}
                else:
                    cue_id = change.before["id"]
                    after = None if change.after is None else {**change.after, "id": cue_id}
                    _put_cue(db, job_id, cue_id, after)
                recorded.append({"id": cue_id, "before": change.before, "after": after})
            db.execute("UPDATE edits SET state = 'dropped' WHERE job_id = ? AND state = 'undone'", (job_id,))
            cursor = db.execute(
                "INSERT INTO edits (job_id, at, kind, summary, changes) VALUES (?, ?, ?, ?, ?)",
                (job_id, time.time(), kind, summary, json.dumps(recorded)),
            )
            return {"id": cursor.lastrowid, "kind": kind, "summary": summary, "changes": recorded}

    def undo(self, job_id: str) -> dict[str, Any] | None:
        """Put back the state before the newest edit still in force; None when there is none."""
        return self._replay(job_id, "done", "undone", "before", "DESC")

    def redo(self, job_id: str) -> dict[str, Any] | None:
        """Apply again the oldest edit undone since the last new edit; None when there is none."""
        return self._replay(job_id, "undone", "done", "after", "ASC")

    def _replay(self, job_id: str, state: str, new_state: str, side: str, order: str) -> dict[str, Any] | None:
        with self._tx() as db:
            row = db.execute(
                f"SELECT * FROM edits WHERE job_id = ? AND state = ? ORDER BY id {order} LIMIT 1", (job_id, state)
            ).fetchone()
            if row is None:
                return None
            changes = json.loads(row["changes"])
            for change in reversed(changes) if side == "before" else changes:
                _put_cue(db, job_id, change["id"], change[side])
            db.execute("UPDATE edits SET state = ? WHERE id = ?", (new_state, row["id"]))
            return {"id": row["id"], "kind": row["kind"], "summary": row["summary"], "changes": changes}

    def edits(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, at, kind, summary, state FROM edits WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        return [dict(row) for row in rows]


def _insert_cue(db: sqlite3.Connection, job_id: str, row: dict[str, Any], cue_id: int | None = None) -> int:
    values = [_encode(name, row[name]) for name in CUE_COLUMNS]
    columns = ", ".join(f'"{name}"' for name in CUE_COLUMNS)
    cursor = db.execute(
        f"INSERT INTO cues (id, job_id, {columns}) VALUES (?, ?, {', '.join('?' * len(CUE_COLUMNS))})",
        [cue_id, job_id, *values],
    )
    return int(cursor.lastrowid)  # type: ignore[arg-type]


def _put_cue(db: sqlite3.Connection, job_id: str, cue_id: int, row: dict[str, Any] | None) -> None:
    """Make cue ``cue_id`` be ``row`` (None: not exist), whatever it is now."""
    db.execute("DELETE FROM cues WHERE job_id = ? AND id = ?", (job_id, cue_id))
    if row is not None:
        _insert_cue(db, job_id, row, cue_id)


def _encode(name: str, value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if name in _JSON_COLUMNS and value is not None else value


def _cue(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out.pop("job_id", None)
    for name in _JSON_COLUMNS:
        if out[name] is not None:
            out[name] = json.loads(out[name])
    return out


def _job(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["options"] = json.loads(out["options"])
    out["stats"] = json.loads(out["stats"]) if out["stats"] else None
    out["uploaded"] = bool(out["uploaded"])
    return out
