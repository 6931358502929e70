"""The overlay page in a real headless Chromium (Debian package) against a live caption server."""

from __future__ import annotations

import pytest
from browser import Chromium
from live_support import ServerThread, needs_chromium
from test_server import clear, final, partial

pytestmark = needs_chromium

TEXT = "document.querySelector('#caption-bottom .text').textContent"
HIDDEN = "document.getElementById('caption-bottom').hidden"
IDLE = "document.getElementById('idle').hidden"
OBS_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36 OBS/31.0.0"


@pytest.fixture
def session():
    server = ServerThread(tokens={"tok"}).start()
    server.status("connected")
    browser = None
    try:
        browser = Chromium(f"http://127.0.0.1:{server.port}/?token=tok&size=30&color=%23ff0")
        yield server, browser
    finally:
        if browser is not None:
            browser.close()
        server.close()


def test_overlay_shows_each_cue_as_sent_and_survives_a_server_restart(session):
    server, page = session
    assert page.wait_for("document.body.dataset.state", "connected") == "connected"
    style = page.evaluate(
        "(() => { const t = getComputedStyle(document.querySelector('#caption-bottom .text'));"
        " return [getComputedStyle(document.body).backgroundColor, t.fontSize, t.color]; })()"
    )
    assert style == ["rgba(0, 0, 0, 0)", "30px", "rgb(255, 255, 0)"]  # transparent page, styled by the query

    assert page.evaluate(IDLE) is False  # a browser tab says it is waiting, rather than stay blank white
    assert "waiting for captions" in page.evaluate("document.getElementById('idle').textContent")
    server.publish(partial(1, "Hello there"))
    assert page.wait_for(TEXT, "Hello there") == "Hello there"
    assert page.evaluate(HIDDEN) is False and page.evaluate(IDLE) is True
    server.publish(partial(1, "Hello there, world", rev=1))
    assert page.wait_for(TEXT, "Hello there, world") == "Hello there, world"
    server.publish(final(1, "Hello there, world!", rev=2))
    assert page.wait_for(TEXT, "Hello there, world!") == "Hello there, world!"
    server.publish(clear())
    assert page.wait_for(HIDDEN, True) is True and page.evaluate(TEXT) == ""
    assert page.wait_for(IDLE, False) is False

    server.publish(partial(2, "Two\nlines <b>not bold</b>"))
    assert page.wait_for(TEXT, "Two\nlines <b>not bold</b>") == "Two\nlines <b>not bold</b>"
    assert page.evaluate("document.querySelectorAll('#caption-bottom b').length") == 0  # text, never markup

    server.stop()  # the server goes away; the page keeps trying and resumes with the new session
    assert page.wait_for("document.body.dataset.state", "disconnected") == "disconnected"
    server.start()
    server.status("connected")
    server.publish(partial(1, "After the restart"))
    assert page.wait_for(TEXT, "After the restart", timeout=15) == "After the restart"


@pytest.mark.parametrize("query, agent", [("?idle=0", None), ("", OBS_AGENT)])
def test_the_waiting_hint_stays_out_of_obs_and_when_turned_off(query, agent):
    server = ServerThread().start()
    server.status("connected")
    browser = None
    try:
        browser = Chromium(f"http://127.0.0.1:{server.port}/{query}", user_agent=agent)
        assert browser.wait_for("document.body.dataset.state", "connected") == "connected"
        assert browser.evaluate(IDLE) is True  # nothing but captions over the video
        server.publish(partial(1, "Shown"))
        assert browser.wait_for(TEXT, "Shown") == "Shown"
        server.publish(clear())
        assert browser.wait_for(HIDDEN, True) is True and browser.evaluate(IDLE) is True
    finally:
        if browser is not None:
            browser.close()
        server.close()


def translated(index: int, text: str, translations: dict, rev: int = 2):
    update = final(index, text, rev=rev)
    update.cue.translations = translations
    update.meta["translation"] = True
    return update


@pytest.mark.parametrize("show, expected", [("both", "你好Hello"), ("translation", "Hello"), ("original", "你好")])
def test_overlay_shows_the_translation_revision_as_asked(show, expected):
    server = ServerThread().start()
    server.status("connected")
    browser = None
    try:
        browser = Chromium(f"http://127.0.0.1:{server.port}/?show={show}&lang=en")
        assert browser.wait_for("document.body.dataset.state", "connected") == "connected"
        server.publish(final(1, "你好"))
        assert browser.wait_for(TEXT, "你好") == "你好"  # the original at once
        server.publish(translated(1, "你好", {"fr": "Bonjour", "en": "Hello"}))
        assert browser.wait_for(TEXT, expected) == expected
        if show == "both":  # the original sits above, smaller
            sizes = browser.evaluate("[...document.querySelectorAll('#caption-bottom .text, #caption-bottom .original')]"
                                     ".map(e => parseFloat(getComputedStyle(e).fontSize))")
            assert sizes[1] < sizes[0]
        server.publish(final(2, "再见"))
        server.publish(translated(1, "你好", {"en": "Hello again"}, rev=3))  # late: cue 1 has left the screen
        server.status("reconnecting")  # a later message: once it shows, the late revision was handled
        assert browser.wait_for("document.body.dataset.state", "reconnecting") == "reconnecting"
        assert browser.evaluate(TEXT) == "再见"
    finally:
        if browser is not None:
            browser.close()
        server.close()
