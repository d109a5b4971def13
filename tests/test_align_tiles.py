"""Per-tile Lucas-Kanade shifts (align/tiles.py) and the frame pyramids a sweep's matches share (align/pair.py).

Known sub-pixel shifts of a textured photo, with a blur difference between the
two frames as in a focus sweep; tiles leaving the iteration once converged
must give the shifts the full iteration gives.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from postfocus.align import match_pair, prepare_frame, tile_shifts
from postfocus.align.pair import refine_with_tiles
from postfocus.align import pair as pair_module
from postfocus.align import tiles as tiles_module
from postfocus.colour import to_grey


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage.data import astronaut

    return to_grey(astronaut().astype(np.float32) / 255.0)


def shifted(image: np.ndarray, dx: float, dy: float, blur: float = 0.0) -> np.ndarray:
    """``image`` moved so that its content at p sits at p + (dx, dy), optionally blurred."""
    h, w = image.shape
    out = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(out, (0, 0), blur) if blur else out


@pytest.mark.parametrize("dx, dy", [(0.3, -0.2), (-0.7, 0.45), (1.2, 0.9)])
def test_tile_shifts_recover_a_known_sub_pixel_shift_under_a_blur_difference(photo, dx, dy):
    template = cv2.GaussianBlur(photo, (0, 0), 0.6)
    moving = shifted(photo, dx, dy, blur=1.4)
    points, shifts = tile_shifts(template, moving, 32)
    assert len(points) > 50  # the photo is textured almost everywhere
    median = np.median(shifts, axis=0)
    # measured: 0.038-0.043 px from the truth (192 tiles; the blur difference slows the steps and 8 are allowed)
    assert np.abs(median - [dx, dy]).max() < 0.08, median


def test_tiles_leaving_once_converged_give_the_shifts_of_the_full_iteration(photo, monkeypatch):
    template = cv2.GaussianBlur(photo, (0, 0), 0.5)
    moving = shifted(photo, 0.35, -0.6, blur=1.0)
    points, early = tile_shifts(template, moving, 32)
    monkeypatch.setattr(tiles_module, "CONVERGED_PX", 0.0)  # every tile takes every step
    points_all, full = tile_shifts(template, moving, 32)
    assert np.array_equal(points, points_all)
    # a converged tile's later steps are each below 0.004 px and shrink: measured 0.0005 px at most
    assert np.abs(early - full).max() < 0.005


def test_a_prepared_pyramid_gives_the_match_of_the_plain_frames(photo):
    a = photo[40:400, 30:470]
    b = shifted(photo, 2.4, -1.3, blur=1.0)[40:400, 30:470]
    plain = match_pair(a, b)
    prepared = match_pair(prepare_frame(a), prepare_frame(b))
    assert plain.ok and prepared.ok
    assert np.array_equal(plain.matrix, prepared.matrix) and plain.correlation == prepared.correlation
    assert abs(plain.matrix[0, 2] - 2.4) < 0.1 and abs(plain.matrix[1, 2] + 1.3) < 0.1


def test_the_shorter_correlation_match_before_the_tiles_ends_where_the_full_one_does(photo, monkeypatch):
    """The tile refinement decides the final transform: a correlation match stopped earlier changes nothing."""
    b = shifted(photo, 1.5, 0.5, blur=0.8)
    short = match_pair(photo, b)
    monkeypatch.setattr(pair_module, "ECC_BEFORE_TILES", (60, 1e-5))  # the correlation match run to the end
    full = match_pair(photo, b)
    assert short.ok and full.ok
    corners = np.array([[0, 0], [512, 0], [512, 512], [0, 512]], np.float64)[None]
    moved = cv2.perspectiveTransform(corners, short.matrix) - cv2.perspectiveTransform(corners, full.matrix)
    assert np.abs(moved).max() < 0.01  # measured: 0.00005 px
    assert abs(short.matrix[0, 2] - 1.5) < 0.05 and abs(short.matrix[1, 2] - 0.5) < 0.05


def test_a_shared_frame_pyramid_is_left_as_it_was():
    """A frame's prepared pyramid is shared by its two matches on two threads: matching must not change it
    (OpenCV's phaseCorrelate multiplies its window into its inputs in place when their size is a fast DFT
    size, as the 256 x 144 small copy of a 16:9 frame is), or results depend on which match runs first."""
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((450, 800)).astype(np.float32), (0, 0), 2.0)
    moved = np.roll(base, (2, 3), axis=(0, 1))
    a, b = prepare_frame(base), prepare_frame(moved)
    assert a.small.shape == (144, 256)
    before = [a.small.copy(), b.small.copy(), *(level.copy() for level in a.levels)]
    first = match_pair(a, b, "similarity")
    again = match_pair(a, b, "similarity")
    after = [a.small, b.small, *a.levels]
    assert all(np.array_equal(x, y) for x, y in zip(before, after))
    assert np.array_equal(first.matrix, again.matrix)


def test_a_frame_matched_at_the_identity_is_left_as_it_was():
    """A registered pair matches at the identity, where the warp hands back the moving frame itself: the tile
    refinement's in-place blur must not reach it (it is the next match's template, on another thread)."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((240, 320)).astype(np.float32), (0, 0), 2.0)
    moving = img.copy()
    refine_with_tiles(img, moving, np.eye(3), "similarity")
    assert np.array_equal(moving, img)
    a, b = prepare_frame(img), prepare_frame(img.copy())
    level = b.levels[0].copy()
    first = match_pair(a, b, "similarity")
    assert np.array_equal(b.levels[0], level)
    assert np.array_equal(match_pair(a, b, "similarity").matrix, first.matrix)


def _whole_frame_tiles(template: np.ndarray, tile: int):
    """The template's tiles made as before, with frame-sized filters: an independent reference."""
    h, w = template.shape
    margin = max(2, tile // 4)
    ny, nx = (h - 2 * margin) // tile, (w - 2 * margin) // tile
    y0 = x0 = margin
    y1, x1 = y0 + ny * tile, x0 + nx * tile
    t = cv2.GaussianBlur(template, (0, 0), 1.0)
    ix = cv2.Sobel(t, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)[y0:y1, x0:x1]
    iy = cv2.Sobel(t, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)[y0:y1, x0:x1]

    def tile_sum(img):
        return cv2.resize(img, (nx, ny), interpolation=cv2.INTER_AREA).astype(np.float64) * (tile * tile)

    mx, my, area = tile_sum(ix) / tile**2, tile_sum(iy) / tile**2, tile * tile
    sxx = tile_sum(cv2.multiply(ix, ix)) - area * mx * mx
    sxy = tile_sum(cv2.multiply(ix, iy)) - area * mx * my
    syy = tile_sum(cv2.multiply(iy, iy)) - area * my * my
    planes = [img.reshape(ny, tile, nx, tile).transpose(0, 2, 1, 3).reshape(ny * nx, tile * tile)
              for img in (t[y0:y1, x0:x1], ix - np.repeat(np.repeat(mx, tile, 0), tile, 1).astype(np.float32),
                          iy - np.repeat(np.repeat(my, tile, 0), tile, 1).astype(np.float32))]
    return np.stack(planes, axis=1), np.stack([sxx, sxy, syy], axis=-1).reshape(-1, 3)


@pytest.mark.parametrize("size, tile", [((512, 512), 32), ((300, 470), 16), ((481, 257), 24)])
def test_template_tiles_made_in_bands_are_those_of_whole_frame_filters(photo, size, tile):
    """Bands of rows read the template as far as the blur and gradients reach: the same values to the bit."""
    template = cv2.resize(photo, size[::-1], interpolation=cv2.INTER_AREA)
    prepared = tiles_module.template_tiles(template, tile)
    cut, hessian = _whole_frame_tiles(template, tile)
    kept = prepared.valid.ravel()
    assert 0 < kept.sum() == len(prepared.cut)
    assert np.array_equal(prepared.cut, cut[kept]) and np.array_equal(prepared.hessian, hessian[kept])


def test_template_tiles_hold_no_frame_sized_filter_outputs(photo):
    """Two matches run at once, each holding the template's tiles: their making adds little beyond them."""
    import tracemalloc

    template = cv2.resize(photo, (1536, 1024), interpolation=cv2.INTER_LINEAR)
    tracemalloc.start()
    try:
        prepared = tiles_module.template_tiles(template, 32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    frame = template.nbytes
    # every tile (2.85 frames: pixels and two gradients) and a band's temporaries (0.9 frame); made with
    # frame-sized blur, gradients and products it was 6.3 frames (measured: 3.7 now)
    assert prepared.cut.nbytes > 2 * frame
    assert peak < 4.2 * frame, peak / frame


def test_tiles_iterated_together_move_as_each_would_alone(photo):
    """A converged tile stays in the arrays with its shift frozen: every tile ends where it ends alone."""
    template = cv2.GaussianBlur(photo, (0, 0), 0.5)
    moving = cv2.GaussianBlur(shifted(photo, 0.35, -0.6, blur=1.0), (0, 0), 1.0)
    prepared = tiles_module.template_tiles(template, 32)
    rows, xs, ys = _tile_pixels(prepared, 32)
    together = tiles_module._iterate(moving, prepared.cut, xs, ys, prepared.hessian, 8)
    alone = np.concatenate([tiles_module._iterate(moving, prepared.cut[i:i + 1], xs[i:i + 1], ys[i:i + 1],
                                                  prepared.hessian[i:i + 1], 8) for i in range(len(rows))])
    assert np.array_equal(together, alone)


def test_tile_shifts_in_place_blur_gives_the_same_shifts(photo):
    template = cv2.GaussianBlur(photo, (0, 0), 0.5)
    moving = shifted(photo, -0.4, 0.25, blur=1.2)
    kept = tile_shifts(template, moving, 32)
    own = moving.copy()
    overwritten = tile_shifts(template, own, 32, overwrite=True)
    assert all(np.array_equal(x, y) for x, y in zip(kept, overwritten))
    assert not np.array_equal(own, moving)  # it was blurred where it lay


def test_the_first_step_reads_the_tiles_pixels_without_a_remap(photo, monkeypatch):
    # Every tile starts at shift 0, where a bilinear remap of whole-pixel coordinates gives the pixels
    # themselves: the first step reads them straight from the blurred frame, to the same shifts to the bit.
    template = cv2.GaussianBlur(photo, (0, 0), 0.5)
    moving = shifted(photo, 0.35, -0.6, blur=1.0)
    remaps = []
    real_remap = cv2.remap

    def counting(*args, **kwargs):
        remaps.append(1)
        return real_remap(*args, **kwargs)

    monkeypatch.setattr(tiles_module.cv2, "remap", counting)
    points, shifts = tile_shifts(template, moving, 32, iterations=1)
    assert remaps == [] and len(points) > 50
    # the same first step with every tile remapped at shift 0, as before
    prepared = tiles_module.template_tiles(template, 32)
    rows, xs, ys = _tile_pixels(prepared, 32)
    blurred = cv2.GaussianBlur(moving, (0, 0), 1.0)
    for count in (1, 3):
        remaps.clear()
        direct = tiles_module._iterate(blurred, prepared.cut, xs, ys, prepared.hessian, count,
                                       first=blurred[ys[:, :, 0].astype(int)[:, :, None], xs.astype(int)])
        remapped = tiles_module._iterate(blurred, prepared.cut, xs, ys, prepared.hessian, count)
        assert len(remaps) == 2 * count - 1  # (the direct one's first step has none)
        assert np.array_equal(direct, remapped)


def _tile_pixels(prepared, size):
    """The valid tiles' rows (one a tile) and each tile's pixel coordinates, as ``_iterate`` takes them."""
    ny, nx, y0, x0 = prepared.grid
    rows, cols = np.nonzero(prepared.valid)
    grid = np.arange(size, dtype=np.float32)
    xs = (x0 + cols * size).astype(np.float32)[:, None, None] + grid[None, None, :]
    ys = (y0 + rows * size).astype(np.float32)[:, None, None] + grid[None, :, None]
    return rows, xs, ys


def _corner_error(estimated: np.ndarray, true: np.ndarray, size: tuple[int, int]) -> float:
    h, w = size
    c = np.array([[0, w, w, 0], [0, 0, h, h], [1, 1, 1, 1]], np.float64)
    a, b = estimated @ c, true @ c
    return float(np.hypot(*(a[:2] / a[2] - b[:2] / b[2])).max())


def test_tiles_far_from_their_fit_still_bring_a_strongly_defocused_pair_nearer_the_truth(monkeypatch):
    # pcb_depthmap's regime (bench_tile_steps.py): a tilted board on a tripod, neighbouring frames far apart in
    # defocus, the tiles' shifts pixels from the model fitted to them. The fit (from the agreeing minority) is
    # still twice nearer the true pair transforms than the correlation match alone: a rule keeping the
    # correlation match's matrix whenever the tiles disagree would lose that (measured with bench_align.py
    # --sweep depthmap; docs/performance.md, tiles19).
    from postfocus.synth import render_stack, scene

    size = (450, 600)
    sharp, depth = scene("ramp", size, seed=1)
    stack = render_stack(sharp, depth, 4, max_blur=30.0, seed=2, shake_px=2.0, rotation_deg=0.1, breathing=0.05,
                         exposure_drift=0.03, noise=0.004, jpeg_quality=92)
    frames = [prepare_frame(to_grey(np.asarray(f, np.float32))) for f in stack.frames]
    truths = [b @ np.linalg.inv(a) for a, b in zip(stack.transforms[:-1], stack.transforms[1:])]
    apart = []
    fit = pair_module.fit_model

    def fitted(points, targets, model, *args, **kwargs):
        matrix = fit(points, targets, model, *args, **kwargs)
        apart.append(float(np.median(np.hypot(*(cv2.perspectiveTransform(points[None], matrix)[0] - targets).T))))
        return matrix

    monkeypatch.setattr(pair_module, "fit_model", fitted)
    refined = [_corner_error(match_pair(a, b).matrix, t, size) for a, b, t in zip(frames, frames[1:], truths)]
    assert np.median(apart) > 1.0  # the regime: the tiles lie more than a pixel from their fit
    monkeypatch.setattr(pair_module, "refine_with_tiles", lambda template, moving, matrix, *a, **k: matrix)
    correlation = [_corner_error(match_pair(a, b).matrix, t, size) for a, b, t in zip(frames, frames[1:], truths)]
    assert np.mean(refined) < 0.6 * np.mean(correlation)


def test_a_tile_correction_within_the_tiles_scatter_takes_no_second_round(monkeypatch):
    # The last pair of a tilted-board sweep far apart in defocus: the first round moves the corners by more
    # than half a pixel but by less than the tiles' median distance from their fit; the second round main
    # took is left out, and the pair ends no farther from its true transform (1.44 against 1.54 px).
    from postfocus.synth import render_stack, scene

    size = (450, 600)
    sharp, depth = scene("ramp", size, seed=1)
    stack = render_stack(sharp, depth, 10, max_blur=30.0, seed=2, shake_px=2.0, rotation_deg=0.1, breathing=0.05,
                         exposure_drift=0.03, noise=0.004, jpeg_quality=92)
    a, b = (prepare_frame(to_grey(np.asarray(f, np.float32))) for f in stack.frames[8:10])
    truth = stack.transforms[9] @ np.linalg.inv(stack.transforms[8])
    rounds = []
    shifts = pair_module.tile_shifts

    def counted(*args, **kwargs):
        rounds.append(1)
        return shifts(*args, **kwargs)

    monkeypatch.setattr(pair_module, "tile_shifts", counted)
    one = _corner_error(match_pair(a, b).matrix, truth, size)
    assert len(rounds) == 1
    rounds.clear()
    monkeypatch.setattr(pair_module, "_apart", lambda *args: 0.0)  # the rounds as before: by the move alone
    two = _corner_error(match_pair(a, b).matrix, truth, size)
    assert len(rounds) == 2
    assert one <= two
