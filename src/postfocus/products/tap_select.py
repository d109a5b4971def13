"""The one tap reading at every pixel by selection: each window's (weighted) median without sorting each window.

:func:`~postfocus.products.tap_read.depth_readings` gives the page's tap map the reading of
:func:`~postfocus.products.tap_read.depth_reading` at every focus-map pixel. Sorting every window's values (625
of them at a 0.6 % window on maps at output size) took 36 s of CPU on pcb with the confidence weights (conf20).
Here the windows of a tile of pixels share one sort of the tile's neighbourhood; each pixel's running weight along
that order is summed a block at a time (one small matrix product per block: the window is a row range times a
column range) to find the block where it reaches its target, then element by element inside it. The running sums
are exact (whole counts, or weights that are multiples of one power of two whose window sums fit float64's
mantissa), so they equal the window's own sorted running sums in any order: the same value as the sorted window
gives, bit for bit. Weights outside that (a confidence below 2**-30, say) are left to the caller's sort.

References
----------
.. [1] T. S. Huang, G. J. Yang, G. Y. Tang, "A fast two-dimensional median filtering algorithm", IEEE Trans.
   Acoustics, Speech and Signal Processing 27(1), 13-18, 1979 (window medians from shared order statistics).
"""

from __future__ import annotations

import numpy as np

__all__ = ["exact_weights", "window_medians"]

#: Pixels per tile side (the tile's windows share one sort of its (TILE + 2 r)^2 neighbourhood).
TILE = 8
#: Sorted values summed at a time by one matrix product per tile.
_BLOCK = 32
#: Values held at a time (tiles per batch are taken so that a batch holds about this many float64s).
_BATCH = 1 << 21


def exact_weights(weights: np.ndarray, radius: int) -> bool:
    """Whether any running sum of ``weights`` over a window of ``radius`` is exact in float64 in any order: finite,
    non-negative float32 weights whose largest window total (the window's size times the largest weight), counted
    in the smallest nonzero weight's last place, fits in 53 bits.

    Examples
    --------
    >>> exact_weights(np.array([[0.0, 0.5, 1.0]], np.float32), 12), exact_weights(np.array([[1e-30, 1.0]], np.float32), 1)
    (True, False)
    """
    w = np.asarray(weights, np.float32)
    if w.size == 0 or not np.isfinite(w).all() or (w < 0).any():
        return False
    positive = w[w > 0]
    if positive.size == 0:
        return True
    _, low = np.frexp(positive.min())  # (its last place: 2 ** (low - 24); every larger float32 is a multiple)
    return bool((2 * radius + 1) ** 2 * float(positive.max()) <= 2.0 ** (53 + int(low) - 24))


def window_medians(depth: np.ndarray, radius: int, weights: np.ndarray | None = None,
                   weighed: np.ndarray | None = None, *, plain: np.ndarray | None = None) -> np.ndarray:
    """float32 (h, w): the median of ``depth`` over the window of ``radius`` around every pixel, clipped at the
    borders (the lower middle value of an even count); where ``weighed`` (bool (h, w)) holds, the weighted median
    by ``weights`` (the first value at which the running weight reaches half the window's).

    ``weights`` must pass :func:`exact_weights`. ``plain``: the plain medians made already (where few pixels are
    weighed a sort of each window is cheaper there): only tiles holding a weighed pixel are read. The values are
    those of sorting each window (ties decide nothing: equal values), as
    :func:`~postfocus.products.tap_read.depth_reading` reads it.

    Examples
    --------
    >>> d = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> window_medians(d, 1).tolist()
    [[1.0, 2.0, 3.0, 3.0], [4.0, 5.0, 6.0, 6.0], [5.0, 6.0, 7.0, 7.0]]
    """
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    a, side = TILE, TILE + 2 * radius
    th, tw = -(-h // a), -(-w // a)
    shape = (th * a + 2 * radius, tw * a + 2 * radius)
    bits = np.full(shape, np.uint32(0xFFFFFFFF))  # (padding sorts last and weighs nothing)
    raw = depth.view(np.uint32)
    bits[radius:radius + h, radius:radius + w] = np.where(raw >> 31, ~raw, raw | np.uint32(1 << 31))
    count = np.zeros(shape, np.float32)
    count[radius:radius + h, radius:radius + w] = 1
    weigh = weights is not None and weighed is not None and bool(np.asarray(weighed).any())
    weight = np.zeros(shape, np.float32) if weigh else count
    flags = np.zeros((th * a, tw * a), bool)
    if weigh:
        weight[radius:radius + h, radius:radius + w] = weights
        flags[:h, :w] = weighed
    tiled_flags = flags.reshape(th, a, tw, a).transpose(0, 2, 1, 3)
    out = np.empty((th * a, tw * a), np.float32)
    tiled_out = out.reshape(th, a, tw, a).transpose(0, 2, 1, 3)  # (a view: tile by tile)
    region = np.lib.stride_tricks.sliding_window_view(bits, (side, side))[::a, ::a]  # (th, tw, side, side)
    ty, tx = np.divmod(np.arange(th * tw), tw)
    kinds = np.zeros(th * tw, np.int8)  # (0: plain pixels only, 1: both, 2: weighed only)
    if weigh:
        share = tiled_flags.reshape(th * tw, a * a).mean(axis=1)
        kinds = np.where(share == 0, 0, np.where(share == 1, 2, 1)).astype(np.int8)
    if plain is not None:  # (only the tiles with a weighed pixel, read by the weights)
        out[:h, :w] = plain
        kinds[kinds == 1] = 2
    for kind in (0, 1, 2) if plain is None else (2,):
        chosen = np.flatnonzero(kinds == kind)
        sets = [count, weight] if kind == 1 else [weight] if kind == 2 else [count]
        step = max(1, _BATCH // (side * side * a * (len(sets) + 1)))
        for i in range(0, chosen.size, step):
            y, x = ty[chosen[i:i + step]], tx[chosen[i:i + step]]
            pick = tiled_flags[y, x] if kind else np.zeros((y.size, a, a), bool)
            read = _tiles(depth, region[y, x], (y * a, x * a), sets, pick, radius)
            tiled_out[y, x] = read if plain is None else np.where(tiled_flags[y, x], read, tiled_out[y, x])
    return out[:h, :w]


def _tiles(depth: np.ndarray, region: np.ndarray, origin: tuple, sets: list, pick: np.ndarray,
           radius: int) -> np.ndarray:
    """:func:`window_medians` of ``n`` tiles: their neighbourhoods' keys ``region`` (n, side, side) at padded
    ``origin`` (rows, cols), the counts and/or weights ``sets`` (padded images), ``pick``: (n, a, a) the pixels
    read by the last set's weights (the others by the first set's counts)."""
    h, w = depth.shape
    n, side = region.shape[0], region.shape[1]
    a, size = side - 2 * radius, side * side
    blocks = -(-size // _BLOCK)
    inner = np.arange(a)
    order = np.argsort(region.reshape(n, size), axis=1)
    order = np.pad(order, ((0, 0), (0, blocks * _BLOCK - size)), mode="edge")  # (repeats weigh nothing: below)
    rows, cols = np.divmod(order, side)  # (where each sorted value sits in the neighbourhood)
    tail = np.arange(blocks * _BLOCK) >= size
    rows[:, tail] = -side
    rows, cols = rows.reshape(n, blocks, _BLOCK), cols.reshape(n, blocks, _BLOCK)
    row_in = (rows[:, :, None, :] >= inner[:, None]) & (rows[:, :, None, :] <= inner[:, None] + 2 * radius)
    col_in = (cols[:, :, :, None] >= inner) & (cols[:, :, :, None] <= inner + 2 * radius)  # (n, blocks, B, a)
    at = (origin[0][:, None, None] + np.maximum(rows, 0), origin[1][:, None, None] + cols)
    values = [np.asarray(s[at], np.float64) for s in sets]  # (n, blocks, B) each
    left = np.concatenate([row_in] * len(values), axis=2).astype(np.float64)  # (n, blocks, a * len(sets), B)
    for j, v in enumerate(values):
        left[:, :, j * a:(j + 1) * a] *= v[:, :, None, :]
    sums = np.cumsum(np.matmul(left, col_in.astype(np.float64)), axis=1)  # (running sums at block ends: exact)
    counts, weights = sums[:, :, :a], sums[:, :, -a:]
    running = np.where(pick[:, None], weights, counts)
    target = np.where(pick, 0.5 * weights[:, -1], (counts[:, -1] + 1) // 2)
    block = np.minimum((running < target[:, None]).sum(axis=1), blocks - 1)  # (n, a, a): where it is reached
    before = np.where(block > 0, np.take_along_axis(running, np.maximum(block - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    ti = np.arange(n)[:, None, None, None]
    bi = block[..., None]
    inside = row_in[ti, bi, inner[:, None, None], np.arange(_BLOCK)] \
        & col_in[ti, bi, np.arange(_BLOCK), inner[:, None]]  # (n, a, a, B)
    held = np.where(pick[..., None], values[-1][ti[..., 0], block], values[0][ti[..., 0], block])
    ran = before[..., None] + np.cumsum(held * inside, axis=3)
    place = block * _BLOCK + (ran < target[..., None]).sum(axis=3)
    found = np.take_along_axis(order, np.minimum(place, size - 1).reshape(n, a * a), axis=1).reshape(n, a, a)
    ry, rx = np.divmod(found, side)
    ys = origin[0][:, None, None] + ry - radius  # (the image pixel whose value it is)
    xs = origin[1][:, None, None] + rx - radius
    return depth[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]
