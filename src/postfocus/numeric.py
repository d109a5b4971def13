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

:func:`group_medians` is ``np.median`` of each group of a labelling (e.g. each
connected patch of a map) in one sort, not one call per group: 1000 patches
took 25 ms of calls that hold the GIL.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["argmax0", "group_medians", "pick0", "to_float16"]


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


def group_medians(values: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """``np.median(values[groups == k])`` for every group ``k`` in ``0 .. count - 1``, the same float32 values.

    As ``np.median``: the middle value, or the float32 mean of the two middle ones (their float32 sum halved);
    NaN for a group holding a NaN and for an empty group. (A median of zeros may differ in the zero's sign: the
    values are sorted, and -0.0 comes before 0.0.)

    Parameters
    ----------
    values : float32 values (any shape; cast to float32).
    groups : int array of the same shape, each in ``0 .. count - 1``.
    count : number of groups.

    Returns
    -------
    float32 (count,).

    Examples
    --------
    >>> v = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 0.5], np.float32)
    >>> group_medians(v, np.array([1, 1, 1, 2, 2, 0]), 4).tolist()
    [0.5, 2.0, 4.5, nan]
    """
    v = np.asarray(values, np.float32).ravel()
    g = np.asarray(groups).ravel().astype(np.intp, copy=False)
    sizes = np.bincount(g, minlength=count)[:count]
    # By group, then by value: one sort of 64-bit keys, the group above the value's bits made to sort as the values
    # do (a sign bit set: all bits flipped; else the sign bit set), then the values read back from the low bits.
    bits = v.view(np.uint32)
    negative = (bits >> np.uint32(31)) != 0
    key = np.where(negative, ~bits, bits | np.uint32(1 << 31)).astype(np.uint64)
    key |= g.astype(np.uint64) << np.uint64(32)
    key.sort()
    low = key.astype(np.uint32)  # (the low 32 bits)
    ordered = np.where((low >> np.uint32(31)) != 0, low & np.uint32((1 << 31) - 1), ~low).view(np.float32)
    starts = np.cumsum(sizes) - sizes
    lo, hi = starts + np.maximum(sizes - 1, 0) // 2, starts + sizes // 2
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.full(count, np.nan, np.float32)
        some = sizes > 0
        out[some] = (ordered[lo[some]] + ordered[hi[some]]) / np.float32(2.0)
    out[np.bincount(g[np.isnan(v)], minlength=count)[:count] > 0] = np.nan
    return out
