"""The background solver (postfocus.fuse.restore): the band solver against the box solver it replaces."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

from postfocus.fuse.depthmap import DepthmapFusion
from postfocus.fuse.restore import BandSolver, BoxSolver
from postfocus.pipeline.merge import fuse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from metrics import halo_score  # noqa: E402


def test_the_band_is_the_reach_of_the_nearer_blur():
    """A near square (frame 0) before a far wall (frame 6), 2 px of blur a frame: the band holds the wall's
    pixels the square's blur reaches in the wall's frames (12 px, and a frame's growth more), none farther and
    none of the square's own inside; at 4 px a frame the cover is made at a quarter scale."""
    index = np.full((160, 160), 6.0, np.float32)
    index[60:100, 60:100] = 0.0
    solver = BandSolver(index, (0, 0, 160, 160), 2.0)
    band = solver.ordinal >= 0
    outside = cv2.distanceTransform((index > 0).astype(np.uint8), cv2.DIST_L2, 5)  # px from the square
    assert band[(outside > 0) & (outside <= 12)].all()
    assert not band[outside > 12 + 2 * 2.0 + 2].any()
    assert not band[70:90, 70:90].any()  # (the square's inside: no nearer layer)
    assert solver.f == 1 and BandSolver(index, (0, 0, 160, 160), 4.0).f == 2
    assert solver.rank_b.size == int(band.sum()) and solver.sums.shape == (band.sum(), 3)


def test_the_band_solver_gives_the_box_solvers_halo_on_rendered_grass(layered_grass):
    """On rendered grass with the outline map the band solver's halo is the box solver's (it solves only the
    band beside the blades, where a nearer blur reaches) and both are below the fusion without the solver; the
    band solver changes no pixel outside its band. Fails on main (no postfocus.fuse.restore)."""
    from postfocus.focus.map import focus_index_map

    st, source, analysis, box, band = (layered_grass.st, layered_grass.source, layered_grass.analysis,
                                       layered_grass.box, layered_grass.band)
    maps = analysis.maps
    index, _ = focus_index_map(maps.volume, analysis.guide, outline=True)
    m = dataclasses.replace(maps, focus_index=index)

    def scored(image: np.ndarray) -> float:
        return halo_score((np.round(np.clip(image, 0, 1) * 255) / 255)[box], st.sharp[box], band)

    plain = fuse(source, dataclasses.replace(m), alignment=analysis.alignment)
    made, original = [], BandSolver.__init__

    def keep(self, *args, **kwargs):  # noqa: ANN001, ANN202  (the band is read off the solver the fusion makes)
        original(self, *args, **kwargs)
        made.append(self)

    with mock.patch.object(BandSolver, "__init__", keep):
        band_image = fuse(source, dataclasses.replace(m), alignment=analysis.alignment, restore=True)
    with mock.patch.multiple(DepthmapFusion, SOLVER=BoxSolver, WHOLE_BOX=True):
        box_image = fuse(source, dataclasses.replace(m), alignment=analysis.alignment, restore=True)
    h_plain, h_band, h_box = scored(plain), scored(band_image), scored(box_image)
    # measured: 8.96 without the solver, 4.646 band, 4.647 box
    assert abs(h_band - h_box) <= 0.02 * h_box
    assert h_band <= 0.6 * h_plain
    (solver,) = made
    t, l, b, r = solver.box
    outside = np.ones(band_image.shape[:2], bool)
    outside[t:b, l:r] = solver.ordinal < 0
    assert np.array_equal(band_image[outside], plain[outside])


def test_a_far_to_near_sweep_is_solved_as_its_mirror():
    """The same frames with the sweep's direction reversed (frame 0 the farthest focus, the index mirrored) give
    the same solution: the occluders are mirrored, the frames' weights are not."""
    rng = np.random.default_rng(3)
    index = np.full((96, 96), 6.0, np.float32)
    index[30:60, 30:60] = 0.0
    frames = [rng.uniform(0.05, 0.8, (96, 96, 3)).astype(np.float32) for _ in range(7)]
    planes = rng.uniform(0.05, 0.8, (96, 96, 3)).astype(np.float32)
    k = np.float32(-0.5 / 0.35 ** 2)
    out = []
    for near_to_far, idx, place in ((True, index, lambda p: p), (False, 6.0 - index, lambda p: 6.0 - p)):
        solver = BandSolver(idx, (0, 0, 96, 96), 2.0, near_to_far)
        for p, frame in enumerate(frames):
            solver.add(place(float(p)), frame, (0, 0, 96, 96), k)
        result = [planes[..., c].copy() for c in range(3)]
        take = solver.apply(result, k)
        out.append((np.stack(result, axis=2), take))
    assert out[0][1].max() > 0.5  # (the wall beside the square is solved)
    np.testing.assert_allclose(out[1][0], out[0][0], atol=1e-5)
    np.testing.assert_allclose(out[1][1], out[0][1], atol=1e-5)


def test_the_cover_composited_round_the_wanted_pixels_is_the_whole_pictures():
    """composite_where (the band solver's compositing, solver19) gives occluder_cover's full-scale cover and spill
    to 0.5 % at the wanted pixels, with layers scattered over the picture and wanted pixels in a few far tiles; zero in the
    tiles without a wanted pixel. Fails on main (no composite_where)."""
    from postfocus.fuse.cover import composite_where, occluder_cover

    rng = np.random.default_rng(5)
    index = np.full((200, 260), 3.0, np.float32)
    index[:, 130:] = 1.0  # a large near half
    for _ in range(60):  # specks of every depth, everywhere
        y, x, d = int(rng.integers(0, 196)), int(rng.integers(0, 256)), float(rng.integers(0, 12))
        index[y:y + 4, x:x + 4] = d
    colour = rng.uniform(0.0, 1.0, (200, 260, 4)).astype(np.float32)
    wanted = np.zeros(index.shape, bool)
    wanted[20:24, 30:90] = True
    wanted[150:160, 200:204] = True
    wanted[100, 5] = True
    for position in (4.0, 9.0, 12.0):
        a, s = occluder_cover(index, position, 1.5, colour=colour, reduce=False)
        b, t = composite_where(index, position, 1.5, wanted, colour=colour, tile=16)
        # (a disc of 8 px or more is blurred at a reduced scale on the grid of the box it is made in: 0.3 % apart)
        assert np.abs(a - b)[wanted].max() < 5e-3 and np.abs(s - t)[wanted].max() < 5e-3
        far = np.ones(index.shape, bool)
        far[:48, :112] = far[144:176, 192:208] = far[96:112, :16] = False
        assert not b[far].any()


def test_the_band_solver_composites_no_finer_than_the_maps():
    """With maps at 0.42 of the output (keyboard's) the band solver's compositing scale is 2 even at a blur growth
    of 1.8 px a frame (whose own rule gives 1); at the maps' size it stays 1. Fails on main (no ``detail``)."""
    index = np.full((96, 96), 6.0, np.float32)
    index[30:60, 30:60] = 0.0
    assert BandSolver(index, (0, 0, 96, 96), 1.8).f == 1
    assert BandSolver(index, (0, 0, 96, 96), 1.8, detail=2.4).f == 2
    assert BandSolver(index, (0, 0, 96, 96), 1.8, detail=1.0).f == 1
