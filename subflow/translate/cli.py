"""subflow translate: translate subtitle files that already exist (a reviewed SRT, a season's JSON Lines).

    subflow translate ep01.srt --to en --translator-endpoint http://mt:8000/v1
    subflow translate season1/*.srt --to fr,de --glossary terms.tsv -o out/ --bilingual

It reads SRT, WebVTT, ASS and JSON Lines and writes the same format beside
the original's name: ``ep01.en.srt`` per language (and ``ep01.bi.ass`` with
``--bilingual``); a JSON Lines input gives ``NAME.translated.jsonl`` with every
language in each cue. Times and cues are the original's, exactly. The text
translator does the work (an OpenAI-compatible endpoint): a file has no
images for HunyuanOCR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Config
from ..records import CueUpdate
from ..recognizer import run_on_engine_loop
from ..sinks import SinkError, open_tracks
from . import TranslateError, TranslationStage, build_translators, load_glossaries, plan_translation
from .options import add_translate_options, translate_overrides
from .readers import read_cues

EXIT_FAILED = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "translate",
        help="translate subtitle files (SRT, WebVTT, ASS, JSON Lines) on their own timing",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1] + " Files NAME.LANG.EXT are written next to each input (or under -o); "
        "cues that could not be translated keep the original text and are counted in the summary "
        "(exit status 1 when there are any).",
    )
    parser.add_argument("inputs", nargs="+", metavar="FILE", help=".srt, .vtt, .ass or .jsonl files")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="an existing directory for the outputs, or (one input) the original's name to derive them "
                        "from (-o subs/ep01.srt gives subs/ep01.en.srt)")
    parser.add_argument("--config", metavar="FILE", help="TOML settings (see configs/default.toml; the [translate] table)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="any setting, e.g. --set translate.batch_size=20 (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary")
    add_translate_options(parser, required=True)
    return parser


def _base(path: Path, output: str | None, many: bool) -> Path:
    """The name the outputs are derived from."""
    if output is None:
        return path
    out = Path(output)
    if out.is_dir():
        return out / path.name
    if many:
        raise SinkError(f"{out}: with several inputs, -o must be an existing directory")
    return out


def translate_file(path: Path, base: Path, config: Config, stage: TranslationStage, quiet: bool) -> int:
    """Translate one file; returns how many cue translations are missing."""
    cues, fmt, size = read_cues(path)
    if fmt == "jsonl" and base.resolve() == path.resolve():
        base = base.with_name(f"{base.stem}.translated.jsonl")
    languages = list(stage.languages)
    sink = open_tracks(base, fmt, languages=languages, bilingual=config.translate.bilingual,
                       original=fmt == "jsonl", video_size=size)
    with sink:
        for update in stage.process(CueUpdate(cue, final=True) for cue in cues):
            assert update.cue is not None
            sink.write(update.cue)
    stats = stage.collect()
    if not quiet:
        written = [str(s.path) for s in getattr(sink, "sinks", [sink])]
        sys.stderr.write(f"{path.name}: {len(cues)} cues -> {', '.join(written)}\n  {stats.summary()}\n")
    return stats.untranslated


def run(args: argparse.Namespace) -> int:
    from ..cli import parse_sets

    overrides = parse_sets(args.set)
    overrides.update(translate_overrides(args))
    config = Config.load(args.config, overrides)
    plan = plan_translation(config, images=False)
    glossaries = load_glossaries(config.translate.glossary, list(plan))
    translators = build_translators(config, plan, None)
    missing = 0
    try:
        for translator in dict.fromkeys(translators.values()):
            run_on_engine_loop(translator.check())
        paths = [Path(spec) for spec in args.inputs]
        for path in paths:
            stage = TranslationStage(translators, glossaries, context=config.translate.context)
            missing += translate_file(path, _base(path, args.output, len(paths) > 1), config, stage, args.quiet)
    finally:
        for translator in dict.fromkeys(translators.values()):
            run_on_engine_loop(translator.aclose())
    if missing:
        sys.stderr.write(f"subflow: {missing} cue translation(s) missing; those cues keep the original text "
                         "(flagged untranslated in JSON Lines)\n")
        return EXIT_FAILED
    return 0


__all__ = ["add_parser", "run", "TranslateError"]
