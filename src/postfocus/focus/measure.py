"""Focus measures: how sharp each part of a frame is.

A frame is sharp where it has local contrast at fine scales; the measure used
throughout is the local energy of the Laplacian of a lightly smoothed grey
image. Comparing that energy across aligned frames tells, per pixel, which
frame was focused there. :func:`noise_sigma` estimates the sensor noise those
measures have to rise above.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.colour import to_grey

__all__ = ["laplacian_energy", "noise_sigma", "pool", "tenengrad"]


def laplacian_energy(grey: np.ndarray, window: int = 5, presmooth: float = 0.7, *,
                     out: np.ndarray | None = None,
                     scratch: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Local energy of the Laplacian.

    Parameters
    ----------
    grey : float32 (H, W) image.
    window : side of the box that the squared Laplacian is averaged over.
    presmooth : sigma of a Gaussian applied first, to keep noise from counting as detail.
    out : float32 (H, W) array, optional
        Where to write the measure (e.g. a slice of a block holding every frame's), instead of a new array.
        It may be ``scratch[0]``.
    scratch : pair of float32 (H, W) C-contiguous arrays, optional
        Where the smoothed image and its Laplacian are made, instead of two new arrays: a thread measuring
        frame after frame reuses them (the same values; frame-sized arrays made afresh fault their pages in
        every time).

    Returns
    -------
    float32 (H, W) focus measure (larger is sharper): ``out`` when given.

    Examples
    --------
    >>> laplacian_energy(np.random.rand(32, 32).astype(np.float32)).shape
    (32, 32)
    """
    g = grey.astype(np.float32, copy=False)
    smoothed, lap = scratch if scratch is not None else (None, None)
    if presmooth > 0:
        g = cv2.GaussianBlur(g, (0, 0), presmooth, dst=smoothed)
    lap = cv2.Laplacian(g, cv2.CV_32F, dst=lap, ksize=3)
    # squared in place, and boxed into ``out``: the same values, two fewer frame-sized arrays (fresh pages)
    direct = out is not None and out.dtype == np.float32 and out.flags.c_contiguous  # (OpenCV writes only into those)
    energy = cv2.boxFilter(np.multiply(lap, lap, out=lap), -1, (window, window), dst=out if direct else None)
    if out is None:
        return energy
    if not direct:
        out[...] = energy
    return out


def tenengrad(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared Sobel gradient magnitude: one number for a whole image's sharpness.

    Parameters
    ----------
    image : float (H, W) or (H, W, 3) in [0, 1].
    mask : optional boolean (H, W) area to average over.

    Examples
    --------
    >>> tenengrad(np.zeros((8, 8), np.float32))
    0.0
    """
    g = to_grey(image)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    energy = gx * gx + gy * gy
    if mask is not None:
        energy = energy[mask.astype(bool)]
    return float(energy.mean()) if energy.size else 0.0


def pool(measure: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Average a focus measure down to ``size`` = (height, width) (area interpolation)."""
    h, w = size
    if measure.shape[:2] == (h, w):
        return measure
    return cv2.resize(measure, (w, h), interpolation=cv2.INTER_AREA)


def noise_sigma(grey: np.ndarray) -> float:
    """Sensor noise (sigma) of a grey image from its finest diagonal detail (Donoho's MAD).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(noise_sigma(0.5 + 0.01 * rng.standard_normal((200, 200)).astype(np.float32)), 3)
    0.01
    """
    g = np.asarray(grey, np.float32)
    h, w = (g.shape[0] // 2) * 2, (g.shape[1] // 2) * 2
    if h < 4 or w < 4:
        return 0.0
    g = g[:h, :w]
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) * 0.5
    return float(np.median(np.abs(hh)) / 0.6745)
