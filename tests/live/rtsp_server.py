"""A real RTSP server for the live tests: gst-rtsp-server serving one H.264 MP4 file.

Runs under Debian's ``/usr/bin/python3`` (the GObject bindings live there, not in
the venv); the tests start it as a subprocess and fault it with signals.

With ``--anchor WALL`` it behaves like a broadcast rather than a file player:
every new session starts at ``(now - WALL) % duration`` of the file, so a
client that reconnects after a stall or a server restart joins "live" instead
of from the top, and a stream that reached its end loops on reconnect (with
``--once`` the show is over instead: a late session gets only the last frames).

Prints ``READY <port> <anchor>`` on stdout once it listens, and with ``--timing`` one line
``PLAY <position> <wall>`` per session: the wall time at which the frame at
``position`` (seconds of the file) leaves the server, from the pipeline clock,
so a benchmark knows when any subtitle first appeared on the stream.

:class:`RtspServer` is the controller the tests and benchmarks use from the
venv (the GObject imports happen only in the server process).
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RtspServer:
    """gst-rtsp-server in a subprocess, playing ``clip``; fault it with :meth:`signal`, :meth:`kill`, :meth:`start`.

    With ``broadcast=True`` the show runs on a wall clock set by the first start
    (see the module doc); otherwise every session plays the file from the top.
    """

    def __init__(self, clip: Path, duration: float, port: int | None = None, *,
                 broadcast: bool = True, loop: bool = True, timing: bool = False) -> None:
        self.clip, self.duration = clip, duration
        self.port = port or free_port()
        self.broadcast, self.loop, self.timing = broadcast, loop, timing
        self.anchor: float | None = None  # wall time of the broadcast's 0:00, set by the first start
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def start(self) -> "RtspServer":
        """(Re)start on the same port; a broadcast continues where its clock says.

        The first start lets the server set the clock when it is ready (starting
        the GObject stack takes seconds on a busy machine)."""
        cmd = [SYSTEM_PYTHON, __file__, "--port", str(self.port), "--file", str(self.clip)]
        if self.broadcast:
            anchor = "ready" if self.anchor is None else repr(self.anchor)
            cmd += ["--anchor", anchor, "--duration", str(self.duration)] + ([] if self.loop else ["--once"])
        if self.timing:
            cmd.append("--timing")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        if self.broadcast and self.anchor is None:
            self.anchor = float(line.split()[2])
        return self

    def play_line(self, timeout: float = 30) -> tuple[float, float]:
        """(position, wall) of the next session's first frame (needs ``timing``)."""
        assert self.proc is not None and self.timing
        line = self.proc.stdout.readline()
        kind, position, wall = line.split()
        assert kind == "PLAY", line
        return float(position), float(wall)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)


def main() -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--mount", default="/stream")
    parser.add_argument("--anchor", default=None, help="wall time at which the broadcast's 0:00 played, or 'ready'")
    parser.add_argument("--duration", type=float, default=None, help="file duration (needed with --anchor)")
    parser.add_argument("--once", action="store_true", help="with --anchor: after the end, sessions get only the end")
    parser.add_argument("--timing", action="store_true", help="print PLAY <position> <wall> per session")
    args = parser.parse_args()
    if args.anchor is not None and not args.duration:
        parser.error("--anchor needs --duration")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( filesrc location={args.file} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)

    if args.anchor is not None:
        # A camera does not restart its show for a new viewer: each session jumps to "now" in the file,
        # after PLAY was handled (PLAY seeks to the client's range, npt=0, which would undo an earlier jump).
        # A plain seek event up from the payloader, not media.seek(): that one blocks the main loop until
        # the media prerolls again, which on a busy machine wedged the whole server.
        def join_live(media):
            elapsed = time.time() - anchor
            offset = min(elapsed, args.duration - 0.05) if args.once else elapsed % args.duration
            if elapsed > 0 and offset > 0.2:
                pad = media.get_element().get_by_name("pay0").get_static_pad("src")
                seek = Gst.Event.new_seek(1.0, Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT,
                                          Gst.SeekType.SET, int(offset * Gst.SECOND), Gst.SeekType.NONE, -1)
                if not pad.send_event(seek):
                    print(f"seek to {offset:.2f} s failed", file=sys.stderr, flush=True)
            return False

        def on_play(_client, ctx):
            GLib.idle_add(join_live, ctx.media)

        server.connect("client-connected", lambda _server, client: client.connect("play-request", on_play))

    if args.timing:
        def on_buffer(pad, info):
            element = pad.get_parent_element()
            clock = element.get_clock()
            if element.current_state != Gst.State.PLAYING or clock is None:
                return Gst.PadProbeReturn.OK  # prerolling: not on the wire yet
            pts = info.get_buffer().pts
            render = element.get_base_time() + pts  # no seek in timing mode: running time = pts
            wall = time.time() - (clock.get_time() - render) / Gst.SECOND
            print(f"PLAY {pts / Gst.SECOND:.6f} {wall:.6f}", flush=True)
            return Gst.PadProbeReturn.REMOVE

        def add_probe(_factory, media):
            pay = media.get_element().get_by_name("pay0")
            pay.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_buffer)

        factory.connect("media-configure", add_probe)

    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 1
    anchor = time.time() if args.anchor == "ready" else float(args.anchor or 0)
    print(f"READY {args.port} {anchor:.6f}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
