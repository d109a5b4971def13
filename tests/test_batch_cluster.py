"""``postfocus batch`` on Dask (``postfocus.batch.cluster``): runs, reruns, interruptions, lost workers.

Stacks are generated (``batch_stacks``), so these tests depend on nothing but
the library and Dask.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("skimage.data")

from batch_stacks import GOOD, decoded, make_collection, make_stack, manifest_lines, statuses  # noqa: E402

from postfocus.batch import (  # noqa: E402
    DASK_SCRATCH,
    RESULTS_CSV,
    RESULTS_JSONL,
    StackRecord,
    find_stacks,
    is_valid_image,
    read_results,
    run_batch,
)
from postfocus.batch.cluster import _lost_task_message  # noqa: E402
from postfocus.pipeline.run import stack  # noqa: E402


def mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")}


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """Three good stacks, one with a garbage .jpg among its frames, one empty folder."""
    return make_collection(tmp_path_factory.mktemp("collection"))


@pytest.fixture(scope="module")
def big_collection(tmp_path_factory) -> Path:
    """Six stacks big enough (6 frames 360x480) that a run can be stopped midway."""
    root = tmp_path_factory.mktemp("big")
    for k in range(6):
        make_stack(root / f"specimen{k}", frames=6, size=(360, 480), shift=30 * k)
    return root


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A LocalCluster with two single-threaded worker processes (scratch space in a test folder)."""
    from distributed import Client, LocalCluster

    scratch = str(tmp_path_factory.mktemp("dask"))
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR,
        local_directory=scratch, scheduler_kwargs={"local_directory": scratch},
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def first_run(collection, client, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    seen: list[StackRecord] = []
    summary = run_batch(find_stacks([collection], out), out, client=client, on_result=seen.append)
    return out, summary, seen


def test_every_good_stack_is_done_and_bad_ones_are_reported(first_run):
    out, summary, seen = first_run
    assert (summary.ok, summary.failed, summary.skipped) == (3, 2, 0)
    assert statuses(out) == {**{n: "ok" for n in GOOD}, "corrupt": "failed", "empty": "failed"}
    records = read_results(out)
    for name in GOOD:
        rec = records[str(out / f"{name}.jpg")]
        assert (rec.frames_used, rec.frames_total) == (4, 4) and rec.seconds > 0 and rec.error is None
        assert is_valid_image(out / f"{name}.jpg")
    corrupt = records[str(out / "corrupt.jpg")]
    assert "frame02.jpg" in corrupt.error and "not an image" in corrupt.error
    assert "no image files" in records[str(out / "empty.jpg")].error
    assert not (out / "corrupt.jpg").exists() and not (out / "empty.jpg").exists()
    # results.jsonl has one line per stack; results.csv the same records
    lines = manifest_lines(out)
    assert sorted(Path(r["output"]).stem for r in lines) == sorted([*GOOD, "corrupt", "empty"])
    assert set(lines[0]) >= {"input", "output", "status", "frames_used", "frames_total", "seconds", "warnings", "error"}
    import csv

    rows = list(csv.DictReader((out / RESULTS_CSV).open()))
    assert sorted((Path(r["output"]).stem, r["status"]) for r in rows) == sorted(
        [(n, "ok") for n in GOOD] + [("corrupt", "failed"), ("empty", "failed")]
    )
    assert len({r.worker for r in seen}) == 2  # both worker processes took stacks
    assert not list(out.glob("*.part")) and not list(out.glob(".*.part"))


def test_outputs_are_pixel_identical_to_single_machine_stack(first_run, collection, tmp_path):
    out, _, _ = first_run
    for name in GOOD:
        single = stack(collection / name).save(tmp_path / f"{name}.jpg")
        assert np.array_equal(decoded(out / f"{name}.jpg"), decoded(single)), name


def test_rerun_skips_finished_work(first_run, collection, client):
    out, _, _ = first_run
    before = mtimes(out)
    summary = run_batch(find_stacks([collection], out), out, client=client)
    assert (summary.ok, summary.failed, summary.skipped) == (0, 2, 3)  # failed ones are tried again
    assert statuses(out) == {**{n: "skipped" for n in GOOD}, "corrupt": "failed", "empty": "failed"}
    assert mtimes(out) == before
    assert sorted(Counter(Path(r["output"]).stem for r in manifest_lines(out)).values()) == [1] * 5
    # a skipped line keeps what the run that made the output reported
    beetle = read_results(out)[str(out / "beetle.jpg")]
    assert beetle.frames_used == 4 and beetle.seconds > 0


def test_retry_failed_redoes_only_failed_stacks(collection, client, tmp_path):
    out = tmp_path / "out"
    jobs = find_stacks([collection], out)
    run_batch(jobs, out, client=client)
    (out / "beetle.jpg").unlink()  # missing output
    data = (out / "moth.jpg").read_bytes()
    (out / "moth.jpg").write_bytes(data[: len(data) // 2])  # truncated output
    assert not is_valid_image(out / "moth.jpg")
    shell_mtime = (out / "shell.jpg").stat().st_mtime_ns

    summary = run_batch(jobs, out, client=client, retry_failed=True)
    assert (summary.ok, summary.failed, summary.skipped, summary.not_run) == (0, 2, 1, 2)
    assert not (out / "beetle.jpg").exists() and not is_valid_image(out / "moth.jpg")

    summary = run_batch(jobs, out, client=client)  # default: redo failed and missing ones
    assert (summary.ok, summary.failed, summary.skipped) == (2, 2, 1)
    assert is_valid_image(out / "beetle.jpg") and is_valid_image(out / "moth.jpg")
    assert (out / "shell.jpg").stat().st_mtime_ns == shell_mtime
    assert statuses(out) == {"beetle": "ok", "moth": "ok", "shell": "skipped", "corrupt": "failed", "empty": "failed"}


def test_changed_options_redo_a_stack(collection, client, tmp_path):
    out = tmp_path / "out"
    run_batch(find_stacks([collection / "beetle"], out), out, client=client)
    summary = run_batch(find_stacks([collection / "beetle"], out, options={"method": "pyramid"}), out, client=client)
    assert summary.ok == 1 and read_results(out)[str(out / "beetle.jpg")].options == {"method": "pyramid"}


def test_a_local_cluster_keeps_its_scratch_space_in_the_output_folder(collection, tmp_path):
    out = tmp_path / "out"
    system_tmp = tmp_path / "system-tmp"  # where Dask would put dask-scratch-space otherwise
    during: list[list[str]] = []

    def look(rec: StackRecord) -> None:
        scratch = out / DASK_SCRATCH / "dask-scratch-space"
        during.append(sorted(p.name.split("-")[0] for p in scratch.iterdir() if p.is_dir()) if scratch.is_dir() else [])

    with dask.config.set({"temporary-directory": str(system_tmp)}):
        summary = run_batch(find_stacks([collection / "beetle"], out), out, workers=1, on_result=look)
    assert summary.ok == 1
    assert during == [["scheduler", "worker"]]  # the scheduler's and the worker's work folders
    assert not system_tmp.exists()
    assert not (out / DASK_SCRATCH).exists()  # removed when the run ends
    assert sorted(p.name for p in out.iterdir()) == [".postfocus-batch.lock", "beetle.jpg", RESULTS_CSV, RESULTS_JSONL]


def test_cli_on_a_scheduler_and_worker_started_with_dask_commands(collection, tmp_path):
    from click.testing import CliRunner

    from postfocus.cli import main

    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    log = open(tmp_path / "dask.log", "w")
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(sched_file)], stdout=log, stderr=log,
    )
    worker = None
    try:
        deadline, address = time.time() + 60, None
        while address is None and time.time() < deadline:  # the file may exist before it is written
            try:
                address = json.loads(sched_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert address, "the dask scheduler did not write its address"
        worker = subprocess.Popen(
            [*dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--memory-limit", "2GB",
             "--no-dashboard"], stdout=log, stderr=log,
        )
        out = tmp_path / "out"
        result = CliRunner().invoke(main, ["-q", "batch", str(collection), "--out", str(out), "--scheduler", address])
        assert result.exit_code == 3, result.output  # some stacks failed
        assert "3 ok, 2 failed, 0 skipped" in result.output
        assert statuses(out) == {**{n: "ok" for n in GOOD}, "corrupt": "failed", "empty": "failed"}
        workers = {r.worker for r in read_results(out).values()}
        assert all(w and w.startswith("tcp://127.0.0.1:") for w in workers)
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
        for proc in (worker, scheduler):
            if proc is not None:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        log.close()


def _start_batch(collection: Path, out: Path) -> subprocess.Popen:
    # Own session, as a shell job; SIGINT restored in case the test runner ignores it.
    script = shutil.which("postfocus") or str(Path(sys.executable).parent / "postfocus")
    return subprocess.Popen(
        [script, "-q", "batch", str(collection), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_first_result(proc: subprocess.Popen, out: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    journal = out / RESULTS_JSONL
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and '"status": "ok"' in journal.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"no result within {timeout} s; stderr: {proc.stderr.read().decode() if proc.stderr else ''}")


def test_interrupted_runs_lose_nothing_and_resume(big_collection, tmp_path):
    out = tmp_path / "out"
    # 1. Ctrl-C (SIGINT to the whole process group, as a terminal sends it) after the first result
    proc = _start_batch(big_collection, out)
    _wait_for_first_result(proc, out)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()
    kept = {o for o, r in read_results(out).items() if r.status == "ok"}
    assert kept and all(is_valid_image(o) for o in kept)
    assert not list(out.glob(".*.part")) and not (out / DASK_SCRATCH).exists()

    # 2. SIGKILL (no clean-up at all) after the next result
    before = len(manifest_lines(out))
    proc = _start_batch(big_collection, out)
    deadline = time.time() + 60
    while len((out / RESULTS_JSONL).read_text().splitlines()) <= before and time.time() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=30)
    assert (out / DASK_SCRATCH).is_dir()  # no clean-up at all
    assert all(read_results(out)[o].status in ("ok", "skipped") for o in kept)  # nothing finished is lost

    # 3. the rerun finishes the batch: one line per stack, every output whole, no temp files
    time.sleep(1)  # orphaned workers of the killed run notice their parent is gone
    proc = _start_batch(big_collection, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    lines = manifest_lines(out)
    assert Counter(Path(r["output"]).stem for r in lines) == Counter(f"specimen{k}" for k in range(6))
    assert all(r["status"] in ("ok", "skipped") for r in lines)
    assert all(is_valid_image(out / f"specimen{k}.jpg") for k in range(6))
    assert not list(out.glob(".*.part")) and not list(out.glob("*.part"))
    assert not (out / DASK_SCRATCH).exists()  # the killed run's scratch space is gone too


def test_a_killed_worker_loses_no_result_and_its_stack_is_rerun(big_collection, client, tmp_path):
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_a_busy_worker(rec: StackRecord) -> None:
        if killed:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    summary = run_batch(find_stacks([big_collection], out), out, client=client, on_result=kill_a_busy_worker)
    assert killed, "no worker was busy to be killed"
    assert (summary.ok, summary.failed) == (6, 0)
    assert Counter(Path(r["output"]).stem for r in manifest_lines(out)) == Counter(f"specimen{k}" for k in range(6))
    assert all(is_valid_image(out / f"specimen{k}.jpg") for k in range(6))
    assert not list(out.glob(".*.part"))


def test_a_stack_that_keeps_killing_workers_gets_a_readable_error():
    from distributed.scheduler import KilledWorker

    message = _lost_task_message(KilledWorker("postfocus-stack-x", None, 3))
    assert message.startswith("KilledWorker: a worker died each time it ran this stack (4 times)")
    assert "more memory" in message
