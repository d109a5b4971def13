"""Colour transfer functions and the grey conversion, in one place.

Two transfer functions are used, each for its own purpose:

* the exact sRGB curve (:func:`srgb_encode`, :func:`srgb_decode`): RAW frames are
  developed to linear light and encoded with it, and their merge runs in linear
  light through it;
* a plain 2.2 power law (:func:`gamma_decode`, :func:`gamma_encode`, :data:`GAMMA`):
  an approximation of the display encoding, where light is added up (exposure
  comparisons in alignment and motion checks, synthetic aperture, the synthetic
  scenes).

:func:`to_grey` is the luma (Rec. 601 weights, OpenCV's ``RGB2GRAY``) that
alignment, focus measures, depth and the sweep checks work on.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "GAMMA",
    "LUMA",
    "SRGB_TABLE",
    "gamma_decode",
    "gamma_encode",
    "srgb_decode",
    "srgb_encode",
    "to_grey",
]

GAMMA = 2.2
"""Exponent of the power law taken for the display encoding of frames."""


def gamma_decode(encoded: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """Undo a power-law display encoding: values in [0, 1] to linear light.

    The inverse of :func:`gamma_encode`: a plain power law, without the linear
    toe of the sRGB curve (:func:`srgb_decode`).

    Parameters
    ----------
    encoded : np.ndarray
        Encoded values (clipped to [0, 1] first).
    gamma : float
        Exponent of the encoding.

    Returns
    -------
    np.ndarray
        float32 array of the same shape, ``clip(encoded, 0, 1) ** gamma``.

    Examples
    --------
    >>> float(gamma_decode(np.array([0.5], np.float32))[0])  # doctest: +ELLIPSIS
    0.2176...
    """
    return np.power(np.clip(encoded, 0.0, 1.0), np.float32(gamma), dtype=np.float32)


def gamma_encode(linear: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """Apply a power-law display encoding: linear light in [0, 1] to encoded values.

    Parameters
    ----------
    linear : np.ndarray
        Linear values; clipped to [0, 1] first.
    gamma : float
        Exponent of the encoding (the values are raised to ``1 / gamma``).

    Returns
    -------
    np.ndarray
        float32 encoded values, ``clip(linear, 0, 1) ** (1 / gamma)``.

    Examples
    --------
    >>> float(gamma_encode(gamma_decode(np.array([0.5], np.float32)))[0])  # doctest: +ELLIPSIS
    0.5...
    """
    return np.power(np.clip(linear, 0.0, 1.0), np.float32(1.0 / gamma), dtype=np.float32)


def _srgb_table() -> np.ndarray:
    linear = np.arange(65536, dtype=np.float64) / 65535.0
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    return encoded.astype(np.float32)


SRGB_TABLE = _srgb_table()
"""sRGB encoding of every uint16 value (0-65535) as float32 in [0, 1]."""


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Encode linear-light values with the sRGB transfer function.

    Parameters
    ----------
    linear : np.ndarray
        uint16 values (0-65535), looked up exactly in :data:`SRGB_TABLE`, or
        float values in [0, 1] (clipped), computed.

    Returns
    -------
    np.ndarray
        float32 array of the same shape, sRGB-encoded, in [0, 1].

    Examples
    --------
    >>> float(srgb_encode(np.array([0.5], np.float32))[0])  # doctest: +ELLIPSIS
    0.7353...
    """
    if linear.dtype == np.uint16:
        out = np.empty(linear.shape, np.float32)
        step = max(1, (1 << 20) // max(1, linear[:1].size))  # ~1M values per block: cache-friendly gather
        for top in range(0, linear.shape[0], step):
            out[top : top + step] = SRGB_TABLE[linear[top : top + step]]
        return out
    x = np.clip(linear.astype(np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, np.float32(1 / 2.4)) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode` for float values in [0, 1] (back to linear light).

    Parameters
    ----------
    encoded : np.ndarray
        sRGB-encoded values; clipped to [0, 1] first.

    Returns
    -------
    np.ndarray
        float32 linear light, shaped like ``encoded``.

    Examples
    --------
    >>> float(srgb_decode(srgb_encode(np.array([0.5], np.float32)))[0])  # doctest: +ELLIPSIS
    0.5...
    """
    x = np.clip(encoded.astype(np.float32, copy=False), 0.0, 1.0)
    return np.where(x <= 0.04045, x / np.float32(12.92), np.power((x + 0.055) / 1.055, np.float32(2.4))).astype(
        np.float32
    )


#: Luma weights of R, G, B (ITU-R BT.601; OpenCV's ``RGB2GRAY``, :func:`to_grey`, and a JPEG's luma).
LUMA = (0.299, 0.587, 0.114)


def to_grey(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB image as float32 (OpenCV ``RGB2GRAY``: 0.299 R + 0.587 G + 0.114 B).

    Parameters
    ----------
    image : np.ndarray
        (H, W) grey, passed through as float32, or (H, W, C) with C >= 3
        (channels after the third, e.g. alpha, are ignored).

    Returns
    -------
    np.ndarray
        float32 (H, W).

    Examples
    --------
    >>> to_grey(np.ones((2, 3, 3), np.float32)).shape
    (2, 3)
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        return image
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
