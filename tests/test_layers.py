"""Depth-layer compositing: cutting layers to the tiles they touch changes nothing.

``composite_layers`` blurs and composites each layer, strip of rows by strip, only
in the runs of columns its tiles reach; the reference below does the same on whole
frames. Discs of 8 px and more are blurred at reduced resolution on the frame's grid
of ``s`` x ``s`` blocks (tap21; before, on a grid that started at each strip's box:
65 dB against the whole frame with discs up to 17.6 px, 50 dB up to 52.8 px), so the
tiles give the whole frame's render to float rounding at any disc size (asserted
1e-5). Against discs applied at full resolution (the blur the reduced one stands in
for) the render is 45.2-45.3 dB with discs up to 52.8 px on 200x300 (38.6 before,
asserted 44) and 51.4-51.5 dB up to 17.6 px (51.5-51.6 before, asserted 50).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from postfocus.products.layers import STRIP, TILE, composite_layers, disc_blur, disc_kernel


def grid_blur(layer, radius):
    """A disc blur of the whole frame as the layers blur it: at 1/s resolution on the frame's s x s blocks
    (the bottom and right edges mirrored to whole blocks), back up bilinearly."""
    s = max(1, int(radius // 4))
    h, w = layer.shape[:2]
    if s == 1 or s > min(h, w) // 4:  # (a disc far past the picture: blurred as before)
        return disc_blur(layer, radius)
    grown = cv2.copyMakeBorder(layer, 0, -(-h // s) * s - h, 0, -(-w // s) * s - w, cv2.BORDER_REFLECT_101)
    small = cv2.resize(grown, (grown.shape[1] // s, grown.shape[0] // s), interpolation=cv2.INTER_AREA)
    kernel = disc_kernel(round(math.sqrt(max(radius * radius - s * s * 0.5, 0.25)) / s * 16) / 16)
    small = cv2.filter2D(small, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return cv2.resize(small, (grown.shape[1], grown.shape[0]), interpolation=cv2.INTER_LINEAR)[:h, :w]


def whole_frame_composite(linear, u, radii, blur=grid_blur):
    """Every occupied layer blurred (``blur(layer, radius)``) and composited over the whole frame, far to near."""
    acc = np.zeros((*u.shape, 4), np.float32)
    for k in reversed(range(len(radii))):
        own = np.maximum(0.0, 1.0 - np.abs(u - k)).astype(np.float32)
        if not (own > 1e-4).any():
            continue
        layer = np.dstack([linear * own[..., None], own]).astype(np.float32)
        blurred = blur(layer, radii[k])
        acc = acc * (1.0 - blurred[..., 3:4]) + blurred
    return acc


def full_disc(layer, radius):
    """The disc applied at full resolution (what the reduced blur stands in for)."""
    if radius < 0.5:
        return layer
    return cv2.filter2D(layer, -1, disc_kernel(radius), borderType=cv2.BORDER_REFLECT_101)


def scene(shape=(200, 300), seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape
    linear = rng.random((h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    u = 6.0 + 2.0 * yy / h  # a ramp at the back
    u[(yy - 50) ** 2 + (xx - 60) ** 2 < 30**2] = 0.3  # a near disc
    u[130:170, 200:280] = 3.6  # a block in the middle distance
    u[10:20, 250:260] = 2.0  # a small object far from the others
    return linear, u.astype(np.float32)


@pytest.mark.parametrize("shape", [(200, 300), (257, 411)])
@pytest.mark.parametrize("scale", [1.0, 4.0, 12.0])
def test_tiled_composite_matches_whole_frames(scale, shape):
    """The tiles give the whole frame's render at any disc size (on main, from discs of 8 px: 65 dB / 50 dB)."""
    linear, u = scene(shape)
    radii = [scale * abs(k - 3.6) for k in range(9)]
    assert u.shape[0] > 2 * TILE and u.shape[1] > 2 * TILE  # more than one box per layer is possible
    got = composite_layers(linear, u, radii)
    want = whole_frame_composite(linear, u, radii)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) < 1e-5


@pytest.mark.parametrize("scale,least", [(4.0, 50.0), (12.0, 44.0)])
def test_reduced_discs_stay_close_to_full_resolution_discs(scale, least):
    """The blur at reduced resolution against the discs at full resolution (main: 51.6 / 38.6 dB)."""
    linear, u = scene()
    radii = [scale * abs(k - 3.6) for k in range(9)]
    got = composite_layers(linear, u, radii)
    want = whole_frame_composite(linear, u, radii, blur=full_disc)
    assert 10 * np.log10(1.0 / float(np.mean((got - want) ** 2))) > least


def test_progress_once_per_strip_of_rows():
    linear, u = scene()
    calls = []
    composite_layers(linear, u, [abs(k - 3.6) for k in range(9)], progress=lambda *a: calls.append(a))
    strips = -(-u.shape[0] // (STRIP * TILE))
    assert strips > 1
    assert [c[1] for c in calls] == list(range(1, strips + 1))
    assert {c[2] for c in calls} == {strips} and {c[0] for c in calls} == {"aperture"}


@pytest.mark.parametrize("shape", [(120, 160, 4), (90, 70, 3), (60, 80), (12, 40, 4)])
@pytest.mark.parametrize("radius", [5.6, 7.5, 7.9])
def test_large_kernels_in_bands_of_rows_are_the_same_blur(shape, radius):
    """Kernels of 13 x 13 and more are applied as bands of rows (OpenCV would use the DFT): the same sum."""
    import cv2

    from postfocus.products.layers import DIRECT_TAPS, _filter, disc_kernel

    kernel = disc_kernel(radius)
    assert kernel.size >= DIRECT_TAPS
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    want = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    got = _filter(image, kernel)
    assert got.shape == want.shape and float(np.abs(got - want).max()) < 1e-5


def test_discs_far_wider_than_the_frame_composite_as_any_disc_that_wide():
    """A disc of 1e9 px (``aperture(blur_px=1e9)``, ``--f-number 1e-9``) grew each layer's reach by a
    kernel of 187,500,003 tiles a side: a MemoryError of 31 PiB. Past the frame every such disc is the
    frame's mean, so it composites exactly as one of 10,000 px does."""
    linear, u = scene()
    wide = composite_layers(linear, u, [1e4 * (1 + k) for k in range(9)])
    huge = composite_layers(linear, u, [1e9 * (1 + k) for k in range(9)])
    assert np.isfinite(huge).all() and np.array_equal(wide, huge)


def test_discs_past_any_float_square_blur_as_the_widest():
    """``--blur 1e300`` or ``--f-number 1e-300`` (and ``animate --f-number 1e-300``): the disc's down-sampling
    factor squared in integers was "OverflowError: int too large to convert to float". A disc wider than
    :data:`WIDEST` (past every frame) blurs as that one does; an infinite one too."""
    from postfocus.products.layers import WIDEST, disc_blur

    linear, u = scene()
    widest = composite_layers(linear, u, [WIDEST * (1 + k) for k in range(9)])
    for radii in ([1e300] * 9, [float("inf")] * 9):
        assert np.array_equal(composite_layers(linear, u, radii), widest)
    image = linear[..., :3].copy()
    assert np.array_equal(disc_blur(image, 1e300), disc_blur(image, WIDEST))
    assert np.isfinite(widest).all()
