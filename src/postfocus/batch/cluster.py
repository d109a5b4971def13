"""Run a batch on Dask: start or join a cluster, submit each stack, record results.

Each stack is one task (:func:`~postfocus.batch.task.process_stack`) on
Dask's distributed scheduler: a :class:`distributed.LocalCluster` on this
machine by default, or an existing cluster started with ``dask scheduler``
and ``dask worker``. :func:`run_batch` records each outcome in the journal
the moment it arrives; on Ctrl-C (or a SIGTERM turned into one) it records
what has arrived, cancels the rest and shuts the cluster down in order.
Local workers ignore Ctrl-C themselves, and keep Dask's scratch space in the
output folder (:data:`DASK_SCRATCH`), removed when the run ends.

Examples
--------
>>> jobs = find_stacks(["drawer-17"], "stacked")  # doctest: +SKIP
>>> run_batch(jobs, "stacked", workers=2).line()  # doctest: +SKIP
'12 stacks: 11 ok, 1 failed, 0 skipped in 41.2 s (17.5 stacks/min)'
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from postfocus.batch.discover import plan_batch
from postfocus.batch.journal import BatchSummary, ResultsLog, StackRecord, now
from postfocus.batch.task import StackJob, process_stack, remove_part_files
from postfocus.errors import OptionError, OutputError, PostfocusError, PostfocusWarning

__all__ = [
    "DASK_SCRATCH",
    "LOCAL_WORKER_CONFIG",
    "TASK_RETRIES",
    "check_workers",
    "open_client",
    "run_batch",
]

TASK_RETRIES = 2
LOCAL_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask config for local workers. Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its
workers, which also pins glibc's mmap threshold at 128 KiB: every frame-sized
array is then mapped and page-faulted afresh, costing stacking about half as
much CPU time again. Without it, glibc recycles such arrays."""
DASK_SCRATCH = ".postfocus-dask"
"""Folder in the output folder for a local cluster's scratch space (Dask's
``local_directory``, otherwise ``/tmp/dask-scratch-space``); removed at the end
of every run."""


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
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str | None = None,
    local_directory: str | os.PathLike | None = None,
) -> Iterator[Any]:
    """A ``distributed.Client``: on a new LocalCluster, or connected to ``scheduler``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
    workers : int, optional
        Worker processes of the local cluster (default: one per CPU core).
    memory_limit : str, optional
        Per local worker, e.g. ``"4GB"``; a worker using more is restarted.
    local_directory : str or os.PathLike, optional
        Scratch space of the local cluster's scheduler and workers (Dask adds
        ``dask-scratch-space`` inside); default: Dask's ``temporary-directory``
        setting, else the system's temp folder. Not removed here.

    Yields
    ------
    distributed.Client

    Raises
    ------
    PostfocusError
        Without Dask's distributed scheduler, for a bad ``memory_limit``, or
        when ``scheduler`` cannot be reached.

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
            raise OptionError("memory_limit", memory_limit, "expected a size such as 4GB or 500MB") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise OptionError("scheduler", scheduler,
                              f"cannot connect ({exc}); is `dask scheduler` running there?") from None
        try:
            yield client
        finally:
            client.close()
        return
    from postfocus.pipeline.threads import usable_cores

    n = workers or usable_cores()
    scratch = {"local_directory": str(local_directory)} if local_directory is not None else {}
    with _children_ignore_sigint(), dask.config.set(LOCAL_WORKER_CONFIG):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit or "auto",
            dashboard_address=":0",  # any free port: 8787 may be taken by another cluster
            silence_logs=logging.CRITICAL,  # failures are reported per stack instead
            scheduler_kwargs=dict(scratch),  # the scheduler makes a work folder too
            **scratch,
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

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster.
    timeout : float, default 60
        Seconds to wait for a first worker.

    Returns
    -------
    int
        The number of workers. Workers with another postfocus version get a
        :class:`~postfocus.errors.PostfocusWarning`.

    Raises
    ------
    PostfocusError
        With a fix, when no worker joins or workers cannot import postfocus.

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
    jobs : sequence of StackJob
        From :func:`~postfocus.batch.discover.find_stacks` or
        :func:`~postfocus.batch.discover.read_stack_manifest`.
    out_dir : str or os.PathLike
        Folder with the results and ``results.jsonl`` / ``results.csv``
        (created if missing). With a remote cluster it must be the same path
        on every worker machine. A local cluster keeps its scratch space in
        ``out_dir/.postfocus-dask`` (:data:`DASK_SCRATCH`) while it runs.
    scheduler : str, optional
        Address of a running ``dask scheduler``; default: start a LocalCluster
        with ``workers`` single-threaded worker processes.
    workers : int, optional
        Worker processes of the LocalCluster (ignored with ``scheduler``).
    memory_limit : str, optional
        Memory per LocalCluster worker, e.g. ``"4GB"`` (ignored with ``scheduler``).
    retry_failed : bool, default False
        Redo only the stacks whose latest record is ``failed``.
    client : distributed.Client, optional
        An existing client to use instead.
    on_plan : callable, optional
        Called once with (to run, skipped records, not run) before work starts.
    on_result : callable, optional
        Called with each :class:`~postfocus.batch.journal.StackRecord` as it
        is recorded (skipped ones first).

    Returns
    -------
    BatchSummary
        A KeyboardInterrupt is re-raised instead, after the finished results
        are safely recorded and the cluster is shut down.

    Raises
    ------
    OutputError
        When ``out_dir`` cannot be created, or another batch writes to it.
    PostfocusError
        When the cluster cannot be started or reached, or has no usable worker.

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
    scratch = out_dir.absolute() / DASK_SCRATCH
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
            summary.add(rec)
            if on_result:
                on_result(rec)
        if to_run:
            try:
                if client is not None:
                    _run_on(client, to_run, log, summary, on_result)
                else:
                    with open_client(scheduler, workers, memory_limit, local_directory=scratch) as own:
                        _run_on(own, to_run, log, summary, on_result)
            except KeyboardInterrupt:
                summary.interrupted = True
                raise
            finally:
                remove_part_files(to_run)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # also one left by a killed run
        summary.seconds = time.perf_counter() - t0
        log.close()
    return summary


def _lost_task_message(exc: BaseException) -> str:
    """One line for a task Dask gave up on (``KilledWorker``, a lost scheduler, ...)."""
    name = type(exc).__name__
    if name == "KilledWorker":
        args = getattr(exc, "args", ())
        times = f"{args[2] + 1} times" if len(args) > 2 and isinstance(args[2], int) else "every time"
        return (
            f"KilledWorker: a worker died each time it ran this stack ({times}); out of memory? "
            "give each worker more memory or run fewer per machine"
        )
    return f"{name}: {exc}"


def _run_on(
    client: Any,
    to_run: list[StackJob],
    log: ResultsLog,
    summary: BatchSummary,
    on_result: Callable[[StackRecord], None] | None,
) -> None:
    """Submit ``to_run`` on ``client`` and record each result as it arrives."""
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
                options=job.options_dict(), finished=now(),
            )
        future.release()
        log.append(rec)
        summary.add(rec)
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
