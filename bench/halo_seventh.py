"""Halo experiments of the eighth session (docs/quality.md, "Seventh step, eighth session").

Can a per-pixel choice among the frames, confined to the band within the blur reach of depth edges, lower the
halo? In-process on the benchmark's own renders as ``bench/halo_fifth.py`` (``grass`` and ``pins`` at 480x720,
10 frames, 12 px blur, handheld camera, seed 1, JPEG q95 read back; 8-bit): the default fusion, with the
aligned frames kept (``on_aligned``), and the band's pixels replaced by

* the frame closest to the truth (3x3 sum of absolute error; an oracle: the best any choice among the frames
  can do), in the whole band of the estimated map's depth steps, and on the true far side only;
* the frame (soft-weighted) whose coarse value (Gaussian sigma 2 px) is nearest the far surface's own
  appearance beyond the reach (the fused image outside the band, normalised convolution of sigma ``s``),
  among the frames between the band's lowest and highest index: in the whole band, and on the true far
  side only (the side given by the truth, so the rule is judged alone);
* the frame of the occlusion-safe index made from the *true* depth (:func:`postfocus.fuse.occlusion.visible_index`,
  the frame that minimises the modelled spill, with the blur growth read against the guide times ``k``);
* the frame focused on the far surface *relit*: beside a near object darker than the background, that frame is
  ``(1 - A) B`` plus a small spill, so it is multiplied by the ratio ``g`` of the coarse (Gaussian ``L`` px,
  normalised over the far surface's pixels) glow-free fused image to its own coarse value, where ``g`` exceeds
  ``lim`` (a brighter near object, whose spill adds light, is left alone), in the pixels whose far index is
  more than 1.5 frames beyond the map's; the far index from the sided map
  (:func:`postfocus.focus.sides.occlusion_sides`), the true depth, or the map's own local maximum within the
  blur reach (no second map).

And the library's opt-in, ``fuse(..., relight=True)`` (:mod:`postfocus.fuse.relight`: the map's own far index
within the reach read by the occlusion-safe index, ``L`` = 1 px, ``g`` > 1.1, channels' ratios within 10 %), with
its PSNR and process time against the default's. Prints halo (near side / far side). Usage: ``PYTHONPATH=src python bench/halo_seventh.py [--scenes grass pins]``
(about a minute a scene).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_fifth import scenes_from_args, scored  # noqa: E402

from postfocus.focus.map import focus_index_map  # noqa: E402
from postfocus.fuse.occlusion import visible_index  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402


def _pick(frames: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Per pixel, the frames at (fractional) position ``j``, linearly interpolated."""
    j = np.clip(j, 0, len(frames) - 1)
    lo = np.floor(j).astype(int)
    hi = np.minimum(lo + 1, len(frames) - 1)
    w = (j - lo)[..., None]
    at = [np.take_along_axis(frames, i[None, ..., None].repeat(3, -1), 0)[0] for i in (lo, hi)]
    return at[0] * (1 - w) + at[1] * w


def _far_reference(frames, image, index, lo, hi, band, sigma, tol):  # noqa: ANN001, ANN202
    """Soft choice of the frame whose coarse value is nearest the far surface seen beyond the band."""
    outside = (~band).astype(np.float32)
    ref = cv2.GaussianBlur(image * outside[..., None], (0, 0), sigma)
    ref /= np.maximum(cv2.GaussianBlur(outside, (0, 0), sigma), 1e-6)[..., None]
    num, den = np.zeros_like(image), np.zeros(index.shape, np.float32)
    for j, frame in enumerate(frames):
        gap = np.abs(cv2.GaussianBlur(frame, (0, 0), 2.0) - ref).max(axis=2)
        w = np.exp(-(gap / tol) ** 2) * ((j >= lo - 0.5) & (j <= hi + 0.5)) + 1e-6 * np.exp(-(j - index) ** 2)
        num += frame * w[..., None]
        den += w
    return num / den[..., None]


def _coarse(image: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
    """Gaussian of ``image`` over the pixels of ``mask`` (normalised convolution)."""
    m = mask.astype(np.float32)
    return cv2.GaussianBlur(image * m[..., None], (0, 0), scale) / np.maximum(cv2.GaussianBlur(m, (0, 0), scale), 1e-4)[..., None]


def _relit(frames, image, index, far_index, disc, scale, lim, own_mask):  # noqa: ANN001, ANN202
    """``image`` with the frame at ``far_index`` relit by the coarse ratio where that frame is darker (see above)."""
    far = _pick(frames, far_index)
    mask = np.ones(index.shape, bool) if not own_mask else far_index >= cv2.dilate(far_index, disc) - 1.0
    g = _coarse(image, mask, scale) / np.maximum(_coarse(far, mask, scale), 1e-3)
    w = np.clip((g.min(axis=2) - lim) / 0.05, 0, 1) * ((far_index - index) > 1.5)
    return image + w[..., None] * (far * np.clip(g, 1, 3) - image), float((w > 0).mean())


def main() -> None:
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        kept: dict[int, np.ndarray] = {}

        def keep(i: int, aligned: np.ndarray) -> None:
            scale = 255.0 if aligned.dtype == np.uint8 else 65535.0 if aligned.dtype == np.uint16 else 1.0
            kept[i] = np.asarray(aligned, np.float32) / np.float32(scale)

        t = time.process_time()
        image = fuse(source, maps, alignment=analysis.alignment, on_aligned=keep)
        cpu = time.process_time() - t
        frames = np.stack([kept[i] for i in sorted(kept)])
        index = maps.focus_index.astype(np.float32)
        sharp = st.sharp.astype(np.float32)
        depth = st.depth.astype(np.float32)
        far = np.zeros(index.shape, bool)
        far[truth.box] = truth.band & ~((cv2.dilate(depth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
                                          - depth) > 1.0)[truth.box]
        reach = int(np.ceil(growth * (index.max() - index.min())))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
        lo, hi = cv2.erode(index, disc), cv2.dilate(index, disc)
        band = (hi - lo) > 2.0  # within the blur reach of a depth step of more than two frames

        def row(label: str, values: np.ndarray, where: np.ndarray) -> None:
            out = image.copy()
            out[where] = values[where]
            h, n, f, _ = scored(st, truth, out)
            print(f"| {label} | {h:.2f} ({n:.2f} / {f:.2f}) |", flush=True)

        print(f"{name}: blur growth {growth:.3f} px a frame, reach {reach} px, band {band.mean():.1%} of the "
              f"picture; default fusion {cpu:.2f} s CPU")
        print("| variant | halo (near / far) |\n|---|---|")
        row("default fusion", image, np.zeros_like(band))
        error = np.stack([cv2.blur(np.abs(f - sharp).sum(axis=2), (3, 3)) for f in frames])
        oracle = _pick(frames, error.argmin(axis=0).astype(np.float32))
        row("oracle frame, band of the map's depth steps", oracle, band)
        row("oracle frame, true far side", oracle, far)
        for sigma in (3, 6):
            for tol in (0.02, 0.05):
                chosen = _far_reference(frames, image, index, lo, hi, band, sigma, tol)
                row(f"far-surface reference (sigma {sigma}, tol {tol}), band", chosen, band)
                row(f"far-surface reference (sigma {sigma}, tol {tol}), true far side of the band", chosen, band & far)
        for k in (0.75, 1.0, 1.5, 2.0):
            safe = visible_index(depth, growth * k)
            row(f"least-spill frame from the true depth (slope x{k}), where capped", _pick(frames, safe),
                safe < depth - 0.25)
        for relit in (False, True, False, True):
            t = time.process_time()
            out = fuse(source, maps, alignment=analysis.alignment, relight=relit, threads=1)
            seconds = time.process_time() - t
            h, n, f, p = scored(st, truth, out)
            print(f"| library, relight={relit} | {h:.2f} ({n:.2f} / {f:.2f}), PSNR {p:.2f} [{seconds:.2f} s] |", flush=True)
        t = time.process_time()
        sided = focus_index_map(maps.volume, analysis.guide, sides=True)[0]
        sided_cpu = time.process_time() - t
        print(f"(sided map: {sided_cpu:.2f} s CPU)")
        everywhere = np.ones_like(band)
        for label, far_index, own in (("sided map", sided, True), ("true depth", depth, True),
                                      ("map's local far index (reach 6 px)", cv2.dilate(index, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))), False),
                                      ("map's local far index (reach 12 px)", hi, False)):
            for scale in (1.0, 2.0, 3.0):
                for lim in ((1.0,) if own else (1.0, 1.1)):
                    t = time.process_time()
                    out, share = _relit(frames, image, index, far_index.astype(np.float32), disc, scale, lim, own)
                    row(f"far frame relit, {label}, L {scale}, g > {lim} ({share:.1%} of the picture, "
                        f"{time.process_time() - t:.2f} s)", out, everywhere)


if __name__ == "__main__":
    main()
