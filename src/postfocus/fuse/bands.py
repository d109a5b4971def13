"""The depth-map blend's array work a band of rows at a time: small temporaries, and two threads.

Each function works pixel by pixel (or tile by tile), so how the rows are cut into bands, and which
thread takes which band, changes no bit of the result (:class:`~postfocus.fuse.depthmap.DepthmapFusion`).

References
----------
.. [1] S. Pertuz, D. Puig, M. A. Garcia and A. Fusiello, "Generation of all-in-focus images by
   noise-robust selective fusion of limited depth-of-field images", IEEE Trans. Image Processing
   22(3), 2013 (the blend these serve).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import cv2
import numpy as np

__all__ = ["accumulate", "in_bands", "normalise", "tile_reduce"]


def tile_reduce(plane: np.ndarray, tile: int, ty: int, tx: int, op: np.ufunc, threads: int = 1) -> np.ndarray:
    """``op`` (minimum, maximum, logical_or) over each ``tile`` x ``tile`` block of ``plane``: (ty, tx).

    Rows first (a band of ``tile`` rows reduced to one, contiguous and fast), then each row's blocks
    of columns; the last blocks hold what is left of the plane. With ``threads=2`` a helper thread
    takes the lower half of the tile rows.

    Examples
    --------
    >>> tile_reduce(np.arange(15.0).reshape(3, 5), 2, 2, 3, np.maximum).tolist()
    [[6.0, 8.0, 9.0], [11.0, 13.0, 14.0]]
    """
    h, w = plane.shape
    out = np.empty((ty, tx), plane.dtype)
    pad = tx * tile - w

    def reduce(rows: slice) -> None:
        for row in range(rows.start, rows.stop):  # a row of tiles at a time: no full-size temporary
            line = op.reduce(plane[row * tile:min(h, (row + 1) * tile)], axis=0)
            if pad:
                line = np.concatenate([line, np.repeat(line[-1:], pad)])
            out[row] = op.reduce(line.reshape(tx, tile), axis=1)

    in_bands(ty, reduce, threads, band=-(-ty // 2))
    return out


def accumulate(sums: np.ndarray, frame: np.ndarray, weight: np.ndarray, band: int = 64) -> None:
    """``sums += frame * weight`` ((h, w, 3) and (h, w)), a band of rows at a time (the weight's three copies stay small)."""
    for a in range(0, weight.shape[0], band):
        rows = slice(a, a + band)
        wt = weight[rows]
        cv2.accumulateProduct(frame[rows], cv2.merge((wt, wt, wt)), sums[rows])


def normalise(sums: np.ndarray, weight: np.ndarray) -> None:
    """``sums`` (h, w, 3) divided by ``weight`` (h, w) in place, as ``sums * (1 / weight)``; ``weight`` becomes ``1 / weight``."""
    inv = np.reciprocal(weight, out=weight)
    cv2.multiply(sums, cv2.merge((inv, inv, inv)), dst=sums)


def in_bands(n: int, task: Callable[[slice], object], threads: int, band: int = 64) -> None:
    """``task(rows)`` over bands of ``band`` rows of ``n``; with two threads a helper takes the lower half.

    Examples
    --------
    >>> seen = []
    >>> in_bands(5, seen.append, 1, band=2)
    >>> seen
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    slices = [slice(a, min(n, a + band)) for a in range(0, n, band)]
    if threads < 2 or len(slices) < 2:
        for rows in slices:
            task(rows)
        return
    lower = slices[len(slices) // 2:]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-fuse") as pool:
        job = pool.submit(lambda: [task(rows) for rows in lower])
        try:
            for rows in slices[:len(slices) // 2]:
                task(rows)
        finally:
            job.result()
