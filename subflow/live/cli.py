"""``subflow live``: captions from a live stream, pushed out as they appear.

    subflow live rtsp://cam.local/stream --ws 0.0.0.0:8765 --srt stream.srt
    subflow live https://host/live.m3u8 --ws :8765 --token-file tokens.txt
    subflow live movie.mp4 --realtime --ws :8765
    subflow live rtsp://cam/stream --json | jq .text

Threads: the live source decodes in its own thread, the pipeline runs in a
worker thread, and the WebSocket server owns the main thread's event loop, so
a slow OCR call never stalls the sockets and a slow socket never stalls OCR.
Ctrl-C or SIGTERM stops the source; the pipeline then closes the open cue, the
files are completed, clients are told the source ended, and the exit code is
130 (0 when a file source simply ended).

With ``--translate``, each final cue goes out at once in its original text and
its translation follows as a revision of the same cue id (translators run on
the engine loop, never in the caption's way). Files get the original at once
and the translated tracks in cue order as translations arrive (``files.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
import time
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..config import Config, ConfigError
from ..engines import EngineError
from .source import LiveSource
from ..pipeline import Pipeline
from ..recognizer import run_on_engine_loop
from ..records import CueUpdate, Task
from .files import LiveFiles, open_live_files
from .server import CaptionServer, ServerError, parse_listen, read_tokens
from ..sinks import SinkError
from ..source import SourceError
from ..translate import TranslateError

log = logging.getLogger("subflow.live")

_ERRORS = (ConfigError, EngineError, ServerError, SinkError, SourceError)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..cli import add_pipeline_options  # the options extract has; cli imports this module lazily

    parser = subparsers.add_parser(
        "live",
        help="captions from a live stream (RTSP, HTTP, HLS, or a file in real time) to WebSocket clients and files",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("source", help="rtsp://, http(s):// (progressive or .m3u8), or a video file")
    out = parser.add_argument_group("outputs")
    out.add_argument("--ws", metavar="HOST:PORT", help="serve the WebSocket protocol and the overlay page here (e.g. :8765)")
    out.add_argument("--token-file", metavar="FILE", help="require one of these tokens (one a line) from clients")
    out.add_argument("--srt", metavar="FILE", help="append final cues to this SRT file as they close (with --translate, "
                     "also NAME.LANG.srt, cue for cue, as translations arrive)")
    out.add_argument("--vtt", metavar="FILE", help="append final cues to this WebVTT file (and NAME.LANG.vtt)")
    out.add_argument("--jsonl", metavar="FILE", help="append final cues to this JSON Lines file (with --translate, each "
                     'cue again with its translations, marked "translation": true)')
    out.add_argument("--json", action="store_true", help="print final cues to stdout as JSON lines (translations as in --jsonl)")
    src = parser.add_argument_group("input")
    src.add_argument("--realtime", action="store_true", help="play a file at its own pace (rehearsal), dropping frames like a live stream")
    src.add_argument("--transport", choices=("tcp", "udp"), help="RTSP transport (default tcp)")
    add_pipeline_options(parser, bilingual=True)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every source state change and connection")
    return parser


def _config(args: argparse.Namespace) -> Config:
    from ..cli import load_config

    config = load_config(args)
    if args.transport:
        config.live.transport = args.transport
    return config


def _files(args: argparse.Namespace, pipeline: Pipeline) -> LiveFiles:
    return open_live_files(((args.srt, "srt"), (args.vtt, "vtt"), (args.jsonl, "jsonl")), args.json,
                           languages=list(pipeline.translation_plan), bilingual=pipeline.config.translate.bilingual)


class LiveSession:
    """One source, one pipeline, its files and (optionally) a caption server."""

    def __init__(self, source: LiveSource, pipeline: Pipeline, files: LiveFiles, server: CaptionServer | None) -> None:
        self.source = source
        self.pipeline = pipeline
        self.files = files
        self.server = server
        self.error: BaseException | None = None
        self.finals = 0
        self.interrupted = False  # stopped by SIGINT/SIGTERM rather than by the source ending
        self.translated = 0

    def interrupt(self) -> None:
        self.interrupted = True
        self.source.close()

    def revise(self, update: CueUpdate) -> None:
        """A final again, with its translations (called from the engine loop's thread)."""
        self.translated += 1
        assert update.cue is not None
        try:
            self.files.revise(update.cue)
        except SinkError as exc:  # a translated file cannot be written: the session stops, as for the original
            self.error = self.error or exc
            self.source.close()
        if self.server is not None:
            self.server.call_soon_threadsafe(self.server.publish_update, update)

    def stats(self) -> dict[str, Any]:
        live = self.source.stats
        pipe = self.pipeline.stats
        return {
            "fps": round(pipe.fps, 2),
            "media_time": round(pipe.position, 3),
            "queue_depth": self.source.queue_depth,
            "frames_decoded": live.frames_in,
            "frames_dropped_stale": live.frames_dropped,
            "reconnects": live.reconnects,
            "source_errors": live.source_errors,
            "cues": self.finals,
            "translated_cues": self.translated,
        }

    def work(self, publish: Any) -> None:
        """The worker thread: pipeline updates to the sinks (finals) and the server (everything)."""
        try:
            self.source.wait_ready()
            if self.source.closed:
                return
            for update in self.pipeline.updates(self.source):
                self._deliver(update, publish)
        except BaseException as exc:  # reported by run(); the thread must not die silently
            self.error = exc
        finally:
            self.source.close()
            log.info("session over: %s", ", ".join(f"{k} {v}" for k, v in self.stats().items()))

    def _deliver(self, update: CueUpdate, publish: Any) -> None:
        if update.standing:
            self.finals += 1
            self.files.write(update.cue)
        if publish is not None:
            publish(update)


async def _serve(session: LiveSession, server: CaptionServer | None, listen: tuple[str, int] | None) -> None:
    loop = asyncio.get_running_loop()
    if server is not None and listen is not None:
        await server.start(*listen)

        def forward(state: str, detail: dict) -> None:
            # "ended"/"error" are the session's to say, after the pipeline flushed its last cue (below)
            if state not in ("ended", "error"):
                server.call_soon_threadsafe(server.publish_status, state, detail)

        session.source.on_status = forward
        server.publish_status(session.source.stats.state)
        _say(_addresses(listen[0], server.port, bool(server.tokens)))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, session.interrupt)
    publish = (lambda update: server.call_soon_threadsafe(server.publish_update, update)) if server else None
    worker = threading.Thread(target=session.work, args=(publish,), name="subflow-live-pipeline", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            await asyncio.sleep(0.1)
        if server is not None:
            await asyncio.sleep(0)  # publish what the worker handed over last
            server.publish_status("error" if session.error else "ended", {"reason": str(session.error or "")})
            await _drain(server, 2.0)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if server is not None:
            await server.stop()


def _addresses(host: str, port: int, tokens: bool) -> str:
    """Where viewers connect, as one line (a wildcard host is shown as this machine's name)."""
    shown = "localhost" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    query = "?token=TOKEN" if tokens else ""
    where = " (all interfaces)" if host in ("0.0.0.0", "::", "") else ""
    return f"captions on ws://{shown}:{port}/ws{query}, overlay on http://{shown}:{port}/{query}{where}"


def _say(message: str) -> None:
    """A line for the person running the command (stderr: stdout may carry --json cues)."""
    print(f"subflow live: {message}", file=sys.stderr, flush=True)


async def _drain(server: CaptionServer, limit: float) -> None:
    """Give clients a moment to receive the last cue and the end status before closing."""
    deadline = time.monotonic() + limit
    while any(client.queue for client in server.clients) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _warm_up(pipeline: Pipeline) -> None:
    """Read one drawn line before serving: engines load their models on the first call (seconds), and
    that must not delay the first caption of the show. Once /healthz answers, captions flow at once."""
    image = Image.new("RGB", (480, 72), (24, 24, 24))
    ImageDraw.Draw(image).text((16, 16), "subflow live", font=ImageFont.load_default(size=32), fill=(255, 255, 255))
    run_on_engine_loop(pipeline.engine.recognize([np.asarray(image)], Task(pipeline.config.recognizer.task, pipeline.config.recognizer.target)))


def _check_translators(pipeline: Pipeline) -> None:
    """A translator that does not answer yet is no reason to hold the captions back: say so and go on
    (its cues go out in the original; it is retried every ``[translate] revive_after`` seconds)."""
    try:
        pipeline.check_translators()
    except TranslateError as exc:
        log.warning("%s; captions go out untranslated until it answers", exc)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("websockets").setLevel(logging.WARNING)  # not a line per viewer connecting
    if args.verbose:
        logging.getLogger("subflow").setLevel(logging.INFO)
    try:
        config = _config(args)
        listen = parse_listen(args.ws) if args.ws else None
        tokens = read_tokens(args.token_file) if args.token_file else set()
        if not (listen or args.srt or args.vtt or args.jsonl or args.json):
            raise ConfigError("nothing to do: give --ws, --srt/--vtt/--jsonl or --json")
        session_ref: list[LiveSession] = []  # the revision callback needs the session, made below
        pipeline = Pipeline(config, on_revision=lambda update: session_ref[0].revise(update) if session_ref else None)
        _warm_up(pipeline)
        _check_translators(pipeline)
        files = _files(args, pipeline)
    except (*_ERRORS, OSError) as exc:
        print(f"subflow live: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while the engine loads
        return 130
    source = LiveSource(args.source, config.source, config.live, realtime=args.realtime)
    server = CaptionServer(config.server, tokens=tokens, info={"source": args.source}) if listen else None
    session = LiveSession(source, pipeline, files, server)
    session_ref.append(session)
    if server is not None:
        server.source_stats = session.stats
    try:
        asyncio.run(_serve(session, server, listen))
    except ServerError as exc:
        session.error = exc
    except KeyboardInterrupt:
        session.interrupted = True
    finally:
        source.close()
        try:
            files.close()  # translations still missing now are written untranslated
        finally:
            pipeline.close()
    if pipeline.translation_plan:
        _say(files.summary(pipeline.stats.translation))
    if session.error is not None:
        if isinstance(session.error, _ERRORS):
            print(f"subflow live: error: {session.error}", file=sys.stderr)
            return 2
        raise session.error
    outputs = "; outputs complete" if files.originals else ""
    if session.interrupted:
        _say(f"stopped after {session.finals} cues{outputs}")
        return 130
    _say(f"{args.source}: the source ended after {session.finals} cues{outputs}")
    return 0
