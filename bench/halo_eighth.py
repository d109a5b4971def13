"""Halo experiments of the ninth session (docs/quality.md, "Halos, ninth session (halo8)").

In-process on the benchmark's own renders as ``bench/halo_fifth.py`` (480x720, 10 frames, 12 px blur,
handheld camera, seed 1, JPEG q95 read back; 8-bit). Where the sided focus map
(:func:`postfocus.focus.sides.occlusion_sides`) still differs from the true depth, and what each kind of
difference costs the background solver (``restore``, blur growth read against the guide): the sided map with
the true depth put back only on the far side's pixels more than 1.5 frames off (the far side: pixels not more than a
frame nearer than the farthest true depth within 4 px, as in ``halo_fifth.scored``; beside thin near objects this is
the wall that still carries their index, the fattening), only those within 2, 4 or 8 px of a true depth edge, only
on the near side's pixels more than 1.5 frames off (thinning),
on both, and the true depth. Then forward-model decisions between the near index and the far index (the
farthest within 12 px) at the sided map's suspects, from the aligned frames focused at the two:

* ``relative blur``: the pixel belongs to the surface sharp in the frame of which the other frame is a blur (disc of
  the blur growth times the frames' distance): far when ``|F_near - disc(F_far)| < |F_far - disc(F_near)|``
  (Pentland 1987), summed over the channels in linear light and a 3 px box;
* ``two classes``: in the frame focused near, a far pixel shows the far surface blurred by that disc (predicted from
  the far frame's far pixels beyond the suspects, a normalised disc convolution), a near pixel the near object's
  own light (the near layer's pixels least like the blurred far surface, around it); far when nearer the first;
* ``covered far down-weighted``: the same, the near layer everything nearer than the midpoint of the two indices and
  the far frame's pixels weighed by ``(1 - A)^2``, ``A`` the near layer's disc-blurred cover (a near pixel labelled
  far is covered in the far frame);
* ``de-spilled``: the far frame's far pixels first freed of the near layer's blurred light,
  ``B = (F_far - S) / (1 - A)`` with ``S`` the near layer's light of the near frame blurred by the disc (Hasinoff
  and Kutulakos 2007; given up within the reach of clipped near light), and a suspect called far when its residual
  against the blurred ``B`` is below ``margin`` times that residual's mean over the far pixels themselves;
* ``de-spilled, two classes``: the de-spilled far prediction against the near layer's light, as ``two classes``;
* ``de-spilled, both``: both tests.

Suspects with less than 5 % of the disc's far support are left as they are.

Usage: ``PYTHONPATH=src python bench/halo_eighth.py [--scenes grass pins steps occluder]`` (about 2 minutes a scene).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_fifth import scenes_from_args, scored  # noqa: E402

from postfocus.colour import srgb_decode  # noqa: E402
from postfocus.focus.map import focus_index_map  # noqa: E402
from postfocus.fuse.occlusion import _disc_blur  # noqa: E402
from postfocus.fuse.relight import local_far_index  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402


def aligned_frames(source, maps, analysis) -> np.ndarray:
    """The stack's frames as the fusion aligns them (float32 in 0-1, in frame order), kept while it fuses."""
    kept: dict[int, np.ndarray] = {}

    def keep(i: int, aligned: np.ndarray, *_: object) -> None:
        scale = 255.0 if aligned.dtype == np.uint8 else 65535.0 if aligned.dtype == np.uint16 else 1.0
        kept[i] = np.asarray(aligned, np.float32) / np.float32(scale)

    fuse(source, maps, alignment=analysis.alignment, on_aligned=keep)
    return np.stack([kept[i] for i in sorted(kept)])


def _sides(depth: np.ndarray) -> np.ndarray:
    """True where a pixel is more than a frame nearer than the farthest true depth within 4 px (the near side)."""
    farthest = cv2.dilate(depth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    return (farthest - depth) > 1.0


def decided(frames: np.ndarray, sided: np.ndarray, growth: float, rule: str, margin: float = 1.0,
            reach: int = 12, box: int = 3) -> np.ndarray:
    """``sided`` with the suspects (a farther index within ``reach`` px) that ``rule`` calls far given the far index.

    In the frame focused near (``a``) a far pixel shows the far surface blurred by the disc of radius
    ``r = growth |b - a|`` (the near object is sharp there and does not cover it); a near pixel shows the near
    object's own light. The rules differ in how the two are predicted (module docstring).
    """
    far = local_far_index(sided, reach)
    suspect = (far - sided) > 1.5
    near_at, far_at = np.rint(sided).astype(int), np.rint(far).astype(int)
    linear = srgb_decode(frames)
    flip = np.zeros(sided.shape, bool)
    for a, b in set(zip(near_at[suspect].tolist(), far_at[suspect].tolist())):
        sel = suspect & (near_at == a) & (far_at == b)
        r = growth * abs(b - a)
        fa, fb = linear[a], linear[b]
        support = np.ones(sided.shape, np.float32)
        if rule == "relative blur":
            ef = np.abs(fa - _disc_blur(fb, r)).sum(axis=2)
            en = np.abs(fb - _disc_blur(fa, r)).sum(axis=2)
        else:
            if rule == "two classes":
                m = (np.abs(sided - a) < 0.75).astype(np.float32)
                clean = ((np.abs(sided - b) < 0.75) & ~suspect).astype(np.float32)
                source = fb
            else:  # the near layer is everything nearer than the midpoint; far pixels weighed by (1 - cover)^2
                m = (sided < 0.5 * (a + b)).astype(np.float32)
                cover = np.clip(_disc_blur(m, r), 0.0, 1.0)
                clean = (1.0 - m) * (1.0 - cover) ** 2
                source = fb
                if rule.startswith("de-spilled"):  # F_b = S + (1 - A) B: the near layer's light (sharp in F_a) taken off
                    spill = np.maximum(_disc_blur(fa * m[..., None], r), 0.0)
                    clean *= _disc_blur((fa.max(axis=2) >= 0.85) * m, r) < 0.005  # no clipped near light
                    source = np.clip((fb - spill) / np.maximum(1.0 - cover, 0.05)[..., None], 0.0, 1.0)
                support = _disc_blur(clean, r)
            blurred_far = _disc_blur(source * clean[..., None], r) / np.maximum(support, 1e-3)[..., None]
            ef = np.abs(fa - blurred_far).sum(axis=2)
            residual = _disc_blur(cv2.blur(ef, (box, box)) * clean, r) / np.maximum(support, 1e-3)
            w = m * ef * ef  # the near layer's light, from its pixels least like the blurred far surface
            own = _disc_blur(fa * w[..., None], r) / np.maximum(_disc_blur(w, r), 1e-6)[..., None]
            en = cv2.blur(np.abs(fa - own).sum(axis=2), (box, box))
        ef = cv2.blur(ef, (box, box))
        if rule == "relative blur":
            test = ef < cv2.blur(en, (box, box))
        elif rule == "de-spilled":  # against the far prediction's own residual on the far pixels
            test = ef < margin * residual
        elif rule == "de-spilled, both":
            test = (ef < margin * residual) & (ef < en)
        else:  # nearer the far prediction than the near layer's light
            test = ef * margin < en
        flip |= sel & test & (support > 0.05)
    return np.where(flip, far, sided).astype(np.float32)


def main() -> None:
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        depth = st.depth.astype(np.float32)
        sided = focus_index_map(maps.volume, analysis.guide, sides=True)[0]
        near = _sides(depth)
        off = np.abs(sided - depth) > 1.5
        fat, thin = off & ~near, off & near
        band = np.zeros(depth.shape, bool)
        band[truth.box] = truth.band
        edge = cv2.dilate((np.abs(cv2.Laplacian(depth, cv2.CV_32F)) > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)
        print(f"{name}: blur growth {growth:.3f}; band {band.mean():.3f} of the picture")
        print("px from the true edge | far side off (share of far side) | near side off (share of near side)")
        for lo, hi in ((0, 2), (2, 4), (4, 6), (6, 9), (9, 12), (12, 20)):
            ring = (dist >= lo) & (dist < hi)
            print(f"{lo}-{hi} | {fat[ring & ~near].mean():.3f} ({(ring & ~near).sum()}) |"
                  f" {thin[ring & near].mean() if (ring & near).any() else float('nan'):.3f} ({(ring & near).sum()})")
        print(f"far side off {fat.sum()}, near side off {thin.sum()}; sided minus truth on far side off: "
              f"median {np.median((sided - depth)[fat]) if fat.any() else 0:.2f}")
        print("| map | far / near side pixels off | fused | restore |")
        print("|---|---|---|---|")
        frames = aligned_frames(source, maps, analysis)
        decisions = []
        for rule, margin, rounds in (("relative blur", 1.0, 1), ("two classes", 1.0, 1), ("covered far down-weighted", 1.0, 1),
                                     ("de-spilled", 1.0, 1), ("de-spilled", 2.0, 1), ("de-spilled", 2.0, 2),
                                     ("de-spilled, two classes", 1.0, 1), ("de-spilled, two classes", 1.0, 2),
                                     ("de-spilled, two classes", 1.0, 3), ("de-spilled, both", 3.0, 1)):
            t = time.process_time()
            index = sided
            for _ in range(rounds):  # each round with the near layer of the last
                index = decided(frames, index, growth, rule, margin)
            label = f"sided, {rule}, margin {margin:g}" + (f", {rounds} rounds" if rounds > 1 else "")
            decisions.append((f"{label} [{time.process_time() - t:.2f} s]", index))
        variants = [("sided", sided, maps.confidence),
                    ("sided, far side off set true", np.where(fat, depth, sided), maps.confidence),
                    *[(f"sided, far side off within {d} px set true", np.where(fat & (dist < d), depth, sided), maps.confidence)
                      for d in (2, 4, 8)],
                    ("sided, near side off set true", np.where(thin, depth, sided), maps.confidence),
                    ("sided, both set true", np.where(off, depth, sided), maps.confidence),
                    ("sided, both set true, confidence 1", np.where(off, depth, sided), np.ones_like(maps.confidence)),
                    ("true depth, map's confidence", depth, maps.confidence),
                    ("true depth", depth, np.ones_like(maps.confidence)),
                    *[(label, index, maps.confidence) for label, index in decisions]]
        for label, index, conf in variants:
            m = dataclasses.replace(maps, focus_index=index.astype(np.float32), confidence=conf)
            cells = []
            for restore in (False, True):
                with mock.patch("postfocus.pipeline.merge.defocus_slope", lambda *a, **k: growth):
                    image = fuse(source, m, alignment=analysis.alignment, restore=restore)
                h, n, f, p = scored(st, truth, image)
                cells.append(f"{h:.2f} ({n:.2f} / {f:.2f}), {p:.2f}")
            off_v = np.abs(index - depth) > 1.5
            print(f"| {label} | {(off_v & ~near).sum()} / {(off_v & near).sum()} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
