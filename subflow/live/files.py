"""The files a live session writes (``--srt``, ``--vtt``, ``--jsonl``, ``--json``): the original, and
with ``--translate`` the translated tracks, as ``extract --translate`` writes them.

Each final cue is appended to the original files at once. Its translation comes later (a revision of the
cue, see docs/protocol.md) and goes to the files ``extract`` would write, named by
:func:`subflow.sinks.track_outputs`: ``NAME.LANG.EXT`` per language, ``NAME.bi.EXT`` with ``--bilingual``
(in the output's own format), and in JSON Lines (one file for every language) the cue again with its
translations, marked ``"translation": true``.

Translator calls overlap, so translations may come out of order; each waits here until every earlier
cue's entry is written. So every translated track has exactly the original's cues, in the same order,
with the same numbers and times. A cue whose translation has not come when the session ends (translator
dead, Ctrl-C) is written as ``extract`` writes it: the original text in the translated tracks, flagged
``untranslated:LANG`` in JSON Lines. Writes come from two threads (the pipeline's finals, the engine
loop's translations), so one lock orders them.
"""

from __future__ import annotations

import collections
import dataclasses
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ..records import Cue
from ..sinks import ORIGINAL, FileSink, JsonLinesFormat, JsonStreamSink, Sink, SinkError, open_sink, track_outputs
from ..translate import TranslationStats

ENDED = "the session ended before it came"  # the reason given for translations still missing at the end


class LiveFiles(Sink):
    """Original sinks written at once; translated sinks written in cue order as translations arrive."""

    def __init__(self, originals: Sequence[Sink] = (), translated: Sequence[Sink] = (), languages: Sequence[str] = ()) -> None:
        self.originals = list(originals)
        self.translated = list(translated)
        self.languages = list(languages)
        self.counts = TranslationStats()  # what the translated tracks hold, cue x language
        self._waiting: collections.deque[Cue] = collections.deque()  # written originals, translation not yet
        self._arrived: dict[int, Cue] = {}  # cue index -> its translated copy, waiting for earlier cues
        self._lock = threading.Lock()
        self._closed = False

    @property
    def paths(self) -> list[str]:
        return [str(sink.path) for sink in self.originals + self.translated if isinstance(sink, FileSink)]

    def write(self, cue: Cue) -> None:
        """A final cue (pipeline thread): to the original files now, to the translated ones in turn."""
        with self._lock:
            for sink in self.originals:
                sink.write(cue)
            if self.languages:
                self._waiting.append(dataclasses.replace(cue, image=None))  # a crop is MBs
                self._flush()

    def revise(self, cue: Cue) -> None:
        """A final again with its translations (engine loop thread); after close() it is too late."""
        with self._lock:
            if self._closed:
                return
            self._arrived[cue.index] = dataclasses.replace(cue, image=None)
            self._flush()

    def _flush(self) -> None:
        while self._waiting and self._waiting[0].index in self._arrived:
            self._emit(self._arrived.pop(self._waiting.popleft().index))

    def _emit(self, cue: Cue) -> None:
        for sink in self.translated:
            sink.write(cue)
        for lang in self.languages:
            if lang in cue.translations:
                self.counts.translated += 1
                self.counts.flagged += any(flag.endswith(f":{lang}") for flag in cue.flags)
            else:
                self.counts.untranslated += 1

    def close(self) -> None:
        """Write what is still waiting (missing translations as untranslated cues), then close every file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                while self._waiting:
                    cue = self._waiting.popleft()
                    arrived = self._arrived.pop(cue.index, None)
                    if arrived is None:
                        self.counts.reasons[ENDED] = self.counts.reasons.get(ENDED, 0) + len(self.languages)
                        arrived = dataclasses.replace(cue, flags=[*cue.flags, *(f"untranslated:{lang}" for lang in self.languages)])
                    self._emit(arrived)
            finally:
                for sink in self.originals + self.translated:
                    sink.close()

    def abort(self) -> None:
        """Stop: what was appended stays (each file is valid on its own)."""
        with self._lock:
            self._closed = True
            for sink in self.originals + self.translated:
                sink.abort()

    def summary(self, spent: TranslationStats | None) -> str:
        """The ``translate:`` summary line: counts as the files hold them, requests and tokens from ``spent``."""
        stats = dataclasses.replace(spent or TranslationStats(), translated=self.counts.translated,
                                    untranslated=self.counts.untranslated, flagged=self.counts.flagged,
                                    reasons={**(spent.reasons if spent else {}), **self.counts.reasons})
        return stats.summary()


def open_live_files(outputs: Sequence[tuple[str | None, str]], stdout: bool = False, *,
                    languages: Sequence[str] = (), bilingual: bool = False) -> LiveFiles:
    """Open every file of a live session now (a bad path fails before the stream starts), in append mode.

    ``outputs`` are (path or None, format) for ``--srt``, ``--vtt`` and ``--jsonl``; ``stdout`` is ``--json``.
    A translated track appended to must number its cues as its original does, or the two would no longer
    match cue for cue: such a pair is refused.
    """
    originals: list[Sink] = []
    translated: list[Sink] = []
    created: list[Path] = []  # files this call makes: removed again if it fails
    try:
        for path, fmt in outputs:
            if not path:
                continue
            original: FileSink | None = None
            for target, target_fmt, track in track_outputs(path, fmt, languages, bilingual):
                if target_fmt != fmt:  # the bilingual ASS needs the video's size, unknown before the stream starts
                    continue
                if not target.exists():
                    created.append(target)
                sink = open_sink(target, target_fmt, append=True, track=track)
                if track == ORIGINAL:
                    original = sink
                    originals.append(sink)
                    continue
                translated.append(sink)
                if original is not None and sink.numbered != original.numbered:
                    raise SinkError(f"{target} numbers {sink.numbered} cues and {path} {original.numbered}: appending "
                                    "to both would number the same cue differently (give new names or move one aside)")
            if fmt == "jsonl" and languages:
                translated.append(FileSink(path, JsonLinesFormat(revision=True), append=True))
        if stdout:
            originals.append(JsonStreamSink(sys.stdout))
            if languages:
                translated.append(JsonStreamSink(sys.stdout, revision=True))
    except BaseException:
        for sink in originals + translated:
            sink.close()
        for made in created:
            made.unlink(missing_ok=True)
        raise
    return LiveFiles(originals, translated, languages)
