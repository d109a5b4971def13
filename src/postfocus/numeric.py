"""Numeric helpers that give NumPy's results faster.

:func:`to_float16` is ``astype(np.float16)`` to the bit. NumPy converts values
that land among float16's subnormals (below 2^-14, e.g. the many near-zero
residuals of a still scene or the weak focus measures of a volume) one by one
through a slow path that raises the floating-point underflow flag for every
inexact one: 30 ms for a 640x427 map of small values, 100 ms for the focus
volume of a 28-frame stack. OpenCV converts with the processor's half-float
instructions (round to nearest, ties to even, subnormals kept, as NumPy does):
checked equal to NumPy on every finite float32 of both signs.

:func:`argmax0` and :func:`pick0` are ``np.argmax(volume, axis=0)`` and
``np.take_along_axis(volume, index[None], axis=0)[0]`` for a stack of maps:
NumPy walks the first axis of such a stack pixel by pixel (2x slower).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["argmax0", "pick0", "to_float16"]


def to_float16(values: np.ndarray) -> np.ndarray:
    """``values.astype(np.float16)``, the same bits, fast for float32 values.

    Other types are converted by NumPy (a float64 value rounded to float32
    first could round differently).

    Examples
    --------
    >>> x = np.array([[0.0, -0.0, 1e-7, 3e-6], [0.5, 3.0, 65504.0, 2.0 ** -20]], np.float32)
    >>> bool((to_float16(x).view(np.uint16) == x.astype(np.float16).view(np.uint16)).all())
    True
    """
    x = np.asarray(values)
    if x.dtype != np.float32 or x.size == 0:
        return x.astype(np.float16)
    rows = x.reshape(x.shape[0] if x.ndim >= 2 else 1, -1)  # OpenCV takes 2-D arrays
    return cv2.multiply(rows, 1.0, dtype=cv2.CV_16F).reshape(x.shape)


def argmax0(volume: np.ndarray) -> np.ndarray:
    """``np.argmax(volume, axis=0)`` for a volume without NaN: the first slice holding each pixel's maximum.

    Examples
    --------
    >>> v = np.array([[1, 5], [3, 5], [3, 0]], np.float32)[:, :, None]
    >>> argmax0(v)[:, 0].tolist()
    [1, 0]
    """
    best = np.zeros(volume.shape[1:], np.intp)
    if len(volume) == 0:
        return np.argmax(volume, axis=0)
    top = volume[0].copy()
    better = np.empty(volume.shape[1:], bool)
    for k in range(1, len(volume)):
        np.copyto(best, k, where=np.greater(volume[k], top, out=better))
        np.maximum(top, volume[k], out=top)
    return best


def pick0(volume: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``np.take_along_axis(volume, index[None], axis=0)[0]``: per pixel, the value of slice ``index``.

    Examples
    --------
    >>> v = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    >>> pick0(v, np.array([[0, 1], [2, 0]])).tolist()
    [[0.0, 5.0], [10.0, 3.0]]
    """
    n, shape = volume.shape[0], volume.shape[1:]
    if n == 0 or volume.size == 0:
        return np.take_along_axis(volume, index[None], axis=0)[0]
    flat = np.asarray(index, np.intp).ravel() * (volume.size // n) + np.arange(volume.size // n)
    return np.take(volume.reshape(-1), flat).reshape(shape)
