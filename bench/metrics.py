"""Quality metrics for the benchmark: with ground truth (halo, flat-region noise) and without (Q^AB/F, NMI).

With ground truth (generated stacks)
    * :func:`halo_band` / :func:`halo_score`: mean absolute error, in 8-bit levels,
      in a band around the depth discontinuities of the true depth map. Halos
      (a blurred near object's glow over the far side, or the far side's
      blur over the near one) live there.
    * :func:`flat_mask` / :func:`flat_noise`: standard deviation of
      ``result - truth`` where the true image is flat (low gradient), in 8-bit
      levels: the noise a fusion keeps or adds.

Reference-free (real stacks: the inputs are the only reference)
    * :func:`qabf`: Xydeas & Petrovic's edge-preservation measure Q^AB/F,
      generalised to N inputs: for every input, how well its edge strength and
      orientation survive in the fused image, weighted by the input's edge
      strength, summed over all inputs and normalised by the total weight.
    * :func:`nmi`: normalised mutual information, generalised to N inputs as
      the mean over inputs of Hossny's normalisation
      ``2 MI(F, I_i) / (H(F) + H(I_i))`` (1 for identical images, 0 for
      independent ones).

All functions take float images in [0, 1], RGB (H, W, 3) or grey (H, W), and
an optional boolean mask (H, W) of the pixels to score.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np


def grey(image: np.ndarray) -> np.ndarray:
    """Luma (Rec. 601) of an RGB image as float32; grey images pass through."""
    image = np.asarray(image, np.float32)
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape[:2], bool)
    mask = np.asarray(mask, bool)
    if mask.shape != tuple(shape[:2]):
        raise ValueError(f"mask has shape {mask.shape}, image is {shape[:2]}")
    return mask


# --- ground truth ---------------------------------------------------------------------------------------------


def halo_band(depth: np.ndarray, width: int = 9, step: float = 1.0) -> np.ndarray:
    """Boolean band ``width`` px wide around depth discontinuities.

    A discontinuity is a jump of more than ``step`` (in the depth map's units,
    e.g. frames) between neighbouring pixels.

    Examples
    --------
    >>> d = np.zeros((20, 20), np.float32); d[:, 10:] = 5
    >>> band = halo_band(d, width=5)
    >>> int(band[0].sum())
    5
    """
    depth = np.asarray(depth, np.float32)
    gx = np.abs(np.diff(depth, axis=1, prepend=depth[:, :1]))
    gy = np.abs(np.diff(depth, axis=0, prepend=depth[:1]))
    edges = ((gx > step) | (gy > step)).astype(np.uint8)
    return cv2.dilate(edges, np.ones((width, width), np.uint8)).astype(bool)


def halo_score(image: np.ndarray, truth: np.ndarray, band: np.ndarray) -> float:
    """Mean absolute error in the halo band, in 8-bit levels (0 = perfect; lower is better).

    Examples
    --------
    >>> t = np.zeros((8, 8, 3), np.float32); band = np.zeros((8, 8), bool); band[2:4] = True
    >>> halo_score(t + 2 / 255, t, band)
    2.0
    """
    image, truth = np.asarray(image, np.float32), np.asarray(truth, np.float32)
    band = _mask(band, image.shape)
    if not band.any():
        return math.nan
    return float(np.abs(image[band] - truth[band]).mean() * 255.0)


def flat_mask(truth: np.ndarray, threshold: float = 0.01, radius: int = 3, min_area: int = 400) -> np.ndarray:
    """Where the true image is flat: Sobel gradient of the (lightly smoothed) luma below ``threshold``.

    The low-gradient pixels are eroded by ``radius`` (so edges' blur and halos
    stay out) and connected regions smaller than ``min_area`` px are dropped.

    Examples
    --------
    >>> img = np.zeros((64, 64, 3), np.float32); img[:, 32:] = 1
    >>> m = flat_mask(img, min_area=10)
    >>> bool(m[4:-4, 10].all()), bool(m[:, 31].any())
    (True, False)
    """
    g = cv2.GaussianBlur(grey(truth), (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8
    low = (np.hypot(gx, gy) < threshold).astype(np.uint8)
    low = cv2.erode(low, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8), borderType=cv2.BORDER_CONSTANT,
                    borderValue=0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(low, connectivity=4)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def flat_noise(image: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation of ``image - truth`` over ``mask``, per channel then averaged, in 8-bit levels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = np.full((200, 200, 3), 0.5, np.float32)
    >>> round(flat_noise(t + rng.normal(0, 2 / 255, t.shape), t, np.ones((200, 200), bool)), 1)
    2.0
    """
    image, truth = np.asarray(image, np.float32), np.asarray(truth, np.float32)
    mask = _mask(mask, image.shape)
    if mask.sum() < 2:
        return math.nan
    diff = (image[mask] - truth[mask]).astype(np.float64)
    return float(diff.std(axis=0).mean() * 255.0)


# --- reference-free -------------------------------------------------------------------------------------------

# Xydeas & Petrovic (2000) sigmoid constants. The paper's Gamma_g = 0.9994 and Gamma_a = 0.9879 leave a
# perfectly preserved edge at Q = 0.975; here Gamma is set so that perfect preservation scores exactly 1.
_KG, _SG = -15.0, 0.5
_KA, _SA = -22.0, 0.8
_GG = 1.0 + math.exp(_KG * (1.0 - _SG))
_GA = 1.0 + math.exp(_KA * (1.0 - _SA))


def _sobel(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy), np.arctan2(gy, gx)


def edge_preservation(source: np.ndarray, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel Q^SF (edge strength and orientation of ``source`` kept in ``fused``) and the weight g_S.

    Returns
    -------
    (q, weight): float32 (H, W) each; q in [0, 1], weight = the source's Sobel magnitude.
    """
    ga, aa = _sobel(grey(source))
    gf, af = _sobel(grey(fused))
    hi = np.maximum(ga, gf)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = np.where(hi > 1e-9, np.minimum(ga, gf) / hi, 1.0)
    # Orientation difference modulo pi (an edge and its reversed polarity have the same orientation), in [0, pi/2].
    d = np.abs(aa - af) % np.pi
    d = np.minimum(d, np.pi - d)
    orient = 1.0 - d / (np.pi / 2)
    qg = _GG / (1.0 + np.exp(_KG * (strength - _SG)))
    qa = _GA / (1.0 + np.exp(_KA * (orient - _SA)))
    return np.clip(qg * qa, 0.0, 1.0).astype(np.float32), ga


def qabf(fused: np.ndarray, inputs: Sequence[np.ndarray], mask: np.ndarray | None = None) -> float:
    """Q^AB/F edge preservation of ``fused`` from N ``inputs`` (Xydeas & Petrovic), in [0, 1]; higher is better.

    ``sum_i sum_px Q^{iF} g_i / sum_i sum_px g_i`` with ``g_i`` the Sobel
    magnitude of input ``i`` (weight exponent L = 1). Inputs and fused image
    must be registered (same geometry).

    Examples
    --------
    >>> img = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    >>> qabf(img, [img])
    1.0
    """
    m = _mask(mask, np.shape(fused))
    num = den = 0.0
    for source in inputs:
        q, w = edge_preservation(source, fused)
        num += float((q[m] * w[m]).astype(np.float64).sum())
        den += float(w[m].astype(np.float64).sum())
    return num / den if den > 0 else math.nan


def _entropies(a: np.ndarray, b: np.ndarray, bins: int) -> tuple[float, float, float]:
    ia = np.clip(a * bins, 0, bins - 1).astype(np.int64)
    ib = np.clip(b * bins, 0, bins - 1).astype(np.int64)
    joint = np.bincount(ia * bins + ib, minlength=bins * bins).astype(np.float64)
    joint /= joint.sum()
    pa, pb = joint.reshape(bins, bins).sum(axis=1), joint.reshape(bins, bins).sum(axis=0)

    def h(p: np.ndarray) -> float:
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum())

    return h(pa), h(pb), h(joint)


def mutual_information(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, bins: int = 256) -> float:
    """MI(a, b) in bits from the joint histogram of the lumas (``bins`` levels over [0, 1])."""
    m = _mask(mask, np.shape(a))
    ha, hb, hab = _entropies(grey(a)[m], grey(b)[m], bins)
    return ha + hb - hab


def nmi(fused: np.ndarray, inputs: Sequence[np.ndarray], mask: np.ndarray | None = None, bins: int = 256) -> float:
    """Normalised mutual information of ``fused`` with N inputs, in [0, 1]; higher keeps more of the inputs.

    Mean over inputs of Hossny et al.'s ``2 MI(F, I_i) / (H(F) + H(I_i))``
    (for two inputs their NMI divided by 2), on 8-bit luma histograms.

    Examples
    --------
    >>> img = np.random.default_rng(2).random((64, 64)).astype(np.float32)
    >>> round(nmi(img, [img]), 6)
    1.0
    """
    m = _mask(mask, np.shape(fused))
    f = grey(fused)[m]
    values = []
    for source in inputs:
        hf, hs, hfs = _entropies(f, grey(source)[m], bins)
        values.append(2.0 * (hf + hs - hfs) / (hf + hs) if hf + hs > 0 else 1.0)
    return float(np.mean(values))


def reference_free(fused: np.ndarray, inputs, mask: np.ndarray | None = None, bins: int = 256) -> tuple[float, float]:  # noqa: ANN001
    """(Q^AB/F, NMI) of ``fused`` against an iterable of inputs, in one pass (inputs may be a generator).

    Examples
    --------
    >>> img = np.random.default_rng(3).random((32, 32)).astype(np.float32)
    >>> q, n = reference_free(img, iter([img]))
    >>> round(q, 6), round(n, 6)
    (1.0, 1.0)
    """
    m = _mask(mask, np.shape(fused))
    f = grey(fused)
    fm = f[m]
    num = den = 0.0
    values = []
    for source in inputs:
        q, w = edge_preservation(source, f)
        num += float((q[m] * w[m]).astype(np.float64).sum())
        den += float(w[m].astype(np.float64).sum())
        hf, hs, hfs = _entropies(fm, grey(source)[m], bins)
        values.append(2.0 * (hf + hs - hfs) / (hf + hs) if hf + hs > 0 else 1.0)
    return (num / den if den > 0 else math.nan), float(np.mean(values))
