"""Background jobs: process uploaded stacks in worker processes, one process per job.

:class:`JobQueue` keeps the ids of waiting jobs and starts a worker process
(``spawn``, so it never inherits the server's threads or sockets) for each, at
most ``workers`` at once. The worker (:func:`run_job`) owns the job's
``job.json`` while it runs: it writes state ``running``, progress as it goes,
then ``done`` with the result or ``failed`` with a message for people. An
exception in one job fails that job only.

The server watches its workers' exit codes from one dispatcher thread. A worker
that dies outright (killed, out of memory) affects only its own job: the job is
processed once more in a fresh process, and fails with a message saying so if
that process dies too. Workers die with the server (:mod:`postfocus.web.lifeline`),
so a server killed outright leaves no worker behind to write into a job folder
after the next server has marked its job interrupted.

On shutdown, waiting jobs stay ``queued`` in their folders (the next server
start queues them again) and running ones are stopped and marked interrupted.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from postfocus.io.write import atomic_write_json
from postfocus.web.lifeline import worker_main
from postfocus.store import ProcessedStack
from postfocus.web.store import (
    DONE,
    FAILED,
    FINISHED,
    INTERRUPTED_MESSAGE,
    QUEUED,
    RUNNING,
    JobFolder,
    Store,
    now,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["THUMB_EDGE", "VIEWER_NAME_RE", "JobQueue", "frame_names", "run_job", "thumbnail", "viewer_payload",
           "write_viewer_data"]

log = logging.getLogger("postfocus.web")

STAGE_TEXT = {
    "align and measure": "Aligning and measuring the frames",  # photos or a video's frames
    "fuse": "Merging the sharp parts",
}
# Share of the whole job that each known stage takes (rough, for one progress bar).
STAGE_SPAN = {"align and measure": (0.0, 0.5), "fuse": (0.5, 0.95)}
THUMB_EDGE = 360  # long edge of the gallery's thumbnails
PROGRESS_INTERVAL = 0.2  # seconds between progress writes
MAX_WORKER_DEATHS = 1  # a job whose worker dies is processed once more, then fails


class JobQueue:
    """Job ids waiting, and at most ``workers`` worker processes running them, one process per job; ``on_done(id)``
    is called (on the dispatcher thread: it must return at once) when a job's worker ends with the job done."""

    def __init__(self, store: Store, workers: int = 2, *, on_done: Callable[[str], None] | None = None):
        self.store = store
        self.on_done = on_done
        self.workers = max(1, int(workers))
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._waiting: deque[str] = deque()
        self._running: dict[str, multiprocessing.process.BaseProcess] = {}
        self._deaths: dict[str, int] = {}  # job id -> worker processes that died running it
        self._wake_out, self._wake_in = self._context.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> list[str]:
        """Recover the data folder after the last server, start dispatching, queue waiting jobs again."""
        requeued = self.store.recover()
        for job_id in requeued:
            self.submit(job_id)
        self._dispatch_soon()
        return requeued

    def submit(self, job_id: str) -> None:
        """Queue a job whose ``job.json`` already says ``queued`` (new, retried or recovered)."""
        with self._lock:
            if self._closed or job_id in self._waiting or job_id in self._running:
                return
            self._deaths.pop(job_id, None)
            self._waiting.append(job_id)
        self._dispatch_soon()

    def active(self) -> list[str]:
        """Ids of the jobs waiting or running."""
        with self._lock:
            return list(self._running) + list(self._waiting)

    def worker_pid(self, job_id: str) -> int | None:
        """Process id of the worker running ``job_id``, or None."""
        with self._lock:
            process = self._running.get(job_id)
            return None if process is None else process.pid

    # The dispatcher thread ---------------------------------------------------
    def _dispatch_soon(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                # Workers are started from this thread only: it lives as long as the server, and
                # a worker dies with the thread that started it (see postfocus.web.lifeline).
                self._thread = threading.Thread(target=self._dispatch, name="postfocus-jobs", daemon=True)
                self._thread.start()
            self._wake_in.send_bytes(b"")

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                while self._waiting and len(self._running) < self.workers:
                    job_id = self._waiting.popleft()
                    try:
                        self._launch(job_id)
                    except Exception:  # one job's trouble (a full disk) must not end this thread and its workers
                        log.exception("job %s: could not be started", job_id)
                watched = {process.sentinel: job_id for job_id, process in self._running.items()}
            ready = multiprocessing.connection.wait([self._wake_out, *watched])
            if self._wake_out in ready:
                while self._wake_out.poll():
                    self._wake_out.recv_bytes()
            for sentinel in ready:
                if sentinel in watched:
                    try:
                        self._ended(watched[sentinel])
                        job = self.on_done and self.store.job(watched[sentinel])
                        if job and (job.read() or {}).get("state") == DONE:
                            self.on_done(job.id)
                    except Exception:
                        log.exception("job %s: could not be recorded as ended", watched[sentinel])

    def _launch(self, job_id: str) -> None:
        """Start a worker process for a queued job (called with the lock held)."""
        job = self.store.job(job_id)
        data = job.read() if job else None
        if job is None or data is None or data.get("state") != QUEUED:
            return
        process = self._context.Process(target=worker_main, args=(run_job, str(job.folder), os.getpid()),
                                        name=f"postfocus-job-{job_id[:8]}", daemon=True)
        try:
            process.start()
        except OSError as exc:
            log.error("job %s: no worker process could be started: %s", job_id, exc)
            data.update(state=FAILED, progress=None, finished=now(),
                        error=f"No worker process could be started for this job ({exc.strerror or exc}).")
            job.write(data)
            return
        self._running[job_id] = process

    def _ended(self, job_id: str) -> None:
        """A worker process ended: fine if it finished its job; if it died, try once more, then fail."""
        with self._lock:
            process = self._running.pop(job_id, None)
            if process is None or self._closed:
                return
            process.join()
            how = _how_it_ended(process.exitcode)
            process_ok = process.exitcode == 0
            process.close()
            job = self.store.job(job_id)
            data = job.read() if job else None
            if job is None or data is None or data.get("state") in FINISHED:
                return
            if process_ok and data.get("state") == QUEUED:  # retried while its worker was exiting: run it again
                self._waiting.append(job_id)
                return
            started = data.get("state") == RUNNING
            for stale in job.folder.glob(".job.*.json.part"):  # a job.json write cut short
                stale.unlink(missing_ok=True)
            shutil.rmtree(job.work_dir, ignore_errors=True)
            self._deaths[job_id] = deaths = self._deaths.get(job_id, 0) + 1
            if deaths <= MAX_WORKER_DEATHS:
                log.warning("job %s: its worker process stopped (%s); processing it again", job_id, how)
                data.update(state=QUEUED, progress=None, error=None)
                job.write(data)
                self._waiting.appendleft(job_id)
                return
            if started:
                times = {2: "twice"}.get(deaths, f"{deaths} times")
                message = (f"The worker process stopped unexpectedly {times} ({how}; perhaps it ran out of "
                           "memory). Try again, or with fewer or smaller photos.")
            else:
                message = f"No worker process could be started for this job ({how}); see the server's log."
            log.error("job %s failed: %s", job_id, message)
            data.update(state=FAILED, error=message, progress=None, finished=now())
            job.write(data)

    def shutdown(self) -> None:
        """Stop: waiting jobs stay queued on disk, running ones are stopped and marked interrupted."""
        with self._lock:
            self._closed = True
            running = dict(self._running)
            self._running.clear()
            self._waiting.clear()
            thread = self._thread
            self._wake_in.send_bytes(b"")
        for process in running.values():
            if process.is_alive():
                process.terminate()
        for process in running.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        if thread is not None:
            thread.join(timeout=5)
        if thread is None or not thread.is_alive():
            self._wake_out.close()
            self._wake_in.close()
        for job_id in running:
            job = self.store.job(job_id)
            data = job.read() if job else None
            if job and data and data.get("state") == RUNNING:
                data.update(state=FAILED, error=INTERRUPTED_MESSAGE, interrupted=True, progress=None)
                job.write(data)
                shutil.rmtree(job.work_dir, ignore_errors=True)


def _how_it_ended(exitcode: int | None) -> str:
    """'killed by SIGKILL' or 'exit status 1'."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


# ---------------------------------------------------------------------------
# In the worker process


class _ProgressWriter:
    """Progress callback that writes the job's progress to job.json (throttled)."""

    def __init__(self, job: JobFolder, data: dict):
        self.job = job
        self.data = data
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        fraction = None
        if stage in STAGE_SPAN and total:
            a, b = STAGE_SPAN[stage]
            fraction = a + (b - a) * min(done, total) / total
        text = STAGE_TEXT.get(stage, stage[:1].upper() + stage[1:])
        self.set(f"{text} ({done} of {total})", fraction, stage=stage, done=done, total=total,
                 force=done >= total)

    def set(self, message: str, fraction: float | None, *, stage: str = "", done: int = 0, total: int = 0,
            force: bool = True) -> None:
        t = time.monotonic()
        if not force and t - self._last < PROGRESS_INTERVAL:
            return
        self._last = t
        previous = (self.data.get("progress") or {}).get("fraction") or 0.0
        if fraction is not None:
            fraction = max(previous, round(float(fraction), 4))
        self.data["progress"] = {"stage": stage, "done": done, "total": total, "fraction": fraction,
                                 "message": message}
        self.job.write(self.data)


def run_job(folder: str) -> str:
    """Process one job folder (runs in a worker process). Returns the final state."""
    # Quiet numerical libraries: they share the machine with the other workers.
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    job = JobFolder(Path(folder))
    data = job.read()
    if data is None or data.get("state") != QUEUED:
        return data.get("state", "missing") if data else "missing"
    data.update(state=RUNNING, started=now(), error=None, attempts=int(data.get("attempts", 0)) + 1,
                progress={"stage": "", "done": 0, "total": 0, "fraction": 0.0, "message": "Starting"})
    job.write(data)
    progress = _ProgressWriter(job, data)
    try:
        result = _process(job, data, progress)
    except Exception as exc:  # every failure stays with this job
        from postfocus.errors import OutputError, PostfocusError
        from postfocus.store.cache import CacheError
        from postfocus.web.heal import scrub
        from postfocus.web.upload import humanize

        if isinstance(exc, (OutputError, CacheError)):  # the server's own files: a full disk, a data folder it
            message = (f"The server could not write this job's files ({scrub(str(exc), job)}); "  # cannot write
                       "free some disk space on the server, then press Retry.")  # (the message named the path)
        elif isinstance(exc, PostfocusError):
            message = scrub(humanize(str(exc), job, data.get("inputs", [])), job)
        elif isinstance(exc, MemoryError):
            message = "Ran out of memory while processing; try fewer or smaller photos."
        else:
            said = scrub(humanize(str(exc), job, data.get("inputs", [])), job)  # (an OSError names the job's path)
            message = f"Internal error: {type(exc).__name__}: {said}"
            try:
                job.log_path.write_text(traceback.format_exc())
            except OSError:
                pass
        shutil.rmtree(job.work_dir, ignore_errors=True)
        data.update(state=FAILED, error=message, progress=None, finished=now())
        job.write(data)
        return FAILED
    data.update(state=DONE, result=result, progress=None, finished=now(), interrupted=False)
    job.write(data)
    return DONE


def _process(job: JobFolder, data: dict, progress: _ProgressWriter) -> dict:
    import warnings

    import numpy as np

    from postfocus.products.depth import write_depth_npy, write_depth_png
    from postfocus.products.depth_cache import stack_depth
    from postfocus.errors import PostfocusWarning
    from postfocus.options import DEFAULT_METHOD
    from postfocus.result import save_image
    from postfocus.pipeline.run import process
    from postfocus.web.order import depth_order
    from postfocus.web.outputs import record_all
    from postfocus.web.upload import humanize

    inputs = job.input_paths(data)
    files = data.get("inputs", [])
    edits, kept_edits = job.stack_dir / "edits", job.folder / "edits.kept"
    if edits.is_dir() and not kept_edits.exists():  # a stack made again (web/heal.py) keeps its retouching
        os.replace(edits, kept_edits)
    for folder in (job.work_dir, job.stack_dir, job.out_dir):
        shutil.rmtree(folder, ignore_errors=True)
    job.work_dir.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        ps = process([str(p) for p in inputs], cache_dir=job.work_dir, progress=progress)
    os.replace(ps.folder, job.stack_dir)
    if kept_edits.is_dir():  # checked against the new stack when read (postfocus.products.edits.load_edits)
        os.replace(kept_edits, edits)
    shutil.rmtree(job.work_dir, ignore_errors=True)
    ps = ProcessedStack.open(job.stack_dir)

    progress.set("Saving the all-in-focus picture", 0.95)
    job.out_dir.mkdir(exist_ok=True)
    image = ps.all_in_focus(DEFAULT_METHOD)
    save_image(job.out("all_in_focus.jpg"), image, ps.info, quality=95)
    save_image(job.out("thumb.jpg"), thumbnail(image), ps.info, quality=85)

    progress.set("Making the depth map", 0.96)
    depth = stack_depth(ps, image=image)
    np.save(job.out("depth_confidence.npy"), depth.confidence.astype(np.float16))
    write_depth_npy(job.out("depth.npy"), depth)  # last, atomically: its presence says both are complete
    write_depth_png(job.out("depth.png"), depth)

    progress.set("Preparing the viewer", 0.97)
    write_viewer_data(job, ps, data.get("title") or None, files)
    record_all(job)  # what each served file of out/ holds (web/outputs.py: a damaged one is made again)

    messages = list(data.get("upload_warnings", [])) + list(ps.manifest.get("warnings", []))
    messages += [str(w.message) for w in caught if issubclass(w.category, PostfocusWarning)]
    seen: list[str] = []
    for m in messages:
        m = humanize(m, job, files)
        if m not in seen:
            seen.append(m)
    return {
        "width": ps.size[1],
        "height": ps.size[0],
        "frames": len(ps.names),
        "used": list(ps.used),
        "dropped": ps.manifest.get("dropped", []),
        "kind": ps.manifest.get("kind"),
        "near_to_far": ps.near_to_far,
        "order": depth_order(ps, frame_names(ps, job, files)),  # (said on the page, as the command line says it)
        "warnings": seen,
    }


def thumbnail(image: np.ndarray) -> np.ndarray:
    """``image`` (an array) made smaller to :data:`THUMB_EDGE` pixels on its long edge (never larger)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, THUMB_EDGE / max(h, w))
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def frame_names(ps: ProcessedStack, job: JobFolder, files: list[dict]) -> list[str]:
    """Names of the stack's frames as people uploaded them (for a video: 'name, frame k')."""
    from postfocus.web.upload import humanize

    return [humanize(name, job, files) for name in ps.names]


def viewer_payload(job: JobFolder, ps: ProcessedStack, title: str | None, files: list[dict], src, *,  # noqa: ANN001
                   threads: int | None = None) -> dict:
    """``postfocus.viewer.export.viewer_data`` with the uploaded names in place of the stored ones."""
    from postfocus.viewer.export import viewer_data
    from postfocus.web.order import depth_order

    payload = viewer_data(ps, src=src, title=title, threads=threads)
    names = dict(zip(ps.names, frame_names(ps, job, files)))
    for frame in payload.get("frames", []):
        if frame.get("name") in names:
            frame["name"] = names[frame["name"]]
    if "names" in payload:
        payload["names"] = [names.get(n, n) for n in payload["names"]]
    if "order" in payload:  # (said with the uploaded names, as the job's result says it)
        payload["order"] = depth_order(ps, frame_names(ps, job, files))
    return payload


VIEWER_NAME_RE = r"[a-z0-9_]{1,40}\.(?:jpg|png|webp)"


def write_viewer_data(job: JobFolder, ps: ProcessedStack, title: str | None, files: list[dict], *,
                      threads: int | None = None) -> None:
    """Viewer pictures as files in ``out/viewer/`` and the data object with their URLs."""
    import re

    folder = job.out_dir / "viewer"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)

    def src(name: str, payload: bytes, mime: str) -> str:  # noqa: ARG001
        if not re.fullmatch(VIEWER_NAME_RE, name):
            raise ValueError(f"unexpected viewer picture name {name!r}")
        (folder / name).write_bytes(payload)
        return f"/api/jobs/{job.id}/viewer/{name}"

    payload = viewer_payload(job, ps, title, files, src, threads=threads)
    atomic_write_json(folder / "data.json", payload)
