"""Command line: ``subflow extract|score|live|doctor``.

A thin layer over :func:`subflow.pipeline.stream`: it opens the output first
(so a bad path fails before any work), shows progress on stderr, writes cues
as they close, and prints a summary. User mistakes end in one line on stderr
and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config, ConfigError
from .engines import ENGINES, EngineError
from .pipeline import Pipeline, Stats
from .score import ScoreError
from .sinks import FORMATS, JsonStreamSink, Output, SinkError, open_tracks, plan_outputs
from .source import SourceError, VideoSource
from .translate.options import add_translate_options, translate_overrides

# Errors whose message is meant for the user as it is.
USER_ERRORS: tuple[type[Exception], ...] = (SourceError, ConfigError, SinkError, ScoreError, EngineError)
# Subcommands that live in their own modules: name -> module with add_parser(subparsers) and run(args).
# One line each (new commands are added at the end).
SUBCOMMAND_MODULES = {
    "score": "subflow.score",
    "live": "subflow.live.cli",
    "doctor": "subflow.doctor",
    "serve": "subflow.serve.cli",
    "translate": "subflow.translate.cli",
    "batch": "subflow.batch.cli",
}

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

log = logging.getLogger("subflow")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="subflow",
        description="Extract burned-in (hard) subtitles from videos and live streams as timed cues.",
    )
    parser.add_argument("--version", action="version", version=f"subflow {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_extract(subparsers)
    for module_name in SUBCOMMAND_MODULES.values():
        module = importlib.import_module(module_name)
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def add_pipeline_options(parser: argparse.ArgumentParser, *, bilingual: bool = False) -> None:
    """Options shared by ``extract`` and ``live``: what to look at, how to read it, what to translate it into
    (``bilingual``: files with the original and the translation together, for commands that write files)."""
    group = parser.add_argument_group("recognition")
    group.add_argument("--config", metavar="FILE", help="TOML settings (see configs/default.toml); flags override it")
    group.add_argument(
        "--region",
        metavar="SPEC",
        help="where subtitles sit: auto (default: files are sampled; the bottom band, plus the top one where "
        "subtitles show there; watermarks masked; live streams: bottom), bottom, top, both, "
        "or x0,y0,x1,y1 as fractions of the frame (0.1,0.8,0.9,1) or pixels",
    )
    group.add_argument("--engine", choices=sorted(ENGINES), help="OCR engine (default: rapid, embedded, CPU)")
    group.add_argument(
        "--lang",
        metavar="LANG",
        help="language on screen, e.g. ru, ko, ar, th (or ru+en). The default model reads Chinese, Japanese and "
        "Latin-script languages; others are read by the tesseract engine with Debian's language data "
        "(apt-get install tesseract-ocr-rus ...). `subflow doctor` lists what can be read here",
    )
    group.add_argument("--task", choices=["recognize", "translate"], help="read the text, or read and translate it")
    group.add_argument("--target", metavar="LANG", help="translation target language: en or zh (with --task translate)")
    group.add_argument(
        "--fast",
        action="store_true",
        help="decode only I and P frames (skip B-frames): decoding gets about 2x faster and the run uses about a "
        "quarter less CPU, but OCR costs the same, so it helps only where decoding is the bottleneck (high "
        "resolution, a GPU engine; measured 1.1-2x faster on 2 cores with the CPU engine). Times snap to the decoded "
        "frames, so they can be ~3 frames late, and subtitles shorter than ~10 frames may be missed",
    )
    group.add_argument(
        "--sample-every",
        type=int,
        metavar="N",
        help="run change detection on every Nth decoded frame only: saves detection work (decoding still reads "
        "every frame); cue times can be up to N-1 frames late (default 1: frame-exact)",
    )
    group.add_argument(
        "--endpoint",
        action="append",
        metavar="URL",
        help="an OpenAI-compatible server for --engine hunyuan-api, e.g. http://gpu1:8000/v1 (repeatable: "
        "crops are spread over all of them)",
    )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any setting of the config file, e.g. --set detector.lost_threshold=0.4 or "
        "--set engines.hunyuan-api.endpoints=http://gpu1:8000/v1 (repeatable)",
    )
    add_translate_options(parser, bilingual=bilingual)


def pipeline_defaults(**values: Any) -> argparse.Namespace:
    """What :func:`add_pipeline_options` parses from no flags, updated with ``values``: for callers that
    build a config as ``extract`` does without a command line of their own (serve's jobs)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_pipeline_options(parser)
    args = parser.parse_args([])
    vars(args).update(values)
    return args


def parse_sets(items: list[str]) -> dict[str, object]:
    """``--set SECTION.KEY=VALUE`` flags -> ``{"SECTION.KEY": "VALUE"}``."""
    overrides: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set needs SECTION.KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def load_config(args: argparse.Namespace) -> Config:
    """Defaults, then ``--config``, then ``--set``, then the dedicated flags."""
    if args.sample_every is not None and args.sample_every < 1:
        raise ConfigError("--sample-every must be 1 or more")
    overrides = parse_sets(args.set)
    flags = {
        "region.band": args.region,
        "recognizer.engine": args.engine,
        "recognizer.lang": args.lang,
        "recognizer.task": args.task,
        "recognizer.target": args.target,
        "detector.sample_every": args.sample_every,
        "source.skip": "bidir" if args.fast else None,
    }
    if args.endpoint:
        flags["engines.hunyuan-api.endpoints"] = ",".join(args.endpoint)
        if args.engine is None:
            flags["recognizer.engine"] = "hunyuan-api"
    overrides.update({key: value for key, value in flags.items() if value is not None})
    overrides.update(translate_overrides(args))
    return Config.load(args.config, overrides)


def _add_extract(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="video files in, subtitle files out",
        description="Read the burned-in subtitles of video files and write them as SRT, WebVTT, ASS or JSON Lines. "
        "Each input's cues go next to it (movie.mp4 -> movie.srt) unless -o says otherwise. A bad input is "
        "reported and skipped; the exit status is non-zero if any input failed.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video files (anything FFmpeg reads) or URLs")
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file (one input), or a folder (ending in /, or with several inputs; created if missing); "
        "'-' prints JSON Lines to stdout. An output never replaces an input, and two inputs never share one",
    )
    parser.add_argument(
        "--format", choices=sorted(FORMATS), help="output format (default: from the output's suffix, else srt); must agree with -o's suffix"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (engine, bands, skipped packets)")
    add_pipeline_options(parser, bilingual=True)
    parser.set_defaults(run=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    config = load_config(args)
    outputs = plan_outputs(args.inputs, args.output, args.format, config.output.format)
    pipeline = Pipeline(config)
    failures = untranslated = 0
    try:
        pipeline.check_translators()  # a dead translator endpoint fails now, not after the decoding
        for output in outputs:
            try:
                extract_one(output, args, pipeline)
                untranslated += pipeline.stats.translation.untranslated if pipeline.stats.translation else 0
            except USER_ERRORS as exc:
                if len(outputs) == 1:
                    raise
                failures += 1
                _error(str(exc))
    finally:
        pipeline.close()
    if failures:
        _error(f"{failures} of {len(outputs)} inputs failed")
        return EXIT_FAILED
    if untranslated:
        _error(f"{untranslated} cue translation(s) missing; those cues keep the original text in the translated "
               "files and are flagged untranslated:LANG in JSON Lines")
        return EXIT_FAILED
    return 0


def extract_one(output: Output, args: argparse.Namespace, pipeline: Pipeline) -> None:
    """Run one input through the pipeline into its output; the output is written only on success."""
    source = VideoSource(output.input, pipeline.config.source)
    with source:
        languages = list(pipeline.translation_plan)
        if output.path is None:
            sink = JsonStreamSink()
        else:
            sink = open_tracks(output.path, output.format, languages=languages,
                               bilingual=pipeline.config.translate.bilingual, video_size=(source.width, source.height))
        progress = None if args.quiet else Progress(output.input)
        pipeline.on_progress = progress.update if progress else None
        with sink:
            for update in pipeline.updates(source):
                if update.final and update.cue is not None and (update.cue.rejected or not update.meta.get("retracted")):
                    sink.write(update.cue)  # rejected cues too: JSON keeps them as evidence, subtitle files skip them
        if progress:
            progress.done(pipeline.stats, output.path, pipeline.engine.describe(), source.errors)
            translated = pipeline.stats.translation
            if translated is not None:
                others = [str(s.path) for s in getattr(sink, "sinks", [])[1:]]
                sys.stderr.write(f"  {translated.summary()}\n" + (f"  also wrote {', '.join(others)}\n" if others else ""))


class Progress:
    """A one-line progress bar on stderr (redrawn on a terminal, a line every 10 s otherwise)."""

    def __init__(self, name: str) -> None:
        self.name = Path(name).name
        self.tty = sys.stderr.isatty()
        self.last_line = 0.0

    def update(self, stats: Stats) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last_line < 10:
            return
        self.last_line = now
        line = self._line(stats)
        sys.stderr.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        sys.stderr.flush()

    def _line(self, stats: Stats) -> str:
        rate = stats.realtime_factor
        if stats.duration:
            share = min(1.0, stats.position / stats.duration)
            bar = "#" * int(share * 20)
            eta = (stats.duration - stats.position) / rate if rate > 0 else 0.0
            where = f"[{bar:<20}] {share:4.0%} {_clock(stats.position)}/{_clock(stats.duration)} ETA {_clock(eta)}"
        else:
            where = _clock(stats.position)
        return f"{self.name}: {where} {stats.fps:5.0f} fps {rate:5.1f}x cues {stats.cues}"

    def done(self, stats: Stats, target: Path | None, engine: str, errors: int) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        where = f"wrote {target}" if target else "done"
        sys.stderr.write(
            f"{self.name}: {where}: {stats.cues} cues; {_clock(stats.position)} of video in {stats.elapsed:.1f} s "
            f"({stats.realtime_factor:.1f}x real time, {stats.fps:.0f} fps)\n"
            f"  decode {stats.decode:.1f} s, detect {stats.detect:.1f} s, OCR {stats.recognize:.1f} s busy "
            f"({stats.crops_read} crops, {engine}; {stats.ocr_wait:.1f} s waited for), merge {stats.merge:.2f} s"
            + (f"; {stats.rejected} read as text but rejected as scene text" if stats.rejected else "")
            + (f"; {stats.dropped} lines of scene text dropped from cues" if stats.dropped else "")
            + (f"; {errors} unreadable packets skipped" if errors else "")
            + "\n"
        )


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _error(message: str) -> None:
    sys.stderr.write(f"subflow: error: {message}\n")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C: outputs in progress are discarded cleanly."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="subflow: %(levelname)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except USER_ERRORS as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\nsubflow: interrupted; unfinished outputs were not written\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
