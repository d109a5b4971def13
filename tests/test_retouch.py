"""Retouching (issue 19): paint the result from a source frame, stored edits, the ``retouch`` command.

The two-halves tiny stack (conftest): the left half is sharp in frame 0, the
right half in frame 2, so "the sharpest frame under the brush" has one right
answer on each side.
"""

from __future__ import annotations

import json
import shutil
import warnings

import cv2
import numpy as np
import pytest

import postfocus
from postfocus import OptionError, ProcessedStack, process
from postfocus.errors import PostfocusWarning
from postfocus.io.images import read_image
from postfocus.products.edits import MAX_POINTS, Edit, edits_version, load_edits, mask_edit, parse_edits, save_edits
from postfocus.products.retouch import apply_edits, brush_falloff, resolve_sources, retouch, retouched, stroke_mask


@pytest.fixture(scope="module")
def stack_folder(tiny_stack, tmp_path_factory):
    """The tiny stack processed into a cache of this module's own (edits are written into it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PostfocusWarning)
        return process(tiny_stack.folder, cache_dir=tmp_path_factory.mktemp("retouch_cache")).folder


@pytest.fixture
def ps(stack_folder, tmp_path):
    """A fresh copy of the processed stack (a test may change its edits)."""
    copy = tmp_path / "stack"
    shutil.copytree(stack_folder, copy)
    return ProcessedStack.open(copy)


def box(ps, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(ps.size, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_hard_mask_takes_the_frame_exactly_and_leaves_the_rest(ps):
    aif, frame = ps.all_in_focus(), ps.read_frame(2)
    mask = box(ps, 40, 90, 30, 120)  # the left half: frame 2 is blurred there, unlike the result
    out = postfocus.retouch(ps, mask, source=2)
    assert np.array_equal(out[mask], frame[mask])
    assert np.array_equal(out[~mask], aif[~mask])
    assert np.abs(aif[mask] - frame[mask]).mean() > 0.01  # a change one can see
    assert np.array_equal(ps.all_in_focus(), aif)  # the result itself is untouched


def test_feathered_edge_lies_between_and_opacity_mixes(ps):
    aif, frame = ps.all_in_focus(), ps.read_frame(2)
    mask = box(ps, 40, 120, 30, 130)
    out = retouch(ps, mask, source=2, feather=4.0)
    inner = box(ps, 55, 105, 45, 115)
    assert np.abs(out[inner] - frame[inner]).max() < 1e-3  # 15 px (> 3 sigma) inside: the frame
    far = ~box(ps, 25, 135, 15, 145)
    assert np.abs(out[far] - aif[far]).max() < 1e-3
    edge = box(ps, 40, 120, 28, 33) & (np.abs(frame - aif).max(axis=2) > 0.05)  # across the left edge
    a = ((out - aif) / np.where(np.abs(frame - aif) > 1e-6, frame - aif, 1))[edge].mean(axis=1)
    assert 0.2 < a.mean() < 0.8 and a.min() > -0.01 and a.max() < 1.01  # between, not past either side
    half = retouch(ps, mask, source=2, opacity=0.5)
    np.testing.assert_allclose(half[mask], (aif[mask] + frame[mask]) / 2, atol=1e-6)


def test_result_as_source_undoes(ps):
    mask = box(ps, 20, 180, 20, 280)
    painted = retouch(ps, mask, source=0)
    undone = retouch(ps, box(ps, 0, 200, 0, 300), source="result", base=painted)
    assert np.array_equal(undone, ps.all_in_focus())


def test_sharpest_takes_each_regions_sharp_frame(ps, tiny_stack):
    h, w = ps.size
    mask = np.zeros(ps.size, np.uint8)
    cv2.circle(mask, (w // 4, h // 2), 25, 255, -1)
    cv2.circle(mask, (3 * w // 4, h // 2), 25, 255, -1)
    out = retouch(ps, mask, source="sharpest", feather=0)
    left, right = mask[:, : w // 2] > 0, mask[:, w // 2 :] > 0
    assert np.array_equal(out[:, : w // 2][left], ps.read_frame(0)[:, : w // 2][left])
    assert np.array_equal(out[:, w // 2 :][right], ps.read_frame(2)[:, w // 2 :][right])
    stroke = Edit("stroke", "sharpest", 1.0, ((200.0, 60.0), (260.0, 150.0)), 12.0, 0.5)
    assert resolve_sources(ps, [stroke]) == [[2]]


def test_other_fusion_is_made_on_demand_and_kept(ps):
    assert not ps.all_in_focus_path("pyramid").exists()
    mask = box(ps, 10, 60, 10, 60)
    out = retouch(ps, mask, source="pyramid")
    pyramid = ps.all_in_focus("pyramid")
    assert np.array_equal(out[mask], pyramid[mask])
    assert ps.all_in_focus_path("pyramid").exists()
    ProcessedStack.open(ps.folder).verify()  # the manifest knows the new file


def test_brush_is_hard_inside_and_fades_to_nothing_at_its_radius():
    e = Edit("stroke", 0, 1.0, ((50.0, 50.0), (90.0, 50.0)), 10.0, 1.0)
    mask, y0, x0 = stroke_mask(e, (100, 200))
    ys, xs = np.mgrid[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] + 0.5
    d = np.hypot(np.clip(xs, 50, 90) - xs, ys - 50)
    assert (mask[d <= 9] == 1).all() and (mask[d >= 10] == 0).all()
    soft, _, _ = stroke_mask(Edit("stroke", 0, 1.0, ((50.0, 50.0),), 10.0, 0.0), (100, 200))
    assert soft.max() <= 1 and soft[soft > 0].size > 250
    assert brush_falloff(np.array([5.0]), 10.0, 0.0)[0] == pytest.approx(0.5)


def test_stored_edits_replay_identically_after_reopening(ps):
    stroke = Edit("stroke", 2, 0.8, ((40.0, 50.0), (120.0, 80.0), (160.0, 70.0)), 15.0, 0.6)
    mask = np.zeros(ps.size, np.uint8)
    mask[120:170, 200:280] = 255
    edits = [stroke, mask_edit(ps, mask, source="sharpest", feather=2.0), Edit("stroke", "result", 1.0,
                                                                              ((150.0, 140.0),), 10.0, 1.0)]
    expected = apply_edits(ps, edits)
    version = save_edits(ps, edits)
    assert version == edits_version(edits) != ""
    again = ProcessedStack.open(ps.folder)
    assert load_edits(again) == edits
    assert np.array_equal(retouched(again), expected)
    assert not np.array_equal(expected, again.all_in_focus())  # the untouched result is still there
    again.verify()  # edits do not touch the stack's own files


def test_damaged_edits_are_reported_and_healed(ps):
    first = [Edit("stroke", 0, 1.0, ((100.0, 100.0),), 20.0, 1.0)]
    second = first + [Edit("stroke", 2, 1.0, ((200.0, 50.0),), 20.0, 1.0)]
    save_edits(ps, first)
    save_edits(ps, second)
    path = ps.folder / "edits" / "edits.json"
    path.write_text(path.read_text().replace("200.0", "201.0"))  # changed behind the app's back
    with pytest.warns(PostfocusWarning, match="changed since it was written.*restored the edits before"):
        assert load_edits(ps) == first
    assert load_edits(ps) == first  # healed on disk: no second warning
    path.write_text("{not json")
    (ps.folder / "edits" / "edits.prev.json").write_bytes(b"\0")
    with pytest.warns(PostfocusWarning, match="left out"):
        assert load_edits(ps) == []
    assert (ps.folder / "edits" / "edits.damaged.json").read_text() == "{not json"
    assert np.array_equal(retouched(ps), ps.all_in_focus())


def test_edits_nested_too_deep_are_refused_or_healed(ps, cli, cli_stack, tmp_path):
    # 100,000 "[" (a hostile or garbled file): json's RecursionError was an internal error in
    # `retouch --edits`, and in every later run when it was the stack's kept edits.json.
    deep = "[" * 100_000
    (tmp_path / "deep.json").write_text(deep)
    folder, cache = cli_stack
    run = cli("retouch", folder, "--edits", tmp_path / "deep.json", "-o", tmp_path / "out.png", cache=cache)
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert "deep.json: cannot be read as JSON (it nests too deep)" in run.stderr and "internal" not in run.stderr
    assert not (tmp_path / "out.png").exists()
    save_edits(ps, [Edit("stroke", 0, 1.0, ((100.0, 100.0),), 20.0, 1.0)])
    (ps.folder / "edits" / "edits.json").write_text(deep)
    (ps.folder / "edits" / "edits.prev.json").write_text(deep)
    with pytest.warns(PostfocusWarning, match="nests too deep.*left out"):
        assert load_edits(ps) == []
    (ps.folder / "edits" / "edits.prev.json").write_text(deep)
    from postfocus.products.edits import discard_unkept_masks

    discard_unkept_masks(ps)  # its mask pruning reads both lists


def test_a_changed_mask_file_is_reported(ps):
    mask = np.zeros(ps.size, np.uint8)
    mask[10:50, 10:50] = 255
    edit = mask_edit(ps, mask, source=0)
    save_edits(ps, [edit])
    (ps.folder / "edits" / edit.mask).write_bytes(b"broken")
    with pytest.warns(PostfocusWarning, match="mask-.*missing or damaged"):
        assert load_edits(ps) == []


def test_bad_edits_and_options_are_refused(ps):
    with pytest.raises(OptionError, match="not the size"):
        retouch(ps, np.ones((10, 10), bool), source=0)
    with pytest.raises(OptionError, match="frame 7 is not in this stack"):
        retouch(ps, box(ps, 0, 5, 0, 5), source=7)
    with pytest.raises(OptionError, match="opacity"):
        retouch(ps, box(ps, 0, 5, 0, 5), source=0, opacity=float("nan"))
    good = {"kind": "stroke", "source": 0, "radius": 5, "points": [[10, 10]]}
    assert parse_edits([good], ps.size, ps.used)[0].points == ((10.0, 10.0),)
    for bad, why in (({**good, "points": [[float("nan"), 1]]}, "finite"),
                     ({**good, "points": [[1, 1]] * (MAX_POINTS + 1)}, "at most|1 to"),
                     ({**good, "radius": 1e9}, "radius"), ({**good, "kind": "lasso"}, "kind"),
                     ({**good, "source": "best"}, "source"), ({**good, "points": [[1, 2, 3]]}, "x, y"),
                     ({**good, "opacity": True}, "opacity")):
        with pytest.raises(OptionError, match=why):
            parse_edits([bad], ps.size, ps.used)


# ---------------------------------------------------------------------------- the command


@pytest.fixture
def cli_stack(tiny_stack, stack_folder, tmp_path):
    """The tiny stack's inputs and a cache of this test's own holding its processed stack."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copytree(stack_folder, cache / stack_folder.name)
    return tiny_stack.folder, cache


def _kept_stack_and_mask(cache, path, box):
    """The one stack folder in ``cache``, opened, and a mask of it white in ``box``, written to ``path``."""
    (stack,) = [p for p in cache.iterdir() if (p / "manifest.json").exists()]
    ps = ProcessedStack.open(stack)
    mask = np.zeros(ps.size, np.uint8)
    mask[box] = 255
    cv2.imwrite(str(path), mask)
    return stack, ps, mask


def test_cli_mask_pairs_paint_from_their_frames(cli, cli_stack, tmp_path):
    folder, cache = cli_stack
    (stack,) = [p for p in cache.iterdir() if (p / "manifest.json").exists()]
    ps = ProcessedStack.open(stack)
    h, w = ps.size
    a, b = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    a[30:80, 40:120] = 255
    b[100:160, 160:260] = 255
    cv2.imwrite(str(tmp_path / "a.png"), a)
    cv2.imwrite(str(tmp_path / "b.png"), b)
    out = tmp_path / "out.png"
    run = cli("retouch", folder, "--mask", tmp_path / "a.png", "--from-frame", "2", "--mask", tmp_path / "b.png",
              "--from-frame", "0", "--feather", "0", "-o", out, cache=cache)
    assert run.returncode == 0, run.stderr
    image = read_image(out)
    for m, k in ((a > 0, 2), (b > 0, 0)):
        assert np.abs(image[m] - ps.read_frame(k)[m]).max() <= 0.5 / 255 + 1e-6
    rest = (a == 0) & (b == 0)
    assert np.abs(image[rest] - ps.all_in_focus()[rest]).max() <= 0.5 / 255 + 1e-6
    assert not list((stack / "edits").glob("mask-*.png"))  # without --keep nothing stays in the stack folder
    # --keep stores them; the stack folder itself as INPUT, without masks, replays them
    assert cli("retouch", folder, "--mask", tmp_path / "a.png", "--from-frame", "2", "--feather", "0", "--keep",
               "-o", tmp_path / "kept.png", cache=cache).returncode == 0
    replay = cli("retouch", stack, "-o", tmp_path / "replay.png", "--json", cache=cache)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["edits"] == [{"kind": "mask", "source": 2, "from": [2]}]
    assert np.array_equal(read_image(tmp_path / "replay.png"), read_image(tmp_path / "kept.png"))
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [stack.name]  # reused, not made again


def test_cli_errors_are_one_line(cli, cli_stack, tmp_path, stack_folder):
    folder, cache = cli_stack
    h, w = ProcessedStack.open(stack_folder).size
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.full((10, 10), 255, np.uint8))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    full = tmp_path / "full.png"
    cv2.imwrite(str(full), np.full((h, w), 255, np.uint8))
    damaged = bytearray(cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (h, w), np.uint8))[1])
    damaged[damaged.index(b"IDAT") + 20] ^= 0xFF  # (its pixels' CRC no longer matches)
    (tmp_path / "damaged.png").write_bytes(bytes(damaged))
    out = tmp_path / "o.png"
    for args, message in (
        (["--mask", small, "--from-frame", "1"], "--mask .*small.png \\(10x10\\): is not the size of the stack's "
                                                 "pictures \\(\\d+x\\d+\\)"),
        (["--mask", full, "--from-frame", "9"], "--from-frame 9: frame 9 is not in this stack"),
        (["--mask", broken, "--from-frame", "1"], "broken.png: cannot read this mask"),
        # main: OpenCV's libpng printed "libpng error: IDAT: CRC error" on stderr, a second line
        (["--mask", tmp_path / "damaged.png", "--from-frame", "1"], "damaged.png: cannot read this mask \\(corrupt or "
                                                                    "truncated image \\(IDAT: "),
        (["--mask", full], "--mask given 1 time and --from-frame 0 times"),
        (["--mask", full, "--from-frame", "best"], "--from-frame 'best': use a frame number"),
        (["--mask", tmp_path / "missing.png", "--from-frame", "1"], "missing.png: no such file"),
        (["--mask", full, "--from-frame", "1", "--feather", "nan"], "^postfocus: error: --feather nan: "),
        (["--mask", full, "--from-frame", "1", "--opacity", "nan"], "^postfocus: error: --opacity nan: "),
    ):
        run = cli("retouch", folder, *args, "-o", out, cache=cache)
        assert run.returncode == 2, (args, run.stderr)
        assert len(run.err_lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert __import__("re").search(message, run.err_lines[0]), run.err_lines[0]
    assert not out.exists()


def test_cli_edits_file_with_a_stroke_and_a_mask(cli, cli_stack, tmp_path):
    folder, cache = cli_stack
    stack, ps, mask = _kept_stack_and_mask(cache, tmp_path / "m.png", np.s_[20:60, 200:260])
    stroke = {"kind": "stroke", "source": 2, "points": [[60, 100], [90, 110]], "radius": 12, "hardness": 1}
    (tmp_path / "edits.json").write_text(json.dumps({"edits": [stroke, {"mask": "m.png", "source": 0}]}))
    out = tmp_path / "out.png"
    run = cli("retouch", folder, "--edits", tmp_path / "edits.json", "-o", out, cache=cache)
    assert run.returncode == 0, run.stderr
    expected = apply_edits(ps, [Edit("stroke", 2, 1.0, ((60.0, 100.0), (90.0, 110.0)), 12.0, 1.0),
                                mask_edit(ps, mask, source=0)])
    assert np.abs(read_image(out) - expected).max() <= 0.5 / 255 + 1e-6
    (tmp_path / "bad.json").write_text(json.dumps([{**stroke, "radius": "big"}]))
    bad = cli("retouch", folder, "--edits", tmp_path / "bad.json", "-o", out, cache=cache)
    assert bad.returncode == 2 and len(bad.err_lines) == 1 and "bad.json: edit 0: radius" in bad.stderr, bad.stderr
    (tmp_path / "soft.json").write_text(json.dumps([{"mask": "m.png", "source": 0, "feather": "soft"}]))
    soft = cli("retouch", folder, "--edits", tmp_path / "soft.json", "-o", out, cache=cache)
    assert soft.returncode == 2 and len(soft.err_lines) == 1 and "soft.json: edit 0: feather" in soft.stderr, soft.stderr


@pytest.mark.parametrize("dtype", [np.complex64, np.str_, object])
def test_a_mask_of_values_that_are_no_levels_is_refused_by_name(dtype):
    """A complex mask was painted by its real part (with NumPy's ComplexWarning), a string mask was a ValueError."""
    from postfocus.products.retouch import as_mask

    with pytest.raises(OptionError, match=r"^mask='.*': values of this type cannot be a mask"):
        as_mask(np.ones((4, 6)).astype(dtype), (4, 6))
    assert as_mask(np.ones((4, 6), np.int64), (4, 6)).tolist() == [[1.0] * 6] * 4  # integers are levels


def test_strokes_whose_brush_would_reach_over_the_picture_too_often_are_refused():
    """The points were bounded, not the work: 25 strokes of 4,000 points far apart with a wide brush (a 2.8 MB
    request to the web app) had each segment reach the whole picture: 130 s of painting for a 320x240 job,
    hours at 24 MP. Strokes as the page makes them (a point each quarter radius) stay well inside the bound."""
    from postfocus.products.edits import MAX_BRUSH_WORK, _brush_work

    size, used = (240, 320), [0, 1, 2]
    rng = np.random.default_rng(0)
    scattered = [{"kind": "stroke", "source": 0, "radius": 300, "points": rng.uniform(0, 240, (4000, 2)).tolist()}]
    with pytest.raises(OptionError, match=r"edit 0: strokes \d+ reach over the picture's area that many times"):
        parse_edits(scattered, size, used)
    radius = 100.0  # across the picture and back, 40 times over, as dragged
    row = [[x, 120.0] for x in np.arange(0.0, 320.0, radius / 4)]
    painted = [{"kind": "stroke", "source": 0, "radius": radius, "points": row if k % 2 else row[::-1]}
               for k in range(40)]
    edits = parse_edits(painted, size, used)
    assert len(edits) == 40
    assert sum(_brush_work(e.points, e.radius, size) for e in edits) < MAX_BRUSH_WORK * 240 * 320


@pytest.mark.parametrize("kwargs, why", [
    ({"opacity": "0.5"}, r"^opacity='0.5': must be a number from 0 to 1$"),
    ({"opacity": None}, r"^opacity=None: must be a number"),
    ({"opacity": True}, r"^opacity=True: must be a number"),
    ({"feather": "2"}, r"^feather='2': must be a number"),
    ({"feather": 10**400}, r"^feather=.*: must be a number"),
    ({"feather": 1e9}, r"^feather=1000000000.0: must be a number from 0 to 295 \(pixels"),
    ({"feather": 1e5}, r"^feather=100000.0: must be a number from 0 to 295"),
])
def test_an_opacity_or_feather_that_is_no_usable_number_is_refused_by_name(ps, kwargs, why):
    """A string or None was NumPy's TypeError ("ufunc 'isfinite' not supported"); a feather of 1e5 px had OpenCV
    build an 800,001-tap kernel (10 GB of memory for this 295x196 picture) and 1e9 was OpenCV's assertion. A blur
    as wide as the picture's long edge already spreads a mask over the whole picture."""
    with pytest.raises(OptionError, match=why):
        retouch(ps, box(ps, 10, 50, 10, 50), source=0, **kwargs)
    edge = retouch(ps, box(ps, 10, 50, 10, 50), source=0, feather=float(max(ps.size)))  # the most: taken
    assert edge.shape == (*ps.size, 3) and np.isfinite(edge).all()


def test_a_stack_or_base_retouch_cannot_paint_is_refused_by_name(ps):
    """A folder's path for the stack was "'str' object has no attribute 'used'"; a base picture of another shape
    or size NumPy's broadcasting ValueError from inside the painting, a uint8 one painted on as values up to 255
    and a NaN one painted on."""
    mask, (h, w) = box(ps, 10, 50, 10, 50), ps.size
    for stack in (str(ps.folder), None):
        with pytest.raises(OptionError, match=r"^ps=.*: not a processed stack; open one with postfocus.process"):
            retouch(stack, mask, source=0)
    for base, why in ((np.zeros((h, w), np.float32), rf"^base='{h}x{w}': must be an RGB picture of the stack's size"),
                      (np.zeros((10, 10, 3), np.float32), r"^base='10x10x3': must be an RGB picture"),
                      (np.zeros((h, w, 4), np.float32), rf"^base='{h}x{w}x4': must be an RGB picture"),
                      ("x", r"^base='<U1': must be a float picture"),
                      (np.full((h, w, 3), 200, np.uint8), r"^base='uint8': must be a float picture in \[0, 1\]"),
                      (np.full((h, w, 3), np.nan, np.float32), r"^base='not finite': holds NaN")):
        with pytest.raises(OptionError, match=why):
            retouch(ps, mask, source=0, base=base)
    grey = np.full((h, w, 3), 0.5)  # float64 is a float picture: painted as float32, left as it was
    out = retouch(ps, mask, source=0, base=grey)
    assert np.array_equal(out[mask], ps.read_frame(0)[mask]) and np.all(out[~mask] == 0.5) and np.all(grey == 0.5)


def test_cli_output_may_not_be_a_mask_of_the_edits_file_or_inside_the_stack_folder(cli, cli_stack, tmp_path):
    """``--edits e.json -o m.png``, m.png a mask e.json names, wrote the retouched picture over the mask (and
    ``--edits e.png -o e.png`` over the edits file itself); ``-o``
    naming a file of the stack folder given as INPUT replaced the folder's own picture, and every later run said
    "all_in_focus_depthmap.png has 97525 bytes, 107881 were written" (a folder has no photos to heal from)."""
    folder, cache = cli_stack
    stack, ps, mask = _kept_stack_and_mask(cache, tmp_path / "m.png", np.s_[20:60, 20:60])
    (tmp_path / "e.json").write_text(json.dumps([{"mask": "m.png", "source": 0}]))
    before = {p: p.read_bytes() for p in [tmp_path / "m.png", *sorted(stack.rglob("*")) ] if p.is_file()}
    (tmp_path / "e.png").write_text(json.dumps([{"mask": "m.png", "source": 0}]))  # an edits file named .png
    before[tmp_path / "e.png"] = (tmp_path / "e.png").read_bytes()
    run = cli("retouch", folder, "--edits", tmp_path / "e.png", "-o", tmp_path / "e.png", cache=cache)
    assert run.returncode == 2 and len(run.err_lines) == 1 and "e.png: is one of the input" in run.stderr, run.stderr
    for source, out in ((folder, tmp_path / "m.png"), (stack, tmp_path / "m.png"),
                        (stack, stack / "all_in_focus_depthmap.png"), (stack, stack / "frames" / "new.png")):
        run = cli("retouch", source, "--edits", tmp_path / "e.json", "-o", out, cache=cache)
        assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
        assert "Traceback" not in run.stderr and str(out) in run.err_lines[0], run.err_lines
    assert {p: p.read_bytes() for p in before} == before and not (stack / "frames" / "new.png").exists()
    assert not list((stack / "edits").glob("mask-*.png"))
    assert cli("retouch", stack, "--edits", tmp_path / "e.json", "-o", tmp_path / "r.png",
               cache=cache).returncode == 0  # the folder is as it was
