"""One stack of a batch: what to merge (:class:`StackJob`) and the task that merges it.

:func:`process_stack` is what a Dask worker runs for each stack: it merges
the stack with :func:`postfocus.pipeline.stack`, writes the result straight
into the output folder (atomically: a hidden ``.part`` file, then a rename)
and returns its outcome as a record; it never raises for a bad stack. The
helpers here check a stack's output (:func:`is_valid_image`) and clear the
``.part`` files an interrupted write leaves behind.

Examples
--------
>>> job = StackJob("NHM-0001", "/data/NHM-0001", "/data/out/NHM-0001.jpg", (("method", "pyramid"),))
>>> opts, save = stack_arguments(job.options_dict())
>>> opts.method, save
('pyramid', {})
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from postfocus.batch.journal import StackRecord, now
from postfocus.errors import PostfocusError, PostfocusWarning
from postfocus.options import StackOptions, parse_range

__all__ = [
    "STACK_OPTIONS",
    "StackJob",
    "is_valid_image",
    "part_files",
    "process_stack",
    "remove_part_files",
    "stack_arguments",
]

STACK_OPTIONS = ("method", "align", "reference", "crop", "range", "order", "quality")
"""Per-stack options: keyword arguments of the batch and columns of a CSV manifest."""


@dataclass(frozen=True)
class StackJob:
    """One stack to merge: where its frames are, where its result goes, how.

    Attributes
    ----------
    name : str
        Short name of the stack (the output file's stem).
    input : str
        Absolute path of the stack: a folder of frames or a video file.
    output : str
        Absolute path of the result image.
    options : tuple of (str, Any) pairs
        Stacking options, sorted by name, from :data:`STACK_OPTIONS`; options
        left out take the library defaults.

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
        """The options as a dict (what a :class:`StackRecord` keeps)."""
        return dict(self.options)


def stack_arguments(options: Mapping[str, Any]) -> tuple[StackOptions, dict[str, Any]]:
    """Turn a job's options into the library call: the :class:`StackOptions` and keywords for ``save``.

    Options that are not set take :class:`StackOptions`' defaults, the same
    as the command line's.

    Parameters
    ----------
    options : mapping of str to Any
        Validated options (names from :data:`STACK_OPTIONS`).

    Returns
    -------
    tuple of (StackOptions, dict)
        Options of :func:`postfocus.stack` and keyword arguments of :meth:`StackResult.save`.

    Raises
    ------
    OptionError
        Naming the field whose value cannot be used.

    Examples
    --------
    >>> opts, save = stack_arguments({"method": "pyramid", "range": "2:9", "quality": 90})
    >>> opts.method, opts.frame_range, save
    ('pyramid', (2, 9), {'quality': 90})
    """
    renamed = {"range": "frame_range"}
    fields = {renamed.get(k, k): v for k, v in options.items() if k != "quality"}
    if isinstance(fields.get("frame_range"), str):
        fields["frame_range"] = parse_range(fields["frame_range"])
    save_kwargs = {"quality": options["quality"]} if "quality" in options else {}
    return StackOptions(**fields), save_kwargs


def process_stack(job: StackJob) -> dict[str, Any]:
    """Merge one stack and write its result; the task each Dask worker runs.

    Never raises for a bad stack: any error becomes a ``failed`` record, so one
    stack cannot stop the batch. (If the worker process itself dies, Dask runs
    the task again on another worker.)

    Parameters
    ----------
    job : StackJob
        The stack to merge.

    Returns
    -------
    dict
        A :class:`~postfocus.batch.journal.StackRecord` as a dict.

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
        stack_options, save_kwargs = stack_arguments(opts)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PostfocusWarning)
            _check_output(job)  # before the merge: an output that cannot be written fails at once
            result = stack(job.input, stack_options)
            result.save(job.output, **save_kwargs)
        rec.status = "ok"
        rec.frames_used = len(result.merged)
        rec.frames_total = len(result.alignment)
        rec.warnings = list(result.warnings)
        del result
    except PostfocusError as exc:
        rec.error = str(exc)
    except MemoryError:
        rec.error = "out of memory; give workers more memory or run fewer per machine"
    except Exception as exc:  # a bug or an unexpected library error: still one stack only
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        rec.error = f"internal error: {type(exc).__name__}: {exc}{at}"
    if rec.status == "failed":
        rec.warnings = [str(w.message) for w in caught if issubclass(w.category, PostfocusWarning)]
    rec.seconds = round(time.perf_counter() - t0, 3)
    rec.finished = now()
    return rec.to_dict()


def _check_output(job: StackJob) -> None:
    """OutputError when ``job.output`` cannot be written (no such folder, an input frame of the stack, not a
    writable folder), said before the stack is merged, as the command line does, not after."""
    from postfocus.io.open import open_source
    from postfocus.io.write import check_output_path

    check_output_path(job.output, open_source(job.input).info.paths)


def is_valid_image(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and decodes completely as an image.

    JPEGs are decoded at 1/8 scale (which still reads every byte), so checking
    thousands of results stays fast.

    Parameters
    ----------
    path : str or os.PathLike
        A stack's result (JPEG, PNG or TIFF).

    Returns
    -------
    bool
        False for a missing, empty, truncated or undecodable file.

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

        from postfocus.io.decode import pillow_opening

        with pillow_opening(p), Image.open(p) as im:  # (a 200-megapixel result is no decompression bomb)
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

    Parameters
    ----------
    job : StackJob
        The stack whose output folder is searched.

    Returns
    -------
    list of Path
        Files named like the atomic writer's ``.NAME.xxxxxxxx.SUFFIX.part``.

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
    """Delete the temporary files interrupted writes left behind.

    Parameters
    ----------
    jobs : sequence of StackJob
        The stacks whose ``.part`` files go.

    Returns
    -------
    int
        How many files were deleted.

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
