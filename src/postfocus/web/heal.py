"""A finished job whose stack folder is damaged heals: it is processed again from its kept photos.

A job's stack folder can be damaged after the job finished (a kept frame
deleted or cut short, the manifest unreadable). The CLI heals such a folder on
its next run; the app does it on the request that finds it: :func:`check`
tells whether the folder still opens and matches its manifest
(:meth:`postfocus.store.ProcessedStack.verify`: one ``stat`` per file, and the
CRC-32 of a file changed since the manifest was written, so a kept photo
overwritten by another of the same size is found, as the CLI finds it), and
:func:`rebuild` queues the job again. The client is told :data:`REBUILD_MESSAGE`
(status 503), never the server's paths.
"""

from __future__ import annotations

import logging
import threading

from postfocus.errors import PostfocusError
from postfocus.store import ProcessedStack
from postfocus.web.store import DONE, QUEUED, JobFolder

__all__ = ["REBUILD_MESSAGE", "REBUILD_STATUS", "check", "rebuild", "scrub"]

log = logging.getLogger("postfocus.web")

REBUILD_STATUS = 503
REBUILD_MESSAGE = "This stack's files were damaged; it is being rebuilt from its photos. Try again in a moment."


def check(job: JobFolder) -> str | None:
    """Why the job's stack folder cannot be used (refused, a file missing or cut short), or None.

    Parameters
    ----------
    job : JobFolder

    Returns
    -------
    str or None
        The problem as the stack folder names it (with server paths: for the log only).
    """
    try:
        ProcessedStack.open(job.stack_dir).verify(checksums="changed")
    except (PostfocusError, OSError) as exc:  # InputError (refused), DamagedStackError, unreadable
        return str(exc) or type(exc).__name__
    return None


def rebuild(job: JobFolder, problem: str, submit, forget, *, lock: threading.Lock) -> None:  # noqa: ANN001
    """Queue a done job again (its worker remakes the stack folder and results from the kept photos).

    Parameters
    ----------
    job : JobFolder
    problem : str
        What :func:`check` found (logged).
    submit, forget : callable
        ``submit(job_id)`` queues the job (:meth:`postfocus.web.jobs.JobQueue.submit`);
        ``forget(job_id)`` drops its open stack (:meth:`postfocus.web.ops.Results.forget`).
    lock : threading.Lock
        The app's: one request requeues a job, the others see it queued.
    """
    with lock:
        data = job.read()
        if data is None or data.get("state") != DONE:  # already queued again, or gone
            return
        log.warning("job %s: its stack folder is damaged (%s); processing it again from its photos", job.id, problem)
        forget(job.id)
        data.update(state=QUEUED, progress=None, error=None, interrupted=False)
        job.write(data)
    submit(job.id)


def scrub(message: str, job: JobFolder) -> str:
    """``message`` without the job folder's location on the server (``stack/frames/0003.jpg`` stays)."""
    for folder in sorted({str(job.folder.resolve()), str(job.folder)}, key=len, reverse=True):
        message = message.replace(folder + "/", "").replace(folder, "")
    return message
