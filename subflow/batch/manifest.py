"""The batch manifest: one JSON line per finished video, appended in ``--out-dir``.

A line is written only after the video's outputs are in place, with one
``write`` of a whole line followed by fsync, so the manifest is consistent
whenever the batch stops (a torn last line after a power cut is ignored). The
last line for a key wins. A rerun skips a video whose last record is ``done``
for the same input (size and mtime), the same options and outputs that still
exist; everything else is run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Config
from .inputs import Item

MANIFEST_NAME = "subflow-batch.jsonl"


@dataclass
class Record:
    """What happened to one video."""

    key: str
    input: str
    status: str  # "done" or "failed"
    outputs: list[str] = field(default_factory=list)  # relative to the out dir
    duration: float | None = None  # media seconds
    cues: int = 0
    crops: int = 0  # crops the engine read
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds: decode, detect, ocr (engine busy), ocr_wait
    elapsed: float = 0.0  # wall seconds of its run
    realtime: float | None = None  # media seconds per wall second
    error: str = ""
    attempts: int = 1
    size: int | None = None
    mtime: float | None = None
    options: str = ""
    worker: str = ""  # host:pid that did the work
    finished: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def options_digest(config: Config, formats: list[str]) -> str:
    """A short hash of everything that shapes a video's outputs (not how the batch is spread)."""
    settings = dataclasses.asdict(config)
    settings.pop("batch")
    settings["formats"] = formats
    settings["version"] = __version__
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(spec: str) -> tuple[int | None, float | None]:
    """(size, mtime) of a local input; (None, None) for a URL or a missing file."""
    try:
        st = os.stat(spec)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime


class Manifest:
    """The records of an out dir, read at start and appended to as videos finish."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST_NAME
        self.records: dict[str, Record] = {}
        self._torn = False  # the file ends inside a line: the next record starts on a new one
        self._read()

    def _read(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        self._torn = bool(text) and not text.endswith("\n")
        names = {f.name for f in dataclasses.fields(Record)}
        for line in text.splitlines():
            try:
                data: dict[str, Any] = json.loads(line)
                record = Record(**{k: v for k, v in data.items() if k in names})
            except (ValueError, TypeError):
                continue  # a torn line from a crash mid-write
            self.records[record.key] = record

    def is_done(self, item: Item, options: str, out_dir: Path) -> bool:
        """Done before, for this very input and these options, with its outputs still there."""
        record = self.records.get(item.key)
        if record is None or record.status != "done" or record.options != options or record.input != item.spec:
            return False
        size, mtime = fingerprint(item.spec)
        if size is not None and (size, mtime) != (record.size, record.mtime):
            return False
        return all((out_dir / name).is_file() for name in record.outputs)

    def append(self, record: Record) -> None:
        line = ("\n" if self._torn else "") + record.to_json() + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._torn = False
        self.records[record.key] = record
