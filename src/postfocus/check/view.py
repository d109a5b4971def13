"""Pictures of the forward-model check: the residual as a heat map over the image.

The image is shown in muted grey so the colours belong to the heat map alone;
a residual up to 1.5 (about as consistent as a typical pixel) is transparent, the flag
level is a strong red, twice the flag level and above opaque yellow-white (the ``inferno`` colour map: black-purple-red-orange-yellow).
Unverifiable pixels (no frame could contradict their depth) can be tinted blue.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.check.forward import FLAG_LEVEL
from postfocus.colour import to_grey

__all__ = ["UNVERIFIABLE_RGBA", "heat_colours", "heat_layer", "heat_overlay", "heat_strength"]

UNVERIFIABLE_RGBA = (0.3, 0.55, 1.0, 0.45)
"""Colour and opacity of the tint over unverifiable pixels (where the heat map is transparent)."""


def _tint(rgb: np.ndarray, alpha: np.ndarray, unverifiable: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Lay the blue tint of unverifiable pixels under the heat colours (colours and opacity)."""
    if unverifiable is None:
        return rgb, alpha
    h, w = alpha.shape
    mask = np.asarray(unverifiable, np.uint8)
    if mask.shape != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    tint = np.float32(UNVERIFIABLE_RGBA[3]) * (mask > 0) * (1.0 - alpha)
    total = alpha + tint
    rgb = (rgb * alpha[..., None] + np.float32(UNVERIFIABLE_RGBA[:3]) * tint[..., None]) / np.maximum(total, 1e-6)[..., None]
    return rgb.astype(np.float32), total.astype(np.float32)


def heat_strength(residual: np.ndarray, level: float = FLAG_LEVEL) -> np.ndarray:
    """Opacity of the heat map: 0 up to residual 1.5, 1 at twice ``level`` and above (float32, same shape).

    Examples
    --------
    >>> [round(float(v), 2) for v in heat_strength(np.array([1.0, 3.0, 6.0, 9.0], np.float32))]
    [0.0, 0.33, 1.0, 1.0]
    """
    top = max(2.0 * level, 2.0)
    return np.clip((np.asarray(residual, np.float32) - 1.5) / (top - 1.5), 0.0, 1.0)


def heat_colours(residual: np.ndarray, level: float = FLAG_LEVEL) -> np.ndarray:
    """The residual through the ``inferno`` colour map, float32 (H, W, 3) RGB in [0, 1]."""
    t = (heat_strength(residual, level) * 255.0 + 0.5).astype(np.uint8)
    bgr = cv2.applyColorMap(t, cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def heat_overlay(image: np.ndarray, residual: np.ndarray, level: float = FLAG_LEVEL, *,
                 unverifiable: np.ndarray | None = None) -> np.ndarray:
    """The residual as a heat map over a muted grey copy of ``image``.

    Parameters
    ----------
    image : np.ndarray
        float32 (H, W, 3) or (H, W) in [0, 1].
    residual : np.ndarray
        float32 residual map (resized to the image if its size differs).
    level : float
        The flag level (drawn in strong red).
    unverifiable : np.ndarray, optional
        bool mask (:attr:`~postfocus.check.forward.CheckResult.unverifiable`), tinted blue.

    Returns
    -------
    np.ndarray
        float32 (H, W, 3) RGB in [0, 1].

    Examples
    --------
    >>> out = heat_overlay(np.full((4, 4, 3), 0.5, np.float32), np.ones((4, 4), np.float32))
    >>> out.shape, bool(np.allclose(out, out[0, 0]))
    ((4, 4, 3), True)
    """
    h, w = image.shape[:2]
    res = np.asarray(residual, np.float32)
    if res.shape != (h, w):
        res = cv2.resize(res, (w, h), interpolation=cv2.INTER_LINEAR)
    grey = 0.15 + 0.6 * np.clip(to_grey(np.asarray(image, np.float32)), 0.0, 1.0)
    rgb, alpha = _tint(heat_colours(res, level), np.power(heat_strength(res, level), 0.6), unverifiable)
    return (grey[..., None] * (1.0 - alpha[..., None]) + rgb * alpha[..., None]).astype(np.float32)


def heat_layer(residual: np.ndarray, size: tuple[int, int] | None = None, level: float = FLAG_LEVEL, *,
               unverifiable: np.ndarray | None = None) -> np.ndarray:
    """The heat map alone, to lay over any picture: uint8 (H, W, 4) RGBA, transparent where the result is consistent.

    Parameters
    ----------
    residual : np.ndarray
        float32 residual map.
    size : (height, width), optional
        Size of the layer (default: the residual's).
    level : float
        The flag level.
    unverifiable : np.ndarray, optional
        bool mask, tinted blue (:data:`UNVERIFIABLE_RGBA`).

    Returns
    -------
    np.ndarray
        uint8 RGBA; alpha as in :func:`heat_overlay`.

    Examples
    --------
    >>> heat_layer(np.ones((2, 3), np.float32))[..., 3].max()
    np.uint8(0)
    """
    res = np.asarray(residual, np.float32)
    if size is not None and res.shape != tuple(size):
        res = cv2.resize(res, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    rgb, alpha = _tint(heat_colours(res, level), np.power(heat_strength(res, level), 0.6), unverifiable)
    rgba = np.dstack([rgb, alpha])
    return (rgba * 255.0 + 0.5).astype(np.uint8)
