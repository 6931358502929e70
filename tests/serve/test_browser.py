"""An editor's round trip in a real headless Chromium (Debian's) against a real ``subflow serve``:
upload, wait, fix a cue's text and nudge a boundary with the keyboard, export SRT; reload the page
and restart the server, and the edits are still there.

``SUBFLOW_SCREENSHOT=docs/img/serve-review.png`` also saves the review page for the README.
"""

from __future__ import annotations

import base64
import io
import os

import pytest
import srt
from serve_helpers import SAMPLE, Chromium, needs_chromium, serve  # noqa: F401 (serve is a fixture)
from PIL import Image

pytestmark = [pytest.mark.serve, needs_chromium]

KEYS = {"Enter": ("Enter", 13, "\r"), "j": ("KeyJ", 74, "j"), "]": ("BracketRight", 221, "]"), "u": ("KeyU", 85, "u"), "U": ("KeyU", 85, "U")}
FIRST_TEXT = "document.querySelector('.cue textarea').value"


def press(page: Chromium, key: str) -> None:
    code, vk, text = KEYS[key]
    page.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk, "text": text})
    page.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk})


def saves(page: Chromium) -> int:
    return int(page.evaluate("document.body.dataset.saves || '0'"))


def reload(page: Chromium) -> None:
    page.evaluate("window.__before_reload = true")
    page.call("Page.reload", {"ignoreCache": True})
    assert page.wait_for("window.__before_reload ? 'old' : document.body.dataset.cues", "10", timeout=30) == "10"


def test_an_editor_fixes_a_cue_and_exports_and_nothing_is_lost(serve):
    server = serve()
    page = Chromium(server.url + "/")
    try:
        page.call("Emulation.setDeviceMetricsOverride", {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        assert page.wait_for("document.querySelectorAll('#opt-engine option').length > 1", True) is True
        root = page.call("DOM.getDocument")["root"]["nodeId"]
        picker = page.call("DOM.querySelector", {"nodeId": root, "selector": "#file"})["nodeId"]
        page.call("DOM.setFileInputFiles", {"nodeId": picker, "files": [str(SAMPLE)]})  # as if chosen in the file dialog
        assert page.wait_for("document.body.dataset.jobState", "done", timeout=120) == "done"
        assert page.wait_for("document.body.dataset.cues", "10", timeout=10) == "10"
        job_id = page.evaluate("location.hash.split('/')[2]")
        assert page.wait_for("document.querySelector('.cue img.crop').naturalWidth > 100", True) is True  # the crop is shown
        assert page.evaluate(FIRST_TEXT) == "Good morning, everyone."

        # Fix the first cue's text with the keyboard: Enter edits, Enter saves.
        done = saves(page)
        press(page, "Enter")
        assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
        page.evaluate("document.activeElement.select()")
        page.call("Input.insertText", {"text": "Good evening, everyone."})
        press(page, "Enter")
        assert page.wait_for("document.body.dataset.saves", str(done + 1)) == str(done + 1)

        # Next cue (j), its start one frame later (]); the page shows the frames at that boundary.
        press(page, "j")
        press(page, "]")
        assert page.wait_for("document.body.dataset.saves", str(done + 2)) == str(done + 2)
        assert page.wait_for("document.body.dataset.boundary", "start:2.44") == "start:2.44"
        shown = "(() => { const i = document.getElementById('frame-b'); return i.complete && i.naturalWidth; })()"
        assert page.wait_for(f"{shown} === 1280", True, timeout=15) is True
        assert page.evaluate("document.querySelector('.cue.selected .start').textContent") == "00:02.440"

        # Undo (u) puts the start back; redo (U) moves it again.
        selected_start = "document.querySelector('.cue.selected .start').textContent"
        press(page, "u")
        assert page.wait_for(selected_start, "00:02.400") == "00:02.400"
        press(page, "U")
        assert page.wait_for(selected_start, "00:02.440") == "00:02.440"

        # Export SRT through the page's own link.
        href = page.evaluate("document.getElementById('export').href")
        assert href.endswith(f"/api/jobs/{job_id}/export?format=srt&lang=original")
        subs = list(srt.parse(page.evaluate(f"fetch({href!r}).then(r => r.text())")))
        assert len(subs) == 10 and subs[0].content == "Good evening, everyone."
        assert subs[1].start.total_seconds() == 2.44 and subs[1].content == "Let's get started with today's plan."

        if os.environ.get("SUBFLOW_SCREENSHOT"):
            shot = base64.b64decode(page.call("Page.captureScreenshot", {"format": "png"})["data"])
            image = Image.open(io.BytesIO(shot)).convert("RGB").quantize(colors=128)  # a small PNG for the README
            image.save(os.environ["SUBFLOW_SCREENSHOT"], optimize=True)

        reload(page)
        assert page.evaluate(FIRST_TEXT) == "Good evening, everyone."
        server.stop()
        server.start()
        reload(page)
        assert page.evaluate(FIRST_TEXT) == "Good evening, everyone."
        assert page.evaluate("document.querySelectorAll('.cue .start')[1].textContent") == "00:02.440"
    finally:
        page.close()
