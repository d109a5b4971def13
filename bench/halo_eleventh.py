"""Halo experiments of the tenth session's second step (docs/quality.md, "Halos, tenth session, second step (halo11)").

In-process on the benchmark's renders as ``bench/halo_tenth.py``. The tenth session's ``own, pooled, fine`` decision
(kappa 4) leaves the 2 px beside the near outline, where every focus window holds the outline's own detail. Here those
pixels (the suspects within 2 px of the decided near/far interface) are sided *below the window* by an edge model:
in frame ``a`` (focused on the near object) the grey profile across the outline, along the normal of the decided near
layer (the gradient of its Gaussian-smoothed mask, sigma 2 px), sampled every pixel over +-5 px, is fitted by a blurred
step (Pentland 1987; Elder and Zucker 1998):

    I(t) = F(t) + (N - F(t)) * Phi((t - t0) / s)

``F`` the far side's value predicted from frame ``b`` (the tenth session's de-spilled far surface blurred by the disc),
``N`` the near value (least squares for each ``t0``, ``s``), ``t0`` the step's position (grid -3..3 px, 0.25 px),
``s`` its blur scale (0.5, 0.8, 1.2, 1.8 px). Samples where frame ``a``'s linear light is clipped (>= 0.85 in any
channel) are unknown and left out of the fit instead of being taken as the near value. The pixel (``t = 0``) is far
when the fitted step lies on its near side (``t0 > 0``); profiles with fewer than 3 known samples on either side are
left as decided. ``far only``: the fit only moves decided-near pixels to the far index, never back.

Usage: ``PYTHONPATH=src python bench/halo_eleventh.py [--scenes grass pins steps occluder]`` (``HALO_OUT=dir`` keeps
the fused images as PNG).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_eighth import aligned_frames  # noqa: E402
from halo_fifth import scenes_from_args  # noqa: E402
from halo_tenth import _far_prediction, _pairs, detail, outline_sided, print_rows, textured  # noqa: E402

from postfocus.colour import srgb_decode, to_grey  # noqa: E402
from postfocus.focus.map import focus_index_map  # noqa: E402

OFFSETS = np.arange(-5, 6, dtype=np.float32)
POSITIONS = np.arange(-3.0, 3.01, 0.25)
SCALES = (0.5, 0.8, 1.2, 1.8)


def _sample(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, ny: np.ndarray, nx: np.ndarray) -> np.ndarray:
    """``image`` sampled bilinearly at ``(y, x) + t * (ny, nx)`` for every offset ``t``: (n, offsets)."""
    my = (ys[:, None] + OFFSETS[None, :] * ny[:, None]).astype(np.float32)
    mx = (xs[:, None] + OFFSETS[None, :] * nx[:, None]).astype(np.float32)
    return cv2.remap(image.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def fit_steps(profile: np.ndarray, far: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, scale, near value) of the blurred step best fitting each profile, ``far`` the predicted far side."""
    best = np.full(len(profile), np.inf)
    t0 = np.zeros(len(profile))
    scale = np.zeros(len(profile))
    near = np.zeros(len(profile))
    k = known.astype(np.float64)
    for s in SCALES:
        for p in POSITIONS:
            w = ndtr((OFFSETS - p) / s)[None, :]  # near weight along the normal (near side at t > 0)
            target = profile - far * (1.0 - w)
            n = (k * w * target).sum(axis=1) / np.maximum((k * w * w).sum(axis=1), 1e-9)
            err = (k * (target - w * n[:, None]) ** 2).sum(axis=1)
            better = err < best
            best[better], t0[better], scale[better], near[better] = err[better], p, s, n[better]
    return t0, scale, near


def edge_sided(frames: np.ndarray, sided: np.ndarray, decided: np.ndarray, growth: float, *, reach: int = 12,
               band: int = 2, clipped: bool = True, far_only: bool = False) -> np.ndarray:
    """``decided`` with its suspects within ``band`` px of its near/far interface sided by a fitted blurred step."""
    linear = srgb_decode(frames)
    far_index, suspect, pairs = _pairs(sided, reach)
    is_near = (suspect & (np.abs(decided - sided) < 0.5)) | ~suspect
    k = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    interface = (cv2.dilate((is_near & suspect).astype(np.uint8), k) > 0) & (cv2.dilate((~is_near).astype(np.uint8), k) > 0)
    smooth = cv2.GaussianBlur((is_near & suspect).astype(np.float32), (0, 0), 2.0)
    gy, gx = np.gradient(smooth)
    norm = np.hypot(gy, gx)
    out = decided.copy()
    for a, b, sel in pairs:
        pick = sel & interface & (norm > 1e-3)
        ys, xs = np.nonzero(pick)
        if not len(ys):
            continue
        ny, nx = gy[ys, xs] / norm[ys, xs], gx[ys, xs] / norm[ys, xs]
        _, predicted = _far_prediction(linear[a], linear[b], sided, a, b, growth * abs(b - a))
        profile = _sample(to_grey(frames[a]), ys, xs, ny, nx).astype(np.float64)
        far = _sample(predicted, ys, xs, ny, nx).astype(np.float64)
        known = np.ones(profile.shape, bool)
        if clipped:
            known = _sample((linear[a].max(axis=2) < 0.85).astype(np.float32), ys, xs, ny, nx) > 0.99
        enough = (known[:, OFFSETS < 0].sum(axis=1) >= 3) & (known[:, OFFSETS > 0].sum(axis=1) >= 3)
        t0, _, _ = fit_steps(profile, far, known)
        to_far = enough & (t0 > 0)
        stay = enough & ~to_far
        out[ys[to_far], xs[to_far]] = far_index[ys[to_far], xs[to_far]]
        if not far_only:  # the fit may also give decided-far pixels back to the near index
            out[ys[stay], xs[stay]] = sided[ys[stay], xs[stay]]
    return out.astype(np.float32)


def main() -> None:
    out = Path(os.environ["HALO_OUT"]) if os.environ.get("HALO_OUT") else None
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        if out is not None:
            cv2.imwrite(str(out / f"{name}-truth.png"), np.round(np.clip(st.sharp[..., ::-1], 0, 1) * 255).astype(np.uint8))
        sided = focus_index_map(maps.volume, analysis.guide, sides=True)[0]
        frames = aligned_frames(source, maps, analysis)
        fine = textured(frames, sided, growth, "own, pooled, fine", measured=detail(frames))
        variants = [("default map", maps.focus_index), ("sided", sided), ("own, pooled, fine", fine)]
        for label, clipped, far_only, band in (("edge model, clipped unknown", True, False, 2),
                                               ("edge model, clipped as near", False, False, 2),
                                               ("edge model, clipped unknown, to far only", True, True, 2),
                                               ("edge model, clipped unknown, 1 px band", True, False, 1),
                                               ("edge model, clipped unknown, 3 px band", True, False, 3)):
            t = time.process_time()
            index = edge_sided(frames, sided, fine, growth, clipped=clipped, far_only=far_only, band=band)
            variants.append((f"own, pooled, fine, {label} [{time.process_time() - t:.2f} s]", index))
        variants.append(("own, pooled, fine, band sided by the step (halo10)", outline_sided(frames, sided, fine)))
        print(f"{name}: blur growth {growth:.3f}")
        print("| map | far / near side pixels off | fused | restore |")
        print("|---|---|---|---|")
        print_rows(variants, name=name, st=st, truth=truth, source=source, analysis=analysis, growth=growth, out=out)


if __name__ == "__main__":
    main()
