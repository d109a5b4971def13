"""The web app: a window for people who do not use a terminal.

:func:`create_app` builds a Starlette application over a data folder (see
:mod:`postfocus.web.store`). It serves a single page (``static/``), the shared
viewer (``postfocus/viewer/viewer.js``) and a JSON API:

=======  ==========================================  ==========================================
GET      /api/info                                    version, upload limit, workers
GET      /api/jobs                                    every job, newest first (the gallery)
POST     /api/jobs                                    upload photos or a video (multipart, ``files``)
GET      /api/jobs/{id}                               state, progress, result or error of one job
DELETE   /api/jobs/{id}                               delete a finished job and its files
POST     /api/jobs/{id}/retry                         process a failed job again
GET      /api/jobs/{id}/viewer                        data for ``PostfocusViewer.mount``
GET      /api/jobs/{id}/viewer/{picture}              the viewer's pictures (frames, maps)
GET      /api/jobs/{id}/thumb.jpg                     gallery thumbnail
GET      /api/jobs/{id}/image.jpg                     the all-in-focus JPEG
GET      /api/jobs/{id}/frames/{n}                    aligned frame n (what a tap shows)
POST     /api/jobs/{id}/tap                           ``{"x":..,"y":..}`` -> sharpest frame there
GET      /api/jobs/{id}/merge.jpg?start=A&end=B       range merge of frames A..B
GET      /api/jobs/{id}/pop.jpg?position=&tolerance=  colour pop of what lies at a focus position
                                                      (or ?x=&y=: of the subject there)
GET      /api/jobs/{id}/aperture.jpg?x=&y=&f=&full=   synthetic aperture focused at x, y
GET      /api/jobs/{id}/depth.png                     depth map (16-bit grey PNG)
GET      /api/jobs/{id}/page.html                     self-contained page to share
GET/PUT  /api/jobs/{id}/edits                         retouching (see postfocus.web.retouch)
=======  ==========================================  ==========================================

Any image or page URL takes ``?download=1`` to be saved as a file with a
readable name. Errors are JSON ``{"error": "..."}`` with a message for people.

Safety: only requests whose Host is an allowed name are served (by default
the local machine's, which defeats DNS rebinding), state-changing requests
from another origin (``Origin: null`` included) or without the header
``X-Postfocus: 1`` are refused, JSON bodies are limited in size, uploads are
limited in size while they stream, checked by content, refused when cut
short or stalled, at most a few at once (:mod:`~postfocus.web.intake`), and
stored under generated names; job ids must be UUIDs, and every file served is
checked to lie in its job's folder.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import re
import threading
from pathlib import Path
from typing import AsyncIterator, Iterable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from postfocus._version import __version__
from postfocus.errors import OptionError, OutputError, PostfocusError
from postfocus.options import check_threads, is_number
from postfocus.pipeline.threads import configure_threads
from postfocus.store.cache import CacheError
from postfocus.web.guard import CHANGE_HEADER, GuardMiddleware, error, host_names
from postfocus.web.heal import REBUILD_MESSAGE, REBUILD_STATUS, check, rebuild, scrub
from postfocus.web.intake import DEFAULT_MAX_UPLOADS, DEFAULT_UPLOAD_TIMEOUT, Intake
from postfocus.web.jobs import VIEWER_NAME_RE, JobQueue
from postfocus.web.names import attachment, slug
from postfocus.web.ops import f_number_used
from postfocus.web.retouch import RetouchResults, retouch_routes
from postfocus.web.store import DONE, FAILED, FINISHED, QUEUED, UPLOADING, JobFolder, Lock, Store
from postfocus.web.taps import app_threads
from postfocus.web.upload import UploadError, humanize, json_body

__all__ = ["CHANGE_HEADER", "DEFAULT_MAX_UPLOAD_MB", "LOCAL_HOSTS", "MAX_WORKERS", "GuardMiddleware", "create_app",
           "error"]

log = logging.getLogger("postfocus.web")

PACKAGE = Path(__file__).resolve().parents[1]
STATIC_DIR = Path(__file__).resolve().parent / "static"
VIEWER_DIR = PACKAGE / "viewer"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_MAX_UPLOAD_MB = 2048
MAX_WORKERS = 64  # as the command line's --workers


def create_app(
    data_dir: str | os.PathLike,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    workers: int = 2,
    allowed_hosts: Iterable[str] | None = LOCAL_HOSTS,
    threads: int | None = None,
    max_uploads: int = DEFAULT_MAX_UPLOADS,
    upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT,
) -> Starlette:
    """Build the web app over ``data_dir``.

    Parameters
    ----------
    data_dir : str or os.PathLike
        Folder for jobs (created if missing); results survive restarts.
    max_upload_mb : float
        Largest upload accepted, in MB (whole request).
    workers : int
        How many stacks are processed at the same time, 1 to :data:`MAX_WORKERS`.
    allowed_hosts : Iterable[str] or str or None
        Host names the server answers to (a string: one name; None: any; for a server reachable
        from other machines).
    threads : int, optional
        Thread budget of each of the app's own renders and of OpenCV in the server process (default:
        :func:`~postfocus.web.taps.app_threads` of ``workers``, the cores shared with the jobs).
    max_uploads : int
        Uploads received at once; one more is refused (503) until one ends.
    upload_timeout : float
        Seconds an upload's body may send nothing before it is dropped (408, nothing kept).

    Returns
    -------
    Starlette
        The application; its lifespan starts and stops the worker pool.

    Examples
    --------
    >>> app = create_app("/tmp/postfocus-data")  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    if not (isinstance(max_upload_mb, (int, float)) and math.isfinite(max_upload_mb) and max_upload_mb > 0):
        raise OptionError("max_upload_mb", max_upload_mb, "must be a number of MB above 0")
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or not 1 <= workers <= MAX_WORKERS:
        raise OptionError("workers", workers, f"must be a whole number from 1 to {MAX_WORKERS}")  # (10**9: web23)
    allowed_hosts = host_names(allowed_hosts)
    store = Store(data_dir)
    threads = app_threads(workers) if threads is None else check_threads(threads)
    results = RetouchResults(threads=threads)  # Results and retouching (web/retouch.py)
    queue = JobQueue(store, workers=workers,  # a finished job's plain tap depth made ahead (web/taps.py)
                     on_done=lambda job_id: results.tap_ahead(store.job(job_id)))
    requeue = threading.Lock()  # a damaged job is queued again by one request (web/heal.py)
    limit = int(max_upload_mb * 1024 * 1024)
    limit_text = f"{max_upload_mb:g} MB"
    lock = Lock(store.root / "server.lock")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        lock.acquire()
        restore = configure_threads(threads)  # OpenCV's, the server process's (the jobs run in processes of their own)
        try:
            requeued = await run_in_threadpool(queue.start)
            if requeued:
                log.info("queued %d waiting job(s) again", len(requeued))
            yield
        finally:
            await run_in_threadpool(queue.shutdown)
            await run_in_threadpool(results.ahead.close)  # (waits for a depth under way: review18)
            restore()
            lock.release()

    # Helpers ------------------------------------------------------------
    def find(request: Request) -> tuple[JobFolder, dict]:
        job = store.job(request.path_params.get("job_id", ""))
        data = job.read() if job else None
        if job is None or data is None or data.get("state") == UPLOADING:
            raise HTTPException(404, "No such job.")
        return job, data

    def finished(request: Request) -> tuple[JobFolder, dict]:
        job, data = find(request)
        if data.get("state") == DONE and not job.stack_dir.is_dir():  # its stack folder is gone: make it again
            rebuild(job, "no stack folder", queue.submit, results.forget, lock=requeue)
            raise HTTPException(REBUILD_STATUS, REBUILD_MESSAGE)
        if data.get("state") != DONE or not job.stack_dir.is_dir():
            raise HTTPException(409, "This job has no result yet." if data.get("state") != FAILED
                                else f"This job failed: {data.get('error')}")
        return job, data

    def links(job_id: str) -> dict:
        base = f"/api/jobs/{job_id}"
        return {name: f"{base}/{path}" for name, path in (
            ("self", ""), ("viewer", "viewer"), ("thumb", "thumb.jpg"), ("image", "image.jpg"),
            ("tap", "tap"), ("merge", "merge.jpg"), ("pop", "pop.jpg"), ("aperture", "aperture.jpg"),
            ("depth", "depth.png"), ("page", "page.html"),
        )}

    def public(data: dict) -> dict:
        job_id = data["id"]
        out = {k: data.get(k) for k in ("id", "state", "created", "updated", "started", "finished", "title",
                                        "progress", "error", "result", "attempts")}
        out["interrupted"] = bool(data.get("interrupted"))
        out["inputs"] = [{k: item.get(k) for k in ("name", "size", "kind", "format")} for item in data.get("inputs", [])]
        out["links"] = links(job_id)
        return out

    intake = Intake(store, queue.submit, public, limit=limit, limit_text=limit_text, max_uploads=max_uploads,
                    upload_timeout=upload_timeout)  # POST /api/jobs (web/intake.py)

    def serve_file(request: Request, path: Path, job: JobFolder, data: dict, download_name: str,
                   media_type: str | None = None, headers: dict | None = None,
                   download: bool = False) -> FileResponse:
        if not store.inside(path) or not Path(path).resolve().is_relative_to(job.folder.resolve()):
            raise HTTPException(404, "No such file.")
        if not Path(path).is_file():  # a file of the stack folder deleted since it was opened (see job_error)
            raise FileNotFoundError(path)
        headers = dict(headers or {})
        if download or request.query_params.get("download"):
            headers["content-disposition"] = attachment(f"{slug(data.get('title') or 'postfocus')}-{download_name}")
        return FileResponse(path, media_type=media_type, headers=headers)

    def number(request: Request, name: str, default: float | None = None) -> float:
        value = request.query_params.get(name)
        if value is None:
            if default is None:
                raise HTTPException(400, f"Missing parameter {name!r}.")
            return default
        try:
            parsed = float(value)
        except ValueError:
            parsed = math.nan
        if not math.isfinite(parsed):  # nan and inf too: every parameter is a position or a size
            raise HTTPException(400, f"Parameter {name!r} must be a number.")
        return parsed

    # Pages --------------------------------------------------------------
    def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    def viewer_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if not re.fullmatch(r"[a-z0-9_-]+\.(js|css)", name):
            raise HTTPException(404, "No such file.")
        path = VIEWER_DIR / name
        if not path.is_file():
            raise HTTPException(404, "No such file.")
        return FileResponse(path)

    # API ----------------------------------------------------------------
    def info(request: Request) -> Response:
        return JSONResponse({
            "version": __version__,
            "max_upload_bytes": limit,
            "max_upload_text": limit_text,
            "workers": queue.workers,
            "viewer": (VIEWER_DIR / "viewer.js").is_file(),
        })

    def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": [public(d) for d in store.list()]})

    def get_job(request: Request) -> Response:
        _, data = find(request)
        return JSONResponse(public(data))

    def delete_job(request: Request) -> Response:
        job, data = find(request)
        if data.get("state") not in FINISHED:
            return error(409, "This job is still being processed; delete it when it has finished.")
        results.forget(job.id)
        store.delete(job)
        return JSONResponse({"deleted": job.id})

    def retry_job(request: Request) -> Response:
        job, data = find(request)
        if data.get("state") != FAILED:
            return error(409, "Only a failed job can be tried again.")
        data.update(state=QUEUED, error=None, progress=None, interrupted=False)
        job.write(data)
        queue.submit(job.id)
        return JSONResponse(public(data))

    def viewer_data(request: Request) -> Response:
        job, data = finished(request)  # made by the worker; made again if it went missing or was damaged
        path = results.viewer_file(job, "data.json", data.get("title") or None, data.get("inputs", []))
        return serve_file(request, path, job, data, "viewer.json", media_type="application/json")

    def viewer_picture(request: Request) -> Response:
        job, data = finished(request)
        name = request.path_params["name"]
        if not re.fullmatch(VIEWER_NAME_RE, name):
            raise HTTPException(404, "No such file.")
        path = results.viewer_file(job, name, data.get("title") or None, data.get("inputs", []))
        if path is None:
            raise HTTPException(404, "No such file.")
        return serve_file(request, path, job, data, name, headers={"cache-control": "private, max-age=86400"})

    def thumb(request: Request) -> Response:
        job, data = finished(request)
        return serve_file(request, results.thumb(job), job, data, "thumbnail.jpg")

    def image(request: Request) -> Response:
        job, data = finished(request)
        return serve_file(request, results.retouched(job), job, data, "all-in-focus.jpg")  # with its edits

    def frame(request: Request) -> Response:
        job, data = finished(request)
        digits = request.path_params["index"]  # (read here, not by the route's int convertor: an index of more than
        if not digits.isascii() or not digits.isdigit():  # 4300 digits was its ValueError, a 500)
            raise HTTPException(404, "No such file.")
        said = digits if len(digits) <= 6 else f"{digits[:6]}... ({len(digits)} digits)"  # (not all 400)
        index = int(digits) if len(digits) <= 18 else -1
        try:
            if index < 0:
                raise KeyError(digits)
            path = results.frame_path(job, index)
        except KeyError:  # not a kept frame (a damaged stack's errors are job_error's)
            raise HTTPException(404, f"Frame {said} is not in this stack.") from None
        # File names count frames from 1, as the page does ("Frame 3 of 7"); the URL's number is 0-based.
        return serve_file(request, path, job, data, f"frame-{index + 1}{path.suffix}")

    async def tap_point(request: Request) -> Response:
        job, _ = await run_in_threadpool(finished, request)
        try:
            body = await json_body(request.headers.get("content-length"), request.stream())
            x, y = body["x"], body["y"]
            if not (is_number(x) and is_number(y)):  # (true and "10" were taken, which tap() refuses)
                raise TypeError
            x, y = float(x), float(y)
        except UploadError as exc:
            return error(exc.status, exc.message)
        except (ValueError, KeyError, TypeError, OverflowError):  # (OverflowError: an int of 400 digits, was a 500)
            return error(400, "Send the point as JSON: {\"x\": ..., \"y\": ...} in image pixels.")
        return JSONResponse(await run_in_threadpool(results.tap, job, x, y))

    def merge(request: Request) -> Response:
        job, data = finished(request)
        start, end = number(request, "start"), number(request, "end")
        path, lo, hi = results.merge(job, int(start), int(end))
        return serve_file(request, path, job, data, f"frames-{lo + 1}-to-{hi + 1}.jpg")

    def pop(request: Request) -> Response:
        job, data = finished(request)
        if "position" in request.query_params:
            position = number(request, "position")
        else:
            position = results.position_at(job, number(request, "x"), number(request, "y"))
        path = results.pop(job, position, number(request, "tolerance", 1.0))
        return serve_file(request, path, job, data, "colour-pop.jpg")

    def aperture(request: Request) -> Response:
        job, data = finished(request)
        full = request.query_params.get("full") in ("1", "true", "yes")
        f_number, x, y = number(request, "f"), number(request, "x"), number(request, "y")
        path = results.aperture(job, x, y, f_number, preview=not full)
        lens = results.aperture_lens(job, x, y, f_number, preview=not full).headers()  # its blur, for the caption
        return serve_file(request, path, job, data, f"f{f_number_used(f_number):g}.jpg", headers=lens)  # as rendered

    def depth(request: Request) -> Response:
        job, data = finished(request)
        return serve_file(request, results.depth(job), job, data, "depth-map.png")

    def page(request: Request) -> Response:
        job, data = finished(request)
        path = results.page(job, data.get("title") or None, data.get("inputs", []))
        # The exported page is the user's to open from disk; here it is only ever
        # downloaded, and if opened it runs sandboxed away from this origin.
        return serve_file(request, path, job, data, "page.html", media_type="text/html",
                          headers={"content-security-policy": "sandbox allow-scripts"}, download=True)

    # Errors -------------------------------------------------------------
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/") or exc.status_code != 404:
            return error(exc.status_code, exc.detail)
        return error(404, "Not found.")

    async def job_error(request: Request, exc: Exception) -> Response:
        """A PostfocusError or OSError answering a request: a damaged stack folder heals (web/heal.py),
        else a message for people without the server's paths."""
        job = store.job(request.path_params.get("job_id", ""))
        if job is not None:
            problem = await run_in_threadpool(check, job)
            if problem is not None:
                await run_in_threadpool(rebuild, job, problem, queue.submit, results.forget, lock=requeue)
                return error(REBUILD_STATUS, REBUILD_MESSAGE)
        if isinstance(exc, FileNotFoundError):
            return error(404, "No such file.")
        if isinstance(exc, OSError):
            log.error("%s: %s", request.url.path, exc, exc_info=exc)
            return error(500, "The server could not read or write this job's files; see its log.")
        if isinstance(exc, (OutputError, CacheError)) and job is not None:  # its own files (a full disk): not the
            log.error("%s: %s", request.url.path, exc)  # request's fault (was a 400)
            return error(507, f"The server could not write this job's files ({scrub(str(exc), job)}); "
                              "free some disk space on the server and try again.")
        message = str(exc)
        if job is not None:
            message = scrub(humanize(message, job, (job.read() or {}).get("inputs", [])), job)
        return error(400, message)

    job = "/api/jobs/{job_id:str}"
    routes = [
        Route("/", index),
        Route("/index.html", index),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/viewer/{name:str}", viewer_asset),
        Route("/api/info", info),
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs", intake.create_job, methods=["POST"]),
        Route(job, get_job, methods=["GET"]),
        Route(job, delete_job, methods=["DELETE"]),
        Route(f"{job}/retry", retry_job, methods=["POST"]),
        Route(f"{job}/viewer", viewer_data),
        Route(f"{job}/viewer/{{name:str}}", viewer_picture),
        Route(f"{job}/thumb.jpg", thumb),
        Route(f"{job}/image.jpg", image),
        Route(f"{job}/frames/{{index:str}}", frame),
        Route(f"{job}/tap", tap_point, methods=["POST"]),
        Route(f"{job}/merge.jpg", merge),
        Route(f"{job}/pop.jpg", pop),
        Route(f"{job}/aperture.jpg", aperture),
        Route(f"{job}/depth.png", depth),
        Route(f"{job}/page.html", page),
        *retouch_routes(job, finished, serve_file, results),  # edits, retouched.jpg ... (web/retouch.py)
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, PostfocusError: job_error, OSError: job_error},
    )
    app.add_middleware(GuardMiddleware, allowed_hosts=allowed_hosts)  # type: ignore[arg-type]
    app.state.store = store
    app.state.queue = queue
    app.state.results = results
    return app
