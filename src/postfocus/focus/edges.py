"""Depth edges moved onto the image's outlines: each pixel beside one takes the depth of the side it looks like.

Near a depth edge the focus measure's window straddles two surfaces, so the
depth read there is that of whichever surface's detail dominated the window,
and the edge of the depth map lies up to a window's reach off the object's
outline, on either side. The all-in-focus image shows where the outline is.
Within that reach of a depth edge (a step between neighbouring pixels), every pixel takes the weighted median of
the depths around it, weighted by how alike in colour the neighbour is
(a joint-bilateral weighted median: Yoon & Kweon's adaptive support weights,
Ma et al.'s weighted median) and by how sure its depth is: the median picks
one side's depth, never a blend between them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

__all__ = ["snap_to_outlines"]

_CHUNK = 8192  # pixels whose windows are gathered at once: about 8192 x 81 x 32 bytes (~21 MB) at reach 4


def snap_to_outlines(depth: np.ndarray, image: np.ndarray, weight: np.ndarray, *, reach: int, jump: float,
                     sigma_r: float, threads: int = 1) -> np.ndarray:
    """``depth`` with the pixels within ``reach`` of a depth edge given the depth of the side they look like.

    Parameters
    ----------
    depth : float32 (H, W).
    image : float32 (H, W, 3) all-in-focus colours in [0, 1] (or (H, W) grey).
    weight : float32 (H, W) confidence of each depth in [0, 1] (a rejected one still counts a little).
    reach : half side of the window (px): how far a depth edge may lie off the outline.
    jump : depth step between neighbouring pixels that makes a depth edge (a slope's is smaller: left alone).
    sigma_r : colour distance at which a neighbour's weight falls to ``exp(-1/2)``.
    threads : 1 (the calling thread) or 2 (a second thread takes every other batch of pixels: each pixel's median
        is its own, made by the same operations, so the result is the same to the bit; two batches' windows, about
        21 MB each at reach 4, are alive at once).

    Returns
    -------
    float32 (H, W).

    References
    ----------
    K.-J. Yoon, I. S. Kweon, "Adaptive support-weight approach for correspondence search", IEEE TPAMI 28(4), 2006.
    Z. Ma, K. He, Y. Wei, J. Sun, E. Wu, "Constant time weighted median filtering for stereo matching and
    beyond", ICCV 2013.

    Examples
    --------
    >>> img = np.zeros((12, 12, 3), np.float32); img[:, 6:] = 1.0  # the outline between columns 5 and 6
    >>> d = np.zeros((12, 12), np.float32); d[:, 7:] = 5.0  # the depth edge a column off it
    >>> out = snap_to_outlines(d, img, np.ones_like(d), reach=3, jump=1.0, sigma_r=0.1)
    >>> out[0, 4:10].tolist()
    [0.0, 0.0, 5.0, 5.0, 5.0, 5.0]
    """
    d = np.asarray(depth, np.float32)
    r = int(reach)
    three = np.ones((3, 3), np.uint8)  # a step between neighbours: an edge (a slope spreads its change)
    step = ((cv2.dilate(d, three) - cv2.erode(d, three)) > jump).astype(np.uint8)
    ys, xs = np.nonzero(cv2.dilate(step, np.ones((2 * r + 1, 2 * r + 1), np.uint8)))
    if ys.size == 0 or r < 1:
        return d.copy()
    g = np.asarray(image, np.float32)
    g = g[..., None] if g.ndim == 2 else g
    pad = ((r, r), (r, r))
    pd = np.pad(d, pad, mode="edge")
    pg = np.pad(g, pad + ((0, 0),), mode="edge")
    pw = np.pad(0.05 + np.clip(np.asarray(weight, np.float32), 0.0, 1.0), pad, mode="edge")
    planes = [np.ascontiguousarray(pg[..., c]).ravel() for c in range(pg.shape[-1])]
    out = d.copy()

    def snap(starts: range) -> None:
        for i in starts:  # a bounded batch of pixels at a time: the same medians, bounded memory
            cy, cx = ys[i:i + _CHUNK], xs[i:i + _CHUNK]
            out[cy, cx] = _window_median(pd.ravel(), pw.ravel(), planes, g[cy, cx], cy * pd.shape[1] + cx,
                                         stride=pd.shape[1], side=2 * r + 1,
                                         scale=np.float32(-0.5 / (sigma_r * sigma_r)))

    batches = range(0, ys.size, _CHUNK)
    if int(threads) < 2 or len(batches) < 2:
        snap(batches)
        return out
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-edges") as pool:
        other = pool.submit(snap, batches[1::2])  # (numpy's loops release the GIL: the two batches run at once)
        try:
            snap(batches[0::2])
        finally:
            other.result()
    return out


def _window_median(flat_d: np.ndarray, flat_w: np.ndarray, planes: list[np.ndarray], centre: np.ndarray,
                   corner: np.ndarray, *, stride: int, side: int, scale: np.float32) -> np.ndarray:
    """The colour- and confidence-weighted median depth of the ``side`` x ``side`` window at each ``corner``."""
    n = corner.size
    v = np.empty((side * side, n), np.float32)  # neighbour by neighbour (rows written whole), then per pixel
    w = np.empty((side * side, n), np.float32)
    distance = np.empty(n, np.float32)
    diff = np.empty(n, np.float32)
    for j in range(side * side):
        at = corner + (j // side) * stride + j % side
        distance[:] = 0.0
        for c, plane in enumerate(planes):
            np.subtract(np.take(plane, at), centre[:, c], out=diff)
            distance += diff * diff
        np.exp(scale * distance, out=w[j])
        w[j] *= np.take(flat_w, at)
        np.take(flat_d, at, out=v[j])
    v, w = np.ascontiguousarray(v.T), np.ascontiguousarray(w.T)
    order = np.argsort(v, axis=1)  # each pixel's neighbours, smallest depth first
    order += (np.arange(n) * (side * side))[:, None]  # flat indices: cheaper than take_along_axis
    cumulative = np.cumsum(w.ravel()[order], axis=1)
    pick = np.minimum((cumulative < 0.5 * cumulative[:, -1:]).sum(axis=1), side * side - 1)
    return v.ravel()[order[np.arange(n), pick]]
