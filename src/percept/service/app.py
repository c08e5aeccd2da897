"""The web layer of the artwork service: a JSON API under ``/api/v1`` and three pages, on FastAPI.

:func:`create_app` wraps a :class:`~percept.service.core.Service`. Every upload and every name is checked by
:mod:`percept.service.safety` before the service sees it; every error is JSON ``{"error": "..."}`` with one
line saying what is wrong and how to fix it. The pages are static files (no build step, no external asset)
that call the same API as any other client.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import PerceptError
from .config import InvalidField
from .core import QueueFull, Service
from .safety import (
    RateLimiter,
    Rejected,
    cancel_token,
    check_cancel_token,
    check_image,
    load_secret,
    megabytes,
    valid_style_id,
)
from .store import Job, valid_job_id

STATIC = Path(__file__).with_name("static")
API = "/api/v1"
SUBMIT_PATH = f"{API}/jobs"
EXAMPLE_ID = "q3Vb8fJ0m1K2x9zYc4T7wA"
#: Pages: scripts and styles from this origin only, no inline script, no framing, no external anything.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
#: FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline bootstrap script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
            "https://cdn.redoc.ly; worker-src blob:; frame-ancestors 'none'")
#: Requests with more or larger headers are refused (431) before anything else looks at them.
MAX_HEADERS = 256
MAX_HEADER_BYTES = 64 * 1024
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # job URLs are the only key to a job: never leak them
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class ErrorOut(BaseModel):
    """Every error response."""

    error: str = Field(description="what is wrong and how to fix it, one line",
                       examples=["photo: not a PNG, JPEG or WebP image; convert it to one of those"])


class StyleOut(BaseModel):
    """A painting of the gallery."""

    id: str = Field(examples=["starry-night"])
    title: str = Field(examples=["The Starry Night"])
    artist: str = Field(examples=["Vincent van Gogh"])
    year: str = Field(examples=["1889"])
    licence: str = Field(examples=["public domain"])
    source: str = Field(description="where the image came from")
    thumbnail_url: str = Field(examples=[f"{API}/styles/starry-night/thumbnail"])


class JobOut(BaseModel):
    """A job as the API shows it: no client address, email address or webhook."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": EXAMPLE_ID, "status": "running", "progress": 0.42, "eta_seconds": 17.5, "message": "step 42/100",
        "error": None, "params": {"method": "quality", "style": "starry-night", "size": 512, "strength": 1.0,
                                  "preserve_color": False, "seed": 0},
        "created": 1763850000.0, "started": 1763850001.5, "finished": None, "attempts": 1,
        "page_url": f"/jobs/{EXAMPLE_ID}", "status_url": f"{API}/jobs/{EXAMPLE_ID}",
        "preview_url": f"{API}/jobs/{EXAMPLE_ID}/preview", "result_url": None}]})

    id: str = Field(description="the job's unguessable id: the only key to it")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    eta_seconds: float | None = Field(description="estimated seconds left while running")
    message: str
    error: str | None = Field(description="one line when the job failed")
    params: dict[str, Any] = Field(description="method, style, size, strength, preserve_color, seed")
    created: float = Field(description="unix seconds")
    started: float | None
    finished: float | None
    attempts: int = Field(description="how often a worker started it (a restart runs it again)")
    page_url: str
    status_url: str
    preview_url: str
    result_url: str | None = Field(description="the PNG download, once done")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        base = f"{API}/jobs/{job.id}"
        return cls(
            id=job.id, status=job.status, progress=job.progress, eta_seconds=job.eta_seconds, message=job.message,
            error=job.error, params=job.params, created=job.created, started=job.started, finished=job.finished,
            attempts=job.attempts, page_url=f"/jobs/{job.id}", status_url=base, preview_url=f"{base}/preview",
            result_url=f"{base}/result" if job.status == "done" else None)


class JobCreated(JobOut):
    """A new job, with the token its submitter needs to cancel it."""

    cancel_token: str = Field(description="send as X-Cancel-Token to POST .../cancel; shown only once",
                              examples=["3f1c0e9a7d5b4c2e8a6f0d1b9c7e5a3f"])


class JobList(BaseModel):
    """Finished works, newest first."""

    jobs: list[JobOut]


class Limits(BaseModel):
    """What this server accepts."""

    max_upload_bytes: int = Field(description="per uploaded image")
    max_pixels: int = Field(description="per uploaded image, checked before decoding")
    max_size: int = Field(description="largest output side, pixels")
    queue_cap: int = Field(description="queued plus running jobs at most; beyond it POST /jobs answers 503")
    rate_limit: str = Field(description="job submissions per client address", examples=["30 per 1 minute"])


class Health(BaseModel):
    """Liveness and what this server accepts."""

    status: Literal["ok"]
    version: str
    public: bool = Field(description="bound beyond loopback: listing every job is off")
    active_jobs: int = Field(description="queued plus running")
    limits: Limits


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text} for code, text in {
        400: "bad input: damaged image, no or unknown style, or a Host this server does not answer to",
        403: "cross-site request, wrong cancel token, or listing every job on a public server",
        404: "unknown or malformed id",
        409: "the job has no result (yet)",
        413: "upload larger than the byte or pixel cap (or a decompression bomb)",
        415: "an upload is not a PNG, JPEG or WebP image",
        410: "the job was cancelled: nothing of it is kept",
        422: "a field is missing, out of range or malformed (email, webhook), or the photo is too elongated",
        429: "too many submissions from this address; see Retry-After",
        503: "the queue is full; see Retry-After",
    }.items()}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in codes}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Guard:
    """Pure ASGI middleware, in front of the routing: security headers on every response; oversized headers
    refused; requests for a host name
    this server does not answer to refused (DNS rebinding); HEAD answered wherever GET is; a trailing slash
    redirected to the route without it (to a relative or the configured public URL, never to the request's
    Host); and before a job submission's body is read, cross-site posts refused and the client's rate limit
    counted."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, max_body: int, max_upload_bytes: int,
                 host_names: frozenset[str], redirect_base: str, router: Router) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body = max_body
        self.max_upload_bytes = max_upload_bytes
        self.host_names = host_names
        self.redirect_base = redirect_base
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        csp = (DOCS_CSP if path in ("/docs", "/redoc") else PAGE_CSP).encode()
        head = scope["method"] == "HEAD"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS,
                                      (b"content-security-policy", csp)]
            elif head and message["type"] == "http.response.body":  # the GET response's headers, no body
                message = {**message, "body": b""}
            await send(message)

        try:
            raw = scope["headers"]
            if len(raw) > MAX_HEADERS or sum(len(k) + len(v) for k, v in raw) > MAX_HEADER_BYTES:
                raise Rejected(431, f"request headers too large (at most {MAX_HEADERS} headers and "
                               f"{MAX_HEADER_BYTES // 1024} KiB); send fewer or smaller headers")
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw}
            self._check_host(headers.get("host"))
            if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
                _check_same_origin(headers)
                if scope["method"] == "POST" and path.rstrip("/") == SUBMIT_PATH:
                    self.limiter.hit(scope["client"][0] if scope.get("client") else "unknown")
                    length = headers.get("content-length", "")
                    if length.isdigit() and int(length) > self.max_body:  # refused before reading a byte
                        raise Rejected(413, f"upload too large: at most {megabytes(self.max_upload_bytes)} per "
                                       "image; send smaller files")
        except Rejected as exc:
            await _error(exc.status, exc.message, exc.headers)(scope, receive, send_with_headers)
            return
        if head:
            scope = {**scope, "method": "GET"}
        location = self._slash_redirect(scope)
        if location is not None:
            await RedirectResponse(location, status_code=307)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _check_host(self, host: str | None) -> None:
        """Refuse a Host header naming a host this server does not answer to: a page whose own name was made to
        resolve to this machine (DNS rebinding) would otherwise pass as same-site. Clients without a Host header
        (HTTP/1.0) are not browsers and pass."""
        if host is None:
            return
        if host_name(host) not in self.host_names:
            shown = "".join(c if " " < c < "\x7f" else "?" for c in host[:100])
            raise Rejected(400, f"this server does not answer to the host {shown!r}; use http://localhost:PORT/ "
                           "or the server's public address (operators: add the name with --allowed-hosts)")

    def _slash_redirect(self, scope: Scope) -> str | None:
        """Where a path with a trailing slash goes when only the path without it is a route (307, so a POST stays a
        POST); None otherwise. The target is built from the matched path and the configured public URL (or is
        relative): never from the request's Host."""
        path = scope["path"]
        target = path.rstrip("/")
        if path == target or not target.startswith("/") or target.startswith("//"):
            return None
        probe = {**scope, "path": target}
        if not any(route.matches(probe)[0] == Match.FULL for route in self.router.routes):
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return self.redirect_base + quote(target, safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")


def host_name(host: str) -> str:
    """The name of a Host header (``Example.org:8000`` -> ``example.org``, ``[::1]:80`` -> ``::1``), lower case,
    without the port and a final dot; IP addresses in their normal form."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _check_same_origin(headers: dict[str, str]) -> None:
    """Browsers send Origin (and Sec-Fetch-Site) on every POST: refuse ones from another site (CSRF).
    Clients that are not browsers send neither and pass. The Host compared with has passed the allow-list."""
    origin = headers.get("origin")
    try:
        netloc = urlsplit(origin).netloc if origin is not None else None
    except ValueError:  # not even a URL
        netloc = ""
    if headers.get("sec-fetch-site") == "cross-site" or (origin is not None and netloc != headers.get("host")):
        raise Rejected(403, "cross-site request refused; submit from this server's own page or from a script")


def create_app(service: Service, *, manage: bool = True) -> FastAPI:
    """The FastAPI app for ``service``; with ``manage`` its lifespan starts and stops the service (``percept
    serve`` starts it itself first, so a start-up error is one line, not a traceback from the server)."""
    config = service.config
    secret = load_secret(config.data_dir)
    public = config.exposed
    max_body = 2 * config.max_upload_bytes + 1024 * 1024  # two images plus the form fields

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not manage:
            yield
            return
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="percept artwork service", version=__version__, lifespan=lifespan,
        description="Turn a photo into an artwork: upload a photo, choose a painting (or upload one), submit, "
        "follow the progress, download the PNG. Every error is `{\"error\": \"...\"}` with one line saying what "
        "is wrong and how to fix it. A job's id is the only key to it: keep it secret to keep the work private.",
    )
    app.state.service = service
    # One submission at a time into the store: a waiting thread wakes as soon as the lock is free, where SQLite's
    # busy handler would sleep up to 100 ms between retries (the tail of the submit latency under load).
    submit_lock = threading.Lock()
    limiter = RateLimiter(config.rate_limit)
    app.router.redirect_slashes = False  # Starlette's would build the Location from the Host header: _Guard does it
    app.add_middleware(_Guard, limiter=limiter, max_body=max_body, max_upload_bytes=config.max_upload_bytes,
                       host_names=config.host_names,
                       redirect_base=(config.public_url or "").rstrip("/"), router=app.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def job_or_404(job_id: str) -> Job:
        """The job, looked up only after its id passed the pattern check."""
        job = service.job(job_id) if valid_job_id(job_id) else None
        if job is None:
            raise Rejected(404, "no such job; check the id in the link you were given")
        return job

    @app.exception_handler(Rejected)
    async def rejected(_request: Request, exc: Rejected) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(QueueFull)
    async def queue_full(_request: Request, _exc: QueueFull) -> JSONResponse:
        return _error(503, f"the queue is full ({config.queue_cap} jobs); try again in a minute",
                      {"Retry-After": "60"})

    @app.exception_handler(PerceptError)
    async def bad_input(_request: Request, exc: PerceptError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(InvalidField)
    async def invalid_field(_request: Request, exc: InvalidField) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return _error(422, f"{field}: {first.get('msg', 'invalid value')}; see /docs for the allowed values")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        if exc.status_code == 404 and not request.url.path.startswith("/api/"):
            return FileResponse(STATIC / "404.html", status_code=404, headers={"Cache-Control": "no-cache"})
        message = {
            404: "no such endpoint; see /docs for the API",
            405: f"method {request.method} not allowed here; see /docs",
            413: f"upload too large: at most {megabytes(config.max_upload_bytes)} per image; send smaller files",
        }.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, message, getattr(exc, "headers", None))

    # -- pages ---------------------------------------------------------------------------------------------
    def page(name: str) -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return page("index.html")

    @app.get("/gallery", include_in_schema=False)
    def gallery_page() -> FileResponse:
        return page("gallery.html")

    @app.get("/jobs/{job_id}", include_in_schema=False)
    def job_page(job_id: str) -> FileResponse:
        if not valid_job_id(job_id):
            raise HTTPException(404)
        return page("job.html")  # the script asks the API; an unknown id shows "no such job" there

    # -- API -----------------------------------------------------------------------------------------------
    @app.get(f"{API}/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness, the number of active jobs and the limits this server enforces."""
        counts = service.health()
        limits = Limits(max_upload_bytes=config.max_upload_bytes, max_pixels=config.max_pixels,
                        max_size=config.max_size, queue_cap=config.queue_cap, rate_limit=str(limiter.item))
        return Health(status="ok", version=__version__, public=public,
                      active_jobs=counts["queued"] + counts["running"], limits=limits)

    @app.get(f"{API}/styles", response_model=list[StyleOut], tags=["styles"])
    def styles() -> list[StyleOut]:
        """The predefined paintings (public domain), in gallery order."""
        return [StyleOut(**style.to_public_dict(), thumbnail_url=f"{API}/styles/{style.id}/thumbnail")
                for style in service.styles()]

    @app.get(f"{API}/styles/{{style_id}}/thumbnail", response_class=FileResponse, tags=["styles"],
             responses={200: {"content": {"image/jpeg": {}}, "description": "a JPEG, at most 256 px"},
                        **_errors(404)})
    def thumbnail(style_id: str) -> FileResponse:
        """A style's thumbnail (JPEG)."""
        for style in service.styles() if valid_style_id(style_id) else ():
            if style.id == style_id:
                return FileResponse(style.thumbnail_path, media_type="image/jpeg",
                                    headers={"Cache-Control": "public, max-age=86400"})
        raise Rejected(404, f"no style {style_id!r}; GET {API}/styles lists them")

    @app.post(SUBMIT_PATH, status_code=202, response_model=JobCreated, tags=["jobs"],
              max_body_size=max_body, form_limits={"max_files": 2, "max_fields": 20},
              responses=_errors(400, 403, 413, 415, 422, 429, 503))
    async def create_job(
        request: Request,
        photo: Annotated[UploadFile, File(description="the photo: PNG, JPEG or WebP")],
        style_id: Annotated[str | None, Form(description=f"a predefined style (GET {API}/styles)",
                                             examples=["starry-night"])] = None,
        style_image: Annotated[UploadFile | None, File(description="your own style image instead of style_id")] = None,
        method: Annotated[Literal["quality", "instant"], Form(
            description="quality: optimisation, best, minutes on a CPU; instant: AdaIN, seconds")] = "instant",
        size: Annotated[int, Form(ge=64, description="longest side of the result, px (at most max_size, "
                                  f"GET {API}/health)")] = 512,
        strength: Annotated[float, Form(ge=0, le=1, description="style strength: 0 = least, 1 = full style")] = 1.0,
        preserve_color: Annotated[bool, Form(description="keep the photo's colours")] = False,
        seed: Annotated[int | None, Form(ge=0, le=2**31 - 1, description="random seed (reproducible)")] = None,
        email: Annotated[str | None, Form(max_length=254, description="send a mail when done")] = None,
        webhook: Annotated[str | None, Form(max_length=2000, description="POST the outcome here when done")] = None,
    ) -> JobCreated:
        """Submit a photo and a style; the job runs in the background. Follow it at `status_url` or `page_url`."""
        if size > config.max_size:
            raise Rejected(422, f"size: at most {config.max_size} px on this server; choose a smaller size")
        style_id = style_id or None
        if (style_id is None) == (style_image is None):
            raise Rejected(400, f"choose exactly one style: style_id (see GET {API}/styles) or a style_image upload")
        if style_id is not None and style_id not in {s.id for s in service.styles()}:
            raise Rejected(400, f"unknown style {style_id[:64]!r}; GET {API}/styles lists the predefined ones")
        photo_bytes = await _read(photo, "photo", config.max_upload_bytes)
        style_bytes = await _read(style_image, "style_image", config.max_upload_bytes) if style_image else None

        def check_and_submit() -> Job:
            check_image(photo_bytes, field="photo", max_bytes=config.max_upload_bytes, max_pixels=config.max_pixels)
            if style_bytes is not None:
                check_image(style_bytes, field="style_image", max_bytes=config.max_upload_bytes,
                            max_pixels=config.max_pixels)
            with submit_lock:
                return service.submit(photo=photo_bytes, style_id=style_id, style_image=style_bytes, method=method,
                                      size=size, strength=strength, preserve_color=preserve_color, seed=seed,
                                      email=email, webhook=webhook,
                                      client=request.client.host if request.client else "unknown")

        job = await run_in_threadpool(check_and_submit)
        return JobCreated(**JobOut.of(job).model_dump(), cancel_token=cancel_token(secret, job.id))

    @app.get(f"{API}/jobs", response_model=JobList, tags=["jobs"], responses=_errors(403, 422))
    def list_jobs(
        ids: Annotated[str | None, Query(max_length=100 * 23, description="comma-separated job ids: list only "
                                         "these (required on a public server)")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> JobList:
        """Finished works (status done), newest first: every one on a local server, else only those named."""
        if ids is None:
            if public:
                raise Rejected(403, "listing every job is off on a public server; pass ids=<your job ids>")
            return JobList(jobs=[JobOut.of(job) for job in service.jobs("done", limit)])
        wanted = [i for i in dict.fromkeys(ids.split(",")) if valid_job_id(i)][:limit]
        jobs = [job for job in map(service.job, wanted) if job is not None and job.status == "done"]
        return JobList(jobs=[JobOut.of(job) for job in sorted(jobs, key=lambda j: -j.created)])

    @app.get(f"{API}/jobs/{{job_id}}", response_model=JobOut, tags=["jobs"], responses=_errors(404))
    def job_status(job_id: str) -> JobOut:
        """Status, progress (0..1), ETA and links of a job."""
        return JobOut.of(job_or_404(job_id))

    @app.get(f"{API}/jobs/{{job_id}}/result", response_class=FileResponse, tags=["jobs"],
             responses={200: {"content": {"image/png": {}}, "description": "the PNG, parameters in a text chunk"},
                        **_errors(404, 409)})
    def job_result(job_id: str) -> FileResponse:
        """Download the finished painting: a PNG with the job's parameters in a text chunk."""
        job = job_or_404(job_id)
        path = service.result_path(job.id) if job.status == "done" else None
        if path is None:
            raise Rejected(409, f"the job is {job.status}; its result can be downloaded once the status is done")
        return FileResponse(path, media_type="image/png", filename=f"percept-{job.id}.png",
                            headers={"Cache-Control": "private, max-age=86400"})

    @app.get(f"{API}/jobs/{{job_id}}/preview", response_class=FileResponse, tags=["jobs"],
             responses={200: {"content": {"image/png": {}}, "description": "the current image"},
                        **_errors(404, 410)})
    def job_preview(job_id: str) -> FileResponse:
        """The latest intermediate image of a running job (the result once done), shown inline."""
        job = job_or_404(job_id)
        if job.status == "cancelled":
            raise Rejected(410, "the job was cancelled; nothing of it is kept")
        path = service.preview_path(job.id)
        if path is None:
            raise Rejected(404, "no preview yet; it appears after the first steps, ask again in a moment")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post(f"{API}/jobs/{{job_id}}/cancel", response_model=JobOut, tags=["jobs"], responses=_errors(403, 404))
    def job_cancel(job_id: str, x_cancel_token: Annotated[str | None, Header(
            description="the cancel_token returned when the job was created")] = None) -> JobOut:
        """Cancel a queued or running job (a running one stops at its next step); finished jobs stay as they are."""
        job = job_or_404(job_id)
        if not check_cancel_token(secret, job.id, x_cancel_token):
            raise Rejected(403, "wrong or missing X-Cancel-Token; only the submitter (who got the token) can cancel")
        return JobOut.of(service.cancel(job.id) or job)

    return app


async def _read(upload: UploadFile, field: str, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of an upload; one byte more means it is too large (413), never read unbounded."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Rejected(413, f"{field}: the file is larger than {megabytes(max_bytes)}; send a smaller image")
    return data
