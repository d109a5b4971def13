"""Where the web app keeps its jobs: one folder per job inside the data folder.

Layout::

    DATA/
      server.lock             held (flock, :class:`Lock`) while a server uses this folder
      jobs/<uuid>/
        job.json              state, progress, inputs, result, error
        in/000.jpg ...        uploaded files under generated names
        stack/                the processed stack (see postfocus.store)
        out/                  results made on request (JPEG, page, depth ...)
        error.log             traceback of an internal error, if any

Nothing is ever named after what a user sent: job ids are random UUIDs that are
checked against :data:`JOB_ID_RE` before any path is built from them, input
files are numbered, and every output name is made here from validated numbers.
Every path handed out is checked to lie inside the data folder.

``job.json`` is replaced atomically (:func:`postfocus.io.write.atomic_write`:
write a temporary file, then rename), so a reader never sees half of it. While a job runs, the worker process owns it;
otherwise the server does.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

from postfocus.errors import OutputError
from postfocus.io.lock import FileLock
from postfocus.io.write import atomic_write_json

__all__ = [
    "DONE",
    "FAILED",
    "FINISHED",
    "INTERRUPTED_MESSAGE",
    "JOB_ID_RE",
    "QUEUED",
    "RUNNING",
    "STATES",
    "UPLOADING",
    "JobFolder",
    "Lock",
    "Store",
    "display_name",
    "now",
    "read_json",
    "valid_job_id",
]

JOB_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# Job states. ``uploading`` is internal: the upload is still arriving.
UPLOADING, QUEUED, RUNNING, DONE, FAILED = "uploading", "queued", "running", "done", "failed"
STATES = (UPLOADING, QUEUED, RUNNING, DONE, FAILED)
FINISHED = (DONE, FAILED)

INTERRUPTED_MESSAGE = (
    "Interrupted: the server stopped while this job was being processed. Press Retry to process it again."
)


def now() -> str:
    """The current UTC time, ISO 8601 to the second.

    Returns
    -------
    str
        E.g. ``2024-05-01T10:00:00+00:00``.
    """
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def valid_job_id(job_id: str) -> bool:
    """True for a random (version 4) UUID in canonical lower-case form.

    Parameters
    ----------
    job_id : str
        What a request named.

    Returns
    -------
    bool

    Examples
    --------
    >>> valid_job_id("../etc"), valid_job_id("0f8fad5b-d9cb-469f-a165-70867728950e")
    (False, True)
    """
    return isinstance(job_id, str) and bool(JOB_ID_RE.fullmatch(job_id))


def display_name(name: str | None, fallback: str) -> str:
    """A file name fit to show (never used for a path): last component, printable, short.

    Parameters
    ----------
    name : str or None
        The name a browser sent.
    fallback : str
        Shown when nothing of ``name`` is left.

    Returns
    -------
    str
        At most 120 characters.

    Examples
    --------
    >>> display_name("C:/photos/a.jpg", "file 1"), display_name("..", "file 1")
    ('a.jpg', 'file 1')
    """
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name or name in (".", ".."):
        return fallback
    return name[:120]


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable.

    Parameters
    ----------
    path : Path
        A JSON file.

    Returns
    -------
    dict or None
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


class JobFolder:
    """One job's folder. Paths inside it are made only from fixed names and numbers."""

    def __init__(self, folder: Path):
        self.folder = folder

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def json_path(self) -> Path:
        return self.folder / "job.json"

    @property
    def inputs_dir(self) -> Path:
        return self.folder / "in"

    @property
    def stack_dir(self) -> Path:
        return self.folder / "stack"

    @property
    def work_dir(self) -> Path:
        return self.folder / "work"

    @property
    def out_dir(self) -> Path:
        return self.folder / "out"

    @property
    def log_path(self) -> Path:
        return self.folder / "error.log"

    def read(self) -> dict | None:
        """``job.json``, or None when it cannot be read."""
        return read_json(self.json_path)

    def write(self, data: dict) -> dict:
        """Replace ``job.json`` with ``data`` (stamped ``updated``), atomically; returns ``data``."""
        data["updated"] = now()
        atomic_write_json(self.json_path, data)
        return data

    def update(self, **changes: Any) -> dict:
        """Apply ``changes`` to ``job.json``; returns the new content."""
        data = self.read() or {}
        data.update(changes)
        return self.write(data)

    def input_path(self, index: int, suffix: str) -> Path:
        """Where uploaded file ``index`` is stored (``in/000.jpg`` ...)."""
        return self.inputs_dir / f"{int(index):03d}{suffix}"

    def input_paths(self, data: dict | None = None) -> list[Path]:
        """Stored inputs in stacking order."""
        data = data or self.read() or {}
        return [self.folder / item["file"] for item in data.get("inputs", [])]

    def out(self, name: str) -> Path:
        """Path of an output file; ``name`` must be a plain generated name."""
        if not re.fullmatch(r"[a-z0-9_.-]+", name) or ".." in name:
            raise ValueError(f"bad output name {name!r}")
        self.out_dir.mkdir(exist_ok=True)
        return self.out_dir / name


class Store:
    """The data folder: creates, finds, lists and recovers jobs."""

    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir).expanduser().resolve()
        self.jobs_dir = self.root / "jobs"
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # ("jobs" a file: an internal FileExistsError in `serve`; review20)
            raise OutputError(f"{self.jobs_dir}: cannot keep jobs there ({exc.strerror or exc})") from None

    # Paths --------------------------------------------------------------
    def inside(self, path: Path) -> bool:
        """True when ``path`` (resolved) lies inside the data folder."""
        try:
            Path(path).resolve().relative_to(self.root)
            return True
        except ValueError:
            return False

    def job(self, job_id: str) -> JobFolder | None:
        """The job with this id, or None for a malformed id or a job that does not exist."""
        if not valid_job_id(job_id):
            return None
        folder = self.jobs_dir / job_id
        if not folder.is_dir() or folder.is_symlink() or not (folder / "job.json").is_file():
            return None
        return JobFolder(folder)

    # Life cycle ---------------------------------------------------------
    def create(self) -> JobFolder:
        """A new job folder in state ``uploading``."""
        job_id = str(uuid.uuid4())
        folder = self.jobs_dir / job_id
        folder.mkdir()
        job = JobFolder(folder)
        try:
            (folder / "in").mkdir()
            job.write({
                "id": job_id,
                "state": UPLOADING,
                "created": now(),
                "title": "",
                "inputs": [],
                "progress": None,
                "error": None,
                "result": None,
                "attempts": 0,
            })
        except BaseException:  # (a full disk left the folder, with no job.json: web23)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return job

    def delete(self, job: JobFolder) -> None:
        if self.inside(job.folder) and job.folder.parent == self.jobs_dir:
            shutil.rmtree(job.folder, ignore_errors=True)

    def iter_jobs(self) -> Iterator[tuple[JobFolder, dict]]:
        for folder in self.jobs_dir.iterdir():
            if not valid_job_id(folder.name) or not folder.is_dir() or folder.is_symlink():
                continue
            data = read_json(folder / "job.json")
            if data is None:
                continue
            yield JobFolder(folder), data

    def list(self) -> list[dict]:
        """Every job (except unfinished uploads), newest first."""
        jobs = [data for _, data in self.iter_jobs() if data.get("state") != UPLOADING]
        return sorted(jobs, key=lambda d: d.get("created", ""), reverse=True)

    def recover(self) -> list[str]:
        """Tidy up after a server that stopped: returns ids of jobs still queued.

        Unfinished uploads are removed (their request never got an answer);
        jobs that were running are marked failed (interrupted); queued jobs are
        returned so that they can be queued again.
        """
        queued = []
        for stale in self.jobs_dir.glob("*/.job.*.json.part"):  # a job.json write cut short
            stale.unlink(missing_ok=True)
        for job, data in list(self.iter_jobs()):
            state = data.get("state")
            if state == UPLOADING:
                self.delete(job)
            elif state == RUNNING:
                data.update(state=FAILED, error=INTERRUPTED_MESSAGE, interrupted=True, progress=None)
                job.write(data)
                shutil.rmtree(job.work_dir, ignore_errors=True)
            elif state == QUEUED:
                queued.append((data.get("created", ""), job.id))
        return [job_id for _, job_id in sorted(queued)]


class Lock(FileLock):
    """An advisory lock on the data folder, so that two servers never share it."""

    def __init__(self, path: Path):
        super().__init__(
            path,
            held="another postfocus server is using this data folder; stop it first or choose another --data-dir",
        )
