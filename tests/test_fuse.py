"""Fusion quality on the tiny two-halves stack, against its known sharp image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from postfocus.align import warp_to_reference
from postfocus.fuse import DepthmapFusion, PyramidFusion, collapse, laplacian_pyramid
from postfocus.io.images import read_image
from postfocus.options import METHODS
from postfocus.pipeline.run import stack


def tenengrad(image: np.ndarray) -> float:
    """Mean squared Sobel gradient of the luma (independent of the library's own)."""
    g = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def aligned_frames(tiny, result) -> list[np.ndarray]:
    """Input frames warped to the reference with the reported transforms, cropped like the result."""
    t, l, b, r = result.crop
    return [warp_to_reference(read_image(p), a.matrix)[t:b, l:r] for p, a in zip(tiny.paths, result.alignment)]


def halves(tiny, result) -> dict[str, tuple[slice, slice]]:
    """The left and right halves in the cropped result's coordinates (seam and borders excluded)."""
    t, l, b, r = result.crop
    h = b - t
    return {
        "left": (slice(8, h - 8), slice(8, tiny.seam - l - 10)),
        "right": (slice(8, h - 8), slice(tiny.seam - l + 10, r - l - 8)),
    }


def argmax_laplacian_baseline(frames: list[np.ndarray]) -> np.ndarray:
    """Naive fusion: per pixel, the frame with the largest |Laplacian| (no smoothing, no map)."""
    lap = np.stack([np.abs(cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F, ksize=3)) for f in frames])
    best = np.argmax(lap, axis=0)
    return np.take_along_axis(np.stack(frames), best[None, ..., None], axis=0)[0]


@pytest.fixture(scope="module", params=METHODS)
def fused(request, tiny_stack):
    return stack(tiny_stack.folder, method=request.param)


def test_all_frames_used_and_aligned(fused, tiny_stack):
    assert fused.merged == [0, 1, 2]
    assert fused.reference == 1
    for a, (dx, dy) in zip(fused.alignment, tiny_stack.shifts):
        # matrix maps reference -> frame coords; frame k shows the scene moved by (-dx, -dy).
        # The two-halves stack has a hard blur seam (no physical scene has one); the tile-based
        # model fit lands within 0.1 px at the image corner here (measured 0.088 px; 0.01 px
        # with ECC alone). Generated physical stacks are
        # held to the 0.3 px corner error in test_quality.py.
        assert a.shift == pytest.approx((-dx, -dy), abs=0.15)
        assert np.allclose(a.gain, 1.0, atol=0.01)


def test_each_half_as_sharp_as_its_sharpest_frame(fused, tiny_stack):
    frames = aligned_frames(tiny_stack, fused)
    for name, box in halves(tiny_stack, fused).items():
        per_frame = [tenengrad(f[box]) for f in frames]
        got = tenengrad(fused.image[box])
        # measured: left 0.316 (depthmap) / 0.319 (pyramid) vs best frame 0.321; right 0.410 / 0.412 vs 0.415
        assert got >= 0.9 * max(per_frame), f"{fused.method} {name}: {got:.4f} vs frames {per_frame}"
        # and the sharp frame is the right one for that half
        assert int(np.argmax(per_frame)) == (0 if name == "left" else 2)


def test_psnr_clearly_above_naive_argmax(fused, tiny_stack):
    t, l, b, r = fused.crop
    truth = tiny_stack.sharp[t:b, l:r]
    baseline = argmax_laplacian_baseline(aligned_frames(tiny_stack, fused))
    got, base = psnr(fused.image, truth), psnr(baseline, truth)
    # measured: depthmap 42.6 dB, pyramid 43.1 dB, naive argmax 35.1 dB (+7.5 / +8.1 dB);
    # with bicubic warps and the tile refinement: 43.2 / 43.9 dB vs 35.2 dB (+8.0 / +8.7 dB);
    # the issue asks for >= 2 dB, the threshold keeps ~2.5 dB of margin below the measured gain.
    assert got >= base + 5.0, f"{fused.method}: {got:.2f} dB vs naive {base:.2f} dB"
    assert got >= 38.0


def test_focus_index_map_finds_the_halves(fused, tiny_stack):
    index = fused.focus_index  # analysis size == full size for this small stack
    h, w = index.shape
    seam = tiny_stack.seam * w // 300
    left = float(np.median(index[10 : h - 10, 10 : seam - 15]))
    right = float(np.median(index[10 : h - 10, seam + 15 : w - 10]))
    assert left == pytest.approx(0.0, abs=0.25)
    assert right == pytest.approx(2.0, abs=0.25)


def test_crop_is_the_common_area(fused):
    # frames move by +-2 px in x and -+1 px in y: the common area loses about that much per side
    t, l, b, r = fused.crop
    assert 0 < t <= 3 and 0 < l <= 4 and 197 <= b < 200 and 296 <= r < 300
    assert fused.image.shape == (b - t, r - l, 3)


def test_range_merges_only_those_frames(tiny_stack):
    res = stack(tiny_stack.folder, frame_range="0:1")
    assert res.merged == [0, 1]
    frames = aligned_frames(tiny_stack, res)
    box = halves(tiny_stack, res)
    # left half keeps frame 0's sharpness, right half cannot be sharper than frame 1 there
    assert tenengrad(res.image[box["left"]]) >= 0.9 * tenengrad(frames[0][box["left"]])
    assert tenengrad(res.image[box["right"]]) <= 1.1 * tenengrad(frames[1][box["right"]])
    assert tenengrad(res.image[box["right"]]) < 0.7 * tenengrad(frames[2][box["right"]])


def test_depthmap_fusion_with_constant_index_returns_that_frame():
    rng = np.random.default_rng(1)
    frames = [rng.random((20, 30, 3), dtype=np.float32) for _ in range(4)]
    fusion = DepthmapFusion(np.full((20, 30), 2.0, np.float32))
    for k, f in enumerate(frames):
        fusion.add(float(k), f)
    # neighbours 1 and 3 get weight exp(-0.5 / 0.35**2) = 0.017 each
    out = fusion.result()
    expected = (frames[2] + 0.0169 * (frames[1] + frames[3])) / (1 + 2 * 0.0169)
    assert np.abs(out - expected).max() < 2e-3


def test_pyramid_is_lossless_and_selects_the_detailed_frame():
    rng = np.random.default_rng(2)
    img = rng.random((64, 96, 3), dtype=np.float32)
    assert np.abs(collapse(laplacian_pyramid(img, 3)) - img).max() < 1e-5
    flat = cv2.GaussianBlur(img, (0, 0), 4)
    fusion = PyramidFusion((64, 96))
    fusion.add(None, flat)
    fusion.add(None, img)
    out = fusion.result()
    # fine bands come from the detailed frame; only the low-pass residual is averaged
    assert psnr(out, img) > psnr(flat, img) + 10


def _ramp_index(h: int = 150, w: int = 260, frames: int = 12) -> np.ndarray:
    """A focus index rising left to right over ``frames`` frames, with a flat unsure patch."""
    return np.tile(np.linspace(0, frames - 1, w, dtype=np.float32), (h, 1))


@pytest.mark.parametrize("varying_width", [False, True])
def test_depthmap_footprints_give_the_full_blend(varying_width):
    """Adding each frame only inside its footprint changes no pixel by more than 1e-4."""
    rng = np.random.default_rng(3)
    index = _ramp_index()
    width = np.where(rng.random(index.shape) < 0.2, 2.0, 0.35).astype(np.float32) if varying_width else 0.35
    frames = [rng.random(index.shape + (3,), dtype=np.float32) for _ in range(12)]
    full, parts = DepthmapFusion(index, width, tile=32), DepthmapFusion(index, width, tile=32)
    covered = 0
    for k, f in enumerate(frames):
        full.add(float(k), f)
        for t, l, b, r in parts.footprint(float(k)):
            parts.add(float(k), f[t:b, l:r], (t, l, b, r))
            covered += (b - t) * (r - l)
    assert np.abs(full.result() - parts.result()).max() < 1e-4
    # Narrow blends touch few frames per pixel: far less than every frame everywhere.
    if not varying_width:
        assert covered < 0.5 * len(frames) * index.size


def test_footprint_rectangles_lie_inside_and_are_disjoint():
    index = _ramp_index()
    fusion = DepthmapFusion(index, 0.35, tile=32)
    for position in (0.0, 5.5, 11.0):
        hits = np.zeros(index.shape, int)
        for t, l, b, r in fusion.footprint(position):
            assert 0 <= t < b <= index.shape[0] and 0 <= l < r <= index.shape[1]
            hits[t:b, l:r] += 1
        assert hits.max() == 1
        # every pixel focused within a frame of the position is covered
        assert hits[np.abs(index - position) < 1.0].min() == 1


def _occluded_fusion(threads: int) -> tuple[DepthmapFusion, list[np.ndarray], np.ndarray, np.ndarray]:
    """A fusion whose occlusion-safe index differs in a patch (sizes not multiples of the tile or band)."""
    rng = np.random.default_rng(5)
    index = _ramp_index()[:, :150]
    safe = index.copy()
    safe[40:110, 30:100] = np.clip(safe[40:110, 30:100] + 3.0, 0, 11)
    width = np.where(rng.random(index.shape) < 0.2, 2.0, 0.35).astype(np.float32)
    frames = [rng.random(index.shape + (3,), dtype=np.float32) for _ in range(12)]
    fusion = DepthmapFusion(index, width, tile=32, safe_index=safe, threads=threads)
    for k, f in enumerate(frames):
        for t, l, b, r in fusion.footprint(float(k)):
            fusion.add(float(k), f[t:b, l:r], (t, l, b, r))
    return fusion, frames, index, safe


def test_depthmap_result_is_the_blend_with_its_consistency_check_to_the_bit():
    """result() (in place, by bands, on one or two threads) equals the blend written out plane by plane."""
    from postfocus.fuse.base import depth_weights
    from postfocus.fuse.depthmap import consistency_weight

    one, frames, index, safe = _occluded_fusion(1)
    two = _occluded_fusion(2)[0]
    width = np.where(np.random.default_rng(5).random(index.shape) < 0.2, 2.0, 0.35).astype(np.float32)
    differs = np.abs(safe - index) > 0.05

    def blend(idx: np.ndarray, where: np.ndarray) -> list[np.ndarray]:
        sums, weight = [np.zeros(idx.shape, np.float32) for _ in range(3)], np.full(idx.shape, 1e-12, np.float32)
        for k, f in enumerate(frames):
            covered = np.zeros(idx.shape, bool)
            for t, l, b, r in one.footprint(float(k)):
                covered[t:b, l:r] = True
            wt = np.where(covered & where, depth_weights(idx, float(k), width), 0).astype(np.float32)
            for c in range(3):
                sums[c] += f[..., c] * wt
            weight += wt
        return [s * np.reciprocal(weight) for s in sums]

    sharp = blend(index, np.ones(index.shape, bool))
    # the safe blend is made in the tiles where the safe index differs; elsewhere it is the sharp one
    padded = np.zeros((-(-index.shape[0] // 32) * 32, -(-index.shape[1] // 32) * 32), bool)
    padded[:index.shape[0], :index.shape[1]] = differs
    in_tiles = np.repeat(np.repeat(padded.reshape(padded.shape[0] // 32, 32, -1, 32).any(axis=(1, 3)), 32, 0), 32, 1)
    in_tiles = in_tiles[:index.shape[0], :index.shape[1]]
    safe_blend = [np.where(in_tiles, s, a) for s, a in zip(blend(safe, in_tiles), sharp)]
    rows, cols = np.nonzero(differs)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    keep = consistency_weight([a[box] for a in sharp], [s[box] for s in safe_blend])
    expected = np.stack(sharp, axis=2)
    for c in range(3):
        expected[box + (c,)] = (sharp[c][box] - safe_blend[c][box]) * keep + safe_blend[c][box]
    image = one.result()
    assert 0 < keep.min() < 0.5  # the check does take the safe blend somewhere
    assert np.abs(image - expected).max() < 1e-5  # the reference adds whole frames: the same up to rounding
    assert np.array_equal(image.view(np.uint32), two.result().view(np.uint32))


def test_depthmap_result_makes_no_second_image():
    """result() finishes the blend in its sums: it allocates far less than one more image."""
    import tracemalloc

    fusion = _occluded_fusion(1)[0]
    tracemalloc.start()
    try:
        image = fusion.result()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image.shape == (_ramp_index().shape[0], 150, 3) and image.dtype == np.float32
    assert peak < image.nbytes  # (a second image would be all of it; here the box's difference and a band's temporaries)


def test_depthmap_tile_ranges_are_each_tiles_extremes():
    """The per-tile index ranges (reduced rows first) span each tile's two indices: the blend's and the safe one's.

    A far-to-near sweep's safe index lies above the blend's, so the maximum takes both too."""
    _, _, index, safe = _occluded_fusion(1)
    fusion = DepthmapFusion(index, 0.35, tile=32, safe_index=safe)
    reach = np.float32(np.sqrt(2.0 * np.log(1.0 / DepthmapFusion.CUTOFF))) * np.float32(0.35)
    for ty in range(fusion._low.shape[0]):
        for tx in range(fusion._low.shape[1]):
            cut = (slice(ty * 32, ty * 32 + 32), slice(tx * 32, tx * 32 + 32))
            assert fusion._high[ty, tx] == np.maximum(index[cut], safe[cut]).max() + reach
            assert fusion._low[ty, tx] == np.minimum(index[cut], safe[cut]).min() - reach



def test_safe_blend_kept_only_in_its_tiles_gives_the_same_image_as_over_its_box():
    """Two patches at opposite corners: their box holds many tiles where the safe index does not differ; keeping the
    safe blend only in the differing tiles (TileBlend) gives the same bits as keeping it over the whole box."""
    from postfocus.fuse.tileblend import TileBlend

    rng = np.random.default_rng(7)
    index = _ramp_index()[:, :150]
    safe = index.copy()
    safe[10:40, 5:45] = np.clip(safe[10:40, 5:45] + 3.0, 0, 11)
    safe[120:150, 100:140] = np.clip(safe[120:150, 100:140] - 3.0, 0, 11)
    width = np.where(rng.random(index.shape) < 0.2, 2.0, 0.35).astype(np.float32)
    frames = [rng.random(index.shape + (3,), dtype=np.float32) for _ in range(12)]
    images, kept = [], []
    for whole_box in (False, True):
        fusion = DepthmapFusion(index, width, tile=32, safe_index=safe, threads=2)
        if whole_box:  # (the box's every tile kept: what the blend held before)
            fusion._safe = TileBlend(np.ones_like(fusion._safe_tiles), 32, fusion._safe.box, safe)
        kept.append(sum(e[3].shape[0] * e[3].shape[1] for e in fusion._safe.rows if e is not None))
        for k, f in enumerate(frames):
            for t, l, b, r in fusion.footprint(float(k)):
                fusion.add(float(k), f[t:b, l:r], (t, l, b, r))
        images.append(fusion.result())
    assert kept[0] < 0.5 * kept[1]  # far fewer pixels kept
    assert np.array_equal(images[0].view(np.uint32), images[1].view(np.uint32))
    plain = DepthmapFusion(index, width, tile=32)  # without the safe index: the patches' pixels differ
    for k, f in enumerate(frames):
        for t, l, b, r in plain.footprint(float(k)):
            plain.add(float(k), f[t:b, l:r], (t, l, b, r))
    differs = np.abs(images[0] - plain.result()).max(axis=2) > 1e-3
    assert differs[10:40, 5:45].any() and differs[120:150, 100:140].any() and not differs[60:100].any()


def test_depthmap_start_state_is_the_same_on_one_or_two_threads():
    """The weights' start and where the safe index differs are made a band of rows at a time, on the
    fusion's threads: the same state as one thread's, and as the whole-image comparison."""
    index = _ramp_index()
    safe = index.copy()
    safe[10:40, 5:45] += 3.0
    safe[130:140, 100:120] += 0.06  # (just over the 0.05 the safe index must differ by)
    safe[60:70, 100:120] += 0.04
    states = [DepthmapFusion(index, 0.35, tile=32, safe_index=safe, threads=n) for n in (1, 2)]
    for fusion in states:
        assert fusion._weight.dtype == np.float32 and np.all(fusion._weight == np.float32(1e-12))
    assert np.array_equal(states[0]._safe_tiles, states[1]._safe_tiles)
    differs = cv2.absdiff(safe, index) > 0.05
    rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    assert states[1]._safe.box == (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1) == (10, 5, 140, 120)


def test_consistency_check_blurs_only_near_kept_pieces_to_the_bit():
    """Patches far apart in a tall box: a band of rows no kept piece reaches is kept at 1 without blurring, and the
    result has the same bits as with every tile of the box kept (every band blurred), on one or two threads."""
    from postfocus.fuse.tileblend import TileBlend

    rng = np.random.default_rng(11)
    index = _ramp_index(420, 400)
    safe = index.copy()
    safe[10:40, 5:45] = np.clip(safe[10:40, 5:45] + 3.0, 0, 11)  # top left
    safe[380:410, 340:390] = np.clip(safe[380:410, 340:390] - 3.0, 0, 11)  # bottom right: a band between has none
    width = np.where(rng.random(index.shape) < 0.2, 2.0, 0.35).astype(np.float32)
    frames = [rng.random(index.shape + (3,), dtype=np.float32) for _ in range(12)]
    images = []
    for whole_box, threads in ((False, 1), (False, 2), (True, 1)):
        fusion = DepthmapFusion(index, width, tile=32, safe_index=safe, threads=threads)
        if whole_box:  # every tile of the box kept: each band's pieces span the box, no band is empty
            fusion._safe = TileBlend(np.ones_like(fusion._safe_tiles), 32, fusion._safe.box, safe)
        for k, f in enumerate(frames):
            for t, l, b, r in fusion.footprint(float(k)):
                fusion.add(float(k), f[t:b, l:r], (t, l, b, r))
        images.append(fusion.result())
    assert np.array_equal(images[0].view(np.uint32), images[2].view(np.uint32))
    assert np.array_equal(images[1].view(np.uint32), images[2].view(np.uint32))


def test_upscale_region_with_a_shared_grid_is_the_same_to_the_bit():
    """One region_grid serves every map of its shape: the same bits as each upscale building its own, and the
    crop of the whole map's resize (to rounding)."""
    import cv2

    from postfocus.fuse.base import region_grid, upscale_region

    rng = np.random.default_rng(2)
    size, region = (301, 403), (17, 9, 290, 380)
    grid = region_grid((40, 53), size, region)
    assert region_grid((40, 53), size, (0, 0) + size) is None
    for _ in range(3):
        small = rng.random((40, 53), dtype=np.float32)
        shared = upscale_region(small, size, region, grid=grid)
        assert np.array_equal(shared.view(np.uint32), upscale_region(small, size, region).view(np.uint32))
        whole = cv2.resize(small, size[::-1], interpolation=cv2.INTER_LINEAR)[17:290, 9:380]
        assert np.abs(shared - whole).max() < 0.02


def test_upscale_bands_are_the_whole_upscale_to_the_bit():
    """A band of the source coordinates at a time (mem10: no whole-region grid in pass 2), and an elementwise
    function applied a band at a time: the same bits as the whole region's upscale, for a region, the whole
    picture (a plain resize), cut maps upscaled by their uncut grid, and a band height that does not divide it."""
    from postfocus.fuse.base import blend_width, region_grid, upscale_bands, upscale_region
    from postfocus.maps import StackMaps

    rng = np.random.default_rng(3)
    size = (301, 403)
    small = rng.random((40, 53), dtype=np.float32)
    cut = StackMaps(small, small, small[None], [0], size).crop((25, 18, 280, 390), 0.25)
    cases = [(small, size, (17, 9, 290, 380), None), (small, size, (0, 0) + size, None),
             (cut.focus_index, cut.size, (0, 0) + cut.size, cut.place), (cut.focus_index, cut.size, (3, 5, 200, 300), cut.place)]
    for values, whole_size, region, place in cases:
        grid = region_grid(values.shape, whole_size, region, place)
        whole = upscale_region(values, whole_size, region, grid=grid)
        for rows in (1, 7, 64, 10**6):
            banded = upscale_bands(values, whole_size, region, place=place, rows=rows)
            assert banded.dtype == np.float32 and np.array_equal(banded.view(np.uint32), whole.view(np.uint32))
            widths = upscale_bands(values, whole_size, region, place=place, rows=rows, then=blend_width)
            assert np.array_equal(widths.view(np.uint32), blend_width(whole).view(np.uint32))


def test_depthmap_fusion_may_make_the_callers_widths_its_own_blend_factor():
    """``overwrite_sharpness``: the per-pixel widths become the blend's ``-1 / (2 sigma^2)`` in place (no second map
    beside them), with the same tile ranges and the same image to the bit as a fusion that copies them."""
    _, _, index, safe = _occluded_fusion(1)
    rng = np.random.default_rng(5)
    width = np.where(rng.random(index.shape) < 0.3, 1.5, 0.35).astype(np.float32)
    frames = [rng.random(index.shape + (3,), dtype=np.float32) for _ in range(12)]
    copied = DepthmapFusion(index, width, tile=32, safe_index=safe)
    assert not np.shares_memory(copied._k, width)
    own = width.copy()
    fusion = DepthmapFusion(index, own, tile=32, safe_index=safe, overwrite_sharpness=True)
    assert fusion._k is own  # (the widths' memory, now the factor)
    assert np.array_equal(fusion._k, copied._k) and np.array_equal(fusion._low, copied._low)
    assert np.array_equal(fusion._high, copied._high)
    for i, frame in enumerate(frames):
        copied.add(float(i), frame)
        fusion.add(float(i), frame)
    assert np.array_equal(fusion.result().view(np.uint32), copied.result().view(np.uint32))
    scalar = DepthmapFusion(index, 0.35, tile=32, overwrite_sharpness=True)  # (a number is no map to overwrite)
    assert scalar._k == DepthmapFusion(index, 0.35, tile=32)._k


def test_the_safe_blend_is_kept_in_finer_tiles_where_the_indices_differ_and_gives_the_same_image(monkeypatch):
    """The occlusion-safe blend is made in the blend's tiles where its index differs by more than 0.05, kept in
    the finer tiles of those (``SAFE_SPLIT``) where it differs at all: where both indices are the same, so are
    both blends' sums (mem11: on algae, 20 MP, 50 % of the picture kept -> 33 %, 65 MB; the same image)."""
    from postfocus.fuse.depthmap import DepthmapFusion

    rng = np.random.default_rng(3)
    h, w = 128, 192
    index = rng.uniform(0, 4, (h, w)).astype(np.float32)
    safe = index.copy()
    safe[70:80, 10:20] += 1.0  # near occlusion edges: two patches in two of the blend's 64 px tiles
    safe[120:125, 180:190] -= 1.0
    safe[100, 40] += 0.01  # a small difference in a kept tile: kept too
    safe[5, 150] += 0.02  # one in no kept tile
    frames = rng.uniform(0, 1, (5, h, w, 3)).astype(np.float32)
    kept, images = [], []
    for split in (1, 2, 4):
        monkeypatch.setattr(DepthmapFusion, "SAFE_SPLIT", split)
        fusion = DepthmapFusion(index, 0.5, safe_index=safe)
        for position, frame in enumerate(frames):
            fusion.add(float(position), frame)
        kept.append(sum(e[3].shape[0] * e[3].shape[1] for e in fusion._safe.rows if e is not None))
        images.append(fusion.result())
    assert kept[0] == 55 * (54 + 62)  # split 1: the two 64 px tiles, inside the box where the index differs
    assert kept[1] == 26 * 22 + 29 * 30 + 29 * 32  # the 32 px tiles of the patches and of the small difference
    assert kept[2] < kept[1]
    assert all(np.array_equal(images[0], image) for image in images[1:])
    solved = []  # the background solver's solution is made in the tiles the safe blend gets: the blend's own
    for split in (1, 2):
        monkeypatch.setattr(DepthmapFusion, "SAFE_SPLIT", split)
        fusion = DepthmapFusion(index, 0.5, safe_index=safe, slope=2.0)
        for position, frame in enumerate(frames):
            fusion.add(float(position), frame)
        solved.append(fusion.result())
    assert np.array_equal(*solved) and not np.array_equal(solved[0], images[0])
