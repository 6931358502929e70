"""HTTP progressive and HLS sources through a real HTTP server (Python's), with the server going away."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import av
import pytest

from subflow.config import LiveConfig
from subflow.live.source import LiveSource


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class HttpServer:
    def __init__(self, directory: Path, port: int = 0) -> None:
        handler = functools.partial(Quiet, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def web_root(live_clip, tmp_path_factory) -> Path:
    """The clip as a progressive MPEG-TS and as a 2-second-segment HLS playlist (remuxed with PyAV).

    (A progressive MP4 needs HTTP range requests, which Python's file server lacks.)"""
    root = tmp_path_factory.mktemp("web")
    remux(live_clip, root / "clip.ts", "mpegts", {})
    remux(live_clip, root / "index.m3u8", "hls", {"hls_time": "2", "hls_list_size": "0", "hls_playlist_type": "vod"})
    return root


def remux(source: Path, target: Path, fmt: str, options: dict[str, str]) -> None:
    with av.open(str(source)) as src:
        video = src.streams.video[0]
        with av.open(str(target), "w", format=fmt, options=options) as out:
            stream = out.add_stream_from_template(video)
            for packet in src.demux(video):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)


@pytest.mark.parametrize("path", ["clip.ts", "index.m3u8"])
def test_http_source_reconnects_at_its_end_and_when_the_server_goes(web_root, path):
    servers = [HttpServer(web_root)]
    port = servers[0].port
    events: list[tuple[str, dict]] = []
    source = LiveSource(f"http://127.0.0.1:{port}/{path}", live=LiveConfig(timeout=1.0, backoff_min=0.1, backoff_max=0.3),
                        on_status=lambda s, d: events.append((s, d)))
    frames = []
    restart = threading.Timer(2.0, lambda: servers.append(HttpServer(web_root, port)))
    try:
        for frame in source.frames():
            frames.append(frame.time)
            if source.stats.connects == 2 and not restart.is_alive() and len(servers) == 1:
                servers[0].stop()  # the origin goes away for 2 s, then comes back on the same port
                restart.start()
            if source.stats.connects == 3:
                break
    finally:
        source.close()
        restart.cancel()
        for server in servers[1:]:
            server.stop()
    reasons = [d.get("reason", "") for s, d in events if s == "reconnecting"]
    assert "end of stream" in reasons  # a live source that ends is reconnected, not finished
    assert any(r and r != "end of stream" for r in reasons)  # and so is one that cannot be reached
    assert [s for s, _ in events].count("connected") == 3
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert frames[-1] > 30.0  # the session clock ran on across plays of the 30.5 s file
