"""The web app's retouching: the job's edit list, the pictures a brush copies from, the retouched result.

=======  ==========================================  ==========================================
GET      /api/jobs/{id}/edits                         ``{"edits", "version", "from", "residual"}``
PUT      /api/jobs/{id}/edits                         ``{"edits": [...]}``: replace the list (validated,
                                                      bounded, finite), answer as GET
GET      /api/jobs/{id}/retouch/{method}.jpg          another fusion at the viewer's size (a brush source)
GET      /api/jobs/{id}/retouched.jpg?preview=1       the retouched result (full size; preview: viewer size)
GET      /api/jobs/{id}/residual.png                  the forward-model check's heat layer (RGBA)
=======  ==========================================  ==========================================

The edits live in the job's stack folder (:mod:`postfocus.products.edits`),
so they survive a restart; the untouched result is never changed. Pictures
made from an edit list are kept under its version
(:func:`~postfocus.products.edits.edits_version`), so a new list never
serves an old picture. ``from`` says, per edit, the frames it copies from
(``"sharpest"`` resolved), for the page's preview.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from postfocus.errors import OptionError
from postfocus.options import DEFAULT_METHOD, METHODS
from postfocus.web.guard import error
from postfocus.web.ops import Results
from postfocus.web.store import JobFolder
from postfocus.web.upload import UploadError, json_body

__all__ = ["MAX_EDITS_BYTES", "PREVIEW_EDGE", "RetouchResults", "retouch_routes"]

MAX_EDITS_BYTES = 4 * 1024 * 1024
"""Largest edit list accepted (JSON bytes); the list's own bounds are in :mod:`postfocus.products.edits`."""
PREVIEW_EDGE = 1600  # the viewer's pictures' long edge (postfocus.viewer.export.viewer_data)


def _fit(image: np.ndarray, edge: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= edge:
        return image
    s = edge / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


class RetouchResults(Results):
    """:class:`~postfocus.web.ops.Results` and the retouching operations, cached in the job's ``out/`` folder alike."""

    def state(self, job: JobFolder) -> dict:
        """The job's edit list as the page reads it."""
        from postfocus.products.edits import edits_version, load_edits
        from postfocus.products.retouch import resolve_sources

        ps = self.stack(job)
        edits = load_edits(ps)
        return {"edits": [e.to_json() for e in edits], "version": edits_version(edits),
                "from": resolve_sources(ps, edits), "residual": _check_available()}

    def replace(self, job: JobFolder, body: object) -> dict:
        """Validate and store a new edit list (the whole list: undo and redo are the page's)."""
        from postfocus.products.edits import parse_edits, save_edits

        ps = self.stack(job)
        if not isinstance(body, dict) or not isinstance(body.get("edits"), list):
            raise OptionError("edits", type(body).__name__, 'send {"edits": [...]}')
        masks = [p.name for p in (Path(ps.folder) / "edits").glob("mask-*.png")]
        save_edits(ps, parse_edits(body["edits"], ps.size, ps.used, masks))
        return self.state(job)

    def source(self, job: JobFolder, method: str) -> Path:
        """Another fusion of the job's frames at the viewer's size (what a brush with that source shows)."""
        from postfocus.products.retouch import apply_edits

        ps = self.stack(job)

        def make(path: Path) -> None:
            self._save(path, _fit(apply_edits(ps, [], method=method), PREVIEW_EDGE), ps, quality=92)

        return self._cached(job, f"source_{method}.jpg", make)

    def retouched(self, job: JobFolder, preview: bool = False) -> Path:
        """The retouched all-in-focus JPEG (the untouched one when there are no edits)."""
        from postfocus.products.edits import edits_version, load_edits
        from postfocus.products.retouch import apply_edits

        ps = self.stack(job)
        edits = load_edits(ps)
        if not edits and not preview:
            return self.image(job)
        version = edits_version(edits) or "none"

        def make(path: Path) -> None:
            image = apply_edits(ps, edits, method=DEFAULT_METHOD)
            self._save(path, _fit(image, PREVIEW_EDGE) if preview else image, ps, quality=95)

        kind = "p" if preview else "f"
        return self._cached(job, f"retouched_{kind}_{version}.jpg", make, prune=f"retouched_{kind}_")

    def residual(self, job: JobFolder) -> Path:
        """Where the result (retouched, if it is) disagrees with the frames: the check's heat layer (RGBA)."""
        from postfocus.check import forward_check
        from postfocus.check.view import heat_layer
        from postfocus.products.edits import edits_version, load_edits
        from postfocus.products.retouch import apply_edits
        from postfocus.viewer.export import encode_png

        ps = self.stack(job)
        edits = load_edits(ps)

        def make(path: Path) -> None:
            from postfocus.io.write import atomic_write_bytes

            image = apply_edits(ps, edits) if edits else None
            residual = forward_check(ps, image=image).residual
            h, w = _fit(residual, PREVIEW_EDGE).shape[:2]  # the size of the page's pictures
            atomic_write_bytes(path, encode_png(heat_layer(residual, (h, w))))  # as `postfocus check` draws it

        name = f"residual_{edits_version(edits) or 'none'}.png"
        return self._cached(job, name, make, prune="residual_")


def _check_available() -> bool:
    try:
        from postfocus.check import forward_check  # noqa: F401
    except ImportError:
        return False
    return True


def retouch_routes(job_path: str, finished: Callable, serve_file: Callable, ops: RetouchResults) -> list[Route]:
    """The routes above under ``job_path``, for :func:`postfocus.web.app.create_app` (``finished`` and
    ``serve_file`` are its own)."""

    async def get_edits(request: Request) -> Response:
        job, _ = await run_in_threadpool(finished, request)
        return JSONResponse(await run_in_threadpool(ops.state, job))

    async def put_edits(request: Request) -> Response:
        job, _ = await run_in_threadpool(finished, request)
        try:
            body = await json_body(request.headers.get("content-length"), request.stream(), limit=MAX_EDITS_BYTES)
        except UploadError as exc:
            return error(exc.status, exc.message)
        except ValueError:
            return error(400, 'Send the edits as JSON: {"edits": [...]}.')
        try:
            return JSONResponse(await run_in_threadpool(ops.replace, job, body))
        except OptionError as exc:
            return error(400, f"These edits cannot be kept: {exc.reason}.")

    def source(request: Request) -> Response:
        job, data = finished(request)
        method = request.path_params["method"]
        if method not in METHODS:
            raise HTTPException(404, "No such picture.")
        return serve_file(request, ops.source(job, method), job, data, f"{method}.jpg")

    def retouched(request: Request) -> Response:
        job, data = finished(request)
        preview = request.query_params.get("preview") in ("1", "true", "yes")
        return serve_file(request, ops.retouched(job, preview), job, data, "all-in-focus.jpg")

    def residual(request: Request) -> Response:
        job, data = finished(request)
        if not _check_available():
            raise HTTPException(404, "The forward-model check is not available in this version.")
        return serve_file(request, ops.residual(job), job, data, "residual.png")

    return [
        Route(f"{job_path}/edits", get_edits, methods=["GET"]),
        Route(f"{job_path}/edits", put_edits, methods=["PUT"]),
        Route(f"{job_path}/retouch/{{method:str}}.jpg", source),
        Route(f"{job_path}/retouched.jpg", retouched),
        Route(f"{job_path}/residual.png", residual),
    ]
