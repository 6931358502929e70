"""What the live tests import: skip marks for the Debian parts and a caption server on its own thread."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from rtsp_server import SYSTEM_PYTHON


def have_rtsp_server() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


needs_rtsp = pytest.mark.skipif(not have_rtsp_server(), reason="gst-rtsp-server (Debian packages, see Makefile) not installed")
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")


class ServerThread:
    """A CaptionServer on its own event loop thread, fed from the test thread like the pipeline feeds it."""

    def __init__(self, **kwargs) -> None:
        import asyncio
        import threading

        from subflow.live.server import CaptionServer

        self.kwargs = kwargs
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: CaptionServer | None = None
        self.port = 0
        self._make = lambda: CaptionServer(**self.kwargs)

    def _call(self, coro):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> "ServerThread":
        self.server = self._make()
        self._call(self.server.start("127.0.0.1", self.port))
        self.port = self.server.port
        return self

    def stop(self) -> None:
        if self.server is not None:
            self._call(self.server.stop())
            self.server = None

    def publish(self, update) -> None:
        self.loop.call_soon_threadsafe(self.server.publish_update, update)

    def status(self, state: str, **detail) -> None:
        self.loop.call_soon_threadsafe(self.server.publish_status, state, detail)

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
