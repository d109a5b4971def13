"""--prefer front|back: a blurred near object with far detail shining through it.

The stack is rendered by hand (the project's generator composites opaque
layers): a semi-transparent near layer (coarse cells, focused at frame 1) over
fine far detail (a 3-px checker, focused at frame 7), both blurred by a disc of
1.5 px per frame of focus distance, as in a microscope's focus sweep. Inside
the near layer every pixel's focus curve has two clear peaks; outside it, one.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from postfocus import stack
from postfocus.errors import PostfocusError
from postfocus.focus.map import preferred_peak
from postfocus.io.arrays import ArraySource
from postfocus.synth.optics import disc_kernel

NEAR, FAR, FRAMES = 1, 7, 9




def _blur(image: np.ndarray, radius: float) -> np.ndarray:
    return image if radius < 0.5 else cv2.filter2D(image, -1, disc_kernel(radius), borderType=cv2.BORDER_REFLECT)


def see_through_stack(near_contrast: float, far_contrast: float, size=(160, 240), blur_per_frame=1.5, alpha=0.5):
    """Frames of a semi-transparent near layer over fine far detail; returns (frames, near-layer mask)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    checker = np.sign(np.sin(xx * np.pi / 1.5) * np.sin(yy * np.pi / 1.5))
    far = np.repeat((0.5 + far_contrast * checker)[..., None], 3, axis=2).astype(np.float32)
    cells = np.random.default_rng(0).random((h // 8, w // 8)).astype(np.float32)
    cells = cv2.resize(cells, (w, h), interpolation=cv2.INTER_NEAREST)
    near = ((0.5 + near_contrast * (cells - 0.5))[..., None] * np.array([1.0, 0.7, 0.6], np.float32)).astype(np.float32)
    region = np.zeros((h, w), np.float32)
    region[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = alpha
    frames = []
    for i in range(FRAMES):
        rn, rf = blur_per_frame * abs(i - NEAR), blur_per_frame * abs(i - FAR)
        a = _blur(region, rn)[..., None]
        frames.append(np.clip(a * _blur(near, rn) + (1 - a) * _blur(far, rf), 0, 1).astype(np.float32))
    return frames, region > 0


# (near contrast, far contrast, frame of the strongest peak inside the near layer)
SCENES = {"detail strongest": (0.5, 0.35, FAR), "occluder strongest": (1.0, 0.05, NEAR)}


@pytest.fixture(scope="module", params=list(SCENES))
def runs(request):
    near_c, far_c, strongest = SCENES[request.param]
    frames, region = see_through_stack(near_c, far_c)
    results = {p: stack(ArraySource(frames), align="none", crop=False, motion="off", prefer=p)
               for p in ("none", "front", "back")}
    inner = cv2.erode(region.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
    outer = ~cv2.dilate(region.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
    return frames, results, inner, outer, strongest


def test_front_takes_the_occluder_back_the_detail(runs):
    _, results, inner, _, strongest = runs
    # measured: front 0.98-1.0 of the inner pixels within 1 frame of the occluder, back 1.0 of the detail
    assert np.mean(np.abs(results["front"].focus_index[inner] - NEAR) < 1) > 0.9
    assert np.mean(np.abs(results["back"].focus_index[inner] - FAR) < 1) > 0.9
    # without a preference the strongest peak wins
    assert np.mean(np.abs(results["none"].focus_index[inner] - strongest) < 1) > 0.9


def test_single_peaks_are_left_alone(runs):
    _, results, _, outer, _ = runs
    for p in ("none", "front", "back"):
        assert np.mean(np.abs(results[p].focus_index[outer] - FAR) < 1) > 0.98, p


def test_the_merged_image_shows_the_preferred_layer(runs):
    frames, results, inner, _, _ = runs

    def err(a, b):
        return float(np.abs(a[inner] - b[inner]).mean())

    front, back = results["front"].image, results["back"].image
    assert err(front, frames[NEAR]) < 0.5 * err(front, frames[FAR])
    assert err(back, frames[FAR]) < 0.5 * err(back, frames[NEAR])


def test_preferred_peak_needs_a_clear_valley():
    # a shoulder on the flank of one peak is not a second peak
    shoulder = np.array([0.1, 0.5, 0.45, 0.7, 1.0, 0.6], np.float32)[:, None, None]
    assert int(preferred_peak(shoulder, "front", 1e-3)[0][0, 0]) == 4
    two = np.array([0.1, 0.5, 0.2, 0.7, 1.0, 0.6], np.float32)[:, None, None]
    assert int(preferred_peak(two, "front", 1e-3)[0][0, 0]) == 1
    assert int(preferred_peak(two, "back", 1e-3)[0][0, 0]) == 4


def test_bad_prefer_value_is_refused():
    frames, _ = see_through_stack(0.5, 0.35, size=(48, 64))
    with pytest.raises(PostfocusError, match="prefer"):
        stack(ArraySource(frames), align="none", prefer="middle")


def test_cli_prefer_with_the_cache(cli, tmp_path):
    """``postfocus stack --prefer``: front and back give different results from one cache (prefer is in its key)."""
    from postfocus.io.images import read_image
    from postfocus.io.write import write_image

    frames, region = see_through_stack(0.5, 0.35)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        write_image(folder / f"frame_{i:02d}.png", f)
    inner = cv2.erode(region.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
    got = {}
    for p in ("front", "back", "none"):
        out = tmp_path / f"{p}.png"
        run = cli("-q", "stack", folder, "-o", out, "--prefer", p, "--align", "none", "--motion", "off",
                  cache=tmp_path / "cache")
        assert run.returncode == 0, run.stderr
        got[p] = read_image(out)
    assert len(list((tmp_path / "cache").glob("*/manifest.json"))) == 3

    def err(a, b):
        return float(np.abs(a[inner] - b[inner]).mean())

    assert err(got["front"], frames[NEAR]) < 0.5 * err(got["front"], frames[FAR])
    assert err(got["back"], frames[FAR]) < 0.5 * err(got["back"], frames[NEAR])
    assert err(got["none"], got["back"]) < 0.01  # the detail is the stronger peak here
    run = cli("-q", "stack", folder, "-o", tmp_path / "x.png", "--prefer", "middle")
    assert run.returncode != 0 and "middle" in run.stderr
