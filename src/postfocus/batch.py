"""Stack thousands of focus stacks as tasks on a Dask cluster.

Each stack (a folder of frames or a video) is one task on Dask's distributed
scheduler: a :class:`distributed.LocalCluster` on this machine by default, or
an existing cluster started with ``dask scheduler`` and ``dask worker``.
Workers write every result image straight into the output folder (atomically:
temp file, then rename), so the output folder must be the same path on every
machine (shared storage such as NFS). The process that runs the batch records
each outcome in ``results.jsonl`` the moment it arrives, so an interrupted run
loses no finished work, and a rerun skips what is already done.

Resuming
--------
A stack is *done* when its output exists and decodes as an image, and its
latest line in ``results.jsonl`` says ``ok`` (or ``skipped``) for the same
input and options. A rerun skips done stacks and (re)does every other one:
failed, interrupted and never-run stacks. With ``retry_failed=True`` only the
stacks whose latest line says ``failed`` are redone.

Examples
--------
>>> from postfocus.batch import find_stacks, run_batch
>>> jobs = find_stacks(["drawer-17"], "stacked", fmt="jpg")  # doctest: +SKIP
>>> summary = run_batch(jobs, "stacked", workers=2)  # doctest: +SKIP
>>> summary.line()  # doctest: +SKIP
'12 stacks: 11 ok, 1 failed, 0 skipped in 41.2 s (17.5 stacks/min)'
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from postfocus.errors import InputError, OutputError, PostfocusError, PostfocusWarning
from postfocus.io.base import IMAGE_EXTENSIONS, RAW_EXTENSIONS, VIDEO_EXTENSIONS
from postfocus.io.write import atomic_write

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
LOCK_NAME = ".postfocus-batch.lock"
FORMATS = ("jpg", "png", "tif")
STATUSES = ("ok", "failed", "skipped")
STACK_OPTIONS = ("method", "align", "reference", "crop", "range", "quality")
"""Per-stack options: keyword arguments of the batch and columns of a CSV manifest."""
TASK_RETRIES = 2
LOCAL_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask config for local workers. Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its
workers, which also pins glibc's mmap threshold at 128 KiB: every frame-sized
array is then mapped and page-faulted afresh, costing stacking about half as
much CPU time again. Without it, glibc recycles such arrays."""
CSV_FIELDS = (
    "input", "output", "status", "frames_used", "frames_total", "seconds", "warnings", "error",
    "options", "worker", "finished",
)


@dataclass(frozen=True)
class StackJob:
    """One stack to merge: where its frames are, where its result goes, how.

    Attributes
    ----------
    name : short name of the stack (the output file's stem).
    input : absolute path of the stack: a folder of frames or a video file.
    output : absolute path of the result image.
    options : stacking options, a sorted tuple of (name, value) pairs from
        :data:`STACK_OPTIONS`; options left out take the library defaults.

    Examples
    --------
    >>> job = StackJob("NHM-0001", "/data/NHM-0001", "/data/out/NHM-0001.jpg", (("method", "pyramid"),))
    >>> job.key  # doctest: +SKIP
    'postfocus-stack-NHM-0001-3f9c2a7d1b04'
    >>> job.options_dict()
    {'method': 'pyramid'}
    """

    name: str
    input: str
    output: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """Stable Dask key: the same stack gets the same key in every run."""
        digest = hashlib.sha1(
            json.dumps([self.input, self.output, list(self.options)]).encode()
        ).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)[:60]
        return f"postfocus-stack-{slug}-{digest}"

    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)


@dataclass
class StackRecord:
    """The outcome of one stack: one line of ``results.jsonl``.

    ``status`` is ``ok`` (output written), ``failed`` (``error`` says why) or
    ``skipped`` (a valid output from an earlier run was kept; the other fields
    are those of the run that made it).

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
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StackRecord":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def done_for(self, job: StackJob) -> bool:
        """True when this record says ``job`` was made with the same input and options."""
        return (
            self.status in ("ok", "skipped")
            and self.input == job.input
            and self.options == job.options_dict()
        )


@dataclass
class BatchSummary:
    """What one batch run did. Counts are for this run only.

    Examples
    --------
    >>> BatchSummary(records=[], ok=11, failed=1, seconds=41.2).line()
    '12 stacks: 11 ok, 1 failed, 0 skipped in 41.2 s (17.5 stacks/min)'
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
        return self.ok + self.failed + self.skipped

    @property
    def stacks_per_minute(self) -> float:
        done = self.ok + self.failed
        return 60.0 * done / self.seconds if self.seconds > 0 and done else 0.0

    def line(self) -> str:
        """One-line summary, e.g. ``12 stacks: 11 ok, 1 failed, 0 skipped in 41.2 s (17.5 stacks/min)``."""
        text = (
            f"{self.total} stacks: {self.ok} ok, {self.failed} failed, {self.skipped} skipped "
            f"in {self.seconds:.1f} s"
        )
        if self.ok + self.failed:
            text += f" ({self.stacks_per_minute:.1f} stacks/min)"
        if self.not_run:
            text += f"; {self.not_run} not run (no earlier failure)"
        if self.interrupted:
            text += "; interrupted"
        return text


# --------------------------------------------------------------------------- finding stacks


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_frame(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS | RAW_EXTENSIONS


def _is_video(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS


def _clean_options(options: dict[str, Any] | None, where: str = "") -> tuple[tuple[str, Any], ...]:
    """Validate and normalise stacking options; drop the ones left empty."""
    from postfocus.options import ALIGN_MODELS, METHODS

    out: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if name not in STACK_OPTIONS:
            raise PostfocusError(f"{where}unknown option {name!r}; known: {', '.join(STACK_OPTIONS)}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str):
            value = value.strip()
        if name == "method" and value not in METHODS:
            raise PostfocusError(f"{where}method {value!r}: choose one of {', '.join(METHODS)}")
        if name == "align" and value not in ALIGN_MODELS:
            raise PostfocusError(f"{where}align {value!r}: choose one of {', '.join(ALIGN_MODELS)}")
        if name in ("reference", "quality"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise PostfocusError(f"{where}{name} {value!r}: expected a whole number") from None
            if name == "quality" and not 1 <= value <= 100:
                raise PostfocusError(f"{where}quality {value}: must be from 1 to 100")
        if name == "crop" and not isinstance(value, bool):
            text = str(value).lower()
            if text not in ("true", "false", "yes", "no", "1", "0"):
                raise PostfocusError(f"{where}crop {value!r}: expected true or false")
            value = text in ("true", "yes", "1")
        if name == "range":
            value = str(value)
        out[name] = value
    return tuple(sorted(out.items()))


def _stacks_in_folder(folder: Path, out_dir: Path) -> list[Path]:
    """The stacks a folder holds: itself if it holds frames, else its sub-folders and videos."""
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    if any(_is_frame(p) for p in entries):
        return [folder]
    found = []
    for p in entries:
        if p.name.startswith("."):
            continue
        if p.is_dir():
            if p.resolve() == out_dir.resolve():
                continue  # the output folder may live inside the collection
            found.append(p)
        elif _is_video(p):
            found.append(p)
    return found


def _unique_name(path: Path, used: set[str]) -> str:
    name = path.stem if path.is_file() else path.name
    candidates = [name, f"{path.parent.name}_{name}"] if path.parent.name else [name]
    for c in candidates:
        if c not in used:
            return c
    k = 2
    while f"{candidates[-1]}-{k}" in used:
        k += 1
    return f"{candidates[-1]}-{k}"


def read_stack_manifest(
    path: str | os.PathLike, out_dir: str | os.PathLike, *, fmt: str = "jpg", options: dict[str, Any] | None = None
) -> list[StackJob]:
    """Read a CSV manifest of stacks.

    Columns: ``input`` (a folder of frames or a video; relative paths are taken
    from the CSV's folder), ``output`` (result file; relative paths are taken
    from ``out_dir``; without a suffix ``fmt`` is added; empty means "named
    after the input") and optionally any of :data:`STACK_OPTIONS` per row.
    Empty cells take the values of ``options``.

    Examples
    --------
    A file ``drawer.csv``::

        input,output,method,align
        specimens/NHM-0001,NHM-0001.tif,pyramid,
        specimens/NHM-0002,NHM-0002,,none

    >>> jobs = read_stack_manifest("drawer.csv", "stacked")  # doctest: +SKIP
    >>> jobs[1].output  # doctest: +SKIP
    '/data/stacked/NHM-0002.jpg'
    """
    path = Path(path)
    out_dir = Path(out_dir).absolute()
    base = path.absolute().parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "input" not in columns:
        raise InputError(f"{path}: a manifest needs an 'input' column (and usually 'output'); found {columns}")
    unknown = [c for c in columns if c not in ("input", "output", *STACK_OPTIONS)]
    if unknown:
        raise InputError(
            f"{path}: unknown column(s) {', '.join(unknown)}; known: input, output, {', '.join(STACK_OPTIONS)}"
        )
    jobs: list[StackJob] = []
    seen: dict[str, int] = {}
    for line_no, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        where = f"{path} line {line_no}: "
        if not row.get("input"):
            raise InputError(f"{where}empty input")
        inp = Path(row["input"]).expanduser()
        inp = (inp if inp.is_absolute() else base / inp).absolute()
        out_text = row.get("output") or ""
        out = Path(out_text).expanduser() if out_text else Path(inp.stem if inp.suffix else inp.name)
        if not out.suffix:
            out = out.with_name(out.name + "." + fmt)
        out = (out if out.is_absolute() else out_dir / out).absolute()
        if out.name in (RESULTS_JSONL, RESULTS_CSV):
            raise InputError(f"{where}output {out.name} is reserved for the batch results")
        if str(out) in seen:
            raise InputError(f"{where}output {out} is also the output of line {seen[str(out)]}")
        seen[str(out)] = line_no
        row_options = dict(options or {})
        row_options.update({k: row[k] for k in STACK_OPTIONS if row.get(k)})
        jobs.append(StackJob(out.stem, str(inp), str(out), _clean_options(row_options, where)))
    return jobs


def find_stacks(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    fmt: str = "jpg",
    options: dict[str, Any] | None = None,
) -> list[StackJob]:
    """Turn what the user named into a list of stacks to merge.

    Parameters
    ----------
    inputs : folders, video files or CSV manifests. A folder that directly
        holds image files is one stack; otherwise each of its sub-folders and
        video files is one stack (the output folder is left out if it lies
        inside). A ``.csv`` file is a manifest (see :func:`read_stack_manifest`).
    out_dir : folder for the results; each result is named after its stack.
    fmt : "jpg", "png" or "tif".
    options : stacking options for every stack (see :data:`STACK_OPTIONS`).

    Returns
    -------
    list of StackJob, in a stable order (names resolve the same way every run).

    Raises
    ------
    InputError for a missing input, or when no stack was found at all.

    Examples
    --------
    >>> jobs = find_stacks(["drawer-17", "clips/beetle.mp4"], "out", fmt="png")  # doctest: +SKIP
    >>> [(j.name, Path(j.output).name) for j in jobs]  # doctest: +SKIP
    [('NHM-0001', 'NHM-0001.png'), ('NHM-0002', 'NHM-0002.png'), ('beetle', 'beetle.png')]
    """
    if fmt not in FORMATS:
        raise PostfocusError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out_dir = Path(out_dir).absolute()
    opts = _clean_options(options)
    jobs: list[StackJob] = []
    used: set[str] = set()
    stacks: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            found = _stacks_in_folder(p, out_dir)
            if not found:
                # An empty folder given directly is one (failing) stack, so it shows in the results.
                found = [p]
            stacks.extend(found)
        elif p.suffix.lower() == ".csv":
            for job in read_stack_manifest(p, out_dir, fmt=fmt, options=dict(opts)):
                jobs.append(job)
                used.add(Path(job.output).stem)
        elif _is_video(p) or p.suffix.lower() not in IMAGE_EXTENSIONS | RAW_EXTENSIONS:
            stacks.append(p)
        else:
            raise InputError(f"{p}: is a single image; give the folder that holds the stack's frames")
    outputs = {j.output for j in jobs}
    for p in stacks:
        name = _unique_name(p, used)
        out = str(out_dir / f"{name}.{fmt}")
        if out in outputs:
            continue  # the same stack named twice
        used.add(name)
        outputs.add(out)
        jobs.append(StackJob(name, str(p.absolute()), out, opts))
    if not jobs:
        raise InputError("no stacks found: name folders of stacks, video files or a CSV manifest")
    return jobs


# --------------------------------------------------------------------------- checking outputs


def is_valid_image(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and decodes completely as an image.

    JPEGs are decoded at 1/8 scale (which still reads every byte), so checking
    thousands of results stays fast.

    Examples
    --------
    >>> is_valid_image("stacked/NHM-0001.jpg")  # doctest: +SKIP
    True
    """
    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size == 0:
            return False
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            tifffile.imread(p)
            return True
        from PIL import Image

        with Image.open(p) as im:
            if im.format == "JPEG":
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
            fmt = im.format
        if fmt == "PNG":
            with open(p, "rb") as fh:
                fh.seek(-12, os.SEEK_END)
                if b"IEND" not in fh.read():
                    return False
        return True
    except Exception:
        return False


def part_files(job: StackJob) -> list[Path]:
    """Temporary files left by an interrupted write of ``job.output``.

    Examples
    --------
    >>> part_files(StackJob("a", "/data/a", "/data/out/a.jpg"))  # doctest: +SKIP
    [PosixPath('/data/out/.a.k2j3h4g5.jpg.part')]
    """
    out = Path(job.output)
    pattern = re.compile(r"^\." + re.escape(out.stem) + r"\.[A-Za-z0-9_]{8}" + re.escape(out.suffix) + r"\.part$")
    try:
        return [p for p in out.parent.iterdir() if pattern.match(p.name)]
    except OSError:
        return []


def remove_part_files(jobs: Sequence[StackJob]) -> int:
    """Delete the temporary files interrupted writes left behind; return how many.

    Examples
    --------
    >>> remove_part_files(find_stacks(["drawer-17"], "stacked"))  # doctest: +SKIP
    0
    """
    removed = 0
    for job in jobs:
        for p in part_files(job):
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


# --------------------------------------------------------------------------- the results manifest


def read_results(out_dir: str | os.PathLike) -> dict[str, StackRecord]:
    """Latest record per output from ``out_dir/results.jsonl`` (later lines win).

    A line cut short by a crash is ignored.

    Examples
    --------
    >>> records = read_results("stacked")  # doctest: +SKIP
    >>> sorted({r.status for r in records.values()})  # doctest: +SKIP
    ['failed', 'ok']
    """
    path = Path(out_dir) / RESULTS_JSONL
    records: dict[str, StackRecord] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return records
    except OSError as exc:
        raise OutputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for line in text.splitlines():
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or not data.get("output"):
                continue
            rec = StackRecord.from_dict(data)
        except (ValueError, TypeError):
            continue
        records.pop(rec.output, None)  # keep the order in which outcomes arrived
        records[rec.output] = rec
    return records


class ResultsLog:
    """``results.jsonl`` (appended and flushed per record) and ``results.csv`` of a batch.

    Only one batch may write to a folder at a time; a lock file guards it.
    At :meth:`open` and :meth:`close` the journal is compacted to one line per
    stack (its latest outcome), atomically.

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
        self._lock_fh: io.TextIOWrapper | None = None

    def open(self) -> "ResultsLog":
        self._lock()
        for stale in list(self.out_dir.glob(".results.*.jsonl.part")) + list(self.out_dir.glob(".results.*.csv.part")):
            stale.unlink(missing_ok=True)  # a compaction cut short by a kill
        self.records = read_results(self.out_dir)
        return self

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock
            return
        fh = open(self.out_dir / LOCK_NAME, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise OutputError(
                f"{self.out_dir}: another postfocus batch is writing to this folder; wait for it or use another --out"
            ) from None
        self._lock_fh = fh

    def rewrite(self) -> None:
        """Compact ``results.jsonl`` to one line per stack, atomically, and reopen it for appending."""
        if self._fh:
            self._fh.close()
            self._fh = None
        lines = "".join(json.dumps(r.to_dict()) + "\n" for r in self.records.values())
        atomic_write(self.path, lambda p: p.write_text(lines, encoding="utf-8"))
        self._fh = open(self.path, "a", encoding="utf-8")

    def append(self, record: StackRecord) -> None:
        """Add one outcome: appended, flushed and synced before this returns."""
        if self._fh is None:
            self.rewrite()
        self.records.pop(record.output, None)
        self.records[record.output] = record
        self._fh.write(json.dumps(record.to_dict()) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def write_csv(self) -> None:
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
            if self._lock_fh is not None or self._fh is not None:
                self.rewrite()
                self.write_csv()
        finally:
            if self._fh:
                self._fh.close()
                self._fh = None
            if self._lock_fh:
                self._lock_fh.close()
                self._lock_fh = None


# --------------------------------------------------------------------------- planning


def plan_batch(
    jobs: Sequence[StackJob], previous: dict[str, StackRecord], *, retry_failed: bool = False
) -> tuple[list[StackJob], list[StackRecord], list[StackJob]]:
    """Decide what a run does with each stack.

    Returns
    -------
    (to run, skipped records, not run). By default a stack is skipped when its
    latest record is ok/skipped for the same input and options *and* its output
    decodes; everything else is run. With ``retry_failed`` only stacks whose
    latest record is ``failed`` are run; those neither done nor failed are
    returned as "not run".

    Examples
    --------
    >>> jobs = find_stacks(["drawer-17"], "stacked")  # doctest: +SKIP
    >>> to_run, skipped, not_run = plan_batch(jobs, read_results("stacked"))  # doctest: +SKIP
    """
    to_run: list[StackJob] = []
    skipped: list[StackRecord] = []
    not_run: list[StackJob] = []
    for job in jobs:
        prev = previous.get(job.output)
        if prev is not None and prev.done_for(job) and is_valid_image(job.output):
            rec = StackRecord.from_dict(prev.to_dict())
            rec.status = "skipped"
            skipped.append(rec)
        elif retry_failed and (prev is None or prev.status != "failed"):
            not_run.append(job)
        else:
            to_run.append(job)
    return to_run, skipped, not_run


# --------------------------------------------------------------------------- the task


def process_stack(job: StackJob) -> dict[str, Any]:
    """Merge one stack and write its result; the task each Dask worker runs.

    Never raises for a bad stack: any error becomes a ``failed`` record, so one
    stack cannot stop the batch. (If the worker process itself dies, Dask runs
    the task again on another worker.)

    Returns
    -------
    A :class:`StackRecord` as a dict.

    Examples
    --------
    >>> job = StackJob("NHM-0001", "/data/NHM-0001", "/data/out/NHM-0001.jpg")  # doctest: +SKIP
    >>> process_stack(job)["status"]  # doctest: +SKIP
    'ok'
    """
    from postfocus.pipeline.run import stack

    t0 = time.perf_counter()
    opts = job.options_dict()
    rec = StackRecord(job.input, job.output, "failed", options=opts)
    try:
        from distributed import get_worker

        rec.worker = get_worker().address
    except Exception:
        rec.worker = None
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PostfocusWarning)
            result = stack(
                job.input,
                method=opts.get("method", "depthmap"),
                reference=opts.get("reference"),
                align=opts.get("align", "similarity"),
                crop=opts.get("crop", True),
                frame_range=opts.get("range"),
            )
            result.save(job.output, quality=opts.get("quality", 95))
        rec.status = "ok"
        rec.frames_used = len(result.merged)
        rec.frames_total = len(result.alignment)
        rec.warnings = list(result.warnings)
        del result
    except PostfocusError as exc:
        rec.error = str(exc)
    except MemoryError:
        rec.error = "out of memory; give workers more memory (--memory-limit) or run fewer per machine"
    except Exception as exc:  # a bug or an unexpected library error: still one stack only
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        rec.error = f"internal error: {type(exc).__name__}: {exc}{at}"
    if rec.status == "failed":
        rec.warnings = [str(w.message) for w in caught if issubclass(w.category, PostfocusWarning)]
    rec.seconds = round(time.perf_counter() - t0, 3)
    rec.finished = _now()
    return rec.to_dict()


# --------------------------------------------------------------------------- running


def _worker_versions() -> str:
    from postfocus._version import __version__

    return __version__


@contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Start worker processes with Ctrl-C ignored: the batch process shuts them down in order.

    (A terminal sends Ctrl-C to every process in the foreground group; workers
    that took it themselves would die mid-task with tracebacks.)
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def open_client(
    scheduler: str | None = None, workers: int | None = None, memory_limit: str | None = None
) -> Iterator[Any]:
    """A ``distributed.Client``: on a new LocalCluster, or connected to ``scheduler``.

    Parameters
    ----------
    scheduler : address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
    workers : worker processes of the local cluster (default: one per CPU core).
    memory_limit : per local worker, e.g. ``"4GB"``; a worker using more is restarted.

    Examples
    --------
    >>> with open_client(workers=2, memory_limit="4GB") as client:  # doctest: +SKIP
    ...     print(len(client.scheduler_info()["workers"]))
    2
    """
    import logging

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise PostfocusError(
            "batch needs Dask's distributed scheduler: pip install 'postfocus[batch]'"
        ) from None
    import dask
    from dask.utils import parse_bytes

    if memory_limit not in (None, "auto"):
        try:
            parse_bytes(memory_limit)
        except (ValueError, TypeError):
            raise PostfocusError(f"--memory-limit {memory_limit!r}: expected a size such as 4GB or 500MB") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise PostfocusError(
                f"--scheduler {scheduler}: cannot connect ({exc}); is `dask scheduler` running there?"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    with _children_ignore_sigint(), dask.config.set(LOCAL_WORKER_CONFIG):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit or "auto",
            dashboard_address=":0",  # any free port: 8787 may be taken by another cluster
            silence_logs=logging.CRITICAL,  # failures are reported per stack instead
        )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def check_workers(client: Any, timeout: float = 60.0) -> int:
    """Wait until at least one worker is there and every worker can run postfocus.

    Returns the number of workers. Raises PostfocusError with a fix otherwise.

    Examples
    --------
    >>> with open_client("tcp://head:8786") as client:  # doctest: +SKIP
    ...     check_workers(client)
    24
    """
    from postfocus._version import __version__

    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        raise PostfocusError(
            f"no worker joined the scheduler within {timeout:.0f} s; start some with "
            f"`dask worker {client.scheduler.address}`"
        ) from None
    try:
        versions = client.run(_worker_versions)
    except Exception as exc:
        raise PostfocusError(
            f"workers cannot run postfocus ({type(exc).__name__}: {exc}); install postfocus {__version__} "
            "(pip install 'postfocus[batch]') on every worker machine"
        ) from None
    odd = {addr: v for addr, v in versions.items() if v != __version__}
    if odd:
        warnings.warn(
            f"{len(odd)} worker(s) run another postfocus version than this one ({__version__}): "
            + ", ".join(f"{a} has {v}" for a, v in list(odd.items())[:3]),
            PostfocusWarning,
            stacklevel=2,
        )
    return len(versions)


def run_batch(
    jobs: Sequence[StackJob],
    out_dir: str | os.PathLike,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str | None = None,
    retry_failed: bool = False,
    client: Any = None,
    on_plan: Callable[[list[StackJob], list[StackRecord], list[StackJob]], None] | None = None,
    on_result: Callable[[StackRecord], None] | None = None,
) -> BatchSummary:
    """Merge every stack in ``jobs`` on a Dask cluster, recording outcomes as they arrive.

    Parameters
    ----------
    jobs : from :func:`find_stacks` or :func:`read_stack_manifest`.
    out_dir : folder with the results and ``results.jsonl`` / ``results.csv``
        (created if missing). With a remote cluster it must be the same path
        on every worker machine.
    scheduler : address of a running ``dask scheduler``; default: start a
        LocalCluster with ``workers`` single-threaded worker processes.
    workers, memory_limit : size of the LocalCluster (ignored with ``scheduler``).
    retry_failed : redo only the stacks whose latest record is ``failed``.
    client : an existing ``distributed.Client`` to use instead.
    on_plan : called once with (to run, skipped records, not run) before work starts.
    on_result : called with each :class:`StackRecord` as it is recorded
        (skipped ones first).

    Returns
    -------
    BatchSummary. A KeyboardInterrupt is re-raised after the finished results
    are safely recorded and the cluster is shut down.

    Examples
    --------
    >>> jobs = find_stacks(["drawer-17"], "stacked")  # doctest: +SKIP
    >>> run_batch(jobs, "stacked", workers=2, on_result=lambda r: print(r.status, r.output))  # doctest: +SKIP
    ok /data/stacked/NHM-0001.jpg
    failed /data/stacked/NHM-0002.jpg
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create output folder ({exc.strerror or exc})") from None
    t0 = time.perf_counter()
    log = ResultsLog(out_dir).open()
    summary = BatchSummary(records=[])
    try:
        to_run, skipped, not_run = plan_batch(jobs, log.records, retry_failed=retry_failed)
        summary.not_run = len(not_run)
        remove_part_files(jobs)
        for rec in skipped:
            log.records.pop(rec.output, None)
            log.records[rec.output] = rec
        log.rewrite()
        if on_plan:
            on_plan(to_run, skipped, not_run)
        for rec in skipped:
            summary.skipped += 1
            summary.records.append(rec)
            if on_result:
                on_result(rec)
        if to_run:
            try:
                if client is not None:
                    _run_on(client, to_run, log, summary, on_result)
                else:
                    with open_client(scheduler, workers, memory_limit) as own:
                        _run_on(own, to_run, log, summary, on_result)
            except KeyboardInterrupt:
                summary.interrupted = True
                raise
            finally:
                remove_part_files(to_run)
    finally:
        summary.seconds = time.perf_counter() - t0
        log.close()
    return summary


def _lost_task_message(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        args = getattr(exc, "args", ())
        times = f"{args[2] + 1} times" if len(args) > 2 and isinstance(args[2], int) else "every time"
        return (
            f"KilledWorker: a worker died each time it ran this stack ({times}); out of memory? "
            "give each worker more (--memory-limit) or run fewer per machine"
        )
    return f"{name}: {exc}"


def _run_on(
    client: Any,
    to_run: list[StackJob],
    log: ResultsLog,
    summary: BatchSummary,
    on_result: Callable[[StackRecord], None] | None,
) -> None:
    from distributed import as_completed

    check_workers(client)
    by_key = {job.key: job for job in to_run}
    futures = [client.submit(process_stack, job, key=job.key, retries=TASK_RETRIES, pure=False) for job in to_run]

    def record(future: Any, result: Any) -> None:
        job = by_key[future.key]
        if future.status == "finished" and isinstance(result, dict):
            rec = StackRecord.from_dict(result)
        else:  # KilledWorker (the stack killed its workers too often), lost scheduler, cancelled ...
            exc = result[1] if isinstance(result, tuple) and len(result) == 3 else result
            rec = StackRecord(
                job.input, job.output, "failed", error=_lost_task_message(exc),
                options=job.options_dict(), finished=_now(),
            )
        future.release()
        log.append(rec)
        summary.records.append(rec)
        if rec.status == "ok":
            summary.ok += 1
        else:
            summary.failed += 1
        if on_result:
            on_result(rec)

    # with_results: each result is fetched as soon as its stack finishes, so an
    # interruption can still record every result that has arrived.
    finished = as_completed(futures, with_results=True, raise_errors=False)
    try:
        for future, result in finished:
            record(future, result)
    except BaseException:
        try:
            for future, result in finished.next_batch(block=False):
                if future.status == "finished" and isinstance(result, dict):
                    record(future, result)
        except BaseException:
            pass
        try:
            client.cancel(futures)
        except Exception:
            pass
        raise
