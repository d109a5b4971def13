"""Find the stacks of a batch and decide which of them a run merges.

What the user names (folders of stacks, a folder that holds frames, video
files, CSV manifests) becomes a list of :class:`~postfocus.batch.task.StackJob`
with stable, unique output names (:func:`find_stacks`,
:func:`read_stack_manifest`). Whether a folder holds frames is decided by the
same rule ``postfocus stack FOLDER`` uses (:mod:`postfocus.io`).
:func:`plan_batch` then sets the journal of earlier runs against the jobs:
what to run, what to skip, what to leave alone.

Examples
--------
>>> jobs = find_stacks(["drawer-17", "clips/beetle.mp4"], "out", fmt="png")  # doctest: +SKIP
>>> to_run, skipped, not_run = plan_batch(jobs, read_results("out"))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

from postfocus.batch.journal import RESULTS_CSV, RESULTS_JSONL, StackRecord
from postfocus.batch.task import STACK_OPTIONS, StackJob, is_valid_image, stack_arguments
from postfocus.errors import InputError, OptionError, PostfocusError, PostfocusWarning
from postfocus.io.base import IMAGE_EXTENSIONS, RAW_EXTENSIONS, VIDEO_EXTENSIONS, list_folder  # io's folder rule
from postfocus.io.write import OUTPUT_FORMATS

__all__ = ["FORMATS", "find_stacks", "plan_batch", "read_stack_manifest"]

FORMATS = ("jpg", "png", "tif")
"""Formats of the results named after their stacks."""


def _holds_frames(folder: Path) -> bool:
    """True when ``folder`` is itself a stack by io's rule: it directly holds frames."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PostfocusWarning)  # files io would leave out: reported when stacked
        try:
            list_folder(folder)
        except InputError:
            return False
    return True


def _is_video(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS


def _clean_options(options: dict[str, Any] | None, where: str = "") -> tuple[tuple[str, Any], ...]:
    """Validate and normalise stacking options; drop the ones left empty."""
    out: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if name not in STACK_OPTIONS:
            raise PostfocusError(f"{where}unknown option {name!r}; known: {', '.join(STACK_OPTIONS)}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str):
            value = value.strip()
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
    try:  # the library's own checks (method, align, range...), in the manifest's words
        stack_arguments(out)
    except OptionError as exc:
        name = {"frame_range": "range"}.get(exc.param, exc.param)
        raise PostfocusError(f"{where}{name} {exc.value!r}: {exc.reason}") from None
    return tuple(sorted(out.items()))


def _stacks_in_folder(folder: Path, out_dir: Path) -> list[Path]:
    """The stacks a folder holds: itself if it holds frames, else its sub-folders and videos."""
    if _holds_frames(folder):
        return [folder]
    found = []
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            if os.path.realpath(p) == os.path.realpath(out_dir):  # (Path.resolve raises on a loop of links)
                continue  # the output folder may live inside the collection
            found.append(p)
        elif _is_video(p):
            found.append(p)
    return found


def _absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute and normal: ``main/../shared/x`` is ``shared/x`` (symbolic links are kept)."""
    return Path(os.path.abspath(path))


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
    after the input") and optionally any of :data:`~postfocus.batch.task.STACK_OPTIONS`
    per row. Empty cells take the values of ``options``.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file (UTF-8, with or without a byte-order mark).
    out_dir : str or os.PathLike
        The results folder.
    fmt : str, default "jpg"
        Suffix of outputs given without one.
    options : dict, optional
        Options for rows that leave a column empty.

    Returns
    -------
    list of StackJob
        One per non-empty row, in file order.

    Raises
    ------
    InputError
        For an unreadable file, a missing ``input`` column, unknown columns,
        an empty input, a reserved or repeated output.
    PostfocusError
        For an invalid option value (the message gives the line).

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
    out_dir = _absolute(out_dir)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    except UnicodeDecodeError:  # e.g. spreadsheet "Unicode text" (UTF-16): was an internal error
        raise InputError(f"{path}: the manifest is not UTF-8 text; save it as CSV (UTF-8)") from None
    try:
        return _manifest_jobs(path, text, out_dir, fmt, options)
    except csv.Error as exc:  # a field over the csv module's limit (131,072 characters), ...: was an internal error
        raise InputError(f"{path}: cannot be read as CSV ({exc})") from None


def _manifest_jobs(path: Path, text: str, out_dir: Path, fmt: str, options: dict[str, Any] | None) -> list[StackJob]:
    """The jobs of a manifest's ``text`` (see :func:`read_stack_manifest`)."""
    base = _absolute(path).parent
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
        if any("\0" in (row.get(k) or "") for k in ("input", "output")):  # no path holds one (an internal error)
            raise InputError(f"{where}a path holds a NUL character")
        inp = Path(row["input"]).expanduser()
        inp = _absolute(inp if inp.is_absolute() else base / inp)
        out_text = row.get("output") or ""
        out = Path(out_text).expanduser() if out_text else Path(inp.stem if inp.suffix else inp.name)
        if not out.suffix:
            out = out.with_name(out.name + "." + fmt)
        out = _absolute(out if out.is_absolute() else out_dir / out)
        if out.suffix.lower() not in OUTPUT_FORMATS:  # (was found only after the stack was merged)
            raise InputError(f"{where}output {out.name}: unknown format '{out.suffix}'; use .jpg, .png or .tif")
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
    inputs : sequence of str or os.PathLike
        Folders, video files or CSV manifests. A folder that directly holds
        image files is one stack; otherwise each of its sub-folders and video
        files is one stack (the output folder is left out if it lies inside).
        A ``.csv`` file is a manifest (see :func:`read_stack_manifest`).
    out_dir : str or os.PathLike
        Folder for the results; each result is named after its stack.
    fmt : str, default "jpg"
        "jpg", "png" or "tif".
    options : dict, optional
        Stacking options for every stack (see :data:`~postfocus.batch.task.STACK_OPTIONS`).

    Returns
    -------
    list of StackJob
        In a stable order (names resolve the same way every run).

    Raises
    ------
    InputError
        For a missing input, a single image, or when no stack was found at all.
    PostfocusError
        For an unknown format or an invalid option.

    Examples
    --------
    >>> jobs = find_stacks(["drawer-17", "clips/beetle.mp4"], "out", fmt="png")  # doctest: +SKIP
    >>> [(j.name, Path(j.output).name) for j in jobs]  # doctest: +SKIP
    [('NHM-0001', 'NHM-0001.png'), ('NHM-0002', 'NHM-0002.png'), ('beetle', 'beetle.png')]
    """
    if fmt not in FORMATS:
        raise OptionError("fmt", fmt, f"choose one of {', '.join(FORMATS)}")
    out_dir = _absolute(out_dir)
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
        elif p.suffix.lower() not in IMAGE_EXTENSIONS | RAW_EXTENSIONS:  # a video, or a file io sniffs
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
        jobs.append(StackJob(name, str(_absolute(p)), out, opts))
    if not jobs:
        raise InputError("no stacks found: name folders of stacks, video files or a CSV manifest")
    _outputs_clear_of_other_inputs(jobs)
    return jobs


def _outputs_clear_of_other_inputs(jobs: Sequence[StackJob]) -> None:
    """InputError, before any work, for an output that is another stack's input or lies in another stack's folder.

    A manifest row whose output named a photo of another row's stack (``A,/data/B/frame0.png``) wrote the
    result over that photo, perhaps before stack B was read. (A stack's own frames are checked by its task.) A
    folder's frames are the files directly in it: an output in a sub-folder of it is no frame of it (review18).
    """
    inputs = {Path(job.input): job for job in jobs}
    for job in jobs:
        out = Path(job.output)
        for place in (out, out.parent):
            other = inputs.get(place)
            if other is not None and other is not job and (place == out or Path(other.input).is_dir()):
                raise InputError(f"{out}: the result of {job.input} would be written "
                                 f"{'over' if place == out else 'into'} the stack {other.input}; "
                                 "choose an output outside the stacks")


def plan_batch(
    jobs: Sequence[StackJob], previous: dict[str, StackRecord], *, retry_failed: bool = False
) -> tuple[list[StackJob], list[StackRecord], list[StackJob]]:
    """Decide what a run does with each stack.

    By default a stack is skipped when its latest record is ok/skipped for the
    same input and options *and* its output decodes; everything else is run.
    With ``retry_failed`` only stacks whose latest record is ``failed`` are
    run; those neither done nor failed are returned as "not run".

    Parameters
    ----------
    jobs : sequence of StackJob
        From :func:`find_stacks` or :func:`read_stack_manifest`.
    previous : dict of str to StackRecord
        Latest record per output (:func:`~postfocus.batch.journal.read_results`).
    retry_failed : bool, default False
        Run only the stacks whose latest record is ``failed``.

    Returns
    -------
    tuple of (list of StackJob, list of StackRecord, list of StackJob)
        To run, skipped records (status ``skipped``), not run.

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
