"""Where cues go: SRT, WebVTT, ASS and JSON Lines files, and JSON lines on a stream.

Every sink has the same small interface (``write``, ``close``, ``abort``, and a
context manager that aborts on an exception), so the CLI, the server and the
Python API can hand cues to any of them.

A file sink works in one of two modes:

* files mode (the default) collects the cues and, on ``close()``, writes them
  sorted by start to a temporary file in the target's directory, fsyncs it and
  renames it over the target. A crash, Ctrl-C or ``abort()`` leaves any
  existing target untouched and no temporary file behind, and readers never
  see a half-written file.
* append mode (live streams) appends each cue as it comes and flushes it, so
  the file is valid while it grows and can be followed by a player or
  ``tail -f``. An existing file is extended (SRT numbering continues).

A format writes one :class:`Track` of each cue: the original text, one
translation (``NAME.LANG.EXT``), or both (bilingual: the original above the
translation). :func:`track_outputs` names every file of a run in one place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Self, TextIO

import srt

from .records import Cue


class SinkError(RuntimeError):
    """An output cannot be written; the message says which one and why."""


class Sink(ABC):
    """Receives cues one by one. ``close()`` commits the output, ``abort()`` discards what it can."""

    @abstractmethod
    def write(self, cue: Cue) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --- formats: how one cue is written -------------------------------------------------

_NEWLINE = re.compile(r"\r\n|\r|\n")


def _visible_lines(lines: list[str]) -> list[str]:
    """The lines a subtitle file can hold: no line breaks inside a line, no
    blank lines (they end an SRT/VTT cue), no padding spaces."""
    out = []
    for line in lines:
        out.extend(part.strip() for part in _NEWLINE.split(line))
    return [line for line in out if line]


@dataclass(frozen=True)
class Track:
    """Which text of a cue a file holds: the original (``lang`` None), the translation into ``lang``,
    or with ``bilingual`` the original lines followed by the translation's.

    A cue that has no translation into ``lang`` keeps its original text, so
    every track has exactly the original's cues and times (JSON Lines and the
    cue's ``untranslated:LANG`` flag say which ones).
    """

    lang: str | None = None
    bilingual: bool = False

    def original(self, cue: Cue) -> list[str]:
        """The cue's own lines; none when it was rejected as scene text (it is no subtitle)."""
        return [] if cue.rejected else list(cue.lines)

    def translation(self, cue: Cue) -> list[str]:
        text = "" if cue.rejected else cue.translations.get(self.lang or "", "")
        return text.split("\n") if text else []

    def lines(self, cue: Cue) -> list[str]:
        """What a subtitle file shows of ``cue``."""
        if self.lang is None:
            return self.original(cue)
        if self.bilingual:
            return self.original(cue) + self.translation(cue)
        return self.translation(cue) or self.original(cue)


ORIGINAL = Track()


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class Format(ABC):
    """Text encoding of cues for one subtitle format (one track of them)."""

    track: Track = ORIGINAL

    def header(self) -> str:
        return ""

    @abstractmethod
    def block(self, cue: Cue, number: int) -> str | None:
        """The text of one cue (numbered from 1), or None when the format cannot hold it
        (subtitle formats cannot hold a rejected cue: it is not a subtitle)."""

    def resume(self, existing: str) -> int:
        """Check that ``existing`` (a non-empty file we are asked to append to) is
        of this format; return how many cues it already numbers."""
        return 0


_SRT_INDEX = re.compile(srt.RGX_INDEX + r"\s*")
_SRT_TIMESTAMP = re.compile(srt.RGX_TIMESTAMP)


def _guard_index_lines(lines: list[str]) -> list[str]:
    """A line that is only a number followed by one that starts like a time
    ("2" then "10:30:00 PM") reads as the start of the next SRT block; a
    zero-width space after the number keeps it text."""
    return [
        line + "\u200b" if _SRT_INDEX.fullmatch(line) and _SRT_TIMESTAMP.match(nxt) else line
        for line, nxt in zip(lines, lines[1:] + [""])
    ]


class SrtFormat(Format):
    """SubRip; top cues carry the ``{\\an8}`` tag that players understand."""

    def block(self, cue: Cue, number: int) -> str | None:
        lines = _visible_lines(self.track.lines(cue))
        if not lines:
            return None
        lines = _guard_index_lines(lines)
        if cue.region == "top":
            lines[0] = "{\\an8}" + lines[0]
        start = _ms(cue.start)
        end = max(start, _ms(cue.end))
        sub = srt.Subtitle(number, timedelta(milliseconds=start), timedelta(milliseconds=end), "\n".join(lines))
        return sub.to_srt()

    def resume(self, existing: str) -> int:
        try:
            indexes = [sub.index or 0 for sub in srt.parse(existing)]
        except (srt.SRTParseError, ValueError) as exc:
            raise SinkError(f"is not a valid SRT file, cannot append to it ({exc.__class__.__name__})") from None
        return max(indexes, default=0)


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


class VttFormat(Format):
    """WebVTT; top cues get ``line:0%`` (the cue box at the top of the video)."""

    def header(self) -> str:
        return "WEBVTT\n\n"

    def block(self, cue: Cue, number: int) -> str | None:
        lines = _visible_lines(self.track.lines(cue))
        if not lines:
            return None
        text = "\n".join(lines).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        start = _ms(cue.start)
        end = max(start, _ms(cue.end))
        settings = " line:0%" if cue.region == "top" else ""
        return f"{number}\n{_vtt_time(start)} --> {_vtt_time(end)}{settings}\n{text}\n\n"

    def resume(self, existing: str) -> int:
        if not existing.lstrip("\ufeff").startswith("WEBVTT"):
            raise SinkError("is not a WebVTT file (no WEBVTT header), cannot append to it")
        return existing.count("-->")


def _ass_time(seconds: float) -> str:
    cs = max(0, round(seconds * 100))
    hours, rest = divmod(cs, 360_000)
    minutes, rest = divmod(rest, 6000)
    secs, centis = divmod(rest, 100)
    return f"{hours:d}:{minutes:02d}:{secs:02d}.{centis:02d}"


def _ass_escape(line: str) -> str:
    # Braces would open an override block and a backslash could start a tag
    # (\N, \h, ...): braces are escaped as libass reads them (\{ \}), and a
    # backslash is followed by a zero-width space so it stays a plain character.
    return line.replace("\\", "\\\u200b").replace("{", "\\{").replace("}", "\\}")


class AssFormat(Format):
    """Advanced SubStation Alpha, in the video's own pixel coordinates.

    ``\\an8`` puts top cues at the top, ``\\an2`` bottom ones at the bottom; a
    ``custom`` cue with a box is pinned under its box's centre with ``\\pos``.
    A bilingual track has two styles: ``Original`` (smaller) for the original
    lines, above ``Default`` for the translation, in one event so they stay together.
    """

    ORIGINAL_SCALE = 0.7  # the original's font size, relative to the translation's

    def __init__(self, video_size: tuple[int, int] | None = None, track: Track = ORIGINAL) -> None:
        self.track = track
        self.width, self.height = video_size or (1920, 1080)
        if self.width <= 0 or self.height <= 0:
            raise SinkError(f"bad video size {self.width}x{self.height} for ASS output")

    def header(self) -> str:
        font = max(8, round(self.height * 0.055))
        outline = max(1, round(self.height / 540))
        margin_v = round(self.height * 0.04)
        margin_h = round(self.width * 0.05)
        return (
            "[Script Info]\n"
            "; Written by subflow\n"
            "ScriptType: v4.00+\n"
            f"PlayResX: {self.width}\n"
            f"PlayResY: {self.height}\n"
            "WrapStyle: 0\n"
            "ScaledBorderAndShadow: yes\n"
            "\n"
            "[V4+ Styles]\n"
            "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
            "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
            "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
            f"Style: Default,Arial,{font},&H00FFFFFF,&H000000FF,&H00000000,&H80000000,"
            f"0,0,0,0,100,100,0,0,1,{outline},{outline},2,{margin_h},{margin_h},{margin_v},1\n"
            + (
                f"Style: Original,Arial,{max(8, round(font * self.ORIGINAL_SCALE))},&H00E0E0E0,&H000000FF,&H00000000,"
                f"&H80000000,0,0,0,0,100,100,0,0,1,{outline},{outline},2,{margin_h},{margin_h},{margin_v},1\n"
                if self.track.bilingual else ""
            )
            + "\n"
            "[Events]\n"
            "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        )

    def block(self, cue: Cue, number: int) -> str | None:
        if self.track.bilingual:
            original = [_ass_escape(line) for line in _visible_lines(self.track.original(cue))]
            translated = [_ass_escape(line) for line in _visible_lines(self.track.translation(cue))]
            body = "{\\rOriginal}" + "\\N".join(original) if original else ""
            if translated:
                body += ("\\N{\\r}" if body else "") + "\\N".join(translated)
        else:
            body = "\\N".join(_ass_escape(line) for line in _visible_lines(self.track.lines(cue)))
        if not body:
            return None
        if cue.region == "top":
            tag = "{\\an8}"
        elif cue.region == "custom" and cue.box is not None:
            tag = f"{{\\an2\\pos({(cue.box.x0 + cue.box.x1) // 2},{cue.box.y1})}}"
        else:
            tag = "{\\an2}"
        text = tag + body
        end = max(cue.start, cue.end)
        return f"Dialogue: 0,{_ass_time(cue.start)},{_ass_time(end)},Default,,0,0,0,,{text}\n"

    def resume(self, existing: str) -> int:
        if "[Events]" not in existing:
            raise SinkError("is not an ASS file with an [Events] section, cannot append to it")
        return existing.count("\nDialogue:")


class JsonLinesFormat(Format):
    """One ``Cue.to_dict()`` object per line, as the WebSocket protocol sends them.

    ``revision`` (a live session's translations, which come after their cue): the cue again with its
    translations, marked ``"translation": true`` like the protocol's translation revision; a reader
    replaces the earlier line of the same ``index`` with it.
    """

    def __init__(self, revision: bool = False) -> None:
        self.revision = revision

    def block(self, cue: Cue, number: int) -> str | None:
        record = cue.to_dict()
        if self.revision:
            record["translation"] = True
        return json.dumps(record, ensure_ascii=False) + "\n"


# --- sinks ---------------------------------------------------------------------------


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


class FileSink(Sink):
    """Writes cues to a file in one format, atomically (default) or appending live."""

    def __init__(self, path: str | os.PathLike, fmt: Format, *, append: bool = False) -> None:
        self.path = Path(path)
        self.format = fmt
        self.append = append
        self._cues: list[Cue] = []
        self._count = 0  # cues numbered so far (append mode)
        self._tmp: Path | None = None
        self._closed = False
        if self.path.is_dir():
            raise SinkError(f"cannot write {self.path}: it is a directory")
        self._file = self._open_append() if append else self._open_temp()

    def _open_temp(self) -> TextIO:
        directory = self.path.parent
        try:
            fd, name = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".part")
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {_reason(exc)} ({directory})") from None
        self._tmp = Path(name)
        # mkstemp makes the file private (0600); a subtitle file is not secret:
        # keep the mode of the file it replaces, else the usual 0644.
        try:
            mode = self.path.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        os.fchmod(fd, mode)
        return os.fdopen(fd, "w", encoding="utf-8", newline="")

    def _open_append(self) -> TextIO:
        try:
            file = open(self.path, "a+", encoding="utf-8", newline="")  # noqa: SIM115 (kept open while live)
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {_reason(exc)}") from None
        try:
            file.seek(0)
            existing = file.read()
            if existing.strip():
                self._count = self.format.resume(existing)
            else:
                file.write(self.format.header())
                file.flush()
        except SinkError as exc:
            file.close()
            raise SinkError(f"{self.path} {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            file.close()
            raise SinkError(f"cannot append to {self.path}: {exc}") from None
        return file

    @property
    def numbered(self) -> int:
        """Append mode: how many cues the file numbers so far (those it had, and those written since)."""
        return self._count

    def write(self, cue: Cue) -> None:
        if self._closed:
            raise SinkError(f"cannot write to {self.path}: the sink is closed")
        if not self.append:
            self._cues.append(dataclasses.replace(cue, image=None) if cue.image is not None else cue)  # crops: MBs each
            return
        text = self.format.block(cue, self._count + 1)
        if text is None:
            return
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {_reason(exc)}") from None
        self._count += 1

    def close(self) -> None:
        if self._closed:
            return
        try:
            if not self.append:
                self._file.write(self._render())
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if self._tmp is not None:
                os.replace(self._tmp, self.path)
                self._tmp = None
                _fsync_dir(self.path.parent)
        except OSError as exc:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {_reason(exc)}") from None
        except BaseException:  # Ctrl-C while committing: leave no temporary file
            self.abort()
            raise
        self._closed = True

    def _render(self) -> str:
        blocks = []
        for cue in sorted(self._cues, key=lambda c: c.start):
            text = self.format.block(cue, len(blocks) + 1)
            if text is not None:
                blocks.append(text)
        return self.format.header() + "".join(blocks)

    def abort(self) -> None:
        """Files mode: drop the temporary file, the target stays as it was.
        Append mode: stop; what was appended stays (it is valid on its own)."""
        if self._closed:
            return
        self._closed = True
        self._file.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class JsonStreamSink(Sink):
    """JSON Lines on an open text stream (stdout by default), flushed per cue for pipes
    (``revision``: translation revision lines, see :class:`JsonLinesFormat`)."""

    def __init__(self, stream: TextIO | None = None, *, revision: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.format = JsonLinesFormat(revision)

    def write(self, cue: Cue) -> None:
        self.stream.write(self.format.block(cue, 0) or "")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()

    def abort(self) -> None:
        self.stream.flush()


FORMATS = ("srt", "vtt", "ass", "jsonl")
_ALIASES = {"webvtt": "vtt", "ssa": "ass", "json": "jsonl"}
_SUFFIXES = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ass", ".jsonl": "jsonl", ".json": "jsonl"}


def format_for(path: str | os.PathLike, format: str | None = None) -> str:
    """The format name for an explicit ``format`` or, failing that, the path's suffix."""
    if format is not None:
        name = _ALIASES.get(format.lower(), format.lower())
        if name not in FORMATS:
            raise SinkError(f"unknown output format {format!r} (choose from {', '.join(FORMATS)})")
        return name
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise SinkError(
            f"cannot tell the output format of {os.fspath(path)!r} from its suffix "
            f"(use {', '.join(sorted(_SUFFIXES))} or give the format explicitly)"
        )
    return _SUFFIXES[suffix]


def open_sink(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    append: bool = False,
    video_size: tuple[int, int] | None = None,
    track: Track = ORIGINAL,
) -> FileSink:
    """Open a file sink; fails now (``SinkError``) rather than after the work
    when the format is unknown or the file cannot be written.

    ``video_size`` (width, height) sets the ASS canvas so that positions match
    the video; other formats ignore it. ``track`` picks the text written.
    """
    name = format_for(path, format)
    fmt: Format
    if name == "srt":
        fmt = SrtFormat()
    elif name == "vtt":
        fmt = VttFormat()
    elif name == "ass":
        fmt = AssFormat(video_size, track)
    else:
        fmt = JsonLinesFormat()
    fmt.track = track
    return FileSink(path, fmt, append=append)


@dataclass(frozen=True)
class Output:
    """Where one input's cues go: a file in ``format``, or JSON Lines on stdout (``path`` None)."""

    input: str
    path: Path | None
    format: str


def plan_outputs(inputs: Sequence[str], output: str | None, format: str | None = None, default_format: str = "") -> list[Output]:
    """The output of each input, by ``subflow extract``'s naming rule, checked before any work is done.

    - ``output`` None: next to the input, with the format's suffix (``movie.mp4`` -> ``movie.srt``);
    - ``"-"``: JSON Lines on stdout;
    - a folder (it exists, ends with ``/``, or there are several inputs): ``FOLDER/<input name>.<suffix>``;
      the folder is created when missing;
    - else one file, for one input; its suffix gives the format unless ``format`` is given.

    ``format`` is an explicit choice (a flag) and must agree with the output's suffix; ``default_format``
    (the config file's) applies only where no suffix says otherwise. Raises :class:`SinkError` when an
    output would replace an input or two inputs would write the same file, so nothing is ever lost.
    """
    fmt = format_for("", format) if format else None
    fallback = format_for("", default_format) if default_format else "srt"
    if output == "-":
        if fmt not in (None, "jsonl"):
            raise SinkError(f"output '-' (stdout) is JSON Lines; it cannot be {fmt} (give a file name for {fmt})")
        return [Output(spec, None, "jsonl") for spec in inputs]
    folder = None
    if output is not None and (len(inputs) > 1 or output.endswith(("/", os.sep)) or Path(output).is_dir()):
        folder = Path(output)
        if (folder.exists() or folder.suffix.lower() in _SUFFIXES) and not folder.is_dir():
            raise SinkError(f"{output} is a file name; with several inputs the output must be a folder (e.g. subs/)")
    plans = []
    for spec in inputs:
        if output is None or folder is not None:
            name = _local(spec).with_suffix("." + (fmt or fallback))
            plans.append(Output(spec, name if folder is None else folder / name.name, fmt or fallback))
            continue
        path = Path(output)
        named = _SUFFIXES.get(path.suffix.lower())
        if fmt is not None and named is not None and named != fmt:
            raise SinkError(f"{output} is a {path.suffix} name but the format asked for is {fmt}; make them agree")
        plans.append(Output(spec, path, fmt or named or format_for(path, default_format or None)))
    _refuse_clashes(plans)
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create the output folder {output}: {exc.strerror or exc}") from None
    return plans


def _local(spec: str) -> Path:
    """The file an input names (for a URL: its last path part, so its cues get a sensible name)."""
    return Path(spec.split("?")[0].rstrip("/").rsplit("/", 1)[-1]) if "://" in spec else Path(spec)


def _refuse_clashes(plans: list[Output]) -> None:
    inputs = {Path(p.input).resolve(): p.input for p in plans if "://" not in p.input}
    written: dict[Path, str] = {}
    for plan in plans:
        if plan.path is None:
            continue
        target = plan.path.resolve()
        if target in inputs:
            raise SinkError(f"{plan.path} is an input; writing cues there would destroy it (choose another output)")
        if target in written:
            first = written[target]
            if Path(first).resolve() == Path(plan.input).resolve():
                raise SinkError(f"{plan.input} is given twice; nothing was done")
            raise SinkError(f"{first} and {plan.input} would both write {plan.path}; nothing was done (rename one, or "
                            "run them with separate outputs)")
        written[target] = plan.input
class MultiSink(Sink):
    """Several sinks fed the same cues (a run's per-language files); closes all, or aborts all."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    def write(self, cue: Cue) -> None:
        for sink in self.sinks:
            sink.write(cue)

    def close(self) -> None:
        try:
            for sink in self.sinks:
                sink.close()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


def language_path(path: str | os.PathLike, tag: str) -> Path:
    """``ep01.srt`` -> ``ep01.en.srt``: the tag goes before the suffix, as players and editors look for it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{tag}{path.suffix}")


def track_outputs(
    path: str | os.PathLike,
    format: str,
    languages: Sequence[str] = (),
    bilingual: bool = False,
    original: bool = True,
) -> list[tuple[Path, str, Track]]:
    """Every file of one input's run: (path, format, track), named from ``path`` (the original's file).

    * the original in ``format`` (unless ``original`` is False: ``subflow translate`` reads it);
    * ``NAME.LANG.EXT`` per language for SRT, WebVTT and ASS; JSON Lines is one
      file that carries every language in each cue's ``translations``;
    * with ``bilingual``: ``NAME.bi.ass`` (and ``NAME.bi.srt``/``.vtt`` in those
      formats), or ``NAME.LANG.bi.EXT`` per language when there are several.
    """
    path = Path(path)
    out = [(path, format, ORIGINAL)] if original else []
    if format != "jsonl":
        out += [(language_path(path, lang), format, Track(lang)) for lang in languages]
    if bilingual:
        for lang in languages:
            named = path.with_name(f"{path.stem}.{lang}.bi" if len(languages) > 1 else f"{path.stem}.bi")
            for fmt in dict.fromkeys(f for f in (format, "ass") if f in ("srt", "vtt", "ass")):
                out.append((named.with_name(f"{named.name}.{fmt}"), fmt, Track(lang, bilingual=True)))
    return out


def open_tracks(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    languages: Sequence[str] = (),
    bilingual: bool = False,
    original: bool = True,
    video_size: tuple[int, int] | None = None,
) -> Sink:
    """Open every file :func:`track_outputs` names (all now: a bad path fails before any work)."""
    name = format_for(path, format)
    sinks: list[Sink] = []
    try:
        for target, fmt, track in track_outputs(path, name, languages, bilingual, original):
            sinks.append(open_sink(target, fmt, video_size=video_size, track=track))
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return sinks[0] if len(sinks) == 1 else MultiSink(sinks)
