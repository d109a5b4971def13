"""The web app's taps (``postfocus.web.taps``): a plain tap's depth made ahead and bounded, the app's threads.

The stack is rendered by ``postfocus.synth``: a textured near half and a dark plain far half, 8 frames, so a tap
on the right is plain (answered from the stack's depth) and one on the left textured. Jobs are made as a
finished job's folder (its stack folder, ``job.json`` done) over a copy of the processed stack, without a
depth map kept unless a test makes one: a plain tap then has to make its depth (``products/tap_depth.py``).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx.*", category=UserWarning)
    from starlette.testclient import TestClient  # noqa: E402

from postfocus import process  # noqa: E402
from postfocus.products import refocus  # noqa: E402
from postfocus.store import ProcessedStack  # noqa: E402
from postfocus.synth import render_stack  # noqa: E402
from postfocus.web.app import create_app  # noqa: E402
from postfocus.web.ops import HEAVY_AT_ONCE  # noqa: E402
from postfocus.web.store import Store  # noqa: E402
from postfocus.web.taps import app_threads  # noqa: E402

H, W = 120, 160
BASE = "http://127.0.0.1:8000"
CHANGE = {"X-Postfocus": "1"}


def half_plain_scene(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random texture on the left (near, depth 0), a dark plain patch on the right (far, depth 1)."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.random((H, W, 3)).astype(np.float32), (0, 0), 1.2)
    image = 0.25 + 0.6 * (texture - texture.min()) / (texture.max() - texture.min())
    depth = np.zeros((H, W), np.float32)
    image[:, W // 2:] = 0.08
    depth[:, W // 2:] = 1.0
    return image.astype(np.float32), depth


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, Path]:
    """(the rendered frames' folder, the processed stack folder)."""
    from postfocus.synth.files import write_stack

    folder = tmp_path_factory.mktemp("taps")
    st = render_stack(*half_plain_scene(), 8, max_blur=6.0, noise=0.01, seed=3)
    write_stack(st, folder / "frames", "png")
    ps = process(folder / "frames", cache_dir=folder / "cache")
    return folder / "frames", ps.folder


@pytest.fixture(autouse=True)
def _nothing_remembered():
    refocus._FILLS.clear()
    yield
    refocus._FILLS.clear()


def done_job(data: Path, stack: Path) -> str:
    """A finished job over a copy of the stack folder ``stack``, no depth map kept; its id."""
    job = Store(data).create()
    shutil.copytree(stack, job.stack_dir, ignore=shutil.ignore_patterns("depth_*.npz", "tap_depth_*.npz"))
    manifest = job.stack_dir / "manifest.json"  # written again last, as in a job's own folder
    (job.stack_dir / "m.new").write_bytes(manifest.read_bytes())
    os.replace(job.stack_dir / "m.new", manifest)
    record = job.read()
    record.update(state="done", result={"width": W, "height": H})
    job.write(record)
    return job.id


def points(stack: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    """A plain point (right half) and a textured one (left half) of the processed stack."""
    ps = ProcessedStack.open(stack)
    h, w = ps.size
    plain, textured = (w * 0.8, h * 0.5), (w * 0.2, h * 0.5)
    assert refocus.is_plain(ps, *plain) and not refocus.is_plain(ps, *textured)
    return plain, textured


class Counted:
    """A wrapper of ``function`` counting its calls, keeping each call's arguments and ``threads``; ``gate`` (an Event),
    when given, is waited for before each call."""

    def __init__(self, function, gate: threading.Event | None = None):
        self.function, self.gate = function, gate
        self.calls, self.threads, self.args, self.lock = 0, [], [], threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.calls += 1
            self.args.append(args)
            self.threads.append(kwargs.get("threads"))
        if self.gate is not None:
            assert self.gate.wait(60), "the gate was never opened"
        return self.function(*args, **kwargs)


def client(data: Path, **options) -> TestClient:
    return TestClient(create_app(data, workers=2, **options), base_url=BASE, headers=CHANGE)


def test_concurrent_first_taps_on_one_job_make_its_depth_once_and_agree(rendered, tmp_path, monkeypatch):
    """Six plain taps at once on a job whose folder cannot be locked nor written (no kept file makes the
    second tap wait): before tap14 each made the depth (6 calls, each on every core, outside the heavy
    budget); now one is made and the others wait for it and read it, all with the same answer."""
    from postfocus.errors import OutputError
    from postfocus.products import tap_depth

    _, stack = rendered
    plain, _ = points(stack)
    job_id = done_job(tmp_path / "data", stack)

    def refuse(*args, **kwargs):
        raise OutputError("read-only")

    monkeypatch.setattr("postfocus.store.kept.folder_lock", refuse)
    monkeypatch.setattr("postfocus.store.kept.atomic_write", refuse)
    n, arrived = 6, threading.Semaphore(0)
    all_in = threading.Event()
    depth = Counted(tap_depth.grid_depth, gate=all_in)
    monkeypatch.setattr(tap_depth, "grid_depth", depth)
    with client(tmp_path / "data") as c:
        results = c.app.state.results
        opened = results.stack

        def stack(job):  # every request opens the job first (before and after tap14): counted here
            ps = opened(job)
            arrived.release()
            return ps

        monkeypatch.setattr(results, "stack", stack)
        answers = [None] * n

        def ask(k: int) -> None:
            answers[k] = c.post(f"/api/jobs/{job_id}/tap", json={"x": plain[0], "y": plain[1]})

        askers = [threading.Thread(target=ask, args=(k,)) for k in range(n)]
        for t in askers:
            t.start()
        for _ in range(n):
            assert arrived.acquire(timeout=60)
        all_in.set()  # every tap has opened the job: those that make the depth make it now
        for t in askers:
            t.join(60)
        results.ahead.idle(60)
    assert all(a is not None and a.status_code == 200 for a in answers), [a and a.text for a in answers]
    assert depth.calls == 1
    said = [a.json() for a in answers]
    assert all(s == said[0] for s in said) and said[0]["filled_from"] == "depth map"
    assert not list((tmp_path / "data" / "jobs" / job_id / "stack").glob("tap_depth_*"))


def test_a_tap_that_makes_depth_waits_for_the_heavy_budget_and_a_cheap_one_does_not(rendered, tmp_path,
                                                                                      monkeypatch):
    """With every heavy slot taken (renders under way), a textured tap and a plain tap whose depth is made answer
    at once; a plain tap that has to make its depth starts only once a slot is free (before tap14 it made it
    beside the renders)."""
    from postfocus.products import tap_depth

    _, stack = rendered
    plain, textured = points(stack)
    job_id = done_job(tmp_path / "data", stack)
    order, entered = [], threading.Event()
    made = tap_depth.grid_depth

    def depth(*args, **kwargs):
        order.append("depth made")
        entered.set()
        return made(*args, **kwargs)

    monkeypatch.setattr(tap_depth, "grid_depth", depth)
    with client(tmp_path / "data") as c:
        results = c.app.state.results
        results.ahead.close()  # nothing made ahead: the tap makes it
        fill = results.ahead.fill

        def waiting_fill(ps):
            entered.set()  # at the gate
            return fill(ps)

        monkeypatch.setattr(results.ahead, "fill", waiting_fill)
        url = f"/api/jobs/{job_id}/tap"
        for _ in range(HEAVY_AT_ONCE):
            assert results._heavy.acquire(timeout=5)
        assert c.post(url, json={"x": textured[0], "y": textured[1]}).json()["fallback"] is False
        answer = {}
        plain_tap = threading.Thread(target=lambda: answer.update(c.post(url, json={"x": plain[0], "y": plain[1]})
                                                                  .json()))
        plain_tap.start()
        assert entered.wait(60)
        order.append("released")
        for _ in range(HEAVY_AT_ONCE):
            results._heavy.release()
        plain_tap.join(60)
        assert order == ["released", "depth made"]
        assert answer["filled_from"] == "depth map"
        for _ in range(HEAVY_AT_ONCE):  # renders again: the depth is made, the plain tap waits for nothing
            assert results._heavy.acquire(timeout=5)
        again = {}
        second = threading.Thread(target=lambda: again.update(c.post(url, json={"x": plain[0], "y": plain[1]})
                                                              .json()))
        second.start()
        second.join(60)
        for _ in range(HEAVY_AT_ONCE):
            results._heavy.release()
        assert not second.is_alive() and again == answer and order == ["released", "depth made"]


def test_a_finished_job_has_its_plain_tap_fill_made_before_the_first_tap(rendered, tmp_path, monkeypatch):
    """A job processed by the app: once its worker ends, the server reads its plain tap's fill ahead (the depth
    map the job kept, here), so the first tap reads no file and makes nothing (before tap14 it read the 4K
    depth map: 118 ms of CPU)."""
    from postfocus.products import tap_depth
    from postfocus.store import kept

    frames, stack = rendered
    plain, _ = points(stack)
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in sorted(frames.glob("frame_*.png"))]
    with client(tmp_path / "data") as c:
        results, ended = c.app.state.results, threading.Event()
        ahead = results.tap_ahead

        def tap_ahead(job):  # called by the job queue when the job's worker ended with the job done
            ahead(job)
            ended.set()

        monkeypatch.setattr(results, "tap_ahead", tap_ahead)
        r = c.post("/api/jobs", files=files)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        assert ended.wait(120) and results.ahead.idle(60)
        assert c.get(f"/api/jobs/{job_id}").json()["state"] == "done"
        loads, depth = Counted(kept.load_kept), Counted(tap_depth.grid_depth)
        monkeypatch.setattr(kept, "load_kept", loads)
        monkeypatch.setattr(tap_depth, "grid_depth", depth)
        said = c.post(f"/api/jobs/{job_id}/tap", json={"x": plain[0], "y": plain[1]}).json()
    assert said["filled_from"] == "depth map"
    assert not [args for args in loads.args if Path(args[0]).exists()] and depth.calls == 0  # read from memory


def test_a_failure_ahead_is_logged_once_and_the_tap_still_answers(rendered, tmp_path, monkeypatch, caplog):
    """The depth made ahead fails (a full disk, say) twice: one warning; the tap makes it itself and answers
    from it. When the tap's making fails too, it answers from the focus map (no 500), still one warning."""
    from postfocus.products import tap_depth

    _, stack = rendered
    plain, _ = points(stack)
    job_id = done_job(tmp_path / "data", stack)
    failures = {"left": 2}
    made = tap_depth.grid_depth

    def depth(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        return made(*args, **kwargs)

    monkeypatch.setattr(tap_depth, "grid_depth", depth)
    caplog.set_level(logging.WARNING, logger="postfocus.web")
    with client(tmp_path / "data") as c:
        results = c.app.state.results
        job = Store(tmp_path / "data").job(job_id)
        for _ in range(2):
            results.tap_ahead(job)
            assert results.ahead.idle(60)
        said = c.post(f"/api/jobs/{job_id}/tap", json={"x": plain[0], "y": plain[1]})
        assert said.status_code == 200 and said.json()["filled_from"] == "depth map"
        other = done_job(tmp_path / "data", stack)  # a second job: every making fails
        refocus._FILLS.clear()
        failures["left"] = 10
        said = c.post(f"/api/jobs/{other}/tap", json={"x": plain[0], "y": plain[1]})
        assert results.ahead.idle(60)
        assert said.status_code == 200 and said.json()["filled_from"] == "focus map"
    warned = [r for r in caplog.records if "could not be made" in r.getMessage()]
    assert [r.getMessage().split(":")[0] for r in warned] == [f"job {job_id}", f"job {other}"]


def test_the_app_thread_budget_reaches_its_renders(rendered, tmp_path, monkeypatch):
    """``create_app(threads=3)``: the tap's depth, the depth map, the range merge and OpenCV in the server
    process all get 3; by default each render gets ``app_threads(workers)``."""
    from postfocus import store
    from postfocus.products import depth_cache, tap_depth

    _, stack = rendered
    plain, _ = points(stack)
    job_id = done_job(tmp_path / "data", stack)
    grid, maps, merges = Counted(tap_depth.grid_depth), Counted(depth_cache.stack_depth), Counted(store.merge)
    monkeypatch.setattr(tap_depth, "grid_depth", grid)
    monkeypatch.setattr(depth_cache, "stack_depth", maps)
    monkeypatch.setattr(store, "merge", merges)
    before = cv2.getNumThreads()
    with client(tmp_path / "data", threads=3) as c:
        assert cv2.getNumThreads() == 3
        c.app.state.results.ahead.idle(60)
        assert c.post(f"/api/jobs/{job_id}/tap", json={"x": plain[0], "y": plain[1]}).status_code == 200
        assert c.get(f"/api/jobs/{job_id}/depth.png").status_code == 200
        assert c.get(f"/api/jobs/{job_id}/merge.jpg?start=0&end=4").status_code == 200
    assert cv2.getNumThreads() == before
    assert grid.threads == [3] and maps.threads == [3] and merges.threads == [3]
    with client(tmp_path / "other") as c:
        assert c.app.state.results.threads == app_threads(2) == max(1, len(os.sched_getaffinity(0)) // 3)


def test_the_app_thread_budget_counts_the_cores_the_server_may_run_on(monkeypatch):
    """A server limited to 6 of a 64-core host's cores (a container's cpuset, ``taskset``) shares 6, not 64: it
    counted ``os.cpu_count()`` (review18 noticed), so each render took 21 threads on 6 cores."""
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    assert app_threads(2) == 2 and app_threads(1) == 3 and app_threads(2, cores=64) == 21


def test_serve_hands_the_root_threads_to_the_app(tmp_path, monkeypatch):
    """``postfocus --threads 3 serve``: the app is made with threads=3; without it, with None (app_threads)."""
    from click.testing import CliRunner

    from postfocus.cli.common import main
    from postfocus.errors import PostfocusError
    from postfocus.web import app

    made = []

    def create(*args, **kwargs):
        made.append(kwargs.get("threads"))
        raise PostfocusError("stopped here")

    monkeypatch.setattr(app, "create_app", create)
    for args, threads in ((["--threads", "3"], 3), ([], None)):
        result = CliRunner().invoke(main, [*args, "serve", "--data-dir", str(tmp_path), "--no-browser"])
        assert "stopped here" in result.output and result.exit_code != 0
        assert made.pop() == threads


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread nice values are read from /proc")
def test_work_made_ahead_leaves_no_thread_of_the_server_at_a_lower_priority(rendered, tmp_path):
    """OpenCV's worker threads are made by the first thread that runs parallel work, and a Linux thread inherits
    its maker's nice value, which an unprivileged process cannot take back: with the ahead thread at nice +10
    (tap14), every later render of the app (its requests' OpenCV work) ran on worker threads at +10 for the
    server's life. Run in a fresh process (no OpenCV pool made yet), as the server's first parallel work."""
    import subprocess
    import sys
    import textwrap

    _, stack = rendered
    script = textwrap.dedent(f"""
        import os, threading, cv2, numpy as np
        from postfocus.pipeline.threads import configure_threads
        from postfocus.store import ProcessedStack
        from postfocus.web.taps import TapAhead

        configure_threads(2)
        ahead = TapAhead(threading.Semaphore(2), threads=2)

        def opened():  # as Results.stack: the stack opened on the ahead thread, OpenCV work done there
            cv2.GaussianBlur(np.ones((2000, 2000), np.float32), (31, 31), 5)
            return ProcessedStack.open({str(stack)!r})

        ahead.soon("job", opened)
        assert ahead.idle(60)
        cv2.GaussianBlur(np.ones((2000, 2000), np.float32), (31, 31), 5)  # a request's render, after
        nice = {{}}
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{{tid}}/stat") as f:
                nice[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[16])
        print(len(nice), sorted(set(nice.values())))
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    count, values = out.stdout.split(" ", 1)
    assert int(count) >= 3, out.stdout  # the main thread, the ahead thread, OpenCV's workers
    assert values.strip() == str([os.getpriority(os.PRIO_PROCESS, 0)]), out.stdout


def test_the_folder_locks_of_a_long_running_server_do_not_pile_up(rendered, tmp_path):
    """One lock per stack folder was kept for the server's life (never dropped): a server through 200 jobs held
    200. A folder's lock lives while someone holds or waits for it; two askers still share one."""
    from postfocus.web.taps import TapAhead

    _, stack = rendered
    ahead = TapAhead(threading.Semaphore(2), threads=1)
    ps = ProcessedStack.open(stack)
    for i in range(200):
        with ahead._folder_lock(str(tmp_path / f"job{i}" / "stack")):
            pass
    ahead.fill(ps)  # (a made one too)
    assert len(ahead._folders) == 0
    with ahead._folder_lock("x"):  # held: one lock for every asker
        assert ahead._folder_lock("x") is ahead._folder_lock("x") and len(ahead._folders) == 1


def test_a_job_opened_again_or_deleted_while_waiting_is_made_from_its_newest_stack(rendered, tmp_path):
    """While the ahead thread worked on one job, a second job waiting its turn was rebuilt (its stack opened again)
    or deleted: the waiting entry kept the first opener (the stack object of the folder replaced or gone), so the
    fill was made from the old stack (or failed, with a warning for a deleted job) and the new one not made ahead."""
    from postfocus.web.taps import TapAhead

    _, stack = rendered
    ahead, gate, calls = TapAhead(threading.Semaphore(2), threads=1), threading.Event(), []

    def opener(name):
        def opened():
            calls.append(name)
            if name == "busy":
                assert gate.wait(60)
            return ProcessedStack.open(stack)
        return opened

    ahead.soon("busy", opener("busy"))
    ahead.soon("job", opener("old stack"))
    ahead.soon("job", opener("new stack"))  # (Results.stack of the job rebuilt)
    ahead.soon("gone", opener("deleted job"))
    ahead.forget("gone")  # (Results.forget of the job deleted)
    gate.set()
    assert ahead.idle(60)
    assert calls == ["busy", "new stack"]
    ahead.close()


def test_closing_waits_for_the_work_under_way_so_the_server_exits_cleanly():
    """The server shut down (Ctrl-C) while the ahead thread made a depth: close() did not wait, the interpreter
    ended with that daemon thread inside OpenCV, and the process aborted ("terminate called without an active
    exception", exit 134, 6 runs in 6 before review18). close() now waits for the piece under way."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import threading, time, numpy as np, cv2
        from postfocus.web.taps import TapAhead

        started, image = threading.Event(), np.random.rand(1500, 1500).astype(np.float32)

        def opened():  # as a depth made ahead: OpenCV work on the ahead thread for about 1 s, then a failure
            started.set()
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                cv2.GaussianBlur(image, (0, 0), 8)
            raise OSError("no space left")

        ahead = TapAhead(threading.Semaphore(2), threads=2)
        ahead.soon("job", opened)
        ahead.soon("next", opened)  # waiting: dropped by close
        assert started.wait(30)
        ahead.close()  # as the app's lifespan at shutdown
        print("closed", ahead.idle(0))
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                             check=False)
        assert (out.returncode, out.stdout) == (0, "closed True\n"), out.stderr[-500:]
