"""Streaming helpers of the two passes: read-ahead decoding and exposure gains on stored pixels."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from postfocus.io.arrays import ArraySource
from postfocus.pipeline.merge import apply_gain
from postfocus.pipeline.threads import compute_ahead, read_ahead


def test_read_ahead_yields_in_order_and_prepares_in_the_background():
    frames = [np.full((4, 6, 3), k / 10, np.float32) for k in range(5)]
    source = ArraySource(frames)
    threads = set()

    def prepare(index, frame):
        threads.add(threading.current_thread().name)
        return index, float(frame[0, 0, 0])

    out = list(read_ahead(source, [3, 0, 4], prepare=prepare))
    assert [i for i, _ in out] == [3, 0, 4]
    assert [v[0] for _, v in out] == [3, 0, 4]
    assert np.allclose([v[1] for _, v in out], [0.3, 0.0, 0.4])
    assert threads and all(name.startswith("postfocus-decode") for name in threads)
    assert list(read_ahead(source, [])) == []


def test_compute_ahead_starts_at_once_keeps_order_and_holds_at_most_ahead():
    started, lock = [], threading.Lock()
    gate = threading.Event()

    def task(i):
        with lock:
            started.append(i)
        gate.wait(5)
        return i * 10

    results = compute_ahead(range(6), task, ahead=3)
    deadline = threading.Event()
    for _ in range(100):  # the first task starts before anything is asked for
        if started:
            break
        deadline.wait(0.01)
    assert started == [0]
    gate.set()
    seen = []
    for index, value in results:
        with lock:
            # never more than ``ahead`` results computed beyond the one handed out
            assert len(started) <= index + 1 + 3
        seen.append((index, value))
    assert seen == [(i, i * 10) for i in range(6)]
    with compute_ahead(range(10), lambda i: i) as early:  # closed early: no thread left running
        assert next(early) == (0, 0)
    assert early._pool is None


def test_apply_gain_keeps_the_stored_type_rounding_and_saturating():
    eight = np.array([[[100, 200, 250]]], np.uint8)
    assert apply_gain(eight, np.array([1.1, 1.0, 1.1])).tolist() == [[[110, 200, 255]]]
    assert apply_gain(eight, np.array([1.0, 1.0, 1.0])) is eight
    sixteen = np.array([[[1000, 60000, 65000]]], np.uint16)
    out = apply_gain(sixteen, np.array([0.5, 1.05, 1.01]))
    assert out.dtype == np.uint16 and out.tolist() == [[[500, 63000, 65535]]]
    floats = np.full((1, 1, 3), 0.5, np.float32)
    assert np.allclose(apply_gain(floats, np.array([2.0, 1.0, 0.5])), [[[1.0, 0.5, 0.25]]])


def test_two_workers_compute_two_at_once_and_keep_the_order():
    both = threading.Barrier(2, timeout=5)  # passes only when two tasks run at the same time

    def task(i):
        if i < 2:
            both.wait()
        return i * 10

    assert list(compute_ahead(range(5), task, workers=2)) == [(i, i * 10) for i in range(5)]


def test_large_image_frames_decoded_two_at_a_time_give_the_same_analysis(tiny_stack, monkeypatch):
    """Frames far above the working size are decoded two at a time in pass 1: the same alignment and maps."""
    from postfocus.io.open import open_source
    from postfocus.pipeline import analyse as pass1

    def run(area):
        monkeypatch.setattr(pass1, "PARALLEL_DECODE_AREA", area)
        return pass1.analyse(open_source(tiny_stack.folder))

    one, two = run(float("inf")), run(0.0)  # (0: every frame counts as large)
    assert [a.matrix.tolist() for a in one.alignment] == [a.matrix.tolist() for a in two.alignment]
    for name in ("focus_index", "confidence", "volume"):
        assert np.array_equal(getattr(one.maps, name), getattr(two.maps, name))


def _cgroup_root(tmp_path, own: str, files: dict[str, str]):
    """A fake root: ``proc/self/cgroup`` says ``own``; ``files`` are under ``sys/fs/cgroup``."""
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(own)
    for name, text in files.items():
        path = tmp_path / "sys/fs/cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("own, files, cores", [
    ("0::/\n", {"cpu.max": "max 100000\n"}, None),  # no quota
    ("0::/\n", {"cpu.max": "200000 100000\n"}, 2),
    ("0::/\n", {"cpu.max": "150000 100000\n"}, 2),  # 1.5 cores: two threads, each busy part of the time
    ("0::/\n", {"cpu.max": "1000 100000\n"}, 1),  # under one core: at least one
    ("0::/app/job\n", {"app/job/cpu.max": "max 100000\n", "app/cpu.max": "300000 100000\n"}, 3),  # a parent's
    ("0::/app/job\n", {"app/job/cpu.max": "100000 100000\n", "app/cpu.max": "300000 100000\n"}, 1),  # the least
    ("0::/elsewhere\n", {"cpu.max": "400000 100000\n"}, 4),  # a namespaced path not mounted: the mount's own
    ("4:cpu,cpuacct:/job\n", {"cpu,cpuacct/job/cpu.cfs_quota_us": "250000\n",
                              "cpu,cpuacct/job/cpu.cfs_period_us": "100000\n"}, 3),  # cgroup v1
    ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, none
    ("0::/\n", {"cpu.max": "garbage\n"}, None),  # odd files are no quota, never an error
    ("0::/\n", {"cpu.max": "0 100000\n"}, None),
    ("0::/\n", {"cpu.max": "200000 0\n"}, None),
    ("\x00\xff not a cgroup file", {}, None),
    ("0::/\n", {}, None),  # no file at all
])
def test_a_cpu_quota_is_counted_as_its_cores_and_odd_files_are_no_quota(tmp_path, own, files, cores):
    from postfocus.pipeline.threads import _quota_cores

    assert _quota_cores(_cgroup_root(tmp_path, own, files)) == cores
    assert _quota_cores(tmp_path / "nothing here") is None


def test_usable_cores_is_the_affinity_cut_to_the_quota(monkeypatch):
    from postfocus.pipeline import threads

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(threads, "_QUOTA_FRESH", 0.0)  # (read each time, not kept for a few seconds)
    monkeypatch.setattr(threads, "_quota_cores", lambda root=None: 2)
    assert threads.usable_cores() == 2
    monkeypatch.setattr(threads, "_quota_cores", lambda root=None: 8)
    assert threads.usable_cores() == 4
    monkeypatch.setattr(threads, "_quota_cores", lambda root=None: None)
    assert threads.usable_cores() == 4


def test_the_quota_is_read_again_only_after_a_few_seconds(monkeypatch):
    from postfocus.pipeline import threads

    reads = []
    monkeypatch.setattr(threads, "_quota_cores", lambda root=None: reads.append(1) or 1)
    monkeypatch.setattr(threads, "_quota_read", [float("-inf"), None])
    assert threads.usable_cores() == threads.usable_cores() == 1 and len(reads) == 1
    monkeypatch.setattr(threads, "_quota_read", [threads.time.monotonic() - threads._QUOTA_FRESH, 1])
    assert threads.usable_cores() == 1 and len(reads) == 2
