"""Tests for postfocus.colour: transfer functions and the grey conversion."""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.colour import GAMMA, gamma_decode, gamma_encode, srgb_decode, srgb_encode, to_grey


def test_power_law_is_the_plain_2_2_gamma_and_clips():
    x = np.linspace(-0.2, 1.2, 57, dtype=np.float32)
    assert GAMMA == 2.2
    assert np.array_equal(gamma_decode(x), np.power(np.clip(x, 0, 1), np.float32(2.2), dtype=np.float32))
    assert np.array_equal(gamma_encode(x), np.power(np.clip(x, 0, 1), np.float32(1 / 2.2), dtype=np.float32))
    assert gamma_decode(x).dtype == np.float32 and np.abs(gamma_encode(gamma_decode(x)) - np.clip(x, 0, 1)).max() < 1e-6
    assert np.array_equal(gamma_decode(x, 1.0), np.clip(x, 0, 1))


def test_srgb_table_matches_the_formula():
    counts = np.array([[0, 1, 200, 32768, 65535]], np.uint16)
    assert np.allclose(srgb_encode(counts), srgb_encode(counts.astype(np.float32) / 65535), atol=1e-6)
    assert srgb_encode(counts).dtype == np.float32 and srgb_decode(np.float32(1.0)) == 1.0


def test_to_grey_is_rec601_luma_as_float32():
    rng = np.random.default_rng(0)
    rgb = rng.random((9, 11, 3))
    expected = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY)
    assert np.array_equal(to_grey(rgb), expected) and to_grey(rgb).dtype == np.float32
    assert np.array_equal(to_grey(np.dstack([rgb, np.ones((9, 11))])), expected)  # alpha ignored
    assert np.array_equal(to_grey(rgb[2:7, 1:9]), expected[2:7, 1:9])  # views
    assert np.array_equal(to_grey(rgb[..., 0]), rgb[..., 0].astype(np.float32))
    assert np.allclose(to_grey(np.ones((2, 2, 3), np.float32) * [1, 0, 0]), 0.299, atol=1e-6)
