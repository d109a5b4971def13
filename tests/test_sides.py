"""occlusion_sides: a near outline's bled focus index given back to the background it lies on."""

from __future__ import annotations

import numpy as np

from postfocus.focus.sides import edge_spill, occlusion_sides


def _step(bled: int = 6, contrast: float = 0.7):
    guide = np.full((30, 60), 0.8, np.float32)
    guide[:, :20] = 0.8 - contrast  # the near object, px 0-19
    guide[:, 20::6] = 0.9  # a little texture on the wall
    index = np.full((30, 60), 9.0, np.float32)
    index[:, :20 + bled] = 0.0  # its index bled ``bled`` px into the wall
    return index, guide


def test_the_bled_rim_goes_back_to_the_wall_and_the_object_keeps_its_own():
    index, guide = _step()
    out = occlusion_sides(index, np.ones_like(index), guide, spill=edge_spill(2))
    assert np.all(out[:, 20:26] == 9.0)
    assert np.all(out[:, :20] == 0.0)


def test_no_outline_in_the_guide_no_change():
    index, guide = _step(contrast=0.0)  # the two surfaces look alike: nothing tells the sides apart
    assert np.array_equal(occlusion_sides(index, np.ones_like(index), guide, spill=8), index)


def test_a_slope_is_no_occlusion():
    ramp = np.tile(np.linspace(0, 6, 60, dtype=np.float32), (30, 1))  # 0.1 frame a pixel
    assert np.array_equal(occlusion_sides(ramp, np.ones_like(ramp), np.random.rand(30, 60).astype(np.float32)), ramp)
