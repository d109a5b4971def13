"""The depth map's fill on one thread or two (``postfocus.products.depth_fill``): the same bits, and one thread is one.

The rendered occluder scene (240x320, 8 frames, ``bench_depth.make_stack``) has pixels of all three kinds
the fill serves (occlusion bands, weak pixels, outlier islands), so the fill and both region medians run.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import make_stack  # noqa: E402

import postfocus.products.depth as depth_module  # noqa: E402
import postfocus.products.depth_fill as fill_module  # noqa: E402
from postfocus.products.depth import depth_map  # noqa: E402


@pytest.fixture(scope="module")
def occluder(tmp_path_factory):
    root = tmp_path_factory.mktemp("depth_fill")
    ps, _, truth = make_stack("occluder", root / "occluder", cache=root / "cache")
    return ps


def _captured(ps, monkeypatch):
    """The inputs ``refine_depth`` gives ``fill_regions`` on the stack."""
    seen = {}

    def capture(*args, **kwargs):
        seen.update(args=args, kwargs=kwargs)
        return fill_module.fill_regions(*args, **kwargs)

    monkeypatch.setattr(depth_module, "fill_regions", capture)
    depth_map(ps, threads=1)
    monkeypatch.undo()
    return seen["args"], seen["kwargs"]


def test_two_threads_give_the_same_depth_to_the_bit(occluder, monkeypatch):
    args, kwargs = _captured(occluder, monkeypatch)
    for mask in ("bands", "weak", "outliers"):  # all three kinds present: the fill and both medians run
        assert 0 < int(kwargs[mask].sum()) < kwargs[mask].size / 2, mask
    one = fill_module.fill_regions(*args, **{**kwargs, "threads": 1})
    two = fill_module.fill_regions(*args, **{**kwargs, "threads": 2})
    assert one.dtype == two.dtype == np.float32
    assert np.array_equal(one, two)
    assert not np.array_equal(one, args[0])  # (the fill changed the depth somewhere: not a pass-through)
    a, b = depth_map(occluder, threads=1), depth_map(occluder, threads=2)
    assert np.array_equal(a.depth, b.depth) and np.array_equal(a.confidence, b.confidence)


def _threads_of_the_fill(ps, monkeypatch, threads):
    """The threads that made the filters' weights, filtered each part of the plane fill's sums and made each region
    median in ``depth_map(ps, threads=threads)``; and the names of the threads alive during it."""
    ran = {"weights": set(), "fill": {}, "median": set(), "alive": set()}
    before = set(threading.enumerate())  # (threads earlier tests left running, e.g. a server's, are not the fill's)

    def on(kind, real):
        def run(*args, **kwargs):
            ran[kind].add(threading.get_ident())
            ran["alive"].update(t.name for t in threading.enumerate() if t not in before)
            return real(*args, **kwargs)
        return run

    def filter_part(sums, part, *args, **kwargs):
        ran["fill"][part] = threading.get_ident()
        return real_filter(sums, part, *args, **kwargs)

    real_filter = fill_module.PlaneSums.filter
    monkeypatch.setattr(fill_module, "domain_weights", on("weights", fill_module.domain_weights))
    monkeypatch.setattr(fill_module.PlaneSums, "filter", filter_part)
    monkeypatch.setattr(fill_module, "geodesic_median", on("median", fill_module.geodesic_median))
    depth_map(ps, threads=threads)
    monkeypatch.undo()
    return ran


def test_one_thread_keeps_all_of_the_fill_on_the_calling_thread(occluder, monkeypatch):
    me = threading.get_ident()
    one = _threads_of_the_fill(occluder, monkeypatch, 1)
    assert one["weights"] == {me} and one["fill"] == {0: me} and one["median"] == {me}
    assert not any(name.startswith("postfocus") for name in one["alive"])
    two = _threads_of_the_fill(occluder, monkeypatch, 2)
    assert me not in two["weights"] and len(two["weights"]) == 1  # the weights made ahead on a helper,
    assert two["fill"][0] == me and two["fill"][1] != me  # the fill's two parts on two threads,
    assert two["median"] == {me, two["fill"][1]}  # the bands' median here, the outliers' on the helper


def test_one_thread_starts_no_thread_and_two_share_the_steps_before_the_fill(occluder, monkeypatch):
    """``threads=1`` starts no thread at all in ``depth_map``; with 2 the aggregation, the outliers' median and
    the end peaks' blur responses take turns with a helper (``postfocus-turns``) and the peak fit's rows are halved
    (``postfocus-peak``), with the same depth (``test_two_threads_give_the_same_depth_to_the_bit``)."""
    started = []
    real_start = threading.Thread.start

    def start(thread):
        started.append(thread.name)
        return real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    depth_map(occluder, threads=1)
    assert started == []
    depth_map(occluder, threads=2)
    assert any(name.startswith("postfocus-turns") for name in started)
    assert any(name.startswith("postfocus-peak") for name in started)


def test_aperture_makes_its_depth_map_on_the_threads_it_is_given(occluder, monkeypatch):
    """``postfocus --threads 1 aperture`` (and ``depth``, ``stereo``) pass their budget down to the depth map."""
    from postfocus.products.aperture import aperture

    ran = set()
    real = fill_module.geodesic_median
    monkeypatch.setattr(fill_module, "geodesic_median",
                        lambda *a, **k: (ran.add(threading.get_ident()), real(*a, **k))[1])
    for kept in occluder.folder.glob("depth_*.npz"):
        kept.unlink()
    aperture(occluder, preset="near", f_number=2.8, threads=1)
    assert ran == {threading.get_ident()}


@pytest.mark.parametrize("threads", [0, -1, 2.5, "2", True])
def test_a_thread_budget_that_is_not_a_whole_number_from_one_is_a_clear_error(occluder, threads):
    from postfocus.errors import OptionError
    from postfocus.products.depth_cache import stack_depth

    for make in (depth_map, stack_depth):
        with pytest.raises(OptionError, match="threads"):
            make(occluder, threads=threads)


def _products(tmp_path):
    """Every product that makes the stack's depth map, as ``product(stack, threads=...)``."""
    from postfocus.check.stack import forward_check
    from postfocus.products.animate import plan_pull
    from postfocus.products.aperture import aperture
    from postfocus.products.mesh import stack_mesh
    from postfocus.products.pop import pop
    from postfocus.products.stereo import stereo
    from postfocus.viewer.export import depth_preview, export_page, viewer_data

    return {
        "aperture": lambda ps, **k: aperture(ps, preset="near", f_number=2.8, **k),
        "mesh": lambda ps, **k: stack_mesh(ps, **k),
        "pop": lambda ps, **k: pop(ps, 10, 10, **k),
        "animate": lambda ps, **k: plan_pull(ps, f_number=2.8, **k),
        "stereo": lambda ps, **k: stereo(ps, **k),
        "check": lambda ps, **k: forward_check(ps, **k),
        "depth_preview": lambda ps, **k: depth_preview(ps, np.zeros((24, 32, 3), np.float32), **k),
        "viewer_data": lambda ps, **k: viewer_data(ps, long_edge=64, tap_map=False, **k),
        "export_page": lambda ps, **k: export_page(ps, tmp_path / "page.html", long_edge=64, **k),
    }


PRODUCTS = ["aperture", "mesh", "pop", "animate", "stereo", "check", "depth_preview", "viewer_data", "export_page"]


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_product_makes_its_depth_map_on_the_threads_it_is_given(occluder, monkeypatch, tmp_path, product):
    """``postfocus --threads 1 mesh`` (and ``pop``, ``animate``, ``check``, ``view``) made the depth map on two
    threads: only ``depth``, ``aperture`` and ``stereo`` passed the budget on (speed17 noticed). Each product
    takes ``threads=`` now: 1 keeps the fill on the calling thread, 2 makes its filters' weights on a helper
    (depth18)."""
    make = _products(tmp_path)[product]
    me = threading.get_ident()
    for threads, on_me in ((1, True), (2, False)):
        ran = set()
        real = fill_module.domain_weights
        monkeypatch.setattr(fill_module, "domain_weights",
                            lambda *a, **k: (ran.add(threading.get_ident()), real(*a, **k))[1])
        for kept in occluder.folder.glob("depth_*.npz"):
            kept.unlink()
        make(occluder, threads=threads)
        monkeypatch.undo()
        assert len(ran) == 1 and (me in ran) == on_me, (threads, ran, me)


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_product_refuses_a_thread_budget_before_any_work(occluder, monkeypatch, tmp_path, product):
    from postfocus.errors import OptionError

    monkeypatch.setattr(depth_module, "refine_depth", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.setattr(type(occluder), "all_in_focus", lambda *a, **k: pytest.fail("work started"))
    for threads in (0, -1, 2.5, "2", True, 10**6):
        with pytest.raises(OptionError, match="threads"):
            _products(tmp_path)[product](occluder, threads=threads)
    assert not (tmp_path / "page.html").exists()
    if product == "depth_preview":  # (handed the depth map, it ignored the budget)
        from postfocus.viewer.export import depth_preview

        with pytest.raises(OptionError, match="threads"):
            depth_preview(occluder, np.zeros((24, 32, 3), np.float32), object(), threads=0)
