"""A kept stack merged again gives ``postfocus stack``'s picture (docs/quality.md, "Merging a kept stack,
fifteenth session (merge9)")."""

import numpy as np
import pytest

import postfocus
from postfocus.align.report import FrameAlignment
from postfocus.fuse.base import region_grid, upscale_region
from postfocus.maps import MapPlace, StackMaps
from postfocus.store import merge


def test_cut_maps_upscale_onto_the_pixels_of_the_uncut_maps():
    rng = np.random.default_rng(0)
    small = rng.random((150, 200)).astype(np.float32)
    maps = StackMaps(small, small, small[None], [0], (600, 800))
    box = (25, 18, 530, 757)  # (an odd origin: the cut's own grid is half a map pixel off)
    cut = maps.crop(box, 0.25)
    assert cut.place == MapPlace((150, 200), (600, 800), (25, 18), (6, 4), (126, 185))
    whole = upscale_region(small, (600, 800), box, grid=region_grid((150, 200), (600, 800), box))
    h, w = cut.size
    placed = upscale_region(cut.focus_index, (h, w), grid=region_grid(cut.shape, (h, w), (0, 0, h, w), cut.place))
    inner = (slice(4, h - 4), slice(4, w - 4))  # (a map row or column beyond the cut at its edges: replicated)
    assert np.array_equal(placed[inner], whole[inner])
    plain = upscale_region(cut.focus_index, (h, w))  # what the cut maps gave before
    assert np.abs(plain - whole)[inner].max() > 0.1


def test_an_exposure_gain_reads_back_to_the_bit():
    a = FrameAlignment(2, "f", matrix=np.eye(3), gain=np.float32([1.0067313, 0.98774123, 1 / 3]), correlation=0.9)
    assert np.array_equal(FrameAlignment.from_dict(a.as_dict()).gain, a.gain)


@pytest.fixture(scope="module")
def shaken(tmp_path_factory):
    """A rendered stack whose frames move (so the output is a crop of the reference frame), as JPEG files."""
    from postfocus.synth import render_stack, scene, write_stack

    sharp, depth01 = scene("steps", (600, 1000), seed=5)  # (larger than the analysis size: maps at 0.8 scale)
    st = render_stack(sharp, depth01, 6, max_blur=5.0, seed=5, shake_px=6.0, noise=0.003)
    folder = tmp_path_factory.mktemp("shaken")
    write_stack(st, folder / "frames", fmt="jpg")
    return folder


@pytest.mark.parametrize("method", ["depthmap", "pyramid"])
def test_a_kept_stack_merged_again_gives_the_stacked_picture(shaken, monkeypatch, method):
    """Main's merge upscaled the kept (cut) maps on their own grid, up to a map pixel off the stack's, and
    read the exposure gains rounded to 5 decimals: on this stack (depthmap) 0.051 % of the pixels 16 px
    inside the edges more than 2 levels apart, up to 17, mean 0.011 levels; now none, at most 1, 0.0002.
    The occlusion-safe index's blur slope is kept with the maps (it was measured again on the kept, cut,
    float16 volume). Left: the maps beyond the cut at the edges (up to 6 levels there) and float-level
    differences of the blend's tiles, which start at another origin."""
    monkeypatch.setenv("POSTFOCUS_CACHE", str(shaken / f"cache-{method}"))
    stacked = postfocus.stack(shaken / "frames", method=method, threads=1)
    kept = postfocus.process(shaken / "frames", method=method, threads=1)
    again = merge(kept, method=method, threads=1)
    if method == "depthmap":
        assert kept.maps.blur_slope == stacked.maps.blur_slope > 0
    assert stacked.crop != (0, 0, 240, 360)
    a, b = (np.round(np.clip(x, 0, 1) * 255) for x in (stacked.image, again))
    d = np.abs(a - b).max(axis=2)
    inner = d[16:-16, 16:-16]
    assert (inner > 2).mean() == 0.0
    assert np.abs(a - b)[16:-16, 16:-16].mean() < 0.002
    assert (d > 2).mean() < 0.0002
