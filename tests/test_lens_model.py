"""One lens model for an f-number in every face: the API, ``postfocus aperture``, ``animate`` and the app.

An f-number's blur is set over the scene's depths
(:func:`postfocus.products.aperture.f_number_lens`). On a 21-frame generated
sweep whose scene lies at depths 2 to 5 (:func:`test_viewer_scene.write_long_sweep`)
the command and the API once set it over the whole sweep: f/1.4 blurred the
background by 1.4 px and the command said "too little to see", while the app
blurred it by 9 px. On a sweep the scene fills the blur is what it was.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_viewer_scene import FRAMES, write_long_sweep

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import make_stack  # noqa: E402

from postfocus import process  # noqa: E402
from postfocus.products.animate import plan_pull, render_pull  # noqa: E402
from postfocus.products.aperture import (  # noqa: E402
    aperture,
    blur_from_f_number,
    f_number_lens,
    render_aperture,
)
from postfocus.web.lens import scene_lens  # noqa: E402


@pytest.fixture(scope="module")
def long_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("lens_long")
    frames = write_long_sweep(root / "frames")
    return process(frames, cache_dir=root / "cache"), frames, root / "cache"


def test_f_number_blurs_a_scene_in_a_few_frames_of_a_long_sweep_alike_in_every_face(long_sweep, tmp_path, cli):
    ps, frames, cache = long_sweep
    api = aperture(ps, preset="near", f_number=1.4)
    depth = api.depth
    assert depth.frames == FRAMES
    app = scene_lens(depth.depth, depth.frames, api.focus, 1.4, depth.size)  # the app at full size
    assert api.blur_px == pytest.approx(app.blur_px, rel=1e-6)
    assert api.largest_blur_px == pytest.approx(app.largest_blur_px, rel=1e-6)
    assert api.largest_blur_px >= 2.0, api  # visible (over the sweep: 1.4 px)
    # over the sweep it would not be: the old model blurred this scene by under 2 px
    assert blur_from_f_number(1.4, depth.size, FRAMES - 1) * (app.scene[1] - api.focus) < 2.0
    run = cli("aperture", frames, "--preset", "near", "--f-number", "1.4", "-o", tmp_path / "a.jpg",
              "--cache", cache, "--json")
    assert run.returncode == 0, run.stderr
    said = json.loads(run.stdout)
    assert said["blur_px"] == pytest.approx(app.blur_px, abs=1e-3)
    assert said["largest_blur_px"] == pytest.approx(app.largest_blur_px, abs=1e-3)
    assert not any("too little to see" in line for line in run.err_lines), run.stderr
    # render_aperture's own f-number (no span given) is the same lens
    image = ps.all_in_focus()
    by_f = render_aperture(image, depth.depth, api.focus, f_number=1.4)
    by_blur = render_aperture(image, depth.depth, api.focus, blur_px=app.blur_px)
    assert np.abs(by_f - by_blur).max() < 1e-6
    # f/22 on this scene: still under 2 px, and the command says so
    faint = cli("aperture", frames, "--preset", "near", "--f-number", "22", "-o", tmp_path / "f.jpg",
                "--cache", cache, "--json")
    assert json.loads(faint.stdout)["largest_blur_px"] < 2.0
    assert any(line.startswith("largest blur") and "too little to see" in line for line in faint.err_lines)


def test_a_focus_pull_with_an_f_number_uses_the_same_lens(long_sweep, monkeypatch):
    ps, _, _ = long_sweep
    pull = plan_pull(ps, duration=0.5, fps=4, f_number=1.4, long_edge=None)
    seen = []

    def recording(image, depth, focus, *, blur_px, **kwargs):
        seen.append((depth.shape, blur_px))
        return image

    monkeypatch.setattr(sys.modules["postfocus.products.animate"], "render_aperture", recording)
    list(render_pull(ps, pull))
    assert len(seen) == pull.count
    lens = f_number_lens(pull.depth.depth, pull.depth.frames, pull.start, 1.4, size=pull.size)
    assert {round(b, 9) for _, b in seen} == {round(lens.blur_px, 9)}
    assert lens.blur_px * (lens.scene[1] - lens.scene[0]) == pytest.approx(0.04 * max(pull.size))


def test_a_stack_the_scene_fills_is_blurred_as_before(tmp_path_factory):
    """On an 8-frame sweep whose scene spans it, the scene's lens is (nearly) the sweep's: within 5 %."""
    ps, _, _ = make_stack("steps", tmp_path_factory.mktemp("lens_full") / "steps", size=(160, 240), frames=8, seed=1)
    out = aperture(ps, preset="near", f_number=1.4)
    before = blur_from_f_number(1.4, out.depth.size, out.depth.frames - 1)
    assert out.blur_px == pytest.approx(before, rel=0.05), (out.blur_px, before)
    assert out.blur_px >= before  # never less than over the sweep (the scene lies inside it)
