"""Image-quality scores against ground truth."""

from __future__ import annotations

import math

import numpy as np

from postfocus.errors import PostfocusError

__all__ = ["psnr", "ssim"]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise PostfocusError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1].

    Parameters
    ----------
    a, b : np.ndarray
        Images of the same shape, (H, W) or (H, W, C).
    mask : np.ndarray or None
        Boolean (H, W); only these pixels are compared.

    Returns
    -------
    float
        The ratio in dB, ``inf`` for identical images.

    Examples
    --------
    >>> round(psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)), 3)
    20.0
    """
    a, b = _pair(a, b)
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != a.shape[:2]:
            raise PostfocusError(f"mask has shape {mask.shape}, images are {a.shape[:2]}")
        if not mask.any():
            raise PostfocusError("mask selects no pixel")
        diff = diff[mask]
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two RGB images in [0, 1] (scikit-image, data_range 1).

    Parameters
    ----------
    a, b : np.ndarray
        (H, W, 3) images of the same shape.

    Returns
    -------
    float
        1.0 for identical images, less the more their structure differs.

    Examples
    --------
    >>> img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    >>> ssim(img, img)
    1.0
    """
    a, b = _pair(a, b)
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1))
