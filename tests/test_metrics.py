"""The benchmark's quality metrics (bench/metrics.py): identities and orderings, on small images."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from metrics import (  # noqa: E402
    flat_mask,
    flat_noise,
    halo_band,
    halo_score,
    mutual_information,
    nmi,
    qabf,
)


@pytest.fixture(scope="module")
def scene():
    """A textured photo and a two-frame focus stack of it: left half sharp in A, right half sharp in B."""
    from skimage.data import astronaut

    sharp = cv2.resize(astronaut(), (160, 120), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    a, b = sharp.copy(), sharp.copy()
    a[:, 80:] = blurred[:, 80:]
    b[:, :80] = blurred[:, :80]
    return sharp, a, b


def test_qabf_of_an_input_against_itself_is_one(scene):
    sharp, a, _ = scene
    assert qabf(a, [a]) == pytest.approx(1.0, abs=1e-6)
    assert qabf(sharp, [sharp, sharp]) == pytest.approx(1.0, abs=1e-6)


def test_nmi_of_an_image_with_itself_is_one(scene):
    sharp, a, _ = scene
    assert nmi(a, [a]) == pytest.approx(1.0, abs=1e-9)
    assert mutual_information(a, a) > 4  # bits: equals the entropy of a textured photo
    noise = np.random.default_rng(0).random(sharp.shape[:2]).astype(np.float32)
    # independent images: near 0 (256 x 256 joint bins over 19200 pixels overestimate MI; 64 bins do not)
    assert nmi(noise, [sharp], bins=64) < 0.05


def test_a_blurred_fusion_scores_lower_than_a_sharp_one(scene):
    sharp, a, b = scene
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    average = 0.5 * (a + b)
    q_sharp, q_soft, q_avg = qabf(sharp, [a, b]), qabf(soft, [a, b]), qabf(average, [a, b])
    assert q_sharp > q_avg > q_soft
    assert q_sharp > q_soft + 0.1
    assert nmi(sharp, [a, b]) > nmi(soft, [a, b])


def test_qabf_respects_the_mask(scene):
    sharp, a, b = scene
    left = np.zeros(sharp.shape[:2], bool)
    left[:, 10:70] = True
    # on the left half, input a is the sharp image itself
    assert qabf(a, [sharp], left) == pytest.approx(1.0, abs=1e-6)
    assert qabf(a, [sharp], ~left) < 0.9


def test_halo_band_and_score():
    depth = np.zeros((40, 60), np.float32)
    depth[:, 30:] = 5.0
    band = halo_band(depth, width=7)
    assert band[:, 27:34].all() and not band[:, :26].any() and not band[:, 35:].any()
    truth = np.full((40, 60, 3), 0.5, np.float32)
    assert halo_score(truth, truth, band) == 0.0
    glow = truth.copy()
    glow[:, 25:30] += 10 / 255  # a 5-px glow on the near side, 3 px of it in the band
    assert halo_score(glow, truth, band) == pytest.approx(10 * 3 / 7, rel=1e-3)
    assert np.isnan(halo_score(truth, truth, np.zeros((40, 60), bool)))


def test_flat_noise_measures_added_noise_on_flat_areas_only(scene):
    sharp, _, _ = scene
    img = np.full((120, 160, 3), 0.4, np.float32)
    img[:, 80:] = 0.7  # one edge: flat on both sides
    mask = flat_mask(img, min_area=50)
    assert mask[5:-5, 10:70].all() and not mask[:, 77:83].any()
    noisy = img + np.random.default_rng(1).normal(0, 3 / 255, img.shape).astype(np.float32)
    assert flat_noise(noisy, img, mask) == pytest.approx(3.0, rel=0.05)
    # a textured photo has little flat area, and none inside its texture
    photo_mask = flat_mask(sharp)
    assert photo_mask.mean() < 0.5
