"""Before/after crops of halos at occlusion edges, for docs/quality.md (``bench_quality.py --figures DIR``).

Real stacks (no ground truth): the crops the halo complaint named (issue 15), in output pixels of
``postfocus stack`` (cropped to the area every frame covers):

* ``pcb`` x 1380-1560, y 740-900: the gold pin tips;
* ``keyboard`` x 1580-1885, y 620-800: the dark groove under the top-right key.

Each is fused in-process from one analysis, three ways: the depth-map method by the focus map alone
(``fuse(..., occlusion=False)``, what ``postfocus stack`` did before), the depth-map method now
(occlusion-aware, the default) and the pyramid method. A rendered ``pins`` stack (two-layer renderer,
``postfocus.synth.halo_scenes.render_layered``) adds the truth and the error, and ``synth-hidden.jpg`` shows
the generator's frame focused far with and without the background behind near objects.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from postfocus.io.open import open_source
from postfocus.pipeline.analyse import analyse
from postfocus.pipeline.merge import fuse

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CROPS = {"pcb": (1380, 1560, 740, 900, 2.0), "keyboard": (1580, 1885, 620, 800, 1.5)}


def _tile(img: np.ndarray, label: str, scale: float) -> np.ndarray:
    tile = cv2.resize(np.clip(img, 0, 1), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    tile = (tile * 255 + 0.5).astype(np.uint8)
    tile = cv2.copyMakeBorder(tile, 22, 0, 0, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def _write(tiles: list[np.ndarray], path: Path) -> None:
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255)) for t in tiles]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)", file=sys.stderr)


def real_crops(name: str, out: Path) -> None:
    """``halo-<name>.jpg``: the named crop, depth map before / now, pyramid."""
    x0, x1, y0, y1, scale = CROPS[name]
    source = open_source(str(DATA / name))
    analysis = analyse(source)
    region = analysis.common_area()
    shown = [("depthmap before", dict(occlusion=False)), ("depthmap now", {}), ("pyramid", dict(method="pyramid"))]
    tiles = []
    for label, extra in shown:
        image = fuse(source, analysis.maps, alignment=analysis.alignment, region=region, **extra)
        tiles.append(_tile(image[y0:y1, x0:x1], label, scale))
    _write(tiles, out / f"halo-{name}.jpg")


def rendered_crop(out: Path, seed: int = 1) -> None:
    """``halo-pins.jpg``: a rendered pin, truth / before / now, with |error| x 4 below."""
    import tempfile

    from postfocus.synth import write_stack
    from postfocus.synth.halo_scenes import render_layered

    st = render_layered("pins", 10, size=(480, 720), max_blur=12.0, seed=seed, shake_px=8.0, rotation_deg=0.5,
                        breathing=0.03, exposure_drift=0.05, noise=0.004, jpeg_quality=95)
    with tempfile.TemporaryDirectory(prefix="pf-halo-") as tmp:
        paths = write_stack(st, Path(tmp), fmt="jpg", quality=95)
        source = open_source([str(p) for p in paths])
        analysis = analyse(source)
        before = fuse(source, analysis.maps, alignment=analysis.alignment, occlusion=False)
        now = fuse(source, analysis.maps, alignment=analysis.alignment)
    # the pin whose surroundings the old result got most wrong
    err = cv2.boxFilter(np.abs(before - st.sharp).mean(axis=2), -1, (61, 61))[60:-60, 80:-80]
    cy, cx = np.unravel_index(int(np.argmax(err)), err.shape)
    y0, x0 = cy + 60 - 60, cx + 80 - 70
    tiles = []
    for label, img in (("truth", st.sharp), ("depthmap before", before), ("depthmap now", now)):
        crop = img[y0:y0 + 120, x0:x0 + 140]
        diff = np.clip(np.abs(crop - st.sharp[y0:y0 + 120, x0:x0 + 140]).mean(axis=2) * 4, 0, 1)
        tiles.append(_tile(np.concatenate([crop, np.repeat(diff[..., None], 3, axis=2)], axis=0), label, 2.0))
    _write(tiles, out / "halo-pins.jpg")


def hidden_render(out: Path, seed: int = 1) -> None:
    """``synth-hidden.jpg``: the occluder scene's frame focused far, one-layer render / with the hidden background."""
    from postfocus.synth import render_stack, scene

    sharp, depth01 = scene("occluder", (480, 720), seed=seed)
    tiles = []
    for label, hidden in (("one layer", False), ("hidden background", True)):
        st = render_stack(sharp, depth01, 10, max_blur=8.0, seed=seed, hidden=hidden)
        tiles.append(_tile(st.clean_frames[-1][80:260, 60:300], label, 1.5))
    _write(tiles, out / "synth-hidden.jpg")


def figures(out: Path) -> None:
    """All halo figures into ``out``."""
    hidden_render(out)
    rendered_crop(out)
    for name in CROPS:
        if (DATA / name).is_dir():
            real_crops(name, out)
