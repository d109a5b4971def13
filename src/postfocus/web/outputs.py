"""The records of a job's derived files: a picture in ``out/`` cut short or replaced is made again, not served.

The worker and the app write a job's pictures (thumbnail, all-in-focus JPEG,
viewer pictures, previews, the page) into its ``out/`` folder once and serve
them from there on every later request. Each is recorded in
``out/records.json`` when written: its size and CRC-32, as a stack folder's
manifest records its files (:func:`postfocus.store.records.file_record`).
:meth:`OutRecords.intact` checks a file before it is served: one ``stat``,
and its CRC-32 read once for each status the file has in the process (a
served thumbnail is read once, not on every request; a file overwritten in
place, even at the same size, has another status and is read again). A file
without a record (made before records were kept, or its record lost) is not
trusted either: it is made again, once.

The depth maps (``*.npy``) are not recorded: :func:`postfocus.web.ops._kept_depth`
checks them as it reads them.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Iterable

from postfocus.web.store import JobFolder

__all__ = ["RECORDED", "RECORDS", "OutRecords", "record_all"]

#: The records' file in a job's ``out/`` folder.
RECORDS = "records.json"
#: Suffixes of the files recorded: the ones served as they are.
RECORDED = (".jpg", ".png", ".webp", ".html", ".json")


class OutRecords:
    """The records of the jobs' ``out/`` files, for one process (the app: threads share it).

    Examples
    --------
    >>> import tempfile
    >>> job = JobFolder(Path(tempfile.mkdtemp()))
    >>> job.out_dir.mkdir()
    >>> _ = job.out("thumb.jpg").write_bytes(b"a picture")
    >>> records = OutRecords()
    >>> records.intact(job, job.out("thumb.jpg"))  # not recorded: made again
    False
    >>> records.record(job, [job.out("thumb.jpg")])
    >>> records.intact(job, job.out("thumb.jpg"))
    True
    >>> _ = job.out("thumb.jpg").write_bytes(b"a pictur")  # cut short
    >>> records.intact(job, job.out("thumb.jpg")), records.known(job, job.out("thumb.jpg"))
    (False, True)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one writer of a records file at a time
        self._matched: dict[Path, tuple[int, int, int, int]] = {}  # file -> the status whose CRC-32 matched

    def intact(self, job: JobFolder, path: Path) -> bool:
        """Whether ``path`` (in ``job``'s ``out/``) is as it was recorded: False when missing, not recorded,
        of another size, or of another CRC-32 since its status changed (the store's check,
        :func:`postfocus.store.records.mismatch`, with every status time counted as new)."""
        from postfocus.store.records import mismatch

        record = _read(job).get(_name(job, path))
        if not isinstance(record, list) or len(record) != 2:
            return False
        try:
            return mismatch(path, record, 0, crc=True, seen=self._matched) is None
        except OSError:  # (gone or unreadable between its stat and its read)
            return False

    def known(self, job: JobFolder, path: Path) -> bool:
        """Whether ``path`` was recorded (made by the worker or the app, whatever it holds now)."""
        return _name(job, path) in _read(job)

    def record(self, job: JobFolder, paths: Iterable[Path], *, drop: Iterable[Path] = ()) -> None:
        """Record the files ``paths`` as they are now (just written) and forget the files ``drop`` (removed)."""
        drop = list(drop)
        with self._lock:
            _write(job, paths, drop=drop)
            for path in drop:
                self._matched.pop(path, None)


def record_all(job: JobFolder) -> None:
    """Record every served file of ``job``'s ``out/`` folder (the worker, once it has made them all)."""
    _write(job, [p for p in job.out_dir.rglob("*") if p.is_file() and p.suffix.lower() in RECORDED
                and p.name != RECORDS])


def _write(job: JobFolder, paths: Iterable[Path], *, drop: Iterable[Path] = ()) -> None:
    """Add ``paths`` to the records of ``job`` (``[size, crc32]`` of each), remove ``drop``; atomically."""
    from postfocus.io.write import atomic_write_json
    from postfocus.store.records import file_record

    records = _read(job)
    for path in drop:
        records.pop(_name(job, path), None)
    for path in paths:
        records[_name(job, path)] = file_record(Path(path).read_bytes())
    target = job.out(RECORDS)
    if target.is_dir() and not target.is_symlink():  # (a folder in its place was a 507 on every request, for good)
        shutil.rmtree(target, ignore_errors=True)
    atomic_write_json(target, {"files": dict(sorted(records.items()))})


def _read(job: JobFolder) -> dict:
    """The records of ``job`` (none when the file is missing or damaged: every file is then made again)."""
    try:
        files = json.loads(job.out(RECORDS).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError, RecursionError):  # (nested too deep: a 500 on every picture, for good)
        return {}
    return files if isinstance(files, dict) else {}


def _name(job: JobFolder, path: Path) -> str:
    """``path`` as the records name it: relative to the ``out/`` folder (``viewer/frame_0003.jpg``)."""
    return Path(path).relative_to(job.out_dir).as_posix()
