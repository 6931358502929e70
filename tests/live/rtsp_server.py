"""A real RTSP server for the live tests: gst-rtsp-server serving one H.264 MP4 file.

Runs under Debian's ``/usr/bin/python3`` (the GObject bindings live there, not in
the venv); the tests start it as a subprocess and fault it with signals.

With ``--anchor WALL`` it behaves like a broadcast rather than a file player:
every new session starts at ``(now - WALL) % duration`` of the file, so a
client that reconnects after a stall or a server restart joins "live" instead
of from the top, and a stream that reached its end loops on reconnect.

Prints ``READY <port>`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--mount", default="/stream")
    parser.add_argument("--anchor", type=float, default=None, help="wall time at which the broadcast's 0:00 played")
    parser.add_argument("--duration", type=float, default=None, help="file duration (needed with --anchor)")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( filesrc location={args.file} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)

    if args.anchor is not None:
        def join_live(media):
            # a camera does not restart its show for a new viewer: jump to "now" in the file
            if media.get_status() != GstRtspServer.RTSPMediaStatus.PREPARED:
                return True  # not ready yet: try again on the next tick
            elapsed = time.time() - args.anchor
            offset = elapsed % (args.duration or 1e9)
            if elapsed > 0 and offset > 0.2:
                ok, rng = GstRtsp.rtsp_range_parse(f"npt={offset:.3f}-")
                if ok != GstRtsp.RTSPResult.OK or not media.seek(rng):
                    print(f"seek to {offset:.2f} s failed", file=sys.stderr, flush=True)
            return False

        factory.connect("media-configure", lambda _f, media: GLib.timeout_add(20, join_live, media))

    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 1
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
