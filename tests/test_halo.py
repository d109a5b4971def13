"""Halos at occlusion edges (issue 15): the occlusion-aware depth-map fusion against the focus map alone.

Rendered halo scenes (``postfocus.synth.halo_scenes``, two-layer renderer) are scored against their truth
with the benchmark's halo measure (mean absolute error, 8-bit levels, in a 9 px band around the true
depth edges); the real ``pcb`` stack is checked for gold flecks of the pins' blur on the background.
Thresholds are the values measured when the fusion changed (commented), with a margin.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from postfocus.align import common_area
from postfocus.fuse import consistent_blend, defocus_slope, visible_index
from postfocus.fuse.occlusion import occluder_cover
from postfocus.fuse.base import upscale_region
from postfocus.io.arrays import ArraySource
from postfocus.io.open import open_source
from postfocus.pipeline.analyse import analyse
from postfocus.pipeline.merge import fuse
from postfocus.synth import oracle_composite, psnr, render_stack, scene
from postfocus.synth.halo_scenes import render_layered

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from metrics import halo_band, halo_score  # noqa: E402

CAMERA = dict(shake_px=3.0, rotation_deg=0.3, noise=0.004, jpeg_quality=95)


def _fused(st):  # noqa: ANN001
    """(before, now, oracle, analysis) for a rendered stack: the focus map alone, the occlusion-aware default."""
    source = ArraySource(st.frames)
    analysis = analyse(source)
    before = fuse(source, analysis.maps, alignment=analysis.alignment, occlusion=False)
    now = fuse(source, analysis.maps, alignment=analysis.alignment)
    return before, now, oracle_composite(st), analysis


def _scored(st, images):  # noqa: ANN001
    """(halo, psnr) of each image over the area every frame covers."""
    h, w = st.sharp.shape[:2]
    t, l, b, r = common_area(st.transforms, (h, w))
    box = (slice(t + 4, b - 4), slice(l + 4, r - 4))
    band = halo_band(st.depth, 9)[box]
    return [(halo_score(x[box], st.sharp[box], band), psnr(x[box], st.sharp[box])) for x in images]


@pytest.fixture(scope="module")
def pins():
    st = render_layered("pins", 8, size=(300, 450), max_blur=8.0, seed=1, **CAMERA)
    return st, _fused(st)


def test_defocus_slope_is_the_rendered_blur_growth():
    st = render_stack(*scene("steps", (240, 360), seed=1), 8, max_blur=6.0, seed=1, **CAMERA)
    maps = analyse(ArraySource(st.frames)).maps
    scale = maps.shape[1] / maps.size[1]
    truth = 6.0 / 7 * scale  # disc radius per frame, analysis pixels
    assert defocus_slope(maps.volume, maps.focus_index, maps.confidence) == pytest.approx(truth, rel=0.2)


def test_visible_index_caps_only_within_the_blur_reach():
    ramp = np.tile(np.linspace(0, 6, 61, dtype=np.float32), (5, 1))  # 0.1 frame a pixel: a surface, no occlusion
    assert np.array_equal(visible_index(ramp, 2.0), ramp)
    step = np.full((5, 40), 8.0, np.float32)
    step[:, :10] = 1.0  # a near object at frame 1 before a background at frame 8
    e = visible_index(step, 2.0)  # 2 px of blur radius per frame
    assert np.allclose(e[:, :10], 1.0)
    assert np.allclose(e[2, 10:23], 1.0 + (np.arange(10, 23) - 9) / 2.0)  # within reach: nearer frames, graded
    assert np.allclose(e[:, 24:], 8.0)  # beyond the blur reach: the background's own frame
    unsure = np.zeros_like(step, bool)
    assert np.array_equal(visible_index(step, 2.0, occluder=unsure), step)  # an unsure index occludes nothing


def _visible_index_fresh_arrays(index, slope, occluder):  # noqa: ANN001
    """:func:`visible_index` as it was before small6: new arrays at every step of the erosion."""
    from postfocus.fuse.occlusion import _CROSS, _DIAGONAL

    step, diagonal = np.float32(1.0 / slope), np.float32(np.sqrt(2.0) / slope)
    cap = np.where(occluder, index, np.float32(np.inf)).astype(np.float32)
    for _ in range(int(np.ceil(float(np.nanmax(index) - np.nanmin(index)) / float(step))) + 2):
        nxt = np.minimum(cv2.erode(cap, _CROSS, borderType=cv2.BORDER_REPLICATE) + step,
                         cv2.erode(cap, _DIAGONAL, borderType=cv2.BORDER_REPLICATE) + diagonal)
        nxt = np.minimum(nxt, cap)
        if np.array_equal(nxt, cap):
            break
        cap = nxt
    return np.minimum(index, cap).astype(np.float32)


def test_visible_index_with_its_arrays_reused_is_the_same_to_the_bit():
    """The erosion writes every step into two arrays made once (the step before is the next one's): the
    same floats as with new arrays at every step, for a map of near blobs before a far slope, with unsure
    pixels, at several blur growths, and for a crop of a map (a view); the caller's map is not written."""
    rng = np.random.default_rng(5)
    far = np.tile(np.linspace(20, 27, 160, dtype=np.float32), (120, 1))
    near = cv2.GaussianBlur(rng.random((120, 160)).astype(np.float32), (0, 0), 6)
    index = np.where(near > np.quantile(near, 0.8), 3.0 + 4.0 * near, far).astype(np.float32)
    sure = rng.random((120, 160)) < 0.85
    before = index.copy()
    for slope in (0.4, 0.9, 2.5):
        for idx, occluder in ((index, sure), (index[7:-5, 3:-9], sure[7:-5, 3:-9])):
            got = visible_index(idx, slope, occluder=occluder)
            want = _visible_index_fresh_arrays(idx, slope, occluder)
            assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
            assert (got < idx).any()  # something was capped
    assert np.array_equal(index, before)


def test_consistent_blend_takes_the_safe_blend_only_where_a_glow_shows():
    rng = np.random.default_rng(0)
    safe = np.full((64, 64, 3), 0.3, np.float32)
    sharp = safe + rng.normal(0, 0.05, safe.shape).astype(np.float32)  # fine detail only: kept
    assert float(np.abs(consistent_blend(sharp, safe) - sharp).mean()) < 0.003  # noise of 0.05: kept
    yy, xx = np.mgrid[0:64, 0:64]
    glow = sharp + 0.3 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 200.0)[..., None].astype(np.float32)
    out = consistent_blend(glow, safe)
    assert abs(float(out[32, 32].mean()) - 0.3) < 0.02  # the glow's centre: the safe blend
    assert float(np.abs(out[:6, :6] - glow[:6, :6]).mean()) < 0.01  # far from it: the sharp blend


def test_pins_halo_lower_than_by_the_focus_map_alone(pins):
    st, (before, now, oracle, _) = pins
    (h_before, p_before), (h_now, p_now), (h_oracle, _) = _scored(st, [before, now, oracle])
    # measured: halo 19.4 -> 12.6 (oracle 33.7), PSNR 25.1 -> 28.3 dB (before the exposure gains left out the
    # highlights' reach: 23.9 -> 19.0, 23.8 -> 25.3 dB)
    assert h_now <= 0.85 * h_before
    assert p_now >= p_before + 0.8
    assert h_now < 0.7 * h_oracle


def test_pins_halo_half_of_the_first_fusion(pins):
    """Issue 15's target on the rendered pins: at most half the halo of the fusion by the focus map alone as it
    was before the issue (23.9 at this size, with the exposure gains misread from the clipped highlights)."""
    st, (_, now, oracle, analysis) = pins
    (h_now, p_now), (h_oracle, _) = _scored(st, [now, oracle])
    # measured: 12.6 (oracle 33.7), PSNR 28.3 dB; the pins' own pixels' error in the band 4.9 instead of 15.7
    assert h_now <= 0.55 * 23.9 and p_now >= 27.8
    # the exposure gains are the true ones (their product with the renderer's gain is 1): a highlight far brighter
    # than white, clipped when sharp and spread below white when blurred, no longer reads as a change of exposure
    errors = [float(np.mean(a.gain)) * float(np.mean(g)) for a, g in zip(analysis.alignment, st.gains)]
    assert max(abs(e - 1.0) for e in errors) < 0.01  # measured: at most 0.3 % (2-23 % before)


def test_exposure_gain_ignores_a_clipped_highlight_bloom():
    """Two frames of the same exposure: a highlight 8x white clipped when sharp, spread below white when blurred."""
    from postfocus.align.pair import PairMatch, channel_gain
    from postfocus.align.sweep import SweepAligner

    rng = np.random.default_rng(0)
    light = (0.02 + 0.08 * rng.random((200, 300, 3))).astype(np.float32)  # a dark textured scene, linear light
    light[90:110, 140:150] = 8.0  # a specular stripe
    sharp = np.clip(light, 0.0, 1.0)
    blurred = np.clip(cv2.blur(light, (15, 15)), 0.0, 1.0)  # its bloom holds light the sharp frame clipped
    a, b = SweepAligner.exposure_frame(sharp), SweepAligner.exposure_frame(blurred)
    gain = SweepAligner._gain(a, b, PairMatch(np.eye(3), 1.0, "ecc", True), 300)
    assert np.allclose(gain, 1.0, atol=0.01)
    whole = np.ones((200, 300), np.uint8)
    assert channel_gain(sharp, blurred, whole, gamma=1.0).max() < 0.9  # the whole frame: 0.89, the bloom as exposure


def test_grass_no_worse_than_by_the_focus_map_alone():
    st = render_layered("grass", 8, size=(300, 450), max_blur=8.0, seed=1, **CAMERA)
    before, now, oracle, _ = _fused(st)
    (h_before, p_before), (h_now, p_now), (h_oracle, p_oracle) = _scored(st, [before, now, oracle])
    # measured: halo 7.87 both, PSNR 32.52 -> 32.47 (oracle 15.7, 28.8 dB)
    assert h_now <= h_before + 0.1 and p_now >= p_before - 0.15
    assert h_now < 0.6 * h_oracle and p_now > p_oracle + 3.0


def test_fusion_above_the_oracle_on_a_small_stack():
    st = render_stack(*scene("steps", (240, 360), seed=1), 8, max_blur=6.0, seed=1, **CAMERA)
    _, now, oracle, _ = _fused(st)
    (_, p_now), (_, p_oracle) = _scored(st, [now, oracle])
    # measured: 32.59 dB against the oracle's 29.30 (it copies the near objects' blur onto the background)
    assert p_now >= p_oracle + 2.5


def test_pcb_pins_leave_no_gold_flecks_on_the_background(real_data):
    source = open_source(real_data / "pcb")
    analysis = analyse(source)
    region = analysis.common_area()
    index = upscale_region(analysis.maps.focus_index, analysis.maps.size, region)
    x0, x1, y0, y1 = 1380, 1560, 740, 900  # the pin tips of issue 15, output pixels
    far = index[y0:y1, x0:x1] > 2.0  # the board behind the pins (frames 3-6)

    def gold_share(occlusion: bool) -> float:
        image = fuse(source, analysis.maps, alignment=analysis.alignment, region=region, occlusion=occlusion)
        hsv = cv2.cvtColor(np.clip(image[y0:y1, x0:x1], 0, 1), cv2.COLOR_RGB2HSV)
        gold = (hsv[..., 0] > 25) & (hsv[..., 0] < 60) & (hsv[..., 1] > 0.45) & (hsv[..., 2] > 0.35)
        return float((gold & far).sum() / far.sum())

    # measured: 2.2 % of the board's pixels gold before, 0.14 % now
    assert gold_share(False) > 0.01
    assert gold_share(True) < 0.004


def test_forward_check_band_ratio_at_the_pins():
    """The forward-model check (postfocus.check): residual near the pins' edges within 1.5x of the interior's."""
    from postfocus.check.forward import check_frames
    from postfocus.check.stack import band_ratio

    st = render_layered("pins", 10, size=(480, 720), max_blur=12.0, seed=1, shake_px=8.0, rotation_deg=0.5,
                        breathing=0.03, exposure_drift=0.05, noise=0.004, jpeg_quality=95)
    h, w = st.sharp.shape[:2]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    aligned = [np.clip(cv2.warpPerspective(f, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
                       / np.asarray(g, np.float32), 0, 1) for f, m, g in zip(st.frames, st.transforms, st.gains)]
    before, now, _, _ = _fused(st)

    def ratio(image: np.ndarray) -> float:
        result = check_frames(np.clip(image, 0, 1), st.depth, lambda i: aligned[i], list(range(len(aligned))))
        return band_ratio(result, st.depth, 5)

    # measured: 1.72 before, 1.40 now, the truth itself 1.17 (with the exposure gains misread from the clipped
    # highlights: 1.56, 1.09; the residual left is on the pins' flanks beside the specular stripe, docs/quality.md)
    assert ratio(now) <= 1.5 < ratio(before)


def test_occluder_cover_inverts_a_two_layer_composite():
    """frame = S + (1 - A) B with the cover and spill of the near layer: the background comes back exactly."""
    rng = np.random.default_rng(3)
    rank = np.full((60, 80), 6.0, np.float32)
    rank[20:40, 10:30] = 0.0  # a near square at frame 0 before a background at frame 6
    near = rng.uniform(0.2, 0.9, (60, 80, 3)).astype(np.float32)
    back = rng.uniform(0.0, 1.0, (60, 80, 3)).astype(np.float32)
    cover, spill = occluder_cover(rank, 6.0, 1.0, colour=near)  # 6 px of blur in the frame focused on the back
    alpha = (rank == 0).astype(np.float32)
    assert cover[30, 20] > 0.99 and cover[30, 33] > 0.1 and cover[30, 40] == 0.0  # reaches 6 px past the edge, no more
    frame = spill + (1.0 - cover)[..., None] * back
    seen = (alpha == 0) & (cover < 0.9)
    solved = (frame - spill)[seen] / (1.0 - cover)[seen][:, None]
    assert np.abs(solved - back[seen]).max() < 1e-4


def test_background_solved_behind_grass_with_the_true_depth():
    """With depth edges right to the pixel, solving the matting equation (restore) removes most of the halo."""
    st = render_layered("grass", 8, size=(300, 450), max_blur=8.0, seed=1, **CAMERA)
    source = ArraySource(st.frames)
    analysis = analyse(source)
    truth = dataclasses.replace(analysis.maps, focus_index=st.depth.astype(np.float32),
                                confidence=np.ones_like(st.depth))
    images = [fuse(source, maps, alignment=analysis.alignment, restore=restore)
              for maps in (truth, analysis.maps) for restore in (False, True)]
    (h_safe, p_safe), (h_solved, p_solved), (h_map, _), (h_map_solved, _) = _scored(st, images)
    # measured: true depth 11.2 -> 5.86 (PSNR 31.5 -> 36.2 dB); the estimated map 7.87 -> 7.92 (its depth
    # edges run up to 12 px into the wall, where no frame is solved for: no gain, and no loss)
    assert h_solved <= 0.6 * h_safe and p_solved >= p_safe + 3.0
    assert h_map_solved <= h_map + 0.3


def test_occlusion_sides_give_the_blades_bled_rim_back_to_the_wall(layered_grass):
    """The blades' sharp outlines claim the wall beside them (foreground fattening); occlusion_sides gives
    those pixels back, and the background solver (restore) then has them to work on."""
    from postfocus.focus.map import focus_index_map

    st, source, analysis, box, band = (layered_grass.st, layered_grass.source, layered_grass.analysis,
                                       layered_grass.box, layered_grass.band)
    maps = analysis.maps
    sided, _ = focus_index_map(maps.volume, analysis.guide, sides=True)
    wall = band & (st.depth[box] > 3.5)
    blades = band & ~wall

    def wrong(index: np.ndarray, where: np.ndarray = wall) -> float:
        """Share of the pixels (the wall's, by default) in the edge band whose index is more than 1.5 frames off."""
        return float((np.abs(index - st.depth)[box] > 1.5)[where].mean())

    images = [fuse(source, m, alignment=analysis.alignment, restore=True)
              for m in (maps, dataclasses.replace(maps, focus_index=sided))]
    (h_map, _), (h_sided, _) = _scored(st, images)
    # measured: 99.96 % of the wall's band pixels off before, 29.2 % after, the blades' own 0.0 % (with the
    # spread test of the fifth session, before the focus curves were asked: 10.4 % and 1.6 %); halo with restore
    # 7.92 -> 5.69 (then 6.13)
    assert wrong(maps.focus_index) > 0.9 and wrong(sided) < 0.35 and wrong(sided, blades) < 0.005
    assert h_sided <= 0.78 * h_map


def test_occluder_cover_of_a_large_blur_at_a_reduced_scale():
    """A disc blur of 8 px or more is made at a reduced scale (cost / f^4); it stays within 3.5 % of the full one."""
    from postfocus.fuse.occlusion import _disc

    rank = np.full((150, 230), 9.0, np.float32)
    rank[40:110, 30:80] = 0.0  # a broad near object
    rank[:, 150:153] = 1.0  # and a thin one
    colour = np.random.default_rng(1).uniform(0.0, 1.0, (150, 230, 3)).astype(np.float32)
    cover, spill = occluder_cover(rank, 9.0, 2.0, colour=colour)  # radii 16 and 18 px
    want_cover = np.zeros_like(cover)
    want_spill = np.zeros_like(spill)
    for j in (1.0, 0.0):  # far to near, as occluder_cover composites
        mask = (rank == j).astype(np.float32)
        kernel = _disc(2.0 * (9.0 - j))
        blurred = cv2.filter2D(mask, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        want_spill = want_spill * (1.0 - blurred)[..., None] + cv2.filter2D(
            colour * mask[..., None], -1, kernel, borderType=cv2.BORDER_REPLICATE)
        want_cover = 1.0 - (1.0 - want_cover) * (1.0 - blurred)
    assert np.abs(cover - want_cover).max() < 0.035 and np.abs(cover - want_cover).mean() < 0.003  # measured: 0.032, 0.0020
    assert np.abs(spill - want_spill).max() < 0.035


def test_blur_growth_read_against_the_guide_is_the_rendered_one(pins):
    """The blur growth read by blurring the sharpest-frame composite (each pixel's own texture) is the rendered
    one on both halo scenes; the focus measure's fall-off alone (defocus_slope) depends on the texture."""
    from postfocus.fuse.occlusion import blur_growth

    truth = 8.0 / 7  # 8 px of blur over 7 frame steps, analysis size = frame size here
    grass = render_layered("grass", 8, size=(300, 450), max_blur=8.0, seed=1, **CAMERA)
    for analysis in (analyse(ArraySource(grass.frames)), pins[1][3]):
        maps = analysis.maps
        growth = blur_growth(maps.volume, analysis.guide, maps.focus_index, maps.confidence)
        # measured: grass 1.21, pins 1.23 (defocus_slope: 0.95, 1.20); at bench size 1.333 and 1.332 for 1.333
        assert growth == pytest.approx(truth, rel=0.1)


def test_occluder_cover_at_a_reduced_scale_where_every_disc_is_large():
    """Cover and spill are made on the picture area-averaged by floor(r / 2), r the smallest disc (at most 4x):
    within 7 % of the full-scale compositing at the discs' edges, 0.3 % on average."""
    rank = np.full((150, 230), 9.0, np.float32)
    rank[40:110, 30:80] = 0.0
    rank[:, 150:153] = 1.0
    colour = np.random.default_rng(1).uniform(0.0, 1.0, (150, 230, 3)).astype(np.float32)
    for slope in (0.5, 0.75, 1.0, 2.0):  # smallest discs 4, 6, 8 and 16 px: scale 1/2, 1/3, 1/4, 1/4
        cover, spill = occluder_cover(rank, 9.0, slope, colour=colour)
        full_cover, full_spill = occluder_cover(rank, 9.0, slope, colour=colour, reduce=False)
        # measured: cover 0.047, 0.064, 0.057, 0.022 at most (mean 0.0015-0.0028); spill 0.065, 0.042, 0.031, 0.012
        assert np.abs(cover - full_cover).max() < 0.07 and np.abs(cover - full_cover).mean() < 0.004
        assert np.abs(spill - full_spill).max() < 0.07 and spill.min() >= 0.0


def test_occluder_cover_of_a_far_to_near_sweep_is_the_mirrored_one():
    """With the sweep recorded far to near (the last frame the nearest focus), the occluders are the pixels of
    higher rank: the cover is that of the mirrored ranks."""
    rank = np.full((60, 80), 6.0, np.float32)
    rank[20:40, 10:30] = 0.0
    colour = np.random.default_rng(2).uniform(0.0, 1.0, (60, 80, 3)).astype(np.float32)
    cover, spill = occluder_cover(rank, 6.0, 1.5, colour=colour)
    mirrored, mirrored_spill = occluder_cover(8.0 - rank, 2.0, 1.5, colour=colour, near_to_far=False)
    assert cover[30, 33] > 0.1 and np.abs(cover - mirrored).max() < 1e-6 and np.abs(spill - mirrored_spill).max() < 1e-6


def _falloff_all_frames_at_once(volume, index, confidence, sure, low):  # noqa: ANN001
    """The fall-off's samples as :func:`occlusion._falloff` took them before mem8: whole (frames, pixels) arrays."""
    n = volume.shape[0]
    sel = np.asarray(confidence) >= sure
    step = max(1, int(np.sqrt(sel.sum() / 20000)))
    ys, xs = np.nonzero(sel)
    ys, xs = ys[::step], xs[::step]
    d = np.asarray(index, np.float32)[ys, xs]
    curve = np.asarray(volume[:, ys, xs], np.float32)
    k = np.clip(np.rint(d).astype(np.int64), 0, n - 1)
    ratio = curve / np.maximum(curve[k, np.arange(k.size)], 1e-12)[None, :]
    delta = np.abs(np.arange(n, dtype=np.float32)[:, None] - d[None, :])
    f, p = np.nonzero((delta >= 1.0) & (delta <= 4.0) & (ratio > low) & (ratio < 0.97))
    return ys, xs, p, delta[f, p], ratio[f, p]


def _by_sample(samples):  # noqa: ANN001
    """The fall-off's samples (pixel, distance, ratio) in one order: sorted by pixel, distance, ratio."""
    ys, xs, p, delta, ratio = samples
    order = np.lexsort((ratio, delta, p))
    return ys, xs, p[order], delta[order], ratio[order]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_falloff_read_about_each_pixels_frame_gives_the_same_samples_with_less_memory(dtype, monkeypatch):
    """The blur growth's samples, read from the 9 frames about each pixel's nearest frame, are those of all
    frames at once (bit for bit, in another order: every user takes their median, which is the same to the
    bit), also on a crop of a volume (a view, as pass 2 gets it) and with an index beyond the frames; and
    the temporaries of a few frames replace whole (frames, pixels) arrays: the traced peak is well under the
    whole arrays' (measured: 0.47 of it at 40 frames of 300x420, most of it the samples themselves)."""
    import tracemalloc

    from postfocus.fuse import occlusion
    from postfocus.fuse.occlusion import _falloff, blur_growth

    n, h, w = 40, 300, 420
    rng = np.random.default_rng(3)
    depth = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 20)
    depth = (depth - depth.min()) / np.ptp(depth) * (n - 1)  # a smooth surface through the whole sweep
    frames = np.arange(n, dtype=np.float32)[:, None, None]
    texture = 0.5 + rng.random((h, w)).astype(np.float32)
    volume = (texture / (1.0 + (0.7 * (frames - depth)) ** 2)).astype(dtype)
    confidence = np.where(rng.random((h, w)) < 0.9, 0.9, 0.2).astype(np.float32)
    m = int(np.ceil((confidence >= 0.6).sum() / max(1, int(np.sqrt((confidence >= 0.6).sum() / 20000)))))
    crop = np.zeros((n, h + 7, w + 9), dtype)
    crop[:, 3:-4, 5:-4] = volume
    beyond = depth * (n + 4) / (n - 1) - 2.5  # from 2.5 frames before the first to 1.5 after the last
    for vol, index in ((volume, depth), (crop[:, 3:-4, 5:-4], depth), (volume, beyond)):
        for low in (0.03, 0.01):
            got = _falloff(vol, index, confidence, 0.6, low)
            want = _falloff_all_frames_at_once(volume, index, confidence, 0.6, low)
            assert want[2].size > 2 * m  # several samples per pixel
            for a, b in zip(_by_sample(got), _by_sample(want)):
                assert a.dtype == b.dtype and np.array_equal(a, b)
    guide = texture / texture.max()
    slopes = [(defocus_slope(crop[:, 3:-4, 5:-4], index, confidence), blur_growth(volume, guide, index, confidence))
              for index in (depth, beyond)]
    monkeypatch.setattr(occlusion, "_falloff", _falloff_all_frames_at_once)  # the same, from all frames at once
    assert slopes == [(defocus_slope(volume, index, confidence), blur_growth(volume, guide, index, confidence))
                      for index in (depth, beyond)]
    peaks = []
    for take in (_falloff, _falloff_all_frames_at_once):
        tracemalloc.start()
        take(volume, depth, confidence, 0.6, 0.03)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[0] < 0.6 * peaks[1]


def test_the_solver_reads_its_blur_growth_against_the_maps_guide(layered_grass):
    """The analysis keeps its guide with the maps, and the background solver (restore) composites the near
    layers' discs with the growth read against it (solver_growth -> blur_growth), not the focus measure's
    fall-off (defocus_slope reads the blades' growth short): on the outline map of rendered grass the halo
    falls. Fails on main (StackMaps has no guide; the solver took defocus_slope)."""
    from postfocus.focus.map import focus_index_map
    from postfocus.fuse.occlusion import blur_growth, solver_growth

    st, source, analysis, box, band = (layered_grass.st, layered_grass.source, layered_grass.analysis,
                                       layered_grass.box, layered_grass.band)
    maps = analysis.maps
    assert maps.guide is analysis.guide
    args = (maps.volume, maps.focus_index, maps.confidence)
    assert solver_growth(*args, guide=maps.guide) == blur_growth(maps.volume, maps.guide, *args[1:])
    assert solver_growth(*args) == defocus_slope(*args)
    assert solver_growth(*args, guide=maps.guide[1:]) == defocus_slope(*args)  # (a guide of another shape: ignored)
    index, _ = focus_index_map(maps.volume, analysis.guide, outline=True)
    halos = []
    for guide in (None, maps.guide):
        m = dataclasses.replace(maps, focus_index=index, guide=guide)
        image = np.round(np.clip(fuse(source, m, alignment=analysis.alignment, restore=True), 0, 1) * 255) / 255
        halos.append(halo_score(image[box], st.sharp[box], band))
    # measured: growth 1.21 against 0.95 (rendered 8 / 7 = 1.14); halo 6.07 -> 4.65
    assert halos[1] <= 0.85 * halos[0]
