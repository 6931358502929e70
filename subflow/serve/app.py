"""The HTTP API and the review page, on FastAPI (OpenAPI document at ``/openapi.json``).

Every route the page uses is an API route a program can use. Errors are one
JSON object, ``{"error": "one readable line"}``, with a 4xx status for a bad
request; an unexpected failure is a 500 with no detail (the detail goes to
the server log), never a stack trace in a response.
"""

from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import re
import shutil
import time
import unicodedata
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from .. import __version__
from ..config import Config, ConfigError
from ..engines import ENGINES, EngineError
from ..records import RECOGNIZE, Box
from ..recognizer import run_on_engine_loop
from ..sinks import FORMATS, SinkError, open_sink
from . import edits
from .jobs import Engines, Jobs, job_config
from .media import Frames, ServeError, browse, confine, probe, save_png
from .store import Store, row_cue

log = logging.getLogger(__name__)

COOKIE = "subflow_token"
EDITABLE = ("done", "cancelled", "failed")  # a job's cues can be edited once its run is over
_PHANTOM_REPEAT = re.compile(r"(\b\w+\b)(?:\W+\1\b){2,}", re.IGNORECASE)  # "plastic, plastic, plastic"


@dataclass
class Settings:
    """What ``subflow serve`` was started with."""

    data_dir: Path
    config: Config
    server_args: Any  # argparse.Namespace: the --config, --set and --engine every job starts from
    media_roots: list[Path] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)


# -- request and response shapes (the OpenAPI document) ----------------------


class JobOptions(BaseModel):
    """The options of ``subflow extract`` for one job (unset: the server's)."""

    region: str | None = Field(None, description="bottom, top, both, auto, or x0,y0,x1,y1")
    engine: str | None = Field(None, description=f"one of {', '.join(ENGINES)}")
    task: Literal["recognize", "translate"] | None = None
    target: str | None = Field(None, description="translation target language (with task translate)")
    sample_every: int | None = Field(None, ge=1)
    fast: bool = False
    set: dict[str, str | int | float | bool] = Field(default_factory=dict, description='any setting, e.g. {"detector.lost_threshold": 0.3}')


class PathJob(BaseModel):
    path: str = Field(description="a video under a media root (relative to the first root, or absolute), or an http(s) URL when allowed")
    options: JobOptions = Field(default_factory=JobOptions)


class Job(BaseModel):
    id: str
    name: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    error: str | None
    engine: str
    options: dict[str, Any]
    position: float
    duration: float | None
    width: int | None
    height: int | None
    fps: float | None
    created: float
    started: float | None
    finished: float | None
    progress: dict[str, Any] | None = Field(None, description="live figures while running")
    stats: dict[str, Any] | None = None
    languages: list[str] = Field(default_factory=list, description="translation languages present in the cues")
    cues: int = 0


class CueOut(BaseModel):
    id: int
    index: int
    start: float
    end: float
    text: str
    lines: list[str]
    confidence: float
    region: str
    box: list[int] | None
    translations: dict[str, str]
    flags: list[str]
    review: list[str] = Field(description="why this cue needs a look (empty: it looks fine)")
    crop: str | None = Field(description="URL of the crop its text was read from")


class EditResult(BaseModel):
    edit: int | None = Field(description="the edit's id (undo/redo: the edit undone or redone)")
    summary: str
    changed: list[CueOut]
    removed: list[int]


class CueEdit(BaseModel):
    text: str | None = None
    start: float | None = None
    end: float | None = None
    translations: dict[str, str] | None = None


class Nudge(BaseModel):
    edge: Literal["start", "end"]
    frames: int = Field(ge=-1000, le=1000)


class Split(BaseModel):
    at: float | None = Field(None, description="split time in seconds (snapped to a frame); default: by the text")
    caret: int | None = Field(None, ge=0, description="character offset where the text splits")


class Merge(BaseModel):
    other: int | None = Field(None, description="the cue to merge with; default: the next one")


class NewCue(BaseModel):
    start: float
    end: float
    text: str
    region: Literal["bottom", "top", "custom"] = "bottom"


class Reread(BaseModel):
    engine: str | None = Field(None, description="engine to read with; default: the job's")
    time: float | None = Field(None, description="frame to read (seconds); default: the cue's middle frame")


class Replace(BaseModel):
    find: str
    replace: str = ""
    regex: bool = False
    case: bool = True
    lang: str | None = Field(None, description="replace in this translation instead of the original text")


# -- the service ----------------------------------------------------------------


class Service:
    """Store, jobs, engines and frames of one server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.serve = settings.config.serve
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.data_dir / "subflow.db")
        self.engines = Engines(settings.config)
        self.jobs = Jobs(self.store, self.engines, settings.data_dir, settings.server_args, self.serve.jobs_per_engine)
        self.frames = Frames()

    def close(self) -> None:
        self.jobs.stop()
        self.engines.close()
        self.store.close()

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.store.job(job_id)
        if job is None:
            raise ServeError(404, f"no job {job_id}")
        return job

    def editable(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        if job["state"] not in EDITABLE:
            raise ServeError(409, f"the job is {job['state']}; its cues can be edited when it is done")
        return job

    def cue(self, job_id: str, cue_id: int) -> dict[str, Any]:
        row = self.store.cue(job_id, cue_id)
        if row is None:
            raise ServeError(404, f"no cue {cue_id} in job {job_id}")
        return row

    def times(self, job: dict[str, Any]) -> list[float]:
        return self.frames.times(job["media"])

    def view_job(self, job: dict[str, Any]) -> Job:
        count, languages = self.store.summary(job["id"])
        return Job(**{k: v for k, v in job.items() if k in Job.model_fields}, progress=self.jobs.progress.get(job["id"]),
                   languages=languages, cues=count)  # fmt: skip

    def view_cue(self, job_id: str, row: dict[str, Any], languages: list[str]) -> CueOut:
        return CueOut(
            id=row["id"],
            index=row["idx"],
            start=row["start"],
            end=row["end"],
            text="\n".join(row["lines"]),
            lines=row["lines"],
            confidence=row["confidence"],
            region=row["region"],
            box=row["box"],
            translations=row["translations"],
            flags=row["flags"],
            review=self.review(row, languages),
            crop=f"/api/jobs/{job_id}/crops/{row['crop']}" if row["crop"] else None,
        )

    def review(self, row: dict[str, Any], languages: list[str]) -> list[str]:
        """Why a cue deserves a look: low confidence, phantom-like (too short, no letters, repeats), untranslated."""
        text = "\n".join(row["lines"])
        reasons = []
        if row["confidence"] < self.serve.low_confidence:
            reasons.append("low confidence")
        if row["end"] - row["start"] < self.serve.short_cue:
            reasons.append("short")
        if not any(ch.isalnum() for ch in text) or _PHANTOM_REPEAT.search(text):
            reasons.append("phantom")
        if any(lang not in row["translations"] for lang in languages):
            reasons.append("untranslated")
        reasons += [flag for flag in row["flags"] if flag not in reasons and flag not in ("added", "reread")]
        return reasons

    def outcome(self, job_id: str, edit: dict[str, Any] | None, side: str, nothing: str) -> EditResult:
        if edit is None:
            return EditResult(edit=None, summary=nothing, changed=[], removed=[])
        languages = self.view_job(self.job(job_id)).languages
        changed, removed = [], []
        for change in edit["changes"]:
            row = change[side]
            if row is None:
                removed.append(change["id"])
            else:
                changed.append(self.view_cue(job_id, {**row, "id": change["id"]}, languages))
        return EditResult(edit=edit["id"], summary=edit["summary"], changed=changed, removed=removed)

    def record(self, job_id: str, kind: str, summary: str, changes: list[edits.Change]) -> EditResult:
        changes = [change for change in changes if change.before != change.after]  # no empty steps in the history
        if not changes:
            return EditResult(edit=None, summary="nothing changed", changed=[], removed=[])
        return self.outcome(job_id, self.store.edit(job_id, kind, summary, changes), "after", "")

    def new_job(self, job_id: str, name: str, media: str, uploaded: bool, options: JobOptions) -> Job:
        values = options.model_dump()
        try:
            config = job_config(self.settings.server_args, values)
        except ConfigError as exc:
            raise ServeError(400, str(exc)) from None
        info = probe(media) if "://" not in media else {}
        job = self.store.add_job(job_id, name=name, media=media, uploaded=int(uploaded), options=values,
                                 engine=config.recognizer.engine, **info)  # fmt: skip
        self.jobs.submit(job_id, job["engine"])
        return self.view_job(job)


class BodyLimit:
    """ASGI middleware: a request body past ``limit`` bytes is cut off while it streams and answered
    with a 413. A chunked upload carries no length to check up front; without this it would be
    spooled whole before any route saw it."""

    def __init__(self, app: Any, limit: int, message: str) -> None:
        self.app = app
        self.limit = limit
        self.body = json.dumps({"error": message}).encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seen, over, answered = 0, False, False

        async def limited_receive() -> dict:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    return {"type": "http.disconnect"}  # the route stops reading; its answer is replaced below
            return message

        async def answer() -> None:
            nonlocal answered
            if not answered:
                answered = True
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode()), (b"connection", b"close")]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": self.body})

        async def guarded_send(message: dict) -> None:
            if over:
                await answer()
            else:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over:
            await answer()


def _safe_name(name: str) -> str:
    """A file name an upload may be stored under: its last part, plain characters only."""
    name = unicodedata.normalize("NFC", Path(name.replace("\\", "/")).name)
    name = re.sub(r"[^\w.\- ]+", "_", name).strip(" .")
    return name[:120] or "video"


# -- the app ----------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)
    serve = settings.config.serve
    max_upload = serve.max_upload_mb * 1024 * 1024

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.jobs.start()
        yield
        service.close()

    app = FastAPI(
        title="subflow",
        version=__version__,
        description="Extract burned-in subtitles from videos, review and fix them, export them. "
        "Send a token as `Authorization: Bearer TOKEN` when the server has a token file.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: never inside this origin
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, limit=max_upload + 65536, message=f"the upload is larger than the limit of {serve.max_upload_mb} MB")

    # -- errors: one readable line, never a stack trace

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "bad request"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page: {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            message, where = "the body is not valid JSON", ""
        return JSONResponse({"error": f"{where}: {message}" if where else message}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal error (see the server log)"}, status_code=500)

    # -- auth and upload size, before any route

    tokens = [token.encode() for token in settings.tokens]

    def _authorized(request: Request) -> str | None:
        """The token the request carries, if it is a valid one ("" when no token is needed)."""
        if not tokens:
            return ""
        offered = [request.cookies.get(COOKIE, ""), request.query_params.get("token", "")]
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            offered.append(header[7:].strip())
        for candidate in offered:
            if candidate and any(hmac.compare_digest(candidate.encode(), token) for token in tokens):
                return candidate
        return None

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        refused = _foreign(request, tokens)
        if refused:
            return JSONResponse({"error": refused}, status_code=403)
        token = _authorized(request)
        if token is None:
            if request.url.path == "/" and request.method == "GET":
                return HTMLResponse(_page("login.html"), status_code=401, headers=_PAGE_HEADERS)
            return JSONResponse({"error": "missing or wrong token (send Authorization: Bearer TOKEN)"}, status_code=401)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload + 65536:
            return JSONResponse({"error": f"the upload is larger than the limit of {serve.max_upload_mb} MB"}, status_code=413)
        if token and request.url.path == "/" and request.query_params.get("token"):
            response: Response = RedirectResponse("/", status_code=303)  # signed in: the token leaves the address bar
        else:
            response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        if token and request.cookies.get(COOKIE) != token:  # the page's own requests (video, images) then carry it
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    # -- the page

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_page("index.html"), headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(packages=[("subflow.serve", "static")]), name="static")

    # -- settings, engines, media

    @app.get("/api/settings", tags=["server"])
    def get_settings() -> dict[str, Any]:
        """What the page needs to know about this server."""
        return {
            "version": __version__,
            "engines": list(ENGINES),
            "default_engine": settings.server_args.engine or settings.config.recognizer.engine,
            "media_roots": [str(root) for root in settings.media_roots],
            "allow_urls": serve.allow_urls,
            "max_upload_mb": serve.max_upload_mb,
            "upload_suffixes": serve.upload_suffixes,
            "formats": list(FORMATS),
            "low_confidence": serve.low_confidence,
            "short_cue": serve.short_cue,
        }

    @app.get("/api/engines", tags=["server"])
    def get_engines() -> list[dict[str, Any]]:
        """Engines, whether loaded, and how many jobs share each (now, at most at once, in all)."""
        return service.engines.describe()

    @app.get("/api/media", tags=["jobs"])
    def get_media(path: str = "") -> dict[str, Any]:
        """Folders and videos under the media roots."""
        return browse(path, settings.media_roots, serve.upload_suffixes)

    # -- jobs

    @app.post("/api/jobs", tags=["jobs"], status_code=201)
    def upload_job(
        file: Annotated[UploadFile, File(description="the video")],
        region: Annotated[str | None, Form()] = None,
        engine: Annotated[str | None, Form()] = None,
        task: Annotated[Literal["recognize", "translate"] | None, Form()] = None,
        target: Annotated[str | None, Form()] = None,
        sample_every: Annotated[int | None, Form(ge=1)] = None,
        fast: Annotated[bool, Form()] = False,
        set: Annotated[list[str], Form(description="SECTION.KEY=VALUE, repeatable")] = [],  # noqa: B006 (FastAPI form default)
    ) -> Job:
        """Upload a video (multipart field ``file``) and queue its extraction."""
        name = _safe_name(file.filename or "")
        if Path(name).suffix.lower() not in serve.upload_suffixes:
            raise ServeError(415, f"{name}: not a video file name (expected {', '.join(serve.upload_suffixes)})")
        overrides = {}
        for item in set:
            key, sep, value = item.partition("=")
            if not sep:
                raise ServeError(400, f"set needs SECTION.KEY=VALUE, got {item!r}")
            overrides[key.strip()] = value.strip()
        options = JobOptions(region=region, engine=engine, task=task, target=target, sample_every=sample_every, fast=fast, set=overrides)
        job_id = uuid.uuid4().hex[:12]
        folder = service.jobs.folder(job_id) / "media"
        folder.mkdir(parents=True)
        target_path = folder / name
        try:
            size = 0
            with open(target_path, "wb") as out:
                while chunk := file.file.read(1 << 20):
                    size += len(chunk)
                    if size > max_upload:
                        raise ServeError(413, f"the upload is larger than the limit of {serve.max_upload_mb} MB")
                    out.write(chunk)
            if size == 0:
                raise ServeError(400, f"{name}: the file is empty")
            return service.new_job(job_id, name, str(target_path), True, options)
        except BaseException:
            shutil.rmtree(service.jobs.folder(job_id), ignore_errors=True)
            raise

    @app.post("/api/jobs/by-path", tags=["jobs"], status_code=201)
    def path_job(request: PathJob) -> Job:
        """Queue the extraction of a video under a media root (or of a URL, when the server allows them)."""
        if "://" in request.path:
            if not serve.allow_urls:
                raise ServeError(403, "reading URLs is off (start the server with --allow-urls)")
            if not request.path.lower().startswith(("http://", "https://")):
                raise ServeError(400, "only http and https URLs can be read")
            media, name = request.path, request.path.rsplit("/", 1)[-1] or request.path
        else:
            real = confine(request.path, settings.media_roots)
            if not real.is_file():
                raise ServeError(400, f"{request.path}: not a file")
            media, name = str(real), real.name
        return service.new_job(uuid.uuid4().hex[:12], name, media, False, request.options)

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs() -> list[Job]:
        return [service.view_job(job) for job in service.store.jobs()]

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str) -> Job:
        return service.view_job(service.job(job_id))

    @app.post("/api/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(job_id: str) -> Job:
        """Stop a queued or running job; the cues found so far are kept."""
        service.job(job_id)
        service.jobs.cancel(job_id)
        return service.view_job(service.job(job_id))

    @app.delete("/api/jobs/{job_id}", tags=["jobs"], status_code=204)
    def delete_job(job_id: str) -> Response:
        """Delete a job, its cues, its edits and its files (an uploaded video too)."""
        job = service.job(job_id)
        if job["state"] in ("queued", "running"):
            raise ServeError(409, f"the job is {job['state']}; cancel it first")
        service.store.delete_job(job_id)
        shutil.rmtree(service.jobs.folder(job_id), ignore_errors=True)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/video", tags=["media"])
    def get_video(job_id: str) -> FileResponse:
        """The job's video (range requests work, so the page can seek)."""
        job = service.job(job_id)
        if "://" in job["media"]:
            raise ServeError(404, "the video is a URL; open it there")
        if not Path(job["media"]).is_file():
            raise ServeError(410, "the video file is gone")
        return FileResponse(job["media"], media_type=mimetypes.guess_type(job["name"])[0] or "video/mp4")

    @app.get("/api/jobs/{job_id}/frame", tags=["media"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}, "description": "the frame; header X-Frame-Time is its exact time"}})  # fmt: skip
    def get_frame(job_id: str, t: Annotated[float, Query(ge=0)], box: str | None = None) -> Response:
        """The frame on screen at ``t`` seconds (exact pts), cut to ``box`` = x0,y0,x1,y1 if given."""
        job = service.job(job_id)
        cut = None
        if box:
            try:
                cut = Box(*(int(float(part)) for part in box.split(",")))
            except (TypeError, ValueError):
                raise ServeError(400, "box must be x0,y0,x1,y1 in pixels") from None
        data, when = service.frames.jpeg(job["media"], t, cut)
        return Response(data, media_type="image/jpeg", headers={"X-Frame-Time": f"{when:.6f}", "Cache-Control": "max-age=3600"})

    @app.get("/api/jobs/{job_id}/frames", tags=["media"])
    def get_frame_times(job_id: str) -> list[float]:
        """Every frame's time, then the end of the video: the steps a boundary can take."""
        return service.times(service.job(job_id))

    @app.get("/api/jobs/{job_id}/crops/{name}", tags=["media"], response_class=FileResponse)
    def get_crop(job_id: str, name: str) -> FileResponse:
        """A crop a cue's text was read from (PNG)."""
        service.job(job_id)
        if not re.fullmatch(r"[\w-]+\.png", name):
            raise ServeError(400, "bad crop name")
        path = service.jobs.folder(job_id) / "crops" / name
        if not path.is_file():
            raise ServeError(404, f"no crop {name}")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    # -- cues and edits

    @app.get("/api/jobs/{job_id}/cues", tags=["cues"])
    def list_cues(job_id: str, review: bool = False) -> list[CueOut]:
        """Every cue in time order (``review=true``: only those that need a look)."""
        job = service.view_job(service.job(job_id))
        cues = [service.view_cue(job_id, row, job.languages) for row in service.store.cues(job_id)]
        return [cue for cue in cues if cue.review] if review else cues

    @app.post("/api/jobs/{job_id}/cues", tags=["cues"], status_code=201)
    def add_cue(job_id: str, cue: NewCue) -> EditResult:
        """Add a cue the pipeline missed."""
        job = service.editable(job_id)
        change = edits.add(service.times(job), service.store.next_idx(job_id), cue.start, cue.end, cue.text, cue.region)
        return service.record(job_id, "add", f"added a cue at {cue.start:.3f} s", [change])

    @app.patch("/api/jobs/{job_id}/cues/{cue_id}", tags=["cues"])
    def edit_cue(job_id: str, cue_id: int, edit: CueEdit) -> EditResult:
        """Change a cue's text, times (snapped to frames) or translations."""
        job = service.editable(job_id)
        row = service.cue(job_id, cue_id)
        change = edits.update(row, service.times(job) if edit.start is not None or edit.end is not None else [],
                              text=edit.text, start=edit.start, end=edit.end, translations=edit.translations)  # fmt: skip
        what = "text" if edit.text is not None else "times" if edit.translations is None else "translation"
        return service.record(job_id, "update", f"changed the {what} of {_label(row)}", [change])

    @app.delete("/api/jobs/{job_id}/cues/{cue_id}", tags=["cues"])
    def delete_cue(job_id: str, cue_id: int) -> EditResult:
        service.editable(job_id)
        row = service.cue(job_id, cue_id)
        return service.record(job_id, "delete", f"deleted {_label(row)}", [edits.Change(row, None)])

    @app.post("/api/jobs/{job_id}/cues/{cue_id}/nudge", tags=["cues"])
    def nudge_cue(job_id: str, cue_id: int, nudge: Nudge) -> EditResult:
        """Move the start or end by whole frames (negative: earlier)."""
        job = service.editable(job_id)
        row = service.cue(job_id, cue_id)
        change = edits.nudge(row, service.times(job), nudge.edge, nudge.frames)
        return service.record(job_id, "nudge", f"moved the {nudge.edge} of {_label(row)} by {nudge.frames:+d} frame(s)", [change])

    @app.post("/api/jobs/{job_id}/cues/{cue_id}/split", tags=["cues"])
    def split_cue(job_id: str, cue_id: int, split: Split = Body(default_factory=Split)) -> EditResult:
        job = service.editable(job_id)
        row = service.cue(job_id, cue_id)
        changes = edits.split(row, service.times(job), service.store.next_idx(job_id), split.at, split.caret)
        return service.record(job_id, "split", f"split {_label(row)}", changes)

    @app.post("/api/jobs/{job_id}/cues/{cue_id}/merge", tags=["cues"])
    def merge_cue(job_id: str, cue_id: int, merge: Merge = Body(default_factory=Merge)) -> EditResult:
        """Merge a cue with another (default: the next one)."""
        service.editable(job_id)
        row = service.cue(job_id, cue_id)
        if merge.other is None:
            rows = service.store.cues(job_id)
            position = next(i for i, r in enumerate(rows) if r["id"] == cue_id)
            if position + 1 >= len(rows):
                raise ServeError(400, "the last cue has no next cue to merge with")
            other = rows[position + 1]
        else:
            other = service.cue(job_id, merge.other)
            if other["id"] == cue_id:
                raise ServeError(400, "a cue cannot merge with itself")
        return service.record(job_id, "merge", f"merged {_label(row)} and {_label(other)}", edits.merge(row, other))

    @app.post("/api/jobs/{job_id}/cues/{cue_id}/reread", tags=["cues"])
    def reread_cue(job_id: str, cue_id: int, reread: Reread = Body(default_factory=Reread)) -> EditResult:
        """Read the cue again from one frame, with the job's engine or another."""
        job = service.editable(job_id)
        row = service.cue(job_id, cue_id)
        name = reread.engine or job["engine"]
        if name not in ENGINES:
            raise ServeError(400, f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
        when = reread.time if reread.time is not None else (row["start"] + row["end"]) / 2
        if not row["start"] <= when < row["end"]:
            raise ServeError(400, "the frame to read must be inside the cue")
        box = _read_box(row, job)
        rgb, at = service.frames.rgb(job["media"], when, box)
        try:
            use = service.engines.get(name)
            result = run_on_engine_loop(use.engine.recognize([rgb], RECOGNIZE))[0]
        except EngineError as exc:
            raise ServeError(503, str(exc)) from None
        use.rereads += 1
        crop = f"r{cue_id}-{int(time.time() * 1000)}.png"
        save_png(rgb, service.jobs.folder(job_id) / "crops" / crop)
        change = edits.reread(row, list(result.lines), result.confidence, crop)
        return service.record(job_id, "reread", f"re-read {_label(row)} with {name} at {at:.3f} s", [change])

    @app.post("/api/jobs/{job_id}/replace", tags=["cues"])
    def replace(job_id: str, request: Replace) -> EditResult:
        """Find and replace in every cue (one edit: one undo puts them all back)."""
        service.editable(job_id)
        changes = edits.replace(service.store.cues(job_id), request.find, request.replace, regex=request.regex,
                                case=request.case, lang=request.lang)  # fmt: skip
        return service.record(job_id, "replace", f"replaced {request.find!r} in {len(changes)} cue(s)", changes)

    @app.post("/api/jobs/{job_id}/undo", tags=["cues"])
    def undo(job_id: str) -> EditResult:
        service.editable(job_id)
        return service.outcome(job_id, service.store.undo(job_id), "before", "nothing to undo")

    @app.post("/api/jobs/{job_id}/redo", tags=["cues"])
    def redo(job_id: str) -> EditResult:
        service.editable(job_id)
        return service.outcome(job_id, service.store.redo(job_id), "after", "nothing to redo")

    @app.get("/api/jobs/{job_id}/edits", tags=["cues"])
    def list_edits(job_id: str) -> list[dict[str, Any]]:
        """The edit history, oldest first (state: done, undone, or dropped)."""
        service.job(job_id)
        return service.store.edits(job_id)

    # -- export

    @app.get("/api/jobs/{job_id}/export", tags=["export"], response_class=FileResponse)
    def export(
        job_id: str,
        format: Annotated[str, Query(description=f"one of {', '.join(FORMATS)}")] = "srt",
        lang: Annotated[str, Query(description='"original", a translation language, or "bilingual"')] = "original",
    ) -> FileResponse:
        """The cues as a subtitle file, written by the same sinks as ``subflow extract``."""
        job = service.job(job_id)
        if format not in FORMATS:
            raise ServeError(400, f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
        rows = service.store.cues(job_id)
        cues = [row_cue(row) for row in rows]
        if lang == "bilingual":
            for cue, row in zip(cues, rows):
                cue.lines = cue.lines + [line for value in row["translations"].values() for line in edits.lines_of(value)]
        elif lang != "original":
            if not any(lang in row["translations"] for row in rows):
                raise ServeError(404, f"no cue has a translation into {lang!r}")
            cues = [cue for cue in cues if lang in cue.translations]
            for cue in cues:
                cue.lines = edits.lines_of(cue.translations[lang])
        folder = service.jobs.folder(job_id) / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        suffix = "" if lang == "original" else "." + re.sub(r"[^\w-]", "_", lang)
        try:
            name = f"{Path(job['name']).stem}{suffix}.{format}"
            size = (job["width"], job["height"]) if job["width"] and job["height"] else None
            with open_sink(folder / name, format, video_size=size) as sink:
                for cue in cues:
                    sink.write(cue)
        except SinkError as exc:
            raise ServeError(400, str(exc).replace(str(folder) + "/", "")) from None
        types = {"srt": "application/x-subrip", "vtt": "text/vtt", "ass": "text/x-ssa", "jsonl": "application/jsonl"}
        return FileResponse(folder / name, media_type=types.get(format, "text/plain") + "; charset=utf-8", filename=name)

    return app


# The page loads nothing from elsewhere and cannot be framed by another site.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
}
_LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}


def _foreign(request: Request, tokens: list[bytes]) -> str | None:
    """Why a request from another site is refused, if it is one.

    A state-changing request whose Origin is not this server is refused (a page elsewhere
    must not drive the API through the editor's browser). Without tokens the server is
    on localhost only, and a Host header naming anything else is a DNS-rebinding attempt.
    """
    host = request.headers.get("host", "")
    if not tokens and host.rsplit(":", 1)[0] not in _LOCAL_NAMES:
        return f"this server answers to localhost only, not to {host!r}"
    origin = request.headers.get("origin")
    if request.method not in ("GET", "HEAD", "OPTIONS") and origin and origin.split("://", 1)[-1] != host:
        return "a request from another site is refused"
    return None


def _label(row: dict[str, Any]) -> str:
    """A cue as an editor recognises it in a summary: its time and the start of its text."""
    text = " ".join(row["lines"])
    return f"the cue at {row['start']:.2f} s ({text[:24] + '…' if len(text) > 25 else text!r})"


def _read_box(row: dict[str, Any], job: dict[str, Any]) -> Box | None:
    """Where to read a cue again: its text box with a margin, else its band."""
    width, height = job["width"] or 0, job["height"] or 0
    if row["box"]:
        x0, y0, x1, y1 = row["box"]
        pad = max(4, (y1 - y0) // 4)
        return Box(max(0, x0 - pad), max(0, y0 - pad), x1 + pad, y1 + pad)
    if not width or not height:
        return None
    return Box(0, 0, width, height // 5) if row["region"] == "top" else Box(0, height * 3 // 4, width, height)


def _page(name: str) -> str:
    return resources.files("subflow.serve").joinpath("static", name).read_text(encoding="utf-8")
