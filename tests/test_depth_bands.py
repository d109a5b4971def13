"""The occlusion band's pixels: on the near side of a depth edge, within the band's width of a farther trusted pixel."""

from __future__ import annotations

import numpy as np

from postfocus.products.depth_bands import fixed_band


def test_the_band_lies_on_the_near_side_within_its_width_of_a_farther_trusted_pixel():
    depth = np.zeros((21, 40), np.float32)
    depth[:, 20:] = 6.0  # near left, far right
    trusted = depth.copy()
    band = fixed_band(depth, trusted, band=5, jump=1.0)
    assert band[10].nonzero()[0].tolist() == [15, 16, 17, 18, 19]
    assert band.all(axis=0)[15:20].all() and not band[:, 20:].any()  # every row; the far side never
    trusted[:, 20:] = -1.0  # the far side untrusted: no evidence of an edge
    assert not fixed_band(depth, trusted, band=5, jump=1.0).any()
    depth[:, 20:] = 0.5  # a step below ``jump`` is a slope, not an edge
    assert not fixed_band(depth, depth, band=5, jump=1.0).any()
