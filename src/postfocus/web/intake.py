"""Take one upload in as a new job (``POST /api/jobs``).

:class:`Intake` bounds what uploads can hold: at most ``max_uploads`` are
received at once (another is a 503 at once, before any folder is made), and a
body that sends nothing for ``upload_timeout`` seconds is dropped (408). A disk
that is full when the job's folder is made, while the files are written or when
``job.json`` is written after them is a 507 (:data:`~postfocus.web.upload.NO_SPACE`).
A refused upload keeps nothing: its job folder is removed and its slot freed.
"""

from __future__ import annotations

import logging
import math
import shutil
from typing import AsyncIterator, Callable

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from postfocus.errors import OptionError
from postfocus.io.base import natural_key
from postfocus.web.guard import error
from postfocus.web.names import job_title
from postfocus.web.store import QUEUED, JobFolder, Store
from postfocus.web.upload import (
    DISK_FULL,
    NO_SPACE,
    UploadError,
    UploadReceiver,
    check_upload,
    drop_repeats,
    too_large,
)

__all__ = ["BUSY", "DEFAULT_MAX_UPLOADS", "DEFAULT_UPLOAD_TIMEOUT", "DISK_RESERVE", "Intake"]

log = logging.getLogger("postfocus.web")

DEFAULT_MAX_UPLOADS = 4  # uploads received at once (the page sends one at a time)
DEFAULT_UPLOAD_TIMEOUT = 60.0  # seconds an upload's body may send nothing
DISK_RESERVE = 256 * 1024 * 1024  # keep this much free after an upload
BUSY = "Too many uploads at once; try again when one has finished."


class Intake:
    """Receives uploads into new jobs of ``store`` and hands each to ``submit(job_id)``.

    Parameters
    ----------
    store : Store
        The data folder.
    submit : Callable[[str], None]
        Queues a job by id.
    public : Callable[[dict], dict]
        The answer made of a job's ``job.json``.
    limit : int
        Largest upload in bytes; ``limit_text`` says it for people.
    limit_text : str
        E.g. "2048 MB".
    max_uploads : int
        Uploads received at once, at least 1.
    upload_timeout : float
        Seconds the body may send nothing before the upload is dropped, above 0.
    """

    def __init__(self, store: Store, submit: Callable[[str], None], public: Callable[[dict], dict], *, limit: int,
                 limit_text: str, max_uploads: int = DEFAULT_MAX_UPLOADS,
                 upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT):
        if isinstance(max_uploads, bool) or not isinstance(max_uploads, int) or max_uploads < 1:
            raise OptionError("max_uploads", max_uploads, "must be a whole number of uploads, at least 1")
        if isinstance(upload_timeout, bool) or not isinstance(upload_timeout, (int, float)) \
                or not math.isfinite(upload_timeout) or upload_timeout <= 0:
            raise OptionError("upload_timeout", upload_timeout, "must be a number of seconds above 0")
        self.store, self.submit, self.public = store, submit, public
        self.limit, self.limit_text = limit, limit_text
        self.upload_timeout = float(upload_timeout)
        self._slots = anyio.Semaphore(max_uploads)

    async def create_job(self, request: Request) -> Response:
        """The endpoint: 201 with the queued job, or an error answer; nothing is kept of a refused upload."""
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return error(400, "Bad Content-Length.")
            if int(length) > self.limit:
                return error(413, too_large(self.limit_text))
            if shutil.disk_usage(self.store.root).free < int(length) + DISK_RESERVE:
                return error(507, NO_SPACE)
        try:
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            busy = error(503, BUSY)
            busy.headers["retry-after"] = "10"
            return busy
        try:
            return await self._take(request)
        finally:
            self._slots.release()

    async def _take(self, request: Request) -> Response:
        try:
            job = self.store.create()
        except OSError as exc:  # (a 500, its folder left: web23)
            if exc.errno not in DISK_FULL:
                raise
            return error(507, NO_SPACE)
        receiver = UploadReceiver(job, self.limit, self.limit_text)
        try:
            stream = _until_idle(request.stream(), self.upload_timeout)
            await receiver.receive(request.headers.get("content-type", ""), stream)
            files = sorted(receiver.files, key=lambda f: natural_key(f["name"]))
            files, repeats = await run_in_threadpool(drop_repeats, job, files)
            await run_in_threadpool(check_upload, job, files)
            data = self._queued(job, files, repeats, receiver.fields.get("title"))
        except UploadError as exc:
            self.store.delete(job)
            if exc.status == 408:
                log.warning("upload dropped: nothing arrived for %g s after %d bytes; nothing was kept",
                            self.upload_timeout, receiver.received)
            return error(exc.status, exc.message)
        except ClientDisconnect:  # nobody is left to answer: one line in the log, nothing kept
            self.store.delete(job)
            log.warning("upload cancelled: the client disconnected after %d bytes; nothing was kept",
                        receiver.received)
            return error(400, "The upload was cut off.")
        except BaseException:
            self.store.delete(job)
            raise
        self.submit(job.id)
        return JSONResponse(self.public(data), status_code=201)

    @staticmethod
    def _queued(job: JobFolder, files: list[dict], repeats: list[str], title: str | None) -> dict:
        """Write the received job's ``job.json`` as queued; a full disk is an UploadError (507)."""
        data = job.read() or {}
        title = (title or "").strip()[:120] or job_title(files)
        data.update(state=QUEUED, inputs=files, upload_warnings=repeats,
                    title="".join(c for c in title if c.isprintable()))
        try:
            return job.write(data)
        except OSError as exc:  # (a 500, the hidden folder left until the next start: web23)
            if exc.errno not in DISK_FULL:
                raise
            raise UploadError(507, NO_SPACE) from None


async def _until_idle(stream: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """``stream``'s chunks; an UploadError (408) when none arrives for ``seconds`` (uvicorn has no such limit)."""
    chunks = stream.__aiter__()
    while True:
        try:
            with anyio.fail_after(seconds):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadError(408, f"The upload stalled: nothing arrived for {seconds:g} seconds; nothing was kept. "
                                   "Send the files again.") from None
        yield chunk
