"""``subflow serve``: start the review web app and HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sqlite3
import sys
from pathlib import Path

from ..config import ConfigError
from ..engines import ENGINES
from ..live.server import ServerError, read_tokens

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="a web app and HTTP API to extract, review, fix and export subtitles",
        description="Serve the review page and its HTTP API (OpenAPI at /openapi.json): upload a video or pick "
        "one under --media-root, watch the extraction, fix each cue against the crop it was read from, export "
        "SRT/VTT/ASS/JSONL. Jobs, cues and every edit live in a SQLite database in the data folder; a restart "
        "keeps them, and re-queues a job that was running. Listening beyond localhost needs --token-file.",
    )
    parser.add_argument("--host", help="listen address (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, help="listen port (default 8800; 0 picks a free one)")
    parser.add_argument("--data", metavar="DIR", help="jobs database, media and crops (default ~/.local/share/subflow)")
    parser.add_argument("--token-file", metavar="FILE", help="tokens, one per line: every request then needs one")
    parser.add_argument(
        "--media-root",
        action="append",
        metavar="DIR",
        help="a folder whose videos may be opened by path (repeatable); nothing outside it, symlinks included",
    )
    parser.add_argument("--allow-urls", action="store_true", help="let jobs read http(s) URLs (the server fetches them)")
    parser.add_argument("--max-upload-mb", type=int, metavar="MB", help="largest upload accepted (default 8192)")
    parser.add_argument("--engine", choices=sorted(ENGINES), help="engine of jobs that do not name one (default: rapid)")
    parser.add_argument("--config", metavar="FILE", help="TOML settings (see configs/default.toml, [serve] and the rest)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any setting (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .app import create_app
    except ImportError as exc:
        print(f"subflow serve: error: {exc.name} is missing; install the serve extra: pip install 'subflow[serve]'", file=sys.stderr)
        return 2
    try:
        settings, host, port = _settings(args)
        app = create_app(settings)
        sock = _listen(host, port)
    except (ConfigError, ServerError) as exc:
        print(f"subflow serve: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"subflow serve: error: {settings.data_dir / 'subflow.db'}: cannot open the database ({exc})", file=sys.stderr)
        return 2
    if args.verbose:
        logging.getLogger("subflow").setLevel(logging.INFO)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"subflow serve: http://{shown}:{bound}/ (data in {settings.data_dir})", flush=True)
    config = uvicorn.Config(app, log_level="info" if args.verbose else "warning", access_log=args.verbose)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the SIGTERM/Ctrl-C it caught
        pass
    return 0


def _settings(args: argparse.Namespace):
    from ..cli import load_config, pipeline_defaults
    from .app import Settings

    server_args = argparse.Namespace(config=args.config, set=list(args.set), engine=args.engine)
    config = load_config(pipeline_defaults(**vars(server_args)))
    serve = config.serve
    serve.host = args.host or serve.host
    serve.port = serve.port if args.port is None else args.port
    serve.data_dir = args.data or serve.data_dir
    serve.token_file = args.token_file or serve.token_file
    serve.media_roots = args.media_root or serve.media_roots
    serve.allow_urls = args.allow_urls or serve.allow_urls
    serve.max_upload_mb = args.max_upload_mb or serve.max_upload_mb
    if not 0 <= serve.port <= 65535:
        raise ConfigError(f"--port must be 0-65535, got {serve.port}")
    serve.upload_suffixes = [suffix.lower() if suffix.startswith(".") else "." + suffix.lower() for suffix in serve.upload_suffixes]
    tokens = read_tokens(serve.token_file) if serve.token_file else set()
    if not tokens and not _is_loopback(serve.host):
        raise ConfigError(f"listening on {serve.host} (beyond this machine) needs --token-file: anyone who can reach it could use it")
    roots = []
    for root in serve.media_roots:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise ConfigError(f"--media-root {root}: not a folder")
        roots.append(path.resolve())
    data = Path(serve.data_dir).expanduser() if serve.data_dir else _default_data_dir()
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot use {data} for data: {exc.strerror or exc}") from None
    return Settings(data_dir=data.resolve(), config=config, server_args=server_args, media_roots=roots, tokens=tokens), serve.host, serve.port


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "subflow"


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """Bind now, so a taken port is one clear line (and port 0 shows the port it got)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP by name: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
