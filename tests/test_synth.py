"""The synthetic focal-stack generator: the ground truth other quality tests rely on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile

from postfocus.colour import gamma_decode
from postfocus.errors import PostfocusError
from postfocus.synth import (
    SCENES,
    fill_disparity,
    oracle_composite,
    psnr,
    render_stack,
    scene,
    ssim,
    write_stack,
)

SIZE = (160, 240)


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _laplacian_variance(image: np.ndarray, mask: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F)[mask].var())


def _align(stack, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i back in reference geometry with the true transform and gain, and where it is valid."""
    h, w = stack.depth.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpPerspective(stack.frames[i], stack.transforms[i], (w, h), flags=flags)
    cover = cv2.warpPerspective(np.ones((h, w), np.float32), stack.transforms[i], (w, h), flags=flags)
    return back / stack.gains[i].astype(np.float32), _erode(cover > 0.999, 2)


@pytest.fixture(scope="module")
def steps():
    return scene("steps", SIZE)


@pytest.fixture(scope="module")
def occluder():
    return scene("occluder", SIZE)


# --- scenes -----------------------------------------------------------------


@pytest.mark.parametrize("name", SCENES)
def test_scene_is_float32_image_with_full_depth_range(name):
    img, depth = scene(name, (64, 96), seed=1)
    assert img.shape == (64, 96, 3) and img.dtype == np.float32
    assert depth.shape == (64, 96) and depth.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert depth.min() == pytest.approx(0.0, abs=1e-6) and depth.max() == pytest.approx(1.0, abs=1e-6)
    assert img.std() > 0.05  # a picture, not a flat field


def test_scene_layouts():
    _, steps_depth = scene("steps", SIZE)
    assert 4 <= len(np.unique(steps_depth)) <= 6  # discrete fronto-parallel layers
    _, ramp_depth = scene("ramp", SIZE)
    assert len(np.unique(ramp_depth)) > 100  # smooth
    assert np.abs(np.diff(ramp_depth, axis=0)).max() < 0.02
    img, occ_depth = scene("occluder", SIZE)
    near = occ_depth == 0
    assert 0.03 < near.mean() < 0.3 and np.all(occ_depth[~near] == 1.0)
    flat_img, flat_depth = scene("flat", SIZE)
    grad = np.abs(cv2.Laplacian(cv2.cvtColor(flat_img, cv2.COLOR_RGB2GRAY), cv2.CV_32F))
    textureless = _erode(grad < 1e-3, 1)
    assert textureless.mean() > 0.05  # a sizeable blank region ...
    assert np.ptp(flat_depth[textureless]) > 0.1  # ... whose depth follows the tilted plane


def test_scene_seed_and_errors():
    a, _ = scene("occluder", SIZE, seed=0)
    b, _ = scene("occluder", SIZE, seed=0)
    c, _ = scene("occluder", SIZE, seed=5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(PostfocusError, match="unknown scene"):
        scene("teapot")
    with pytest.raises(PostfocusError):
        scene("ramp", (4, 4))


def test_motorcycle_depth_is_nearer_where_disparity_is_bigger():
    from skimage import data

    _, _, disp = data.stereo_motorcycle()
    filled = fill_disparity(disp)
    assert np.isfinite(filled).all() and filled.min() > 0
    valid = np.isfinite(disp)
    assert np.array_equal(filled[valid], disp[valid])
    img, depth = scene("motorcycle")
    assert img.shape == (500, 741, 3)
    corr = np.corrcoef(depth[valid], disp[valid])[0, 1]
    assert corr < -0.95  # bigger disparity = nearer = smaller depth


# --- optics -----------------------------------------------------------------


def test_same_seed_gives_identical_stack(steps):
    kw = dict(shake_px=4.0, rotation_deg=1.0, breathing=0.03, exposure_drift=0.05, noise=0.01, jpeg_quality=90)
    a = render_stack(*steps, 6, seed=3, **kw)
    b = render_stack(*steps, 6, seed=3, **kw)
    c = render_stack(*steps, 6, seed=4, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert all(np.array_equal(x, y) for x, y in zip(a.transforms, b.transforms))
    assert np.array_equal(a.gains, b.gains)
    assert not np.allclose(a.transforms[0], c.transforms[0])
    assert all(f.dtype == np.float32 and f.shape == SIZE + (3,) for f in a.frames + a.clean_frames)
    assert a.depth.dtype == np.float32


def test_in_focus_layer_of_reference_frame_equals_sharp(steps):
    img, depth01 = steps
    stack = render_stack(img, depth01, 5, max_blur=6.0)  # layers at focus indices 0..4
    ref = stack.reference
    assert ref == 2 and np.array_equal(stack.transforms[ref], np.eye(3))
    # away from the edges where nearer, blurred layers spill over
    in_focus = _erode(np.abs(stack.depth - stack.focus_positions[ref]) < 1e-3, 8)
    assert in_focus.sum() > 500
    assert psnr(stack.clean_frames[ref], img, in_focus) > 40
    out_of_focus = _erode(stack.depth == 0, 8)
    assert psnr(stack.clean_frames[ref], img, out_of_focus) < 32


def test_point_spread_radius_follows_thin_lens():
    n, max_blur = 8, 6.0
    img = np.zeros((81, 81, 3), np.float32)
    img[40, 40] = 1.0
    yy, xx = np.mgrid[-40:41, -40:41]
    for depth01 in (0.0, 0.5):
        stack = render_stack(img, np.full((81, 81), depth01, np.float32), n, max_blur=max_blur)
        for i, clean in enumerate(stack.clean_frames):
            energy = gamma_decode(clean)[..., 0].astype(np.float64)
            # a uniform disc of radius r has mean squared radius r^2 / 2
            measured = np.sqrt(2 * (energy * (xx**2 + yy**2)).sum() / energy.sum())
            expected = max_blur * abs(depth01 * (n - 1) - i) / (n - 1)
            if expected < 0.5:
                assert measured == 0.0
            else:
                assert abs(measured - expected) < 0.1 * expected + 0.3, (depth01, i, measured, expected)


def test_blur_grows_with_distance_from_focus(steps):
    img, depth01 = steps
    stack = render_stack(img, depth01, 5, max_blur=6.0)
    for layer_index in (0.0, 2.0, 4.0):
        region = _erode(np.abs(stack.depth - layer_index) < 1e-3, 8)
        assert region.sum() > 500
        sharpness = [_laplacian_variance(f, region) for f in stack.clean_frames]
        distance = np.abs(stack.focus_positions - layer_index)
        order = np.argsort(distance, kind="stable")
        for a, b in zip(order[:-1], order[1:]):
            if distance[b] > distance[a]:
                assert sharpness[b] < 0.8 * sharpness[a], (layer_index, sharpness)
        assert sharpness[order[0]] > 5 * sharpness[order[-1]]


def test_defocused_occluder_spreads_over_background_sharp_one_does_not(occluder):
    img, depth01 = occluder
    stack = render_stack(img, depth01, 8, max_blur=6.0)
    near_focus, far_focus = stack.clean_frames[0], stack.clean_frames[-1]
    occ = stack.depth == 0
    ring = _dilate(occ, 3) & ~occ  # background pixels just outside the occluder
    far_background = ~_dilate(occ, 12)
    change = lambda frame, mask: float(np.abs(frame - img)[mask].mean())  # noqa: E731

    # focused far: background sharp, but the blurred occluder covers the ring
    assert psnr(far_focus, img, far_background) > 40
    assert change(far_focus, ring) > 0.08
    bar = occ & (np.arange(SIZE[1])[None, :] > SIZE[1] // 2)
    bar_ring = _dilate(bar, 3) & ~bar
    assert far_focus[bar_ring].mean() - img[bar_ring].mean() > 0.1  # the bright bar blooms outward

    # focused near: the occluder, edges included, is untouched
    assert psnr(near_focus, img, occ) > 40
    edge = _dilate(occ, 1) & ~_erode(occ, 1)
    grad = lambda im: np.hypot(*np.gradient(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)))  # noqa: E731
    ratio_near = grad(near_focus)[edge].mean() / grad(img)[edge].mean()
    ratio_far = grad(far_focus)[edge].mean() / grad(img)[edge].mean()
    assert ratio_near > 0.8 and ratio_far < 0.5

    # the per-pixel oracle takes the background from the far frame, halo included
    oracle = oracle_composite(stack)
    assert psnr(oracle, img, far_background) > 40 and psnr(oracle, img, ring) < 25


# --- camera -----------------------------------------------------------------


def test_true_transforms_map_reference_to_frame(steps):
    n, breathing = 8, 0.05
    stack = render_stack(*steps, n, shake_px=6.0, rotation_deg=1.5, breathing=breathing)
    ref = stack.reference
    assert np.array_equal(stack.frames[ref], stack.clean_frames[ref])
    for i in range(n):
        back, valid = _align(stack, i)
        assert valid.mean() > 0.85
        assert psnr(back, stack.clean_frames[i], valid) > 30, i
        scale = np.sqrt(abs(np.linalg.det(stack.transforms[i][:2, :2])))
        assert scale == pytest.approx(1 + breathing * (i - ref) / (n - 1), abs=1e-9)
        if i != ref:  # the inverse convention would not line up
            inverse = np.linalg.inv(stack.transforms[i])
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            wrong = cv2.warpPerspective(stack.frames[i], inverse, SIZE[::-1], flags=flags)
            assert psnr(wrong, stack.clean_frames[i], valid) < 25
    # frames have no black borders from the warp
    assert min(float(f[:2].mean()) for f in stack.frames) > 0.05


def test_gains_noise_and_jpeg(steps):
    drift, sigma = 0.1, 0.02
    stack = render_stack(*steps, 6, exposure_drift=drift, noise=sigma)
    ref = stack.reference
    assert stack.gains.shape == (6, 3) and np.array_equal(stack.gains[ref], np.ones(3))
    assert np.all(np.abs(stack.gains - 1) <= drift * 1.3) and np.ptp(stack.gains) > 0.02
    for i, (frame, clean) in enumerate(zip(stack.frames, stack.clean_frames)):
        unclipped = np.all((clean * stack.gains[i] > 0.1) & (clean * stack.gains[i] < 0.9), axis=-1)
        residual = (frame - clean * stack.gains[i].astype(np.float32))[unclipped]
        assert abs(residual.mean()) < 0.002 and residual.std() == pytest.approx(sigma, rel=0.1)
    jpeg = render_stack(*steps, 3, jpeg_quality=70)
    codes = jpeg.frames[0] * 255
    assert np.allclose(codes, np.round(codes), atol=1e-3)  # decoded 8-bit values
    assert 28 < psnr(jpeg.frames[0], jpeg.clean_frames[0]) < 45


def test_oracle_beats_every_aligned_frame():
    for name in ("steps", "motorcycle"):
        img, depth01 = scene(name, SIZE)
        stack = render_stack(
            img, depth01, 8, shake_px=4.0, rotation_deg=1.0, breathing=0.03, exposure_drift=0.05, noise=0.005
        )
        oracle = oracle_composite(stack)
        assert oracle.dtype == np.float32 and oracle.shape == img.shape
        best_frame = 0.0
        for i in range(len(stack.frames)):
            back, valid = _align(stack, i)
            best_frame = max(best_frame, psnr(np.clip(back, 0, 1), img, valid))
        assert psnr(oracle, img) > best_frame + 3, name


def test_bad_arguments_raise_postfocus_error(steps):
    img, depth01 = steps
    with pytest.raises(PostfocusError):
        render_stack(img, depth01, 1)
    with pytest.raises(PostfocusError):
        render_stack(img[..., 0], depth01)
    with pytest.raises(PostfocusError):
        render_stack((img * 255).astype(np.uint8), depth01)
    with pytest.raises(PostfocusError):
        render_stack(img, depth01[:-1])
    with pytest.raises(PostfocusError):
        render_stack(img, depth01 * 3)
    with pytest.raises(PostfocusError):
        render_stack(img, depth01, 4, reference=4)
    with pytest.raises(PostfocusError):
        render_stack(img, depth01, 4, jpeg_quality=0)


# --- files and metrics ------------------------------------------------------


def test_write_stack_writes_readable_frames_and_truth(tmp_path, steps):
    stack = render_stack(*steps, 4, noise=0.01)
    paths = write_stack(stack, tmp_path / "jpg", fmt="jpg", quality=92)
    assert [p.name for p in paths] == [f"frame_{i:03d}.jpg" for i in range(4)]
    assert sorted(p.name for p in (tmp_path / "jpg").iterdir() if p.is_file()) == [p.name for p in paths]
    jpg = cv2.imread(str(paths[1]), cv2.IMREAD_UNCHANGED)
    assert jpg.dtype == np.uint8 and jpg.shape == SIZE + (3,)
    assert psnr(jpg[..., ::-1] / 255.0, stack.frames[1]) > 30

    truth = tmp_path / "jpg" / "truth"
    sharp16 = cv2.imread(str(truth / "truth_sharp.png"), cv2.IMREAD_UNCHANGED)
    assert sharp16.dtype == np.uint16 and np.abs(sharp16[..., ::-1] / 65535.0 - stack.sharp).max() < 1e-4
    assert np.array_equal(np.load(truth / "truth_depth.npy"), stack.depth)
    assert np.allclose(np.load(truth / "transforms.npy"), np.stack(stack.transforms))

    tifs = write_stack(stack, tmp_path / "tif", fmt="tif16")
    tif = tifffile.imread(tifs[2])
    assert tif.dtype == np.uint16 and tif.shape == SIZE + (3,)
    assert np.abs(tif / 65535.0 - stack.frames[2]).max() < 1e-4

    png16 = cv2.imread(str(write_stack(stack, tmp_path / "png16", fmt="png16")[0]), cv2.IMREAD_UNCHANGED)
    assert png16.dtype == np.uint16 and np.abs(png16[..., ::-1] / 65535.0 - stack.frames[0]).max() < 1e-4

    with pytest.raises(PostfocusError, match="unknown format"):
        write_stack(stack, tmp_path / "x", fmt="gif")
    with pytest.raises(PostfocusError, match="other frames"):
        write_stack(stack, tmp_path / "jpg", fmt="png")


def test_psnr_and_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((32, 48, 3)).astype(np.float32)
    assert psnr(a, a) == float("inf")
    assert psnr(np.zeros((8, 8, 3)), np.full((8, 8, 3), 0.1)) == pytest.approx(20.0)
    mask = np.zeros((32, 48), bool)
    mask[:, :24] = True
    b = a.copy()
    b[:, 24:] = 0
    assert psnr(a, b, mask) == float("inf") and psnr(a, b) < 15
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    assert 0.0 < ssim(a, noisy) < 0.95
    with pytest.raises(PostfocusError):
        psnr(a, a[:10])


def test_hidden_background_shows_through_a_blurred_near_object():
    """render_stack(hidden=True): a thin near bar, far out of focus, lets the background through; without it
    the bar keeps its sharp outline and its own colour (a one-layer render)."""
    h, w = 80, 120
    sharp = np.full((h, w, 3), 0.2, np.float32)
    sharp[:, 58:62] = 1.0  # a white bar 4 px wide, much thinner than the blur
    depth = np.ones((h, w), np.float32)
    depth[:, 58:62] = 0.0
    flat = render_stack(sharp, depth, 4, max_blur=8.0, seed=0).clean_frames[3]  # focused far: the bar blurred by 8 px
    layered = render_stack(sharp, depth, 4, max_blur=8.0, seed=0, hidden=True).clean_frames[3]
    assert flat[40, 60, 0] > 0.99  # one layer: the bar stays white to its outline
    # layers: light in linear terms, the bar's 4 px of white spread over a 16 px disc over a 0.2 background
    lin = gamma_decode(np.float32(0.2))
    expected = lin + (1.0 - lin) * 4.0 / (np.pi * 8.0 ** 2) * 2 * np.sqrt(8.0 ** 2 - 1.0)  # chord area of the bar
    assert float(gamma_decode(layered[40, 60, 0])) == pytest.approx(expected, rel=0.15)
    assert float(layered[40, 50, 0]) > 0.22  # its glow reaches the background beside it
    assert np.array_equal(render_stack(sharp, depth, 4, max_blur=8.0, seed=0, hidden=True).frames[0],
                          render_stack(sharp, depth, 4, max_blur=8.0, seed=0, hidden=True).frames[0])


def _row_stripes(img: np.ndarray) -> float:
    """Mean |second difference| of an image's row means: horizontal stripes."""
    return float(np.abs(np.diff(img.mean(axis=(1, 2)), 2)).mean())


def test_hidden_background_leaves_a_continuous_surface_unbroken():
    """render_stack(hidden=True) on a floor receding to a bright far wall: the floor, one continuous surface cut
    into depth slabs, has no stripes at the slabs' seams (before, the wall's extension leaked in there: row
    stripes up to 157 times the plain render's) and matches the plain render, while the wall still shows
    through the floor's blurred far rim, where the plain render keeps the floor's sharp outline."""
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    sharp = np.repeat((0.5 + 0.25 * np.sin(xx / 3.0) * np.sin(yy / 7.0 + xx / 11.0))[..., None], 3, 2)
    sharp = sharp.astype(np.float32)
    sharp[:40] = 0.9  # the wall
    depth = np.ones((h, w), np.float32)
    depth[40:] = np.linspace(0.6, 0.0, h - 40, dtype=np.float32)[:, None]  # the floor, 4.2 frames to 0
    plain = render_stack(sharp, depth, 8, max_blur=6.0, seed=0).clean_frames
    layered = render_stack(sharp, depth, 8, max_blur=6.0, seed=0, hidden=True).clean_frames
    floor = (slice(60, 120), slice(10, 150))
    for i in range(8):
        assert _row_stripes(layered[i][floor]) < 1.25 * _row_stripes(plain[i][floor]) + 1e-5, i
        assert float(np.abs(layered[i] - plain[i])[46:, 10:150].mean()) < 0.01, i
    # focused on the wall: the floor's edge (2.4 px of blur) lets the wall through where plain stays floor
    assert float((layered[7] - plain[7])[40, 10:150].mean()) > 0.1
    assert float((layered[7] - plain[7])[:38].max()) < 1e-6  # the wall above, in focus, is the same
