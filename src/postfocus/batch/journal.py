"""The results journal of a batch: what happened to each stack, kept on disk.

The process that runs a batch records each outcome as a :class:`StackRecord`
in ``results.jsonl`` the moment it arrives (appended, flushed, fsync'ed), so
an interrupted run loses no finished work. At the start and end of a run the
journal is compacted to one line per stack and mirrored to ``results.csv``.
A lock file keeps a second batch out of the folder meanwhile.
:class:`BatchSummary` counts what one run did.

Examples
--------
>>> log = ResultsLog("stacked").open()  # doctest: +SKIP
>>> log.append(StackRecord("/data/a", "/data/stacked/a.jpg", "ok", 4, 4, 1.2))  # doctest: +SKIP
>>> log.close()  # doctest: +SKIP
>>> read_results("stacked")["/data/stacked/a.jpg"].status  # doctest: +SKIP
'ok'
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Protocol

from postfocus.errors import OutputError
from postfocus.io.lock import FileLock
from postfocus.io.regular import open_regular
from postfocus.io.write import atomic_write

__all__ = [
    "CSV_FIELDS",
    "LOCK_NAME",
    "RESULTS_CSV",
    "RESULTS_JSONL",
    "STATUSES",
    "BatchSummary",
    "ResultsLog",
    "StackRecord",
    "now",
    "read_results",
]

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
LOCK_NAME = ".postfocus-batch.lock"
STATUSES = ("ok", "failed", "skipped")
CSV_FIELDS = (
    "input", "output", "status", "frames_used", "frames_total", "seconds", "warnings", "error",
    "options", "worker", "finished",
)


def now() -> str:
    """The time a record is finished: UTC, ISO 8601 to the second.

    Returns
    -------
    str
        e.g. ``'2026-11-25T18:02:11+00:00'``.
    """
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Job(Protocol):
    """What :meth:`StackRecord.done_for` needs of a job (a :class:`~postfocus.batch.task.StackJob`)."""

    input: str

    def options_dict(self) -> dict[str, Any]: ...


@dataclass
class StackRecord:
    """The outcome of one stack: one line of ``results.jsonl``.

    ``status`` is ``ok`` (output written), ``failed`` (``error`` says why) or
    ``skipped`` (a valid output from an earlier run was kept; the other fields
    are those of the run that made it).

    Attributes
    ----------
    input : str
        Absolute path of the stack (folder or video).
    output : str
        Absolute path of the result image.
    status : str
        One of :data:`STATUSES`.
    frames_used, frames_total : int or None
        Frames merged, and frames in the stack (None when it failed).
    seconds : float
        Time the worker spent on the stack.
    warnings : list of str
        What was adjusted or left out.
    error : str or None
        Why the stack failed, in one line.
    options : dict
        The stacking options the stack was run with.
    worker : str or None
        Address of the Dask worker that ran it.
    finished : str
        When it finished (see :func:`now`).

    Examples
    --------
    >>> rec = StackRecord("/data/NHM-0001", "/data/out/NHM-0001.jpg", "ok", frames_used=24, frames_total=25)
    >>> StackRecord.from_dict(rec.to_dict()) == rec
    True
    """

    input: str
    output: str
    status: str
    frames_used: int | None = None
    frames_total: int | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    finished: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (one journal line)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StackRecord":
        """A record from a journal line; unknown keys are ignored."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def done_for(self, job: _Job) -> bool:
        """True when this record says ``job`` was made with the same input and options.

        Parameters
        ----------
        job : StackJob
            The stack as this run would make it.

        Returns
        -------
        bool
        """
        return (
            self.status in ("ok", "skipped")
            and self.input == job.input
            and self.options == job.options_dict()
        )


@dataclass
class BatchSummary:
    """What one batch run did. Counts are for this run only.

    Attributes
    ----------
    records : list of StackRecord
        Every outcome of this run, skipped ones first.
    ok, failed, skipped : int
        Stacks made, failed and kept from an earlier run.
    not_run : int
        Stacks left alone by ``retry_failed`` (no earlier failure).
    seconds : float
        Wall time of the run.
    interrupted : bool
        The run was stopped (Ctrl-C, SIGTERM) before it finished.

    Examples
    --------
    >>> BatchSummary(records=[], ok=11, failed=1, seconds=41.2).line()
    '12 stacks: 11 ok, 1 failed, 0 skipped in 41.2 s (17.5 stacks/min)'
    >>> BatchSummary(records=[], ok=1, seconds=2.0).line()
    '1 stack: 1 ok, 0 failed, 0 skipped in 2.0 s (30.0 stacks/min)'
    """

    records: list[StackRecord]
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    not_run: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def total(self) -> int:
        """Stacks with an outcome in this run (ok, failed or skipped)."""
        return self.ok + self.failed + self.skipped

    @property
    def stacks_per_minute(self) -> float:
        """Stacks run (ok or failed) per minute of wall time."""
        done = self.ok + self.failed
        return 60.0 * done / self.seconds if self.seconds > 0 and done else 0.0

    def add(self, record: StackRecord) -> None:
        """Count one outcome of this run and keep it in :attr:`records`."""
        self.records.append(record)
        if record.status == "ok":
            self.ok += 1
        elif record.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1

    def line(self) -> str:
        """One-line summary, e.g. ``12 stacks: 11 ok, 1 failed, 0 skipped in 41.2 s (17.5 stacks/min)``."""
        text = (
            f"{self.total} stack{'' if self.total == 1 else 's'}: {self.ok} ok, {self.failed} failed, "
            f"{self.skipped} skipped in {self.seconds:.1f} s"
        )
        if self.ok + self.failed:
            text += f" ({self.stacks_per_minute:.1f} stacks/min)"
        if self.not_run:
            text += f"; {self.not_run} not run (no earlier failure)"
        if self.interrupted:
            text += "; interrupted"
        return text


def read_results(out_dir: str | os.PathLike) -> dict[str, StackRecord]:
    """Latest record per output from ``out_dir/results.jsonl`` (later lines win).

    A line cut short by a crash, or damaged (not UTF-8, not a record), is ignored.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The batch's results folder.

    Returns
    -------
    dict of str to StackRecord
        Keyed by output path, in the order the outcomes arrived; empty when
        there is no journal yet.

    Raises
    ------
    OutputError
        When the journal exists but cannot be read.

    Examples
    --------
    >>> records = read_results("stacked")  # doctest: +SKIP
    >>> sorted({r.status for r in records.values()})  # doctest: +SKIP
    ['failed', 'ok']
    """
    path = Path(out_dir) / RESULTS_JSONL
    records: dict[str, StackRecord] = {}
    try:  # (without waiting: a FIFO there blocked the batch for good; /dev/zero was read until memory ran out)
        fh = open_regular(path)
    except FileNotFoundError:
        return records
    except OSError as exc:
        raise OutputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if fh is None:
        raise OutputError(f"{path}: is not a file; move it away (it is the batch's journal)")
    with fh:
        try:
            for line in _lines(fh):
                rec = _record(line)
                if rec is not None:
                    records.pop(rec.output, None)  # keep the order in which outcomes arrived
                    records[rec.output] = rec
        except OSError as exc:
            raise OutputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return records


MAX_LINE = 4 * 1024 * 1024
"""Longest journal line read (bytes); a record is a few hundred. A longer one is left out, read a block at a time."""

_FIELDS = {"input": (str,), "output": (str,), "frames_used": (int, type(None)), "frames_total": (int, type(None)),
           "seconds": (int, float), "error": (str, type(None)), "options": (dict,), "worker": (str, type(None)),
           "finished": (str,)}


def _lines(fh: io.BufferedReader) -> Iterator[bytes]:
    """The lines of ``fh``, each at most :data:`MAX_LINE` bytes; longer ones are skipped (never held whole)."""
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) <= MAX_LINE:
            yield line
            continue
        while line and not line.endswith(b"\n"):  # the rest of a line too long to be a record
            line = fh.readline(MAX_LINE)


def _record(line: bytes) -> StackRecord | None:
    """The record of a journal line; None for a line cut short or damaged (not UTF-8, too deep, not a record, or
    a field of another type: an output that was a list was "unhashable type" and warnings that were a number
    "can only join an iterable", internal errors in every later run of the batch)."""
    try:
        data = json.loads(line)  # (bytes: a line that is not UTF-8 is a ValueError, left out like a cut one)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not data.get("output") or "input" not in data or data.get("status") not in STATUSES:
        return None
    for name, types in _FIELDS.items():  # (a field left out takes the record's default)
        if name in data and (isinstance(data[name], bool) or not isinstance(data[name], types)):
            return None
    warnings = data.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        return None
    return StackRecord.from_dict(data)


class ResultsLog:
    """``results.jsonl`` (appended and flushed per record) and ``results.csv`` of a batch.

    Only one batch may write to a folder at a time; a lock file
    (:data:`LOCK_NAME`) guards it. At :meth:`open` and :meth:`close` the
    journal is compacted to one line per stack (its latest outcome), atomically.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The batch's results folder (must exist).

    Attributes
    ----------
    records : dict of str to StackRecord
        Latest record per output, as the journal will hold it.

    Examples
    --------
    >>> log = ResultsLog("stacked").open()  # doctest: +SKIP
    >>> log.append(StackRecord("/data/a", "/data/stacked/a.jpg", "ok", 4, 4, 1.2))  # doctest: +SKIP
    >>> log.close()  # doctest: +SKIP
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / RESULTS_JSONL
        self.csv_path = self.out_dir / RESULTS_CSV
        self.records: dict[str, StackRecord] = {}
        self._fh: io.TextIOWrapper | None = None
        self._lock = FileLock(
            self.out_dir / LOCK_NAME,
            held="another postfocus batch is writing to this folder; wait for it or use another output folder",
        )

    def open(self) -> "ResultsLog":
        """Lock the folder, clear compactions cut short, and read the journal.

        Returns
        -------
        ResultsLog
            This log.

        Raises
        ------
        LockHeldError
            When another batch writes to the folder.
        """
        self._lock.acquire()
        try:
            for stale in [*self.out_dir.glob(".results.*.jsonl.part"), *self.out_dir.glob(".results.*.csv.part")]:
                stale.unlink(missing_ok=True)  # a compaction cut short by a kill
            self.records = read_results(self.out_dir)
        except BaseException:  # (a journal that cannot be read: the folder is not left locked by this process)
            self._lock.release()
            raise
        return self

    def rewrite(self) -> None:
        """Compact ``results.jsonl`` to one line per stack, atomically, and reopen it for appending."""
        if self._fh:
            self._fh.close()
            self._fh = None
        lines = "".join(json.dumps(r.to_dict()) + "\n" for r in self.records.values())
        atomic_write(self.path, lambda p: p.write_text(lines, encoding="utf-8"))
        self._fh = open(self.path, "a", encoding="utf-8")

    def append(self, record: StackRecord) -> None:
        """Add one outcome: appended, flushed and synced before this returns.

        Parameters
        ----------
        record : StackRecord
            Replaces the output's earlier record.
        """
        if self._fh is None:
            self.rewrite()
        self.records.pop(record.output, None)
        self.records[record.output] = record
        self._fh.write(json.dumps(record.to_dict()) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def write_csv(self) -> None:
        """Write :attr:`records` to ``results.csv`` (atomically), one row per stack."""

        def write(p: Path) -> None:
            with open(p, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
                w.writeheader()
                for r in self.records.values():
                    row = r.to_dict()
                    row["warnings"] = " | ".join(r.warnings)
                    row["options"] = json.dumps(r.options) if r.options else ""
                    row["error"] = r.error or ""
                    w.writerow({k: row.get(k) for k in CSV_FIELDS})

        atomic_write(self.csv_path, write)

    def close(self) -> None:
        """Compact the journal, write ``results.csv`` and release the folder."""
        try:
            if self._lock.locked or self._fh is not None:
                self.rewrite()
                self.write_csv()
        finally:
            if self._fh:
                self._fh.close()
                self._fh = None
            self._lock.release()
