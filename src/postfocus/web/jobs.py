"""Background jobs: process uploaded stacks in a few worker processes.

:class:`JobQueue` hands job folders to a ``ProcessPoolExecutor`` with a bounded
number of workers (``spawn`` start method, so workers never inherit the
server's threads or sockets). Many uploads may wait; ``workers`` of them run at
once. The worker (:func:`run_job`) owns the job's ``job.json`` while it runs:
it writes state ``running``, progress as it goes, then ``done`` with the
result or ``failed`` with a message for people. An exception in one job fails
that job only. If a worker process dies outright (killed, out of memory), the
jobs it was running are marked failed and the pool is started again; jobs
still waiting are queued again.

On shutdown, waiting jobs stay ``queued`` in their folders (the next server
start queues them again) and running ones are stopped and marked interrupted.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import threading
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from postfocus.io.write import atomic_write_json
from postfocus.store import ProcessedStack
from postfocus.web.store import (
    DONE,
    FAILED,
    INTERRUPTED_MESSAGE,
    QUEUED,
    RUNNING,
    JobFolder,
    Store,
    now,
)

__all__ = ["VIEWER_NAME_RE", "JobQueue", "frame_names", "run_job", "viewer_payload", "write_viewer_data"]

log = logging.getLogger("postfocus.web")

STAGE_TEXT = {
    "align and measure": "Aligning and measuring the photos",
    "fuse": "Merging the sharp parts",
}
# Share of the whole job that each known stage takes (rough, for one progress bar).
STAGE_SPAN = {"align and measure": (0.0, 0.5), "fuse": (0.5, 0.95)}
THUMB_EDGE = 360
PROGRESS_INTERVAL = 0.2  # seconds between progress writes
MAX_REQUEUES = 3


class JobQueue:
    """A bounded pool of worker processes fed with job ids."""

    def __init__(self, store: Store, workers: int = 2):
        self.store = store
        self.workers = max(1, int(workers))
        self._lock = threading.RLock()
        self._executor: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future] = {}
        self._requeued: dict[str, int] = {}  # job id -> times queued again after a broken pool
        self._closed = False

    # Pool -----------------------------------------------------------------
    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
                )
            return self._executor

    def start(self) -> list[str]:
        """Recover the data folder after the last server and queue waiting jobs again."""
        requeued = self.store.recover()
        for job_id in requeued:
            self.submit(job_id)
        return requeued

    def submit(self, job_id: str) -> None:
        """Queue a job whose ``job.json`` already says ``queued``."""
        job = self.store.job(job_id)
        if job is None:
            return
        with self._lock:
            if self._closed:
                return
            try:
                future = self._pool().submit(run_job, str(job.folder))
            except BrokenProcessPool:
                self._executor = None
                future = self._pool().submit(run_job, str(job.folder))
            self._futures[job_id] = future
        future.add_done_callback(lambda f, job_id=job_id: self._finished(job_id, f))

    def _finished(self, job_id: str, future: Future) -> None:
        with self._lock:
            if self._futures.get(job_id) is future:
                del self._futures[job_id]
            closed = self._closed
        if future.cancelled() or closed:
            return
        exc = future.exception()
        if exc is None:
            return
        job = self.store.job(job_id)
        if job is None:
            return
        data = job.read() or {}
        if isinstance(exc, BrokenProcessPool):
            with self._lock:
                if self._executor is not None and getattr(self._executor, "_broken", False):
                    self._executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = None
            if data.get("state") == QUEUED:
                # It never started: try again in a fresh pool, but not forever (workers that
                # cannot even start would break every new pool).
                self._requeued[job_id] = self._requeued.get(job_id, 0) + 1
                if self._requeued[job_id] <= MAX_REQUEUES:
                    self.submit(job_id)
                    return
                message = "No worker process could be started to process this job; see the server's log."
            else:
                message = ("The worker process stopped unexpectedly (perhaps it ran out of memory). "
                           "Try again, or with fewer or smaller photos.")
        else:
            message = f"Internal error: {type(exc).__name__}: {exc}"
        log.error("job %s failed: %s", job_id, message)
        data.update(state=FAILED, error=message, progress=None, finished=now())
        job.write(data)

    def active(self) -> list[str]:
        with self._lock:
            return list(self._futures)

    def shutdown(self) -> None:
        """Stop the pool: waiting jobs stay queued on disk, running ones are marked interrupted."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            futures = dict(self._futures)
        if executor is None:
            return
        for future in futures.values():
            future.cancel()
        processes = list(getattr(executor, "_processes", {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        executor.shutdown(wait=False, cancel_futures=True)
        for job_id in futures:
            job = self.store.job(job_id)
            data = job.read() if job else None
            if job and data and data.get("state") == RUNNING:
                data.update(state=FAILED, error=INTERRUPTED_MESSAGE, interrupted=True, progress=None)
                job.write(data)
                shutil.rmtree(job.work_dir, ignore_errors=True)


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
        from postfocus.errors import PostfocusError
        from postfocus.web.upload import humanize

        if isinstance(exc, PostfocusError):
            message = humanize(str(exc), job, data.get("inputs", []))
        elif isinstance(exc, MemoryError):
            message = "Ran out of memory while processing; try fewer or smaller photos."
        else:
            message = f"Internal error: {type(exc).__name__}: {humanize(str(exc), job, data.get('inputs', []))}"
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

    import cv2
    import numpy as np

    from postfocus.products.depth import depth_map, write_depth_png
    from postfocus.errors import PostfocusWarning
    from postfocus.options import DEFAULT_METHOD
    from postfocus.result import save_image
    from postfocus.pipeline.run import process
    from postfocus.web.upload import humanize

    inputs = job.input_paths(data)
    files = data.get("inputs", [])
    for folder in (job.work_dir, job.stack_dir, job.out_dir):
        shutil.rmtree(folder, ignore_errors=True)
    job.work_dir.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        ps = process([str(p) for p in inputs], cache_dir=job.work_dir, progress=progress)
    os.replace(ps.folder, job.stack_dir)
    shutil.rmtree(job.work_dir, ignore_errors=True)
    ps = ProcessedStack.open(job.stack_dir)

    progress.set("Saving the all-in-focus picture", 0.95)
    job.out_dir.mkdir(exist_ok=True)
    image = ps.all_in_focus(DEFAULT_METHOD)
    save_image(job.out("all_in_focus.jpg"), image, ps.info, quality=95)
    h, w = image.shape[:2]
    scale = min(1.0, THUMB_EDGE / max(h, w))
    thumb = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    save_image(job.out("thumb.jpg"), thumb, ps.info, quality=85)

    progress.set("Making the depth map", 0.96)
    depth = depth_map(ps)
    np.save(job.out("depth.npy"), depth.depth.astype(np.float32))
    np.save(job.out("depth_confidence.npy"), depth.confidence.astype(np.float16))
    write_depth_png(job.out("depth.png"), depth)

    progress.set("Preparing the viewer", 0.97)
    write_viewer_data(job, ps, data.get("title") or None, files)

    messages = list(ps.manifest.get("warnings", []))
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
        "warnings": seen,
    }


def frame_names(ps: ProcessedStack, job: JobFolder, files: list[dict]) -> list[str]:
    """Names of the stack's frames as people uploaded them (for a video: 'name, frame k')."""
    from postfocus.web.upload import humanize

    return [humanize(name, job, files) for name in ps.names]


def viewer_payload(job: JobFolder, ps: ProcessedStack, title: str | None, files: list[dict], src) -> dict:  # noqa: ANN001
    """``postfocus.viewer.export.viewer_data`` with the uploaded names in place of the stored ones."""
    from postfocus.viewer.export import viewer_data

    payload = viewer_data(ps, src=src, title=title)
    names = dict(zip(ps.names, frame_names(ps, job, files)))
    for frame in payload.get("frames", []):
        if frame.get("name") in names:
            frame["name"] = names[frame["name"]]
    if "names" in payload:
        payload["names"] = [names.get(n, n) for n in payload["names"]]
    return payload


VIEWER_NAME_RE = r"[a-z0-9_]{1,40}\.(?:jpg|png|webp)"


def write_viewer_data(job: JobFolder, ps: ProcessedStack, title: str | None, files: list[dict]) -> None:
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

    payload = viewer_payload(job, ps, title, files, src)
    atomic_write_json(folder / "data.json", payload)
