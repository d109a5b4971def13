"""Stack thousands of focus stacks as tasks on a Dask cluster.

Each stack (a folder of frames or a video) is one task on Dask's distributed
scheduler: a :class:`distributed.LocalCluster` on this machine by default, or
an existing cluster started with ``dask scheduler`` and ``dask worker``.
Workers write every result image straight into the output folder (atomically:
temp file, then rename), so the output folder must be the same path on every
machine (shared storage such as NFS). The process that runs the batch records
each outcome in ``results.jsonl`` the moment it arrives, so an interrupted run
loses no finished work, and a rerun skips what is already done.

The package reads in the order of a run:

* :mod:`~postfocus.batch.discover`: find the stacks (:func:`find_stacks`,
  :func:`read_stack_manifest`) and plan a run against earlier results
  (:func:`plan_batch`).
* :mod:`~postfocus.batch.task`: one stack (:class:`StackJob`) and the task a
  worker runs for it (:func:`process_stack`), with its output checks.
* :mod:`~postfocus.batch.journal`: the results journal (:class:`StackRecord`,
  :class:`ResultsLog`, :func:`read_results`) and :class:`BatchSummary`.
* :mod:`~postfocus.batch.cluster`: the Dask cluster and the run itself
  (:func:`open_client`, :func:`check_workers`, :func:`run_batch`).

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

from postfocus.batch.cluster import (
    DASK_SCRATCH,
    LOCAL_WORKER_CONFIG,
    TASK_RETRIES,
    check_workers,
    open_client,
    run_batch,
)
from postfocus.batch.discover import FORMATS, find_stacks, plan_batch, read_stack_manifest
from postfocus.batch.journal import (
    CSV_FIELDS,
    LOCK_NAME,
    RESULTS_CSV,
    RESULTS_JSONL,
    STATUSES,
    BatchSummary,
    ResultsLog,
    StackRecord,
    read_results,
)
from postfocus.batch.task import (
    STACK_OPTIONS,
    StackJob,
    is_valid_image,
    part_files,
    process_stack,
    remove_part_files,
    stack_arguments,
)

__all__ = [
    "CSV_FIELDS",
    "DASK_SCRATCH",
    "FORMATS",
    "LOCAL_WORKER_CONFIG",
    "LOCK_NAME",
    "RESULTS_CSV",
    "RESULTS_JSONL",
    "STACK_OPTIONS",
    "STATUSES",
    "TASK_RETRIES",
    "BatchSummary",
    "ResultsLog",
    "StackJob",
    "StackRecord",
    "check_workers",
    "find_stacks",
    "is_valid_image",
    "open_client",
    "part_files",
    "plan_batch",
    "process_stack",
    "read_results",
    "read_stack_manifest",
    "remove_part_files",
    "run_batch",
    "stack_arguments",
]
