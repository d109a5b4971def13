"""Halo experiments of the tenth session (docs/quality.md, "Halos, tenth session (halo10)").

In-process on the benchmark's own renders as ``bench/halo_eighth.py`` (480x720, 10 frames, 12 px blur for the halo
scenes, 8 px for the standard ones, handheld camera, seed 1, JPEG q95 read back; 8-bit). The ninth session's
decision between the near index ``a`` and the farther index ``b`` within reach, at the sided map's suspects, read
colour in frame ``a``; here it reads *focus evidence*: the local detail of every frame at the pixel.

By the thin-lens layered model (Pentland 1987; Hasinoff and Kutulakos 2007) a pixel of the near object shows its own
texture sharpest in frame ``a`` and blurred by the disc ``r_k = c |k - a|`` in frame ``k``; a pixel of the far surface
beside it shows the far texture sharpest in frame ``b`` (dimmed by the near object's cover, plus its smooth spill) and
in frame ``a`` only that texture blurred by ``c |b - a|``. The detail of frame ``k`` is the project's focus measure
with a small window (:func:`~postfocus.focus.measure.laplacian_energy`, 3 px box), and the measure's response to a
disc of radius ``r`` is ``g(r) = 1 / (1 + (r / 1.2)^2)`` (the curve :func:`~postfocus.fuse.occlusion.defocus_slope`
inverts), ``c`` the stack's blur growth read against the guide. Rules:

* ``profile``: the pixel is far when the frames' detail correlates better with the profile ``g(c |k - b|)`` than
  with ``g(c |k - a|)`` (both normalised: a matched filter over the stack), and the detail that decides is above the
  sensor noise's own energy (:func:`~postfocus.focus.measure.noise_sigma`, four times its expected Laplacian energy);
* ``unexplained``: the pixel stays near only when frame ``a`` holds detail above the noise that is sharper there than
  in every frame at least two frames away, and that the far surface blurred by the disc (the de-spilled far
  prediction of the ninth session, from frame ``b``) does not explain; otherwise far;
* ``own`` (``kappa``): far when frame ``a``'s detail is at most ``kappa`` times the detail of the de-spilled far
  prediction blurred by the disc plus the noise's (the near object's own sharp texture is missing there);
* ``own, pooled``: the same evidence, ``log2`` of that ratio clipped to +-4, pooled by a guided filter (He et al.
  2010; radius 4 px) steered by frame ``a``, in which the near object's outline is sharp, and far where the pooled
  evidence is not positive;
* ``own, pooled, interface out``: the same, the votes within 2 px of the interface between near- and far-looking
  pixels (where the measure's window straddles the near outline) left out of a normalised guided filter (radius 8);
* ``own, pooled, shifted``: frame ``a``'s detail the least over the 3 px box and the boxes shifted 2 px in the eight
  directions (shiftable windows), so that a pixel beside the outline can read a window on its own side;
* ``own, pooled, anchored`` (``8 px``: radius 8): the far-labelled pixels within the support vote too;
* ``own, pooled, fine``: the detail a per-pixel squared Laplacian (no box, no presmoothing) for frame ``a`` and the
  prediction, with the noise's energy for that measure.

``own, pooled, fine`` (kappa 4) is also followed by :func:`~postfocus.focus.edges.snap_to_outlines` onto frame ``a``
(reach 2 and 4) and by :func:`outline_sided` (the 2 px band at the decided interface sided by frame ``a``'s step).

Every rule acts only inside the de-spilled far prediction's support (the far pixels of frame ``b`` with no clipped near
light within the disc; at least 5 % of the disc) and leave the rest of the map as it is. ``rounds`` repeats the
decision with the last round's map.

Usage: ``PYTHONPATH=src python bench/halo_tenth.py [--scenes grass pins steps occluder]`` (about a minute a scene;
``HALO_OUT=dir`` keeps the fused images as PNG, with ``HALO_FIGURE=docs/img/halo10-grass.jpg`` also the grass crops;
``HALO_RULES="own, pooled;profile"`` runs only those rules).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_eighth import _sides, aligned_frames  # noqa: E402
from halo_fifth import scenes_from_args, scored  # noqa: E402

from postfocus.colour import srgb_decode, srgb_encode, to_grey  # noqa: E402
from postfocus.focus.edges import snap_to_outlines  # noqa: E402
from postfocus.focus.guided import guided_filter  # noqa: E402
from postfocus.focus.map import focus_index_map  # noqa: E402
from postfocus.focus.measure import laplacian_energy, noise_sigma  # noqa: E402
from postfocus.fuse.occlusion import _disc_blur  # noqa: E402
from postfocus.fuse.relight import local_far_index  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402

WINDOW = 3
POOL = 4  # radius of the guided filter that pools the evidence


def _response(radius: np.ndarray | float) -> np.ndarray:
    """The focus measure's response to a disc of ``radius`` px, relative to the sharp texture's."""
    return 1.0 / (1.0 + (np.asarray(radius, np.float64) / 1.2) ** 2)


def _noise_energy(greys: np.ndarray, presmooth: float = 0.7) -> float:
    """Expected :func:`laplacian_energy` of the frames' sensor noise alone (median sigma over the frames)."""
    sigma = float(np.median([noise_sigma(g) for g in greys]))
    impulse = np.zeros((15, 15), np.float32)
    impulse[7, 7] = 1.0
    kernel = cv2.Laplacian(cv2.GaussianBlur(impulse, (0, 0), presmooth) if presmooth > 0 else impulse, cv2.CV_32F, ksize=3)
    return sigma * sigma * float((kernel * kernel).sum())


def detail(frames: np.ndarray, *, window: int = WINDOW, presmooth: float = 0.7) -> tuple[np.ndarray, np.ndarray, float]:
    """(grey frames, their small-window focus measure, the noise's expected measure)."""
    greys = np.stack([to_grey(f) for f in frames]).astype(np.float32)
    energy = np.stack([laplacian_energy(g, window, presmooth) for g in greys])
    return greys, energy, _noise_energy(greys, presmooth)


def _far_prediction(fa: np.ndarray, fb: np.ndarray, sided: np.ndarray, a: int, b: int,
                    r: float) -> tuple[np.ndarray, np.ndarray]:
    """(support, grey far prediction in frame a): halo8's de-spilled far surface of frame b blurred by the disc.

    Frame b's far pixels are freed of the near layer's blurred light, ``(F_b - S) / (1 - A)`` (``S`` the near layer
    of frame a blurred by the disc, ``A`` its blurred cover), weighed by ``(1 - A)^2`` and left out within reach of
    clipped near light; ``support`` is their disc-blurred weight.
    """
    m = (sided < 0.5 * (a + b)).astype(np.float32)
    cover = np.clip(_disc_blur(m, r), 0.0, 1.0)
    clean = (1.0 - m) * (1.0 - cover) ** 2
    clean *= _disc_blur((fa.max(axis=2) >= 0.85) * m, r) < 0.005  # no clipped near light
    support = _disc_blur(clean, r)
    source = np.clip((fb - np.maximum(_disc_blur(fa * m[..., None], r), 0.0))
                     / np.maximum(1.0 - cover, 0.05)[..., None], 0.0, 1.0)
    predicted = _disc_blur(source * clean[..., None], r) / np.maximum(support, 1e-3)[..., None]
    return support, to_grey(srgb_encode(predicted)).astype(np.float32)


def _least_shifted(energy: np.ndarray, shift: int = 2) -> np.ndarray:
    """Per frame, the least of the measure over the 3 px boxes shifted by ``shift`` px in the 8 directions and unshifted.

    A pixel beside a sharp outline then reads a window on its own side (shiftable windows, as in stereo matching).
    """
    pad = np.pad(energy, ((0, 0), (shift, shift), (shift, shift)), mode="edge")
    h, w = energy.shape[1:]
    out = energy.copy()
    for dy in (-shift, 0, shift):
        for dx in (-shift, 0, shift):
            np.minimum(out, pad[:, shift + dy:shift + dy + h, shift + dx:shift + dx + w], out=out)
    return out


def _pairs(sided: np.ndarray, reach: int):  # noqa: ANN202
    """(far index, suspects, then per (a, b) pair: a, b, the pair's suspects) of the sided map."""
    far = local_far_index(sided, reach)
    suspect = (far - sided) > 1.5
    near_at, far_at = np.rint(sided).astype(int), np.rint(far).astype(int)
    pairs = [(a, b, suspect & (near_at == a) & (far_at == b))
             for a, b in sorted(set(zip(near_at[suspect].tolist(), far_at[suspect].tolist())))]
    return far, suspect, pairs


def supported(frames: np.ndarray, sided: np.ndarray, growth: float, *, reach: int = 12) -> np.ndarray:
    """The suspects inside the de-spilled far prediction's support (the only pixels the rules decide)."""
    linear = srgb_decode(frames)
    _, suspect, pairs = _pairs(sided, reach)
    inside = np.zeros(sided.shape, bool)
    for a, b, sel in pairs:
        inside |= sel & (_far_prediction(linear[a], linear[b], sided, a, b, growth * abs(b - a))[0] > 0.05)
    return inside


def textured(frames: np.ndarray, sided: np.ndarray, growth: float, rule: str, *, reach: int = 12, kappa: float = 4.0,
             measured: tuple[np.ndarray, np.ndarray, float] | None = None) -> np.ndarray:
    """``sided`` with the suspects (a farther index within ``reach`` px) that ``rule`` calls far given the far index."""
    fine = rule.endswith("fine")  # the per-pixel squared Laplacian (no box, no presmoothing): reaches 1 px past an outline
    greys, energy, floor = (detail(frames, window=1, presmooth=0.0) if fine else
                            measured if measured is not None else detail(frames))
    frame_no = np.arange(len(frames), dtype=np.float64)
    far, _, pairs = _pairs(sided, reach)
    linear = srgb_decode(frames)
    shifted = _least_shifted(energy) if rule == "own, pooled, shifted" else None
    flip = np.zeros(sided.shape, bool)
    for a, b, sel in pairs:
        r = growth * abs(b - a)
        support, predicted = _far_prediction(linear[a], linear[b], sided, a, b, r)
        inside = sel & (support > 0.05)
        ys, xs = np.nonzero(inside)
        if not len(ys):
            continue
        e = energy[:, ys, xs].astype(np.float64)  # (n, k)
        if rule == "profile":
            score = []
            for centre in (a, b):
                g = _response(growth * np.abs(frame_no - centre))
                score.append((g[:, None] * e).sum(axis=0) / np.sqrt((g * g).sum()))
            strong = e[[a, b]].max(axis=0) > 4.0 * floor
            far_here = (score[1] > score[0]) & strong
        elif rule == "unexplained":  # near only with frame a's own sharp detail that the blurred far surface leaves
            left = laplacian_energy(greys[a] - predicted, WINDOW)[ys, xs]
            sharpest = e[a] >= e[np.abs(frame_no - a) >= 2].max(axis=0)
            far_here = ~((left > 4.0 * floor) & sharpest)
        else:  # "own...": frame a's detail against kappa times the blurred far surface's and the noise's
            explained = laplacian_energy(predicted, 1, 0.0) if fine else laplacian_energy(predicted, WINDOW)
            if rule == "own, pooled, shifted":  # frame a's detail in the least detailed of 8 windows shifted by 2 px
                e = e.copy()
                e[a] = shifted[a][ys, xs]
            if rule == "own":
                far_here = e[a] <= kappa * (explained[ys, xs] + floor)
            else:
                own_a = shifted[a] if rule == "own, pooled, shifted" else energy[a]
                voters = inside | ((np.abs(sided - b) < 0.75) & (support > 0.05)) if "anchored" in rule else inside
                vote = np.where(voters, np.clip(np.log2(np.maximum(own_a, 1e-12) / (kappa * (explained + floor))),
                                                -4.0, 4.0), 0.0).astype(np.float32)
                if rule in ("own, pooled", "own, pooled, shifted", "own, pooled, fine"):
                    pooled = guided_filter(greys[a], vote, POOL, 1e-3)[ys, xs]
                elif rule.startswith("own, pooled, anchored"):  # the far-labelled pixels beside vote too
                    pooled = guided_filter(greys[a], vote, POOL * (2 if rule.endswith("8 px") else 1), 1e-3)[ys, xs]
                else:  # votes within 2 px of the interface of near- and far-looking pixels (the window straddles it) out
                    k5 = np.ones((5, 5), np.uint8)
                    interface = ((cv2.dilate((vote > 0).astype(np.uint8), k5) > 0)
                                 & (cv2.dilate((inside & (vote <= 0)).astype(np.uint8), k5) > 0))
                    w = (inside & ~interface).astype(np.float32)
                    num = guided_filter(greys[a], vote * w, 2 * POOL, 1e-3)
                    den = guided_filter(greys[a], w, 2 * POOL, 1e-3)
                    plain = guided_filter(greys[a], vote, POOL, 1e-3)
                    pooled = np.where(den > 0.1, num / np.maximum(den, 0.1), plain)[ys, xs]
                far_here = pooled <= 0.0
        flip[ys[far_here], xs[far_here]] = True
    return np.where(flip, far, sided).astype(np.float32)


FIGURE = (("truth", "truth"), ("default fusion", "0-default_map"), ("sided + solver", "1-sided"),
          ("own, pooled, fine + solver", "1-sided-own-pooled-fine-kappa_4"),
          ("in-support oracle + solver", "1-oracle:_sided-far_side_off_inside_the_support_set_true"))


def figure(images: Path, path: Path, *, x: tuple[int, int] = (250, 430), y: tuple[int, int] = (150, 270),
           rows: tuple[tuple[str, str], ...] = FIGURE) -> None:
    """Grass crops at 200 % of the kept images (``HALO_OUT``, ``rows``: label and file tag): top the image,
    bottom ``|error| x 4``."""
    from halo_figures import _tile, _write

    def read(tag: str) -> np.ndarray:
        return cv2.imread(str(images / f"grass-{tag}.png"))[..., ::-1].astype(np.float32) / 255.0

    truth = read("truth")[y[0]:y[1], x[0]:x[1]]
    tiles = []
    for label, tag in rows:
        crop = read(tag)[y[0]:y[1], x[0]:x[1]]
        both = np.concatenate([crop, np.clip(np.abs(crop - truth) * 4, 0, 1)], axis=0)
        tiles.append(_tile(both, label, 2.0))
    _write(tiles, path)


def outline_sided(frames: np.ndarray, sided: np.ndarray, decided: np.ndarray, *, reach: int = 12,
                  band: int = 2, radius: int = 4) -> np.ndarray:
    """``decided`` with its suspects within ``band`` px of its near/far interface sided by the step in frame a.

    There the focus evidence is the outline's own; the outline, sharp in frame ``a``, lies where the grey value
    passes between the near level and the far level, each the mean of frame ``a`` over the pixels decided near or
    far more than ``band`` px from the interface within ``radius`` px. A suspect nearer the far level is far.
    """
    far = local_far_index(sided, reach)
    suspect = (far - sided) > 1.5
    grey = to_grey(np.take_along_axis(frames, np.rint(sided).astype(int)[None, ..., None], axis=0)[0]).astype(np.float32)
    is_near = (suspect & (np.abs(decided - sided) < 0.5)).astype(np.uint8)
    is_far = (~is_near.astype(bool)).astype(np.uint8)
    k = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    interface = (cv2.dilate(is_near, k) > 0) & (cv2.dilate(is_far, k) > 0)
    size = (2 * radius + 1, 2 * radius + 1)
    levels = []
    for mask in (is_near.astype(bool) & ~interface, is_far.astype(bool) & ~interface):
        w = mask.astype(np.float32)
        den = cv2.boxFilter(w, -1, size, normalize=False)
        levels.append((cv2.boxFilter(grey * w, -1, size, normalize=False) / np.maximum(den, 1e-6), den > 0))
    (near_level, near_ok), (far_level, far_ok) = levels
    judged = suspect & interface & near_ok & far_ok
    to_far = judged & (np.abs(grey - far_level) < np.abs(grey - near_level))
    out = np.where(judged, sided, decided)
    return np.where(to_far, far, out).astype(np.float32)


def print_rows(variants, *, name, st, truth, source, analysis, growth: float, out: Path | None) -> None:
    """One table row a (label, focus-index map): halo fused and with the solver (``restore``), and the pixels off.

    The fusion's blur growth is the scene's measured ``growth``; with ``out`` each fused image is kept as a PNG.
    """
    maps = analysis.maps
    depth = st.depth.astype(np.float32)
    near = _sides(depth)
    for label, index in variants:
        m = dataclasses.replace(maps, focus_index=index.astype(np.float32))
        cells = []
        for restore in (False, True):
            with mock.patch("postfocus.pipeline.merge.defocus_slope", lambda *a, **k: growth):
                image = fuse(source, m, alignment=analysis.alignment, restore=restore)
            h, n, f, p = scored(st, truth, image)
            if out is not None:
                tag = f"{name}-{len(cells)}-{label.split(' [')[0].replace(', ', '-').replace(' ', '_')}"
                cv2.imwrite(str(out / f"{tag}.png"), np.round(np.clip(image[..., ::-1], 0, 1) * 255).astype(np.uint8))
            cells.append(f"{h:.2f} ({n:.2f} / {f:.2f}), {p:.2f}")
        off_v = np.abs(index - depth) > 1.5
        print(f"| {label} | {(off_v & ~near).sum()} / {(off_v & near).sum()} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    out = Path(os.environ["HALO_OUT"]) if os.environ.get("HALO_OUT") else None  # fused images kept for crops
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        if out is not None:
            cv2.imwrite(str(out / f"{name}-truth.png"), np.round(np.clip(st.sharp[..., ::-1], 0, 1) * 255).astype(np.uint8))
        depth = st.depth.astype(np.float32)
        sided = focus_index_map(maps.volume, analysis.guide, sides=True)[0]
        near = _sides(depth)
        frames = aligned_frames(source, maps, analysis)
        t = time.process_time()
        measured = detail(frames)
        t_detail = time.process_time() - t
        print(f"{name}: blur growth {growth:.3f}; noise energy {measured[2]:.2e}; detail of the frames {t_detail:.2f} s")
        print("| map | far / near side pixels off | fused | restore |")
        print("|---|---|---|---|")
        variants = [("default map", maps.focus_index), ("sided", sided)]
        for rule, kappa, rounds in (("profile", 4, 1), ("profile", 4, 2), ("unexplained", 4, 1),
                                    ("own", 2, 1), ("own", 4, 1), ("own", 8, 1), ("own", 4, 2),
                                    ("own, pooled", 2, 1), ("own, pooled", 4, 1), ("own, pooled", 4, 2),
                                    ("own, pooled, interface out", 4, 1), ("own, pooled, shifted", 4, 1),
                                    ("own, pooled, anchored", 4, 1), ("own, pooled, anchored, 8 px", 4, 1),
                                    ("own, pooled, fine", 4, 1), ("own, pooled, fine", 8, 1), ("own, pooled, fine", 4, 2)):
            if os.environ.get("HALO_RULES") and rule not in os.environ["HALO_RULES"].split(";"):
                continue
            t = time.process_time()
            index = sided
            for _ in range(rounds):
                index = textured(frames, index, growth, rule, kappa=kappa, measured=measured)
            label = f"sided, {rule}" + (f", kappa {kappa}" if rule.startswith("own") else "") + (f", {rounds} rounds" if rounds > 1 else "")
            variants.append((f"{label} [{time.process_time() - t:.2f} s]", index))
            if rule == "own, pooled, fine" and kappa == 4 and rounds == 1:  # then snapped onto frame a's sharp outline
                for reach in (2, 4):
                    t = time.process_time()
                    near_frames = np.take_along_axis(frames, np.rint(sided).astype(int)[None, ..., None], axis=0)[0]
                    snapped = snap_to_outlines(index, near_frames, maps.confidence, reach=reach, jump=1.0, sigma_r=0.05)
                    variants.append((f"{label}, snapped onto frame a (reach {reach}) [{time.process_time() - t:.2f} s + the decision]",
                                     snapped))
                t = time.process_time()
                sided_step = outline_sided(frames, sided, index)
                variants.append((f"{label}, outline band sided by the step in frame a [{time.process_time() - t:.2f} s + the decision]",
                                 sided_step))
        # bounds: the truth put back on the sided map's far side off, inside / outside the rules' reach (the support)
        inside = supported(frames, sided, growth)
        fat = (np.abs(sided - depth) > 1.5) & ~near
        edge = cv2.dilate((np.abs(cv2.Laplacian(depth, cv2.CV_32F)) > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)
        print(f"far side off {fat.sum()}: inside the support {(fat & inside).sum()}, "
              + ", ".join(f"{lo}-{hi} px from a true edge {(fat & (dist >= lo) & (dist < hi)).sum()} "
                          f"({(fat & inside & (dist >= lo) & (dist < hi)).sum()} inside)"
                          for lo, hi in ((0, 2), (2, 4), (4, 8), (8, 1000))))
        variants += [("oracle: sided, far side off set true", np.where(fat, depth, sided)),
                     ("oracle: sided, far side off inside the support set true", np.where(fat & inside, depth, sided)),
                     ("oracle: sided, far side off outside the support set true", np.where(fat & ~inside, depth, sided)),
                     ("oracle: sided, far side off within 2 px set true", np.where(fat & (dist < 2), depth, sided)),
                     ("oracle: sided, far side off 2-8 px set true", np.where(fat & (dist >= 2) & (dist < 8), depth, sided)),
                     ("oracle: sided, far side off inside the support, 2 px or more from a true edge, set true",
                      np.where(fat & inside & (dist >= 2), depth, sided))]
        print_rows(variants, name=name, st=st, truth=truth, source=source, analysis=analysis, growth=growth, out=out)
        if out is not None and name == "grass" and os.environ.get("HALO_FIGURE"):
            figure(out, Path(os.environ["HALO_FIGURE"]))


if __name__ == "__main__":
    main()
