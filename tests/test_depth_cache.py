"""The depth map kept in a stack folder: the same map as made fresh, made again when anything it
depends on changes, and never trusted when damaged (the file heals itself)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from postfocus import process
from postfocus.errors import OutputError
from postfocus.products import depth_cache
from postfocus.products.aperture import aperture
from postfocus.products.depth import depth_map
from postfocus.store.kept import load_kept


@pytest.fixture
def stack(tiny_stack, tmp_path):
    return process([str(p) for p in tiny_stack.paths], cache_dir=tmp_path / "cache")


@pytest.fixture
def made(monkeypatch):
    """Counts the depth maps actually made (not read from the folder)."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return depth_map(*args, **kwargs)

    monkeypatch.setattr(depth_cache, "depth_map", counting)
    return calls


def same(a, b):
    return a.frames == b.frames and np.array_equal(a.depth, b.depth) and np.array_equal(a.confidence, b.confidence)


def test_kept_map_is_the_fresh_map_and_is_read_back(stack, made):
    fresh = depth_map(stack)
    path = depth_cache.depth_path(stack)
    assert not path.exists()  # a folder without a kept depth (as every older one) works
    first = depth_cache.stack_depth(stack)
    assert path.is_file() and made == [1]
    second = depth_cache.stack_depth(stack)
    assert made == [1]  # read, not made
    assert same(first, fresh) and same(second, fresh)
    assert second.depth.dtype == np.float32 and second.depth.shape == stack.size
    stack.verify()  # not in the manifest: the stack folder is still whole


def test_aperture_reads_the_kept_map(stack, made):
    h, w = stack.size
    a = aperture(stack, focus_at_point=(w / 2, h / 2), f_number=2)
    b = aperture(stack, focus_at_point=(w / 2, h / 2), f_number=2)
    assert made == [1]
    assert np.array_equal(a.image, b.image) and a.focus == b.focus


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_damaged_map_is_made_again_and_healed(stack, made, damage):
    fresh = depth_cache.stack_depth(stack)
    path = depth_cache.depth_path(stack)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 3] ^= 0x40  # inside the depth values: only the member's CRC-32 tells
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a zip file" * 100)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    key = depth_cache.depth_key(stack)
    assert load_kept(path, key) is None
    again = depth_cache.stack_depth(stack)
    assert made == [1, 1] and same(again, fresh)
    assert load_kept(path, key) is not None  # healed


@pytest.mark.parametrize("damage", ["nan", "far", "text", "two frame counts", "no confidence"])
def test_a_kept_file_that_is_no_depth_map_is_made_again_and_healed(stack, made, damage):
    """A depth file under the stack's key whose depths are NaN or 1e30 was handed to aperture, pop, mesh as is (a
    NaN depth map), text was read as numbers, two frame counts or no confidence were a TypeError or KeyError in
    every product, for good (review15). It is made again and kept in its place."""
    from postfocus.store.kept import KEY_FIELD

    fresh = depth_cache.stack_depth(stack)
    path, key = depth_cache.depth_path(stack), depth_cache.depth_key(stack)
    arrays = {"depth": fresh.depth, "confidence": fresh.confidence, "frames": np.asarray(fresh.frames)}
    if damage == "nan":
        arrays["depth"] = np.full_like(fresh.depth, np.nan)
    elif damage == "far":
        arrays["depth"] = np.full_like(fresh.depth, 1e30)
    elif damage == "text":
        arrays["depth"] = fresh.depth.astype(str)
    elif damage == "two frame counts":
        arrays["frames"] = np.asarray([fresh.frames, 1])
    else:
        del arrays["confidence"]
    with open(path, "wb") as fh:
        np.savez(fh, **{KEY_FIELD: np.asarray(key)}, **arrays)
    again = depth_cache.stack_depth(stack)
    assert made == [1, 1] and same(again, fresh)
    healed = load_kept(path, key)
    assert healed is not None and np.array_equal(healed["depth"], fresh.depth)


def test_made_again_when_what_it_depends_on_changes(stack, made, monkeypatch):
    base = depth_cache.stack_depth(stack)
    key = depth_cache.depth_key(stack)
    monkeypatch.setattr(depth_cache, "DEPTH_VERSION", depth_cache.DEPTH_VERSION + 1)  # the algorithm changed
    assert depth_cache.depth_key(stack) != key
    depth_cache.stack_depth(stack)
    assert made == [1, 1]
    with_options = depth_cache.stack_depth(stack, band=2)  # other options
    assert made == [1, 1, 1] and depth_cache.depth_key(stack, options={"band": 2}) != depth_cache.depth_key(stack)
    assert same(with_options, depth_map(stack, band=2))
    guide = stack.all_in_focus_path()
    stat = guide.stat()
    os.utime(guide, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the guide was written again
    again = depth_cache.stack_depth(stack, band=2)
    assert made == [1, 1, 1, 1] and same(again, with_options)
    assert base.depth.shape == again.depth.shape


def test_options_that_are_not_plain_values_are_not_kept(stack, made):
    motion = np.zeros(stack.maps.focus_index.shape, np.float32)
    depth_cache.stack_depth(stack, motion=motion)
    depth_cache.stack_depth(stack, motion=motion)
    assert made == [1, 1] and not depth_cache.depth_path(stack).exists()


def test_a_folder_that_cannot_be_written_still_gives_the_map(stack, made, monkeypatch):
    def refuse(path, write):
        raise OutputError(f"{path}: read-only")

    monkeypatch.setattr("postfocus.store.kept.atomic_write", refuse)
    result = depth_cache.stack_depth(stack)
    assert made == [1] and not depth_cache.depth_path(stack).exists()
    assert same(result, depth_map(stack))


def test_one_maker_at_a_time(stack, made):
    results = [None, None]

    def run(i):
        results[i] = depth_cache.stack_depth(stack)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1]  # the second waited on the folder's lock, then read the first one's map
    assert same(results[0], results[1])


def test_making_a_map_reports_progress_reading_it_does_not(stack, made):
    """``depth`` worked for seconds without a word on a stack's first map (ninth session walkthrough)."""
    seen = []
    first = depth_cache.stack_depth(stack, progress=lambda *a: seen.append(a))
    assert made == [1] and seen == [("depth map", 0, 1), ("depth map", 1, 1)]
    seen.clear()
    again = depth_cache.stack_depth(stack, progress=lambda *a: seen.append(a))
    assert made == [1] and seen == [] and same(first, again)


@pytest.mark.parametrize("product", ["pop", "mesh", "stereo", "animate", "view"])
def test_the_first_product_of_a_stack_reports_its_depth_map(stack, made, product, tmp_path):
    """mesh, stereo, pop, animate (to the nearest subject) and view make a stack's depth map when they come
    first: they say so to their callback."""
    from postfocus.products.animate import animate
    from postfocus.products.mesh import stack_mesh
    from postfocus.products.pop import pop
    from postfocus.products.stereo import stereo
    from postfocus.viewer.export import viewer_data

    h, w = stack.size
    run = {"pop": lambda cb: pop(stack, w // 4, h // 2, progress=cb),
           "mesh": lambda cb: stack_mesh(stack, max_faces=2000, progress=cb),
           "stereo": lambda cb: stereo(stack, progress=cb),
           "animate": lambda cb: animate(stack, tmp_path / "pull.gif", start="near", end="far", duration=0.5,
                                         fps=4, long_edge=64, progress=cb),
           "view": lambda cb: viewer_data(stack, long_edge=64, tap_map=False, progress=cb)}[product]
    seen = []
    run(lambda *a: seen.append(a))
    assert made == [1] and ("depth map", 0, 1) in seen and ("depth map", 1, 1) in seen
    seen.clear()
    run(lambda *a: seen.append(a))
    assert made == [1] and ("depth map", 0, 1) not in seen  # read from the folder: nothing to wait for


@pytest.mark.parametrize("command", [["pop", "--at", "25%,50%"], ["mesh"], ["stereo"], ["animate"], ["view"]])
def test_first_products_draw_the_depth_maps_bar(tiny_stack, tmp_path, cli, command):
    ext = {"pop": ".jpg", "mesh": ".ply", "stereo": ".jpg", "animate": ".gif", "view": ".html"}[command[0]]
    run = cli(command[0], *map(str, tiny_stack.paths), *command[1:], "-o", str(tmp_path / f"x{ext}"),
              cache=tmp_path / "cache", env={"TTY_INTERACTIVE": "1", "TTY_COMPATIBLE": "1"})
    assert run.returncode == 0, run.stderr
    assert "depth map" in run.stderr and "100%" in run.stderr


def test_depth_command_draws_a_bar_and_times_the_map(tiny_stack, tmp_path, cli):
    import json

    args = ("depth", *map(str, tiny_stack.paths))
    shown = cli(*args, "-o", str(tmp_path / "a.png"), cache=tmp_path / "one",
                env={"TTY_INTERACTIVE": "1", "TTY_COMPATIBLE": "1"})
    assert shown.returncode == 0, shown.stderr
    assert "depth map" in shown.stderr and "100%" in shown.stderr  # the bar, on a terminal
    timed = cli(*args, "-o", str(tmp_path / "b.png"), "--json", cache=tmp_path / "other")
    assert timed.returncode == 0, timed.stderr
    assert "depth map" in json.loads(timed.stdout)["timings"]["stages"]


def test_depth_command_keeps_the_map(tiny_stack, tmp_path, cli):
    cache = tmp_path / "cache"
    out = tmp_path / "d.png"
    first = cli("depth", *map(str, tiny_stack.paths), "-o", str(out), cache=cache)
    assert first.returncode == 0, first.stderr
    kept = list(cache.glob("*/depth_*.npz"))
    assert len(kept) == 1
    before = kept[0].stat().st_mtime_ns
    second = cli("depth", *map(str, tiny_stack.paths), "-o", str(tmp_path / "e.png"), cache=cache)
    assert second.returncode == 0, second.stderr
    assert kept[0].stat().st_mtime_ns == before  # read, not written again
    assert (tmp_path / "e.png").read_bytes() == out.read_bytes()


def test_made_hears_of_a_map_made_now_before_it_is_kept_and_not_of_a_kept_one(stack, made):
    heard = []

    def hook(result):
        heard.append((result, depth_cache.depth_path(stack).exists()))

    first = depth_cache.stack_depth(stack, made=hook)
    assert len(heard) == 1 and heard[0][1] is False  # before the folder kept it
    assert same(heard[0][0], first)
    depth_cache.stack_depth(stack, made=hook)
    assert len(heard) == 1 and made == [1]  # read from the folder: nothing made, nothing heard


def test_depth_command_encodes_its_png_on_a_helper_with_two_threads_and_starts_none_with_one(tiny_stack, tmp_path,
                                                                                            monkeypatch):
    """The PNG of a map made now is encoded on a helper (``postfocus-depth-png``) while the folder keeps the map;
    ``--threads 1`` starts no thread after the stack is processed. The files are the same bytes either way, and as
    the writers make them from the map alone (the .npy np.save's own bytes)."""
    import io

    import cv2
    from click.testing import CliRunner

    from postfocus.cli import main
    from postfocus.products.depth import DepthResult
    from postfocus.products.depth_png import depth_png_bytes

    before = cv2.getNumThreads()  # (the root --threads sets OpenCV's process-wide count: given back below)
    cache = tmp_path / "cache"
    paths = [str(p) for p in tiny_stack.paths]
    base = ["--cache", str(cache)]
    first = CliRunner().invoke(main, ["-q", "depth", *paths, *base, "-o", str(tmp_path / "a.png")])
    assert first.exit_code == 0, first.output
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread.name), real_start(thread))[1])
    files = {}
    for threads in ("2", "1"):
        for kept in cache.glob("*/depth_*.npz"):
            kept.unlink()  # (the map made again, from the processed stack)
        started.clear()
        png, npy = tmp_path / f"d{threads}.png", tmp_path / f"d{threads}.npy"
        try:
            run = CliRunner().invoke(main, ["--threads", threads, "-q", "depth", *paths, *base, "-o", str(png),
                                            "--npy", str(npy)])
        finally:
            cv2.setNumThreads(before)
        assert run.exit_code == 0, run.output
        files[threads] = (png.read_bytes(), npy.read_bytes())
        if threads == "1":
            assert started == []
        else:
            assert any(name.startswith("postfocus-depth-png") for name in started)
    assert files["1"] == files["2"]
    depth = np.load(tmp_path / "d1.npy")
    buf = io.BytesIO()
    np.save(buf, depth)
    assert files["1"][1] == buf.getvalue()
    frames = len(tiny_stack.paths)
    assert files["1"][0] == depth_png_bytes(DepthResult(depth=depth, confidence=np.ones_like(depth), frames=frames))


def _counted_grid(monkeypatch):
    """Counts the grid depths made (the depth map's and the tap's), whichever module makes them."""
    from postfocus.products import depth, tap_depth

    calls, made = [], depth.grid_depth

    def counting(*args, **kwargs):
        calls.append(1)
        return made(*args, **kwargs)

    monkeypatch.setattr(depth, "grid_depth", counting)
    monkeypatch.setattr(tap_depth, "grid_depth", counting)
    return calls


def test_a_tap_then_a_depth_map_make_the_grid_depth_once_and_the_map_is_the_same_bits(stack, monkeypatch):
    """The first tap keeps the depth on the focus map's grid with its confidence (``tap_depth_<method>.npz``); the
    depth map made next starts from it (reuse20): one grid depth, not two (two on main), and the map is the one made
    from scratch, to the bit, also once kept and read back."""
    from postfocus import tap
    from postfocus.products import refocus

    fresh = depth_map(stack)  # from scratch (nothing kept yet)
    refocus._FILLS.clear()
    calls = _counted_grid(monkeypatch)
    h, w = stack.size
    tap(stack, w / 3, h / 2)  # (every tap on a stack folder reads its depth since fixes25)
    assert calls == [1] and len(list(stack.folder.glob("tap_depth_*.npz"))) == 1
    first = depth_cache.stack_depth(stack)
    assert calls == [1], "the depth map made the grid depth again"
    assert same(first, fresh)
    assert same(depth_cache.stack_depth(stack), fresh) and calls == [1]  # read back


def test_a_tap_depth_without_confidence_or_under_another_key_is_not_used(stack, monkeypatch):
    """A tap depth kept before reuse20 (no confidence) or under another key (other options) does not give the
    depth map its grid: made from scratch, the same bits."""
    from postfocus.products import tap_depth
    from postfocus.store.kept import keep

    method, key = tap_depth.tap_depth_source(stack)
    path = tap_depth.tap_depth_path(stack, method)
    depth = tap_depth.tap_depth(stack, method, key)
    assert tap_depth.kept_grid(stack, method, key) is not None
    assert tap_depth.kept_grid(stack, method, depth_cache.depth_key(stack, method, {"x": 1})) is None  # other options
    keep(path, key, {"depth": depth})  # (as main kept it: no confidence)
    assert tap_depth.kept_grid(stack, method, key) is None and tap_depth.kept_tap_depth(stack, method, key) is not None
    calls = _counted_grid(monkeypatch)
    assert same(depth_cache.stack_depth(stack), depth_map(stack)) and len(calls) == 2  # (the kept one made it too)
    depth_cache.depth_path(stack).unlink()
    keep(path, key, {"depth": depth, "confidence": np.full(depth.shape, np.nan, np.float32)})  # no confidence
    assert tap_depth.kept_grid(stack, method, key) is None
    calls.clear()
    depth_cache.stack_depth(stack)
    assert calls == [1]


def test_a_tap_on_a_stack_whose_depth_map_is_kept_reads_it_and_makes_no_grid_depth(stack, monkeypatch):
    """The reverse (reuse20 checked it; so since fixes25): a depth map kept first, a later process's tap reads
    it, brought to the focus map's grid, and makes no depth of its own."""
    from postfocus import tap
    from postfocus.products import refocus
    from postfocus.store import ProcessedStack

    depth_cache.stack_depth(stack)
    refocus._FILLS.clear()
    calls = _counted_grid(monkeypatch)
    h, w = stack.size
    again = ProcessedStack.open(stack.folder)
    fill, name = refocus.plain_fill(again)
    tap(again, w / 3, h / 2)
    assert calls == [] and name == "depth map" and not list(stack.folder.glob("tap_depth_*.npz"))
