"""``subflow batch``: a folder or list of videos in, a folder of subtitle files out, resumable."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import closing
from pathlib import Path

from ..cli import EXIT_FAILED, EXIT_INTERRUPTED, add_pipeline_options, load_config
from ..config import Config, ConfigError
from ..engines import engine_class
from ..sinks import FORMATS, SinkError, format_for
from ..translate import plan_translation
from .inputs import Item, collect
from .local import LocalRunner
from .manifest import MANIFEST_NAME, Manifest, Record, fingerprint, options_digest
from .progress import Progress, Tally, table
from .work import VideoResult, write_outputs


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "batch",
        help="many videos in, a folder of subtitle files out (all cores, or a Ray cluster); resumable",
        description="Extract the subtitles of many videos into --out-dir, mirroring the input tree, with the same "
        "pipeline and options as `subflow extract` (each output is what extract writes for that video). "
        f"A manifest ({MANIFEST_NAME}) in --out-dir records every video; a rerun skips what is done (same input "
        "size and mtime, same options) and retries what failed. A bad video is recorded with its reason and never "
        "stops the batch. Exit status: 0 all done, 1 some failed, 2 usage error, 130 interrupted.",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, folders (searched recursively for video files) or text files (.txt/.list) listing "
        "paths or URLs, one a line",
    )
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="where the subtitle files and the manifest go")
    parser.add_argument(
        "--format",
        metavar="LIST",
        help=f"output formats, comma-separated, e.g. srt,vtt (from: {', '.join(FORMATS)}; default: srt)",
    )
    parser.add_argument("--force", action="store_true", help="redo every video, even those done before")
    parser.add_argument("--status", action="store_true", help="only say what is done, failed and left, then exit")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout at the end")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line and no table")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument(
        "--hwaccel",
        metavar="DEVICE",
        help="decode on a hardware decoder FFmpeg has, e.g. cuda (NVDEC); where it is missing, "
        "decoding falls back to the CPU with one warning (same as --set source.hwaccel=DEVICE)",
    )
    spread = parser.add_argument_group("where the work runs")
    spread.add_argument("--workers", type=int, metavar="N", help="local mode: worker processes (default: one per core)")
    spread.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on Ray: 'auto' (the cluster this node is in), 'ray://HEAD:10001', 'HOST:PORT', or 'local' "
        "(start a one-machine Ray here); needs subflow[ray] on every node",
    )
    spread.add_argument(
        "--engines", type=int, metavar="N", help="Ray: engine actors (default: one per GPU, else one per 4 CPUs)"
    )
    spread.add_argument("--gpus-per-engine", type=float, metavar="G", help="Ray: GPUs per engine actor (default 1)")
    add_pipeline_options(parser)
    return parser


def _batch_config(args: argparse.Namespace) -> Config:
    """extract's options (every one of them applies), then the batch flags."""
    config = load_config(args)
    flags = {
        "batch.workers": args.workers,
        "batch.engines": args.engines,
        "batch.gpus_per_engine": args.gpus_per_engine,
        "source.hwaccel": args.hwaccel,
    }
    config.override({k: v for k, v in flags.items() if v is not None}, origin="command line")
    if config.batch.workers < 0 or config.batch.engines < 0 or config.batch.attempts < 1:
        raise ConfigError("--workers and --engines must be 0 or more, batch.attempts 1 or more")
    return config


def _formats(args: argparse.Namespace, config: Config) -> list[str]:
    names = [part.strip() for part in (args.format or config.output.format or "srt").split(",") if part.strip()]
    formats = [format_for("", name) for name in names]
    return list(dict.fromkeys(formats))


def run(args: argparse.Namespace) -> int:
    config = _batch_config(args)
    formats = _formats(args, config)
    items = collect(args.inputs)
    if not items:
        raise ConfigError(f"no video files found in {', '.join(args.inputs)}")
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    manifest = Manifest(out_dir)
    digest = options_digest(config, formats)
    languages = list(plan_translation(config))  # a translation nothing here can serve fails now, before any work
    if args.status:
        return _status(items, manifest, digest, out_dir, args.json)
    if not args.ray:  # (on Ray the engine loads on the cluster's nodes, not here: its actors report)
        engine_class(config.recognizer.engine)  # an engine that cannot load is a usage error now, not N failures later
    todo = [item for item in items if args.force or not manifest.is_done(item, digest, out_dir)]
    tally = Tally(total=len(items), skipped=len(items) - len(todo))
    runner = _runner(config, args.ray)
    progress = Progress(tally, args.quiet)
    if not args.quiet:
        sys.stderr.write(f"subflow batch: {len(todo)} of {len(items)} videos to do ({tally.skipped} done before); {runner.describe()}\n")
    progress.update(force=True)
    by_key = {item.key: item for item in todo}
    stop = _stop_on_signals()
    try:
        with closing(runner.run(todo, stop)) as results:
            for result in results:
                record = _finish(result, by_key[result.key], out_dir, formats, digest, languages, config.translate.bilingual)
                manifest.append(record)
                tally.add(record)
                progress.update(force=record.status != "done")
                if stop.is_set():
                    break
        tally.engines = [] if stop.is_set() else runner.engine_stats()
    finally:
        runner.close()
    interrupted = stop.is_set()
    progress.update(force=True)
    progress.end()
    return _report(tally, args, interrupted)


def _stop_on_signals() -> threading.Event:
    """Ctrl-C and SIGTERM set a flag that the runner checks between results, instead of raising
    inside a worker pool or Ray's client: the batch stops at a clean point, manifest whole."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _runner(config: Config, address: str | None):
    if not address:
        return LocalRunner(config)
    try:
        from .ray_runner import RayRunner
    except ImportError as exc:
        raise ConfigError(f"--ray: {exc}") from None
    runner = RayRunner(config, address)
    runner.start()
    return runner


def _finish(
    result: VideoResult, item: Item, out_dir: Path, formats: list[str], digest: str, languages: list[str], bilingual: bool
) -> Record:
    """Write a finished video's files and make its manifest record (outputs first, record after)."""
    size, mtime = fingerprint(item.spec)
    record = Record(
        key=item.key, input=item.spec, status="failed", error=result.error, duration=result.duration,
        elapsed=round(result.elapsed, 3), attempts=result.attempts, size=size, mtime=mtime, options=digest,
        worker=result.worker,
    )
    if result.ok:
        paths = item.outputs(out_dir, formats)
        try:
            written = write_outputs(result, paths, formats, languages, bilingual)
        except SinkError as exc:
            record.error = str(exc)
            return record
        record.status = "done"
        record.outputs = [path.relative_to(out_dir).as_posix() for path in written]
        record.cues = len(result.cues)
        record.crops = result.crops
        record.stages = result.stages
        if result.duration and result.elapsed > 0:
            record.realtime = round(result.duration / result.elapsed, 2)
    return record


def _report(tally: Tally, args: argparse.Namespace, interrupted: bool) -> int:
    if not args.quiet and tally.records:
        sys.stderr.write(table(tally.records) + "\n")
    if not args.quiet or interrupted:
        left = tally.total - tally.finished
        sys.stderr.write(
            f"subflow batch: {tally.done} done, {tally.skipped} skipped (done before), {tally.failed} failed, "
            f"{left} left; {tally.media / 3600:.2f} h of video in {tally.elapsed:.1f} s "
            f"({tally.media / tally.elapsed if tally.elapsed > 0 else 0:.1f} media-s/s)\n"
        )
    if tally.engines and not args.quiet:
        calls, requests, crops = (sum(e[k] for e in tally.engines) for k in ("calls", "requests", "crops"))
        sys.stderr.write(
            f"  {len(tally.engines)} shared engines: {crops} crops in {calls} calls "
            f"({requests / calls if calls else 0:.2f} video requests per call); loaded in "
            f"{max(e['load_s'] for e in tally.engines):.1f} s, busy {sum(e['call_s'] for e in tally.engines):.1f} s, "
            f"slowest call {max(e['slowest_call_s'] for e in tally.engines):.1f} s\n"
        )
    if interrupted:
        sys.stderr.write("subflow batch: interrupted; finished videos are in the manifest, rerun to do the rest\n")
    if args.json:
        print(json.dumps(tally.to_dict(interrupted)))
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if tally.failed else 0


def _status(items: list[Item], manifest: Manifest, digest: str, out_dir: Path, as_json: bool) -> int:
    """What is done, failed and left, from the manifest, without running anything."""
    states: dict[str, list[Item]] = {"done": [], "failed": [], "changed": [], "left": []}
    for item in items:
        record = manifest.records.get(item.key)
        if manifest.is_done(item, digest, out_dir):
            states["done"].append(item)
        elif record is None:
            states["left"].append(item)
        elif record.status == "failed":
            states["failed"].append(item)
        else:
            states["changed"].append(item)  # done before, but with other options, another input, or outputs gone
    if as_json:
        summary = {name: [i.key for i in group] for name, group in states.items()}
        summary["errors"] = {i.key: manifest.records[i.key].error for i in states["failed"]}
        print(json.dumps({"total": len(items), **summary}))
        return 0
    print(
        f"{len(items)} videos: {len(states['done'])} done, {len(states['failed'])} failed, "
        f"{len(states['left']) + len(states['changed'])} left"
        + (f" ({len(states['changed'])} done before with other options or a changed input)" if states["changed"] else "")
    )
    for item in states["failed"]:
        print(f"  failed: {item.key}: {manifest.records[item.key].error}")
    return 0
