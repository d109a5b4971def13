"""Tests of :mod:`postfocus.fuse.relight`: the far surface beside darker near objects, relit.

The unit tests build the occluded background's image ``(1 - A) B + S`` by hand; the quality tests render the
halo scenes with the two-layer renderer (small, 8 frames) and score the opt-in ``fuse(relight=True)`` against
the truth (docs/quality.md, "Seventh step, eighth session").
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from postfocus.align import common_area
from postfocus.fuse.relight import local_far_index, relight
from postfocus.io.arrays import ArraySource
from postfocus.pipeline.analyse import analyse
from postfocus.pipeline.merge import fuse
from postfocus.synth import psnr
from postfocus.synth.halo_scenes import render_layered

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from metrics import halo_band, halo_score  # noqa: E402

CAMERA = dict(shake_px=3.0, rotation_deg=0.3, noise=0.004, jpeg_quality=95)


def _background(seed: int = 0) -> np.ndarray:
    """A light textured wall (bright joints on grey), float32 (64, 64, 3)."""
    rng = np.random.default_rng(seed)
    b = np.full((64, 64, 3), 0.6, np.float32) + rng.normal(0, 0.03, (64, 64, 3)).astype(np.float32)
    b[:, ::8] = 0.9
    b[::8, :] = 0.9
    return b


def test_a_dark_occluders_darkening_is_undone():
    b = _background()
    cover = np.clip(np.linspace(0.6, 0.0, 64, dtype=np.float32), 0, 1)[None, :].repeat(64, 0)  # (1 - A) B, S = 0
    far = b * (1.0 - cover)[..., None]
    blurred = cv2.GaussianBlur(b, (0, 0), 3.0)  # the nearer frame: the wall at its brightness, but soft
    out = relight(blurred.copy(), far, np.ones((64, 64), bool), scale=1.0)
    inner = (slice(8, 56), slice(4, 40))
    assert np.abs(out - b)[inner].mean() < 0.5 * np.abs(blurred - b)[inner].mean()


def test_a_bright_occluders_spill_and_an_uneven_mix_are_left_alone():
    b = _background()
    blurred = cv2.GaussianBlur(b, (0, 0), 3.0)
    brighter = b + 0.2  # spill of a bright near object: more light, not less
    assert np.array_equal(relight(blurred.copy(), brighter, np.ones((64, 64), bool)), blurred)
    mixed = b * np.float32([0.5, 0.8, 0.95])  # darker, but unevenly: a coloured mix, not a loss of aperture
    assert np.array_equal(relight(blurred.copy(), mixed, np.ones((64, 64), bool)), blurred)
    assert np.array_equal(relight(blurred.copy(), b * 0.5, np.zeros((64, 64), bool)), blurred)  # not allowed


def test_local_far_index_follows_the_sweep_direction():
    d = np.full((5, 5), 2.0, np.float32)
    d[2, 2] = 6.0
    assert local_far_index(d, 1)[2, 3] == 6.0 and local_far_index(d, 1, near_to_far=False)[2, 2] == 2.0
    assert np.array_equal(local_far_index(d, 0), d)


def _scored(st, image):  # noqa: ANN001
    h, w = st.sharp.shape[:2]
    t, l, b, r = common_area(st.transforms, (h, w))
    box = (slice(t + 4, b - 4), slice(l + 4, r - 4))
    return halo_score(image[box], st.sharp[box], halo_band(st.depth, 9)[box]), psnr(image[box], st.sharp[box])


@pytest.mark.parametrize("name", ["grass", "pins"])
def test_relight_lowers_grass_halo_and_leaves_pins_alone(name):
    st = render_layered(name, 8, size=(300, 450), max_blur=8.0, seed=1, **CAMERA)
    source = ArraySource(st.frames)
    analysis = analyse(source)
    default = fuse(source, analysis.maps, alignment=analysis.alignment)
    relit = fuse(source, analysis.maps, alignment=analysis.alignment, relight=True)
    (h0, p0), (h1, p1) = _scored(st, default), _scored(st, relit)
    if name == "grass":  # measured: halo 7.87 -> 7.57, PSNR 32.47 -> 32.66 (dark blades over a light wall)
        assert h1 < h0 - 0.25 and p1 >= p0
    else:  # bright pins over a dark board: their spill adds light, nothing is relit
        assert abs(h1 - h0) < 0.05 and abs(p1 - p0) < 0.05
