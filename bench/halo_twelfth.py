"""Halo experiments of the fourteenth session (docs/quality.md, "Halos, fourteenth session (halo12)").

In-process on the benchmark's renders as ``bench/halo_tenth.py`` and ``bench/halo_eleventh.py`` (480x720, 10 frames,
12 px blur for the halo scenes, 8 px for the standard ones, handheld, seed 1, JPEG q95 read back; 8-bit). The
eleventh session fitted the near outline's position in frame ``a`` alone, where the outline is sharp and its own
grain and resampling confuse the fit. Here the position is fitted *jointly over the frames between* ``a`` (focused on
the near object) and ``b`` (the farther index within 12 px), by the layered thin-lens model (Hasinoff and Kutulakos
2007; Favaro and Soatto 2003): in frame ``k`` the near layer is composited over the far one as

    I_k(t) = alpha_k(t) N_k + (1 - alpha_k(t)) F_k(t)

along the normal of the decided near layer (``t`` in px, near side at ``t > 0``), ``alpha_k`` the near object's sharp
matte (a half-plane beyond the outline ``t0``) blurred by the disc of radius ``r_k = c |k - a|`` (the fraction of
the disc beyond the line, ``(acos(u) - u sqrt(1 - u^2)) / pi`` with ``u = (t0 - t) / r_k``), convolved with a
Gaussian of 0.7 px for the frames' resampling, ``c`` the stack's blur growth read against the guide. A disc is
symmetric, so every frame's ramp crosses one half at the same ``t0``, and a frame a few steps from ``a`` shows it as a
smooth ramp several px wide with none of the outline's grain. ``N_k`` (the near value, least squares per frame) is
fitted; ``F_k`` is

* ``F predicted``: frame ``b``'s far surface freed of the near layer's spill (halo10's de-spilled far source,
  ``(F_b - S) / (1 - A)`` with the spill of frame ``a``'s near layer blurred by ``c |b - a|``, given up within reach
  of clipped near light) blurred by ``c |k - b|`` (at least ``r_k``, so that the ramp's near half has a value) by a
  normalised disc convolution (a sample with less than 5 % support takes the nearest supported one along its
  profile);
* ``F free``: a constant per frame, fitted with ``N_k`` (a two-level ramp of known width, no prediction).

Frames ``a + 1 .. b - 1`` with ``r_k <= 6`` px take part (``with a``: frame ``a`` too, a 0.7 px Gaussian step), each
over ``|t| <= r_k + 3`` px; samples where the frame's linear light is clipped (>= 0.85) are unknown.
``t0`` is searched over -7..7 px (0.25 px). A pixel (``t = 0``) becomes far when the best ``t0 > 0`` (beating the
best ``t0 <= 0`` by ``4 sigma^2``, ``sigma`` the frames' sensor noise in linear grey,
:func:`~postfocus.focus.measure.noise_sigma`; after JPEG this almost never binds), and near when the best
``t0 <= 0`` and a near ramp is there at all: an F-test at 1 % of the ramp fit against no near object in the profile
(the far prediction alone; ``F free``: one level per frame), the near values and ``t0`` its extra parameters. A
profile with no ramp is far with the far side predicted (``no_ramp="far"``), left as decided with ``F free``; in the
``guarded`` rows it is far only when the far prediction alone fits it as well as it fits the far surface itself (a
chi-square test at 1 % against the prediction's mean squared residual on the far index's well supported pixels,
``explained``), and no pixel goes far within the disc ``c |b - a|`` of clipped near light in frame ``a`` (frame ``b``
holds that light's spill of unknown strength there, so the far index is no cleaner: the *glow guard*). Otherwise the
pixel is left as decided. The band: the suspects within ``band`` px of both the decided near layer and the far layer
(pixels more than 1.5 frames farther than the nearest index within 12 px), on halo10's ``own, pooled, fine`` map
(kappa 4) or on the sided map itself; the bench prints, per row, how many band pixels the fit sides right and wrong
(far: the true depth beyond the pair's midpoint).

Oracle rows: the sided map's far side off set true inside the de-spilled support (halo10's 5.19 on grass); and
*the band sided by the truth*: the same band as the fit, each pixel given the far index where its true depth is
farther than the midpoint of the pair, the near index otherwise (what a perfect joint fit could give).

``soft matte`` (the variant, on the ``with a, guarded`` fit): the fit's ``t0`` and frame ``a``'s ramp give each band pixel a matte ``alpha`` (the
Gaussian step at ``t0``); the image with the solver is composited in the band as ``alpha N_a + (1 - alpha) F``
in linear light, ``N_a`` frame ``a``'s colour 2 px inside the fitted outline along the normal and ``F`` the solver's
image there; also over the default fusion (the default map, no solver) as ``F``.

Usage: ``PYTHONPATH=src python bench/halo_twelfth.py [--scenes grass pins steps occluder]`` (``HALO_OUT=dir`` keeps
the fused images as PNG, with ``HALO_FIGURE=docs/img/halo12-grass.jpg`` also the grass crops; ``HALO_ROWS="F predicted;oracle"`` runs only the rows whose label holds one of them).
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
from scipy.stats import chi2
from scipy.stats import f as f_dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_eighth import _sides, aligned_frames  # noqa: E402
from halo_eleventh import edge_sided  # noqa: E402
from halo_fifth import scenes_from_args, scored  # noqa: E402
from halo_tenth import _pairs, detail, print_rows, supported, textured  # noqa: E402
from halo_tenth import figure as halo_tenth_figure  # noqa: E402

from postfocus.colour import srgb_decode, srgb_encode, to_grey  # noqa: E402
from postfocus.focus.map import focus_index_map  # noqa: E402
from postfocus.focus.measure import noise_sigma  # noqa: E402
from postfocus.fuse.occlusion import _disc_blur  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402

OFFSETS = np.arange(-12, 13, dtype=np.float32)
POSITIONS = np.arange(-7.0, 7.01, 0.25)
R_MAX = 6.0
BASE = 0.7  # px, the frames' own blur (resampling, JPEG)
_GRID = np.arange(-20.0, 20.0001, 0.05)


def _ramp(radius: float, base: float = BASE) -> np.ndarray:
    """The matte of a half-plane (near at d > 0) blurred by a disc of ``radius`` and a Gaussian of ``base``, on _GRID."""
    if radius > 1e-3:
        u = np.clip(-_GRID / radius, -1.0, 1.0)
        alpha = (np.arccos(u) - u * np.sqrt(1.0 - u * u)) / np.pi
    else:
        alpha = (_GRID > 0).astype(np.float64) + 0.5 * (_GRID == 0)
    x = np.arange(-4 * base, 4 * base + 1e-9, 0.05)
    g = np.exp(-0.5 * (x / base) ** 2)
    padded = np.concatenate([np.zeros(len(x) // 2), alpha, np.ones(len(x) // 2)])
    return np.convolve(padded, g / g.sum(), mode="valid")


def _sample(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, ny: np.ndarray, nx: np.ndarray) -> np.ndarray:
    """``image`` sampled bilinearly at ``(y, x) + t (ny, nx)`` for every offset ``t``: (n, offsets)."""
    my = (ys[:, None] + OFFSETS[None, :] * ny[:, None]).astype(np.float32)
    mx = (xs[:, None] + OFFSETS[None, :] * nx[:, None]).astype(np.float32)
    image = image.astype(np.float32)
    step = 30000  # remap's maps must be smaller than SHRT_MAX
    return np.concatenate([cv2.remap(image, mx[i:i + step], my[i:i + step], cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE) for i in range(0, len(my), step)])


def _far_source(fa: np.ndarray, fb: np.ndarray, sided: np.ndarray, a: int, b: int, r: float) -> tuple[np.ndarray, np.ndarray]:
    """(de-spilled far light of frame b, its clean weight): halo10's ``_far_prediction`` before its blur."""
    m = (sided < 0.5 * (a + b)).astype(np.float32)
    cover = np.clip(_disc_blur(m, r), 0.0, 1.0)
    clean = (1.0 - m) * (1.0 - cover) ** 2
    clean *= _disc_blur((fa.max(axis=2) >= 0.85) * m, r) < 0.005
    source = np.clip((fb - np.maximum(_disc_blur(fa * m[..., None], r), 0.0))
                     / np.maximum(1.0 - cover, 0.05)[..., None], 0.0, 1.0)
    return source.astype(np.float32), clean.astype(np.float32)


def _fill_along(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``values`` (n, offsets) with each unsupported sample given its profile's nearest supported one (NaN: none)."""
    idx = np.where(ok, np.arange(values.shape[1])[None, :], -10 ** 6)
    left = np.maximum.accumulate(idx, axis=1)
    idx_r = np.where(ok, np.arange(values.shape[1])[None, :], 10 ** 6)
    right = np.minimum.accumulate(idx_r[:, ::-1], axis=1)[:, ::-1]
    pos = np.arange(values.shape[1])[None, :]
    pick = np.where(pos - left <= right - pos, left, right)
    valid = (pick >= 0) & (pick < values.shape[1])
    return np.where(valid, np.take_along_axis(values, np.clip(pick, 0, values.shape[1] - 1), axis=1), np.nan)


def joint_fit(profiles: list[np.ndarray], fars: list[np.ndarray | None], knowns: list[np.ndarray],
              radii: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per profile: (t0, best error with t0 > 0, best error with t0 <= 0, frame 0's near value at t0).

    ``profiles[j]`` (n, offsets) the grey linear light of frame j along the normal, ``fars[j]`` its predicted far
    value (None: a free constant), ``knowns[j]`` the usable samples, ``radii[j]`` its disc radius.
    """
    n = len(profiles[0])
    best = np.full(n, np.inf)
    t0 = np.zeros(n)
    side = {True: np.full(n, np.inf), False: np.full(n, np.inf)}
    near0 = np.zeros(n)
    ramps = [_ramp(r) for r in radii]
    for p in POSITIONS:
        err = np.zeros(n)
        first = None
        for prof, far, known, ramp in zip(profiles, fars, knowns, ramps):
            w = np.interp(OFFSETS - p, _GRID, ramp)[None, :]
            k = known.astype(np.float64)
            if far is not None:
                target = prof - far * (1.0 - w)
                nv = (k * w * target).sum(axis=1) / np.maximum((k * w * w).sum(axis=1), 1e-9)
                e = (k * (target - w * nv[:, None]) ** 2).sum(axis=1)
            else:  # two free levels: solve the 2x2 normal equations per profile
                v = 1.0 - w
                s_ww, s_wv, s_vv = (k * w * w).sum(1), (k * w * v).sum(1), (k * v * v).sum(1)
                r_w, r_v = (k * w * prof).sum(1), (k * v * prof).sum(1)
                det = s_ww * s_vv - s_wv * s_wv
                ok = det > 1e-9
                nv = np.where(ok, (r_w * s_vv - r_v * s_wv) / np.where(ok, det, 1), r_w / np.maximum(s_ww, 1e-9))
                fv = np.where(ok, (r_v * s_ww - r_w * s_wv) / np.where(ok, det, 1), 0.0)
                e = (k * (prof - w * nv[:, None] - v * fv[:, None]) ** 2).sum(axis=1)
            err += e
            if first is None:
                first = nv
        better = err < best
        best[better], t0[better], near0[better] = err[better], p, first[better]
        np.minimum(side[p > 0], err, out=side[p > 0])
    return t0, side[True], side[False], near0


def _interface(sided: np.ndarray, decided: np.ndarray, suspect: np.ndarray, band: int,
               reach: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(decided-near suspects, the pixels within ``band`` px of both them and the far layer).

    The far layer: pixels whose decided index is more than 1.5 frames farther than the nearest within ``reach`` px
    (the flipped suspects and the far surface beside a near object, not the inside of a wide near object).
    """
    is_near = suspect & (np.abs(decided - sided) < 0.5)
    nearest = -cv2.dilate(-decided.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    far_layer = (decided - nearest) > 1.5
    k = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    interface = (cv2.dilate(is_near.astype(np.uint8), k) > 0) & (cv2.dilate(far_layer.astype(np.uint8), k) > 0)
    return is_near, interface


def jointly_sided(frames: np.ndarray, sided: np.ndarray, decided: np.ndarray, growth: float, *, band: int = 2,
                  reach: int = 12, predicted: bool = True, with_a: bool = False,
                  no_ramp: str = "far", guard: bool = False, matte: dict | None = None,
                  depth: np.ndarray | None = None) -> np.ndarray:
    """``decided`` with its suspects within ``band`` px of its near/far interface sided by the joint ramp fit.

    With ``matte`` (a dict) the band's fitted matte in frame ``a`` and the near object's colour (frame ``a``, 2 px
    inside the fitted outline) are stored there (``alpha``, ``near``, ``mask``) for the soft-matte composite; with
    ``depth`` (the truth) the band's right and wrong sides are counted and printed.
    """
    linear = srgb_decode(frames)
    greys = np.stack([to_grey(f) for f in linear]).astype(np.float32)
    sigma = float(np.median([noise_sigma(g) for g in greys]))
    far_index, suspect, pairs = _pairs(sided, reach)
    is_near, interface = _interface(sided, decided, suspect, band)
    smooth = cv2.GaussianBlur(is_near.astype(np.float32), (0, 0), 2.0)
    gy, gx = np.gradient(smooth)
    norm = np.hypot(gy, gx)
    out = decided.copy()
    tally = np.zeros(6, int)
    if matte is not None:
        matte.update(alpha=np.zeros(sided.shape, np.float32), near=np.zeros(sided.shape + (3,), np.float32),
                     mask=np.zeros(sided.shape, bool))
    for a, b, sel in pairs:
        pick = sel & interface & (norm > 1e-3)
        ys, xs = np.nonzero(pick)
        if not len(ys):
            continue
        ny, nx = gy[ys, xs] / norm[ys, xs], gx[ys, xs] / norm[ys, xs]
        source, clean = _far_source(linear[a], linear[b], sided, a, b, growth * abs(b - a))
        frames_k = [kk for kk in range(a + (0 if with_a else 1), b) if growth * (kk - a) <= R_MAX]
        if not frames_k:
            continue
        profiles, fars, knowns, radii, floor = [], [], [], [], []
        clipped_a = (linear[a].max(axis=2) >= 0.85).astype(np.uint8)
        for kk in frames_k:
            r = growth * (kk - a)
            prof = _sample(greys[kk], ys, xs, ny, nx).astype(np.float64)
            known = _sample((linear[kk].max(axis=2) < 0.85).astype(np.float32), ys, xs, ny, nx) > 0.99
            known &= np.abs(OFFSETS)[None, :] <= r + 3.0
            far = None
            if predicted:
                rp = max(growth * (b - kk), r, 1.0)
                support = _disc_blur(clean, rp)
                pred = to_grey(_disc_blur(source * clean[..., None], rp) / np.maximum(support, 1e-3)[..., None])
                far = _fill_along(_sample(pred, ys, xs, ny, nx).astype(np.float64),
                                  _sample(support, ys, xs, ny, nx) > 0.05)
                # the prediction's own mean squared residual on the far surface's well supported pixels
                ref = (np.abs(sided - b) < 0.75) & ~suspect & (support > 0.5)
                floor.append(float(np.mean((greys[kk] - pred)[ref] ** 2)) if ref.any() else np.inf)
            profiles.append(prof)
            fars.append(far)
            knowns.append(known)
            radii.append(r)
        if predicted:  # profiles with no supported far value at all are left as decided
            for j, far in enumerate(fars):
                knowns[j] = knowns[j] & ~np.isnan(far)
                fars[j] = np.nan_to_num(far)
        enough = np.stack([(kn[:, OFFSETS < 0].sum(1) >= 2) & (kn[:, OFFSETS > 0].sum(1) >= 2) for kn in knowns]).any(axis=0)
        t0, err_far, err_near, _ = joint_fit(profiles, fars, knowns, radii)
        # no near object in the profile at all (alpha = 0): the far prediction alone (or one level per frame)
        if predicted:
            err_none = sum((kn * (pr - fa) ** 2).sum(1) for pr, fa, kn in zip(profiles, fars, knowns))
        else:
            err_none = sum((kn * (pr - (kn * pr).sum(1, keepdims=True) / np.maximum(kn.sum(1, keepdims=True), 1)) ** 2).sum(1)
                           for pr, kn in zip(profiles, knowns))
        count = sum(kn.sum(1) for kn in knowns).astype(np.float64)
        extra = len(profiles) + 1  # the near values and t0
        ramp = ((err_none - err_near) / extra) / np.maximum(err_near / np.maximum(count - extra, 1.0), 1e-12)
        outline = ramp > f_dist.ppf(0.99, extra, np.maximum(count - extra, 1.0))  # F-test: a near ramp is there
        sure = np.abs(err_far - err_near) > 4.0 * sigma * sigma
        # with the far side predicted, no ramp means the far surface alone explains the profile: far; with two free
        # levels it means no contrast to read (inside a uniform object): left as decided
        explained = ~outline
        if predicted and no_ramp == "explained":  # and the far prediction alone fits as well as on the far surface
            expected = sum(kn.sum(1) * f if np.isfinite(f) else np.where(kn.any(1), np.inf, 0.0)
                           for kn, f in zip(knowns, floor))
            explained &= err_none <= chi2.ppf(0.99, np.maximum(count, 1.0)) / np.maximum(count, 1.0) * expected
        elif no_ramp == "left":
            explained[:] = False
        to_far = enough & ((sure & (t0 > 0)) | (explained if predicted else np.zeros_like(outline)))
        if not predicted:
            to_far &= outline
        to_near = enough & sure & (t0 <= 0) & outline
        if guard:  # frame b there carries clipped near light's spill of unknown strength: the far index is no cleaner
            m = (sided < 0.5 * (a + b)).astype(np.float32)
            to_far &= _disc_blur(clipped_a.astype(np.float32) * m, growth * abs(b - a))[ys, xs] < 0.005
        out[ys[to_far], xs[to_far]] = far_index[ys[to_far], xs[to_far]]
        out[ys[to_near], xs[to_near]] = sided[ys[to_near], xs[to_near]]
        if depth is not None:  # how often the fit sides the band right (far: true depth beyond the pair's midpoint)
            truly = depth[ys, xs] > 0.5 * (a + b)
            tally += np.array([(to_far & truly).sum(), (to_far & ~truly).sum(), (to_near & ~truly).sum(),
                               (to_near & truly).sum(), (~(to_far | to_near) & truly).sum(), (~(to_far | to_near) & ~truly).sum()])
        if matte is not None:
            fit = enough & sure
            base = _ramp(0.0)
            matte["alpha"][ys[fit], xs[fit]] = np.interp(-t0[fit], _GRID, base)
            # the near object's colour: frame a 2 px inside the fitted outline, along the normal
            inside_y = (ys[fit] + (t0[fit] + 2.0) * ny[fit]).astype(np.float32)[:, None]
            inside_x = (xs[fit] + (t0[fit] + 2.0) * nx[fit]).astype(np.float32)[:, None]
            colour = linear[a].astype(np.float32)
            matte["near"][ys[fit], xs[fit]] = np.concatenate(
                [cv2.remap(colour, inside_x[i:i + 30000], inside_y[i:i + 30000], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)[:, 0] for i in range(0, len(inside_x), 30000)]
                or [np.zeros((0, 3), np.float32)])
            matte["mask"][ys[fit], xs[fit]] = True
    if depth is not None:
        print(f"  band fit: far right {tally[0]}, far wrong {tally[1]}, near right {tally[2]}, near wrong {tally[3]}, "
              f"left (truly far / near) {tally[4]} / {tally[5]}", flush=True)
    return out.astype(np.float32)


def band_oracle(sided: np.ndarray, decided: np.ndarray, depth: np.ndarray, *, band: int = 2, reach: int = 12) -> np.ndarray:
    """``decided`` with the same band as :func:`jointly_sided` sided by the true depth (far beyond the pair's midpoint)."""
    far_index, suspect, _ = _pairs(sided, reach)
    _, interface = _interface(sided, decided, suspect, band)
    pick = suspect & interface
    truly_far = depth > 0.5 * (sided + far_index)
    out = decided.copy()
    out[pick & truly_far] = far_index[pick & truly_far]
    out[pick & ~truly_far] = sided[pick & ~truly_far]
    return out.astype(np.float32)


def _soft_rows(label: str, index: np.ndarray, matte: dict, frames: np.ndarray, *, name, st, truth, source, analysis,
               growth: float, out: Path | None, restore: bool = True) -> None:
    """The soft-matte composite: alpha N_a + (1 - alpha) F in the fitted band, F fused by ``index`` (with the solver).

    ``restore=False``: ``F`` is the default fusion (the default map, no solver).
    """
    m = dataclasses.replace(analysis.maps, focus_index=index.astype(np.float32)) if restore else analysis.maps
    with mock.patch("postfocus.pipeline.merge.defocus_slope", lambda *a, **k: growth):
        image = fuse(source, m, alignment=analysis.alignment, restore=restore)
    lin = srgb_decode(np.clip(image, 0, 1))
    alpha = np.where(matte["mask"], matte["alpha"], 0.0)[..., None]
    near = matte["near"]
    comp = srgb_encode(np.clip(alpha * near + (1.0 - alpha) * lin, 0.0, None))
    h, nn, f, p = scored(st, truth, comp)
    if out is not None:
        cv2.imwrite(str(out / f"{name}-soft{'' if restore else '-default'}.png"), np.round(np.clip(comp[..., ::-1], 0, 1) * 255).astype(np.uint8))
    print(f"| {label} | – | – | {h:.2f} ({nn:.2f} / {f:.2f}), {p:.2f} |", flush=True)


FIGURE = (("truth", "truth"), ("default fusion", "0-default_map"),
          ("own, pooled, fine + solver", "1-own-pooled-fine"),
          ("joint fit + solver", "1-own-pooled-fine-joint-F_predicted-with_a-guarded"),
          ("band by the truth + solver", "1-oracle:_own-pooled-fine-2_px_band_sided_by_the_truth"))


def figure(images: Path, path: Path) -> None:
    """Grass crops at 200 % of the kept images (``HALO_OUT``), as ``halo_tenth.figure`` with this session's rows."""
    halo_tenth_figure(images, path, rows=FIGURE)


def main() -> None:
    out = Path(os.environ["HALO_OUT"]) if os.environ.get("HALO_OUT") else None
    only = [s for s in os.environ.get("HALO_ROWS", "").split(";") if s]
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        depth = st.depth.astype(np.float32)
        if out is not None:
            cv2.imwrite(str(out / f"{name}-truth.png"), np.round(np.clip(st.sharp[..., ::-1], 0, 1) * 255).astype(np.uint8))
        sided = focus_index_map(maps.volume, analysis.guide, sides=True)[0]
        frames = aligned_frames(source, maps, analysis)
        fine = textured(frames, sided, growth, "own, pooled, fine", measured=detail(frames))
        variants = [("default map", maps.focus_index), ("sided", sided), ("own, pooled, fine", fine)]
        t = time.process_time()
        index = edge_sided(frames, sided, fine, growth)
        variants.append((f"own, pooled, fine, edge model in frame a (halo11) [{time.process_time() - t:.2f} s]", index))
        matte: dict = {}
        soft = None
        best = {"with_a": True, "guard": True, "no_ramp": "explained"}
        for label, base, kw in (("own, pooled, fine, joint, F predicted", fine, {}),
                                ("own, pooled, fine, joint, F free", fine, {"predicted": False}),
                                ("own, pooled, fine, joint, F predicted, with a", fine, {"with_a": True}),
                                ("own, pooled, fine, joint, F predicted, with a, guarded", fine, best),
                                ("own, pooled, fine, joint, F predicted, with a, guarded, 3 px band", fine, dict(best, band=3)),
                                ("sided, joint, F predicted, with a, guarded, 6 px band", sided, dict(best, band=6))):
            if only and not any(s in label for s in only):
                continue
            print(label)
            t = time.process_time()
            keep = matte if label.endswith("with a, guarded") else None
            index = jointly_sided(frames, sided, base, growth, matte=keep, depth=depth, **kw)
            variants.append((f"{label} [{time.process_time() - t:.2f} s]", index))
            if keep is not None:
                soft = index
        near = _sides(depth)
        fat = (np.abs(sided - depth) > 1.5) & ~near
        inside = supported(frames, sided, growth)
        variants += [("oracle: sided, far side off inside the support set true", np.where(fat & inside, depth, sided)),
                     ("oracle: own, pooled, fine, 2 px band sided by the truth", band_oracle(sided, fine, depth)),
                     ("oracle: sided, 6 px band sided by the truth", band_oracle(sided, sided, depth, band=6)),
                     ("oracle: sided, 8 px band sided by the truth", band_oracle(sided, sided, depth, band=8))]
        if only:
            variants = [v for v in variants if v[0] in ("default map", "own, pooled, fine") or any(s in v[0] for s in only)]
        print(f"{name}: blur growth {growth:.3f}")
        print("| map | far / near side pixels off | fused | restore |")
        print("|---|---|---|---|")
        print_rows(variants, name=name, st=st, truth=truth, source=source, analysis=analysis, growth=growth, out=out)
        if soft is not None:
            _soft_rows("own, pooled, fine, joint, F predicted, with a, guarded, soft matte in the band (solver)", soft, matte, frames,
                       name=name, st=st, truth=truth, source=source, analysis=analysis, growth=growth, out=out)
            _soft_rows("the same soft matte over the default fusion (no solver)", soft, matte, frames, name=name, st=st,
                       truth=truth, source=source, analysis=analysis, growth=growth, out=out, restore=False)
        if out is not None and name == "grass" and os.environ.get("HALO_FIGURE"):
            figure(out, Path(os.environ["HALO_FIGURE"]))


if __name__ == "__main__":
    main()
