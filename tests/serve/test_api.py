"""The HTTP API of ``subflow serve`` over real HTTP, against a real server process and the real engine."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest
import srt
from PIL import Image
from serve_helpers import ROOT, SAMPLE, serve  # noqa: F401 (serve is a fixture)

pytestmark = pytest.mark.serve

FRAME = 1 / 25  # en_basic is 25 fps


def _one_clear_error(response, status: int, *words: str) -> str:
    """A 4xx with one readable line, no stack trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert "\n" not in message and "Traceback" not in message and str(ROOT) not in message, message
    for word in words:
        assert word in message, message
    return message


def test_a_token_is_needed_for_everything_and_beyond_localhost(serve, tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# editors\ns3cret\n")
    server = serve("--token-file", str(tokens), token="s3cret")
    anonymous = server.client(token=None)
    for path in ("/api/jobs", "/api/settings", "/openapi.json", "/static/app.js", "/api/jobs/x/export"):
        _one_clear_error(anonymous.get(path), 401, "token")
    _one_clear_error(server.client(token="wrong").get("/api/jobs"), 401, "token")
    _one_clear_error(anonymous.post("/api/jobs", files={"file": ("a.mp4", SAMPLE.read_bytes())}), 401)
    page = anonymous.get("/")
    assert page.status_code == 401 and 'name="token"' in page.text  # a sign-in form, not the app
    assert server.client().get("/api/jobs").json() == []
    spec = server.client().get("/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{job_id}/cues/{cue_id}/nudge", "/api/jobs/{job_id}/export"} <= set(spec["paths"])
    # A browser signs in with ?token= once; the cookie carries it from then on (video, crops, API).
    signed_in = anonymous.get("/?token=s3cret")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/" and "subflow_token" in signed_in.cookies
    assert anonymous.get("/api/jobs").status_code == 200
    page = anonymous.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    elsewhere = {"Origin": "https://evil.example"}  # another site driving the API through the editor's browser
    _one_clear_error(anonymous.post("/api/jobs/by-path", json={"path": "x"}, headers=elsewhere), 403, "another site")

    beyond = subprocess.run(
        [sys.executable, "-m", "subflow.cli", "serve", "--host", "0.0.0.0", "--port", "0", "--data", str(tmp_path / "d2")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60,
    )  # fmt: skip
    assert beyond.returncode == 2
    assert beyond.stderr.count("\n") == 1 and "--token-file" in beyond.stderr and "Traceback" not in beyond.stderr


def test_paths_stay_inside_the_media_roots(serve, tmp_path):
    media = tmp_path / "media"
    (media / "show").mkdir(parents=True)
    shutil.copyfile(SAMPLE, media / "show" / "ep01.mp4")
    secret = tmp_path / "secret.mp4"
    shutil.copyfile(SAMPLE, secret)
    (media / "escape.mp4").symlink_to(secret)  # a symlink out of the root
    (media / "out").symlink_to(tmp_path)  # a folder symlink out of the root
    server = serve("--media-root", str(media))
    client = server.client()

    def by_path(path):
        return client.post("/api/jobs/by-path", json={"path": path})

    for path in ("../secret.mp4", "show/../../secret.mp4", str(secret), "escape.mp4", "out/secret.mp4", "/etc/passwd"):
        _one_clear_error(by_path(path), 403, "outside the media roots")
    _one_clear_error(by_path("show/missing.mp4"), 404, "no such file")
    _one_clear_error(client.get("/api/media", params={"path": ".."}), 403)
    _one_clear_error(client.get("/api/media", params={"path": "out"}), 403)
    _one_clear_error(by_path("http://example.com/a.mp4"), 403, "--allow-urls")
    rebound = client.get("/api/jobs", headers={"Host": "attacker.example:8800"})  # DNS rebinding onto localhost
    _one_clear_error(rebound, 403, "localhost only")
    listing = client.get("/api/media", params={"path": ""}).json()
    assert listing["folders"] == ["show"] and listing["videos"] == []  # escape.mp4 and out/ are not shown
    assert client.get("/api/media", params={"path": "show"}).json()["videos"][0]["name"] == "ep01.mp4"
    job = by_path("show/ep01.mp4")
    assert job.status_code == 201 and job.json()["name"] == "ep01.mp4"
    _one_clear_error(client.get("/api/jobs/nope/export"), 404, "no job")
    _one_clear_error(client.get(f"/api/jobs/{job.json()['id']}/crops/..%2f..%2fsubflow.db"), 404)
    _one_clear_error(client.get(f"/api/jobs/{job.json()['id']}/crops/..subflow.db"), 400, "bad crop name")


def test_bad_uploads_get_one_clear_error(serve, tmp_path):
    server = serve("--max-upload-mb", "1")
    client = server.client()
    upload = lambda name, data: client.post("/api/jobs", files={"file": (name, data)})  # noqa: E731
    _one_clear_error(upload("notes.mp4", b"these are not video bytes\n" * 100), 400, "notes.mp4", "not a video")
    _one_clear_error(upload("notes.txt", b"text"), 415, "not a video file name")
    png = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 30, 30)).save(png, format="PNG")
    _one_clear_error(upload("still.mp4", png.getvalue()), 400, "still image")
    _one_clear_error(upload("empty.mp4", b""), 400, "empty")
    _one_clear_error(upload("big.mp4", os.urandom(1_200_000)), 413, "1 MB")
    sent, answer = _chunked_upload(client, "big.mp4", 64 << 20)  # no length up front: refused while it streams
    assert sent < 16 << 20, "the server read the whole oversized upload"
    if answer is not None:  # else the server closed the connection while the client was still sending
        _one_clear_error(answer, 413, "1 MB")
    _one_clear_error(client.post("/api/jobs"), 422, "file")
    _one_clear_error(client.post("/api/jobs/by-path", content=b"{nope", headers={"content-type": "application/json"}), 422, "JSON")
    _one_clear_error(upload("ok.mp4", SAMPLE.read_bytes()[:4000]), 400)  # a truncated video: FFmpeg cannot open it
    bad_option = client.post("/api/jobs", files={"file": ("a.mp4", SAMPLE.read_bytes())}, data={"set": "detector.nope=1"})
    _one_clear_error(bad_option, 400, "detector.nope")
    assert client.get("/api/jobs").json() == []  # nothing half-made is left behind
    assert not list((server.data / "jobs").iterdir())


def _chunked_upload(client, name: str, size: int):
    """A multipart upload sent with chunked transfer encoding, so the server learns its size only as it
    reads; returns how many bytes the server took, and its answer (None if it hung up first)."""
    boundary = "subflowtestboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: video/mp4\r\n\r\n'
    sent = 0

    def body():
        nonlocal sent
        yield head.encode()
        for _ in range(size // 65536 + 1):
            sent += 65536
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        answer = client.post("/api/jobs", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    except httpx.TransportError:
        answer = None
    return sent, answer


def _cli(tmp_path, suffix: str) -> bytes:
    out = tmp_path / f"cli.{suffix}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "subflow.cli", "extract", str(SAMPLE), "-o", str(out), "-q"], check=True, env=env, timeout=120)
    return out.read_bytes()


def test_two_jobs_at_once_share_one_engine_and_export_what_the_cli_writes(serve, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(SAMPLE, media / "en_basic.mp4")
    server = serve("--media-root", str(media))
    client = server.client()
    first = client.post("/api/jobs", files={"file": ("en_basic.mp4", SAMPLE.read_bytes())}).json()
    second = client.post("/api/jobs/by-path", json={"path": "en_basic.mp4"}).json()
    a, b = server.wait_job(first["id"]), server.wait_job(second["id"])
    assert a["state"] == b["state"] == "done" and a["cues"] == b["cues"] == 10
    assert a["started"] < b["finished"] and b["started"] < a["finished"]  # they ran at the same time
    rapid = next(engine for engine in client.get("/api/engines").json() if engine["name"] == "rapid")
    assert rapid["loaded"] and rapid["jobs"] == 2 and rapid["peak"] == 2  # one engine, both jobs on it
    expected = _cli(tmp_path, "srt")
    for job in (a, b):
        exported = client.get(f"/api/jobs/{job['id']}/export", params={"format": "srt"})
        assert exported.status_code == 200 and exported.content == expected  # byte for byte
    assert 'filename="en_basic.srt"' in exported.headers["content-disposition"]
    ass = client.get(f"/api/jobs/{a['id']}/export", params={"format": "ass"}).text
    assert "PlayResX: 1280\nPlayResY: 720" in ass and ass.count("\nDialogue:") == 10  # in the video's own pixels


def _cues(client, job_id):
    return client.get(f"/api/jobs/{job_id}/cues").json()


def test_edits_undo_and_a_restart_keep_everything(serve, tmp_path):
    server = serve()
    client = server.client()
    job_id = client.post("/api/jobs", files={"file": ("en_basic.mp4", SAMPLE.read_bytes())}).json()["id"]
    _one_clear_error(client.patch(f"/api/jobs/{job_id}/cues/1", json={"text": "x"}), 409, "edited when it is done")
    server.wait_job(job_id)
    cues = _cues(client, job_id)
    first, second, third = cues[0], cues[1], cues[2]
    assert first["crop"] and client.get(first["crop"]).headers["content-type"] == "image/png"
    base = f"/api/jobs/{job_id}"

    fixed = client.patch(f"{base}/cues/{first['id']}", json={"text": "Good evening,\neveryone."}).json()
    assert fixed["changed"][0]["lines"] == ["Good evening,", "everyone."]
    nudged = client.post(f"{base}/cues/{second['id']}/nudge", json={"edge": "start", "frames": 1}).json()["changed"][0]
    assert nudged["start"] == pytest.approx(second["start"] + FRAME, abs=1e-9)
    frame = client.get(f"{base}/frame", params={"t": nudged["start"]})
    assert frame.headers["content-type"] == "image/jpeg" and float(frame.headers["x-frame-time"]) == pytest.approx(nudged["start"], abs=1e-6)
    _one_clear_error(client.post(f"{base}/cues/{first['id']}/nudge", json={"edge": "start", "frames": -1}), 400, "first or last frame")
    _one_clear_error(client.post(f"{base}/cues/{first['id']}/nudge", json={"edge": "end", "frames": -1000}), 400)
    split = client.post(f"{base}/cues/{first['id']}/split", json={}).json()
    head, tail = split["changed"]
    assert head["lines"] == ["Good evening,"] and tail["lines"] == ["everyone."] and head["end"] == tail["start"]
    merged = client.post(f"{base}/cues/{head['id']}/merge", json={}).json()
    assert merged["removed"] == [tail["id"]] and merged["changed"][0]["lines"] == ["Good evening,", "everyone."]
    client.delete(f"{base}/cues/{third['id']}")
    added = client.post(f"{base}/cues", json={"start": 19.0, "end": 19.5, "text": "Added by hand"}).json()["changed"][0]
    replaced = client.post(f"{base}/replace", json={"find": "sound", "replace": "noise"}).json()
    assert len(replaced["changed"]) == 2 and all("noise" in cue["text"] for cue in replaced["changed"])
    reread = client.post(f"{base}/cues/{cues[3]['id']}/reread", json={"engine": "rapid"}).json()["changed"][0]
    assert reread["text"] == cues[3]["text"] and "reread" in reread["flags"]
    _one_clear_error(client.post(f"{base}/cues/{cues[3]['id']}/reread", json={"engine": "nope"}), 400, "unknown engine")

    client.post(f"{base}/undo")  # the re-read
    undone = client.post(f"{base}/undo").json()  # the replace, in one step
    assert {cue["text"] for cue in undone["changed"]} == {"Did you hear that sound?"}
    assert client.post(f"{base}/redo").json()["summary"].startswith("replaced")
    before = _cues(client, job_id)
    history = client.get(f"{base}/edits").json()
    assert [edit["kind"] for edit in history] == ["update", "nudge", "split", "merge", "delete", "add", "replace", "reread"]
    assert [edit["state"] for edit in history][-2:] == ["done", "undone"]

    server.stop()  # SIGTERM: a clean stop; then the same data folder again
    assert server.returncode == 0 and "Traceback" not in server.stderr, server.stderr
    server.start()
    client = server.client()
    assert _cues(client, job_id) == before
    assert client.get(f"{base}/edits").json() == history
    exported = list(srt.parse(client.get(f"{base}/export", params={"format": "srt"}).text))
    assert exported[0].content == "Good evening,\neveryone."
    assert exported[1].start.total_seconds() == pytest.approx(second["start"] + FRAME, abs=0.001)
    assert exported[-1].content == "Added by hand" and added["flags"] == ["added"]
    assert sum("noise" in sub.content for sub in exported) == 2 and len(exported) == 10
    assert client.post(f"{base}/undo").json()["summary"].startswith("replaced")  # history survived too

    # A translation typed in: side by side with the original, exported alone or bilingual.
    said = cues[4]["id"]
    client.patch(f"{base}/cues/{said}", json={"translations": {"fr": "Tu as entendu ce bruit ?"}})
    look = client.get(f"{base}/cues", params={"review": True}).json()
    assert len(look) == 9 and all("untranslated" in cue["review"] for cue in look)  # every other cue lacks French
    french = list(srt.parse(client.get(f"{base}/export", params={"format": "srt", "lang": "fr"}).text))
    assert [sub.content for sub in french] == ["Tu as entendu ce bruit ?"]
    both = list(srt.parse(client.get(f"{base}/export", params={"format": "srt", "lang": "bilingual"}).text))
    assert both[3].content == "Did you hear that sound?\nTu as entendu ce bruit ?" and len(both) == 10
    _one_clear_error(client.get(f"{base}/export", params={"lang": "de"}), 404, "'de'")


def test_a_job_running_when_the_server_dies_is_run_again(serve, tmp_path):
    server = serve()
    client = server.client()
    job_id = client.post("/api/jobs", files={"file": ("en_basic.mp4", SAMPLE.read_bytes())}).json()["id"]
    job = server.wait_job(job_id, states=("running",))
    deadline = time.monotonic() + 30
    while job["cues"] == 0 and job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job_id}").json()
    assert job["state"] == "running" and job["cues"] > 0, job  # killed mid-run, some cues already stored
    server.stop(signal.SIGKILL)
    server.start()
    done = server.wait_job(job_id)
    assert done["state"] == "done" and done["cues"] == 10
    texts = [cue["text"] for cue in _cues(server.client(), job_id)]  # each cue once: the partial run was dropped
    assert texts == [sub.content for sub in srt.parse(SAMPLE.with_suffix(".srt").read_text())]
