"""Local shifts of a frame against its neighbour, tile by tile, and a global model fitted to them.

Per-tile translations by Lucas-Kanade iterations [1]_, all tiles at once,
each tile leaving the iteration as soon as it has converged; a robust fit of
the global model (similarity, affine, homography) to the shifts. For a
symmetric blur the best translation of a tile is unbiased, whereas a global
correlation match would trade misregistration for apparent sharpness, so
fitting the model to these local shifts keeps defocus from posing as
breathing.

References
----------
.. [1] B. D. Lucas and T. Kanade, "An iterative image registration technique
   with an application to stereo vision", IJCAI 1981.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["CONVERGED_PX", "fit_model", "tile_shifts"]

#: A tile whose Lucas-Kanade step falls below this (px) has converged and leaves the iteration.
CONVERGED_PX = 0.004
_REMAP_TILES = 1000  # tiles of at most 32 rows per remap call (remap takes fewer than 2^15 rows)


def tile_shifts(
    template: np.ndarray, aligned: np.ndarray, tile: int, iterations: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Residual shift of every textured tile of ``aligned`` against ``template``.

    Parameters
    ----------
    template, aligned : numpy.ndarray
        float32 grey images of the same size, ``aligned`` already warped by the current estimate.
    tile : int
        Tile side (px).
    iterations : int
        Most Lucas-Kanade steps per tile; a tile stops earlier once its step is below
        :data:`CONVERGED_PX` (its later steps would be smaller still).

    Returns
    -------
    (points (K, 2) tile centres, shifts (K, 2)): content of ``template`` at
    ``p`` sits at ``p + shift`` in ``aligned``.
    """
    h, w = template.shape
    margin = max(2, tile // 4)
    ny, nx = (h - 2 * margin) // tile, (w - 2 * margin) // tile
    if ny < 1 or nx < 1:
        return np.zeros((0, 2)), np.zeros((0, 2))
    y0, x0 = margin, margin
    y1, x1 = y0 + ny * tile, x0 + nx * tile
    t = cv2.GaussianBlur(template, (0, 0), 1.0)
    a = cv2.GaussianBlur(aligned, (0, 0), 1.0)
    ix = np.ascontiguousarray(cv2.Sobel(t, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)[y0:y1, x0:x1])
    iy = np.ascontiguousarray(cv2.Sobel(t, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)[y0:y1, x0:x1])
    t = np.ascontiguousarray(t[y0:y1, x0:x1])

    def tile_sum(img: np.ndarray, size: tuple[int, int] = (nx, ny)) -> np.ndarray:
        # INTER_AREA at an integer factor is the exact block mean (and runs on OpenCV's threads).
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA).astype(np.float64) * (tile * tile)

    def zero_mean(img: np.ndarray) -> np.ndarray:
        """Subtract each tile's mean: a per-tile brightness offset is not a shift."""
        means = cv2.resize(img, (nx, ny), interpolation=cv2.INTER_AREA)
        return np.subtract(img, cv2.resize(means, (nx * tile, ny * tile), interpolation=cv2.INTER_NEAREST), out=img)

    ix, iy = zero_mean(ix), zero_mean(iy)
    sxx, sxy, syy = tile_sum(cv2.multiply(ix, ix)), tile_sum(cv2.multiply(ix, iy)), tile_sum(cv2.multiply(iy, iy))
    trace, det = sxx + syy, sxx * syy - sxy * sxy
    lam_min = 0.5 * (trace - np.sqrt(np.maximum((sxx - syy) ** 2 + 4 * sxy * sxy, 0)))
    valid = lam_min > max(1e-6 * tile * tile, 0.05 * float(np.median(lam_min)))
    # Only the textured tiles move (the others' steps are 0): the loop works on them alone, laid out
    # one below the other (each tile's pixels, maps and block sums are what they are in the full grid).
    rows, cols = np.nonzero(valid)
    k = len(rows)
    blocks = [img.reshape(ny, tile, nx, tile).transpose(0, 2, 1, 3)[rows, cols] for img in (t, ix, iy)]
    t, ix, iy = (np.ascontiguousarray(b) for b in blocks)  # (k, tile, tile) each
    grid = np.arange(tile, dtype=np.float32)
    xs = (x0 + cols * tile).astype(np.float32)[:, None, None] + grid[None, None, :]  # pixel coordinates
    ys = (y0 + rows * tile).astype(np.float32)[:, None, None] + grid[None, :, None]
    hxx, hxy, hyy = sxx[rows, cols], sxy[rows, cols], syy[rows, cols]
    det_k = det[rows, cols]
    d = np.zeros((k, 2))
    live = np.arange(k)  # the tiles still moving; the arrays above hold them alone once some have stopped
    maps = np.empty((2, k, tile, tile), np.float32)
    shifted_k = np.empty((k * tile, tile), np.float32)
    for _ in range(iterations if k else 0):
        n = len(live)
        mapx = np.add(xs, d[live, 0].astype(np.float32)[:, None, None], out=maps[0, :n]).reshape(n * tile, tile)
        mapy = np.add(ys, d[live, 1].astype(np.float32)[:, None, None], out=maps[1, :n]).reshape(n * tile, tile)
        shifted = shifted_k[: n * tile]
        for c in range(0, n, _REMAP_TILES):
            part = slice(c * tile, min(n, c + _REMAP_TILES) * tile)
            cv2.remap(a, mapx[part], mapy[part], cv2.INTER_LINEAR, dst=shifted[part], borderMode=cv2.BORDER_REFLECT)
        # The gradients are zero-mean in every tile, so a tile's brightness offset drops out here.
        err = cv2.subtract(shifted, t.reshape(n * tile, tile))
        bx = tile_sum(cv2.multiply(ix.reshape(n * tile, tile), err), (1, n))[:, 0]
        by = tile_sum(cv2.multiply(iy.reshape(n * tile, tile), err), (1, n))[:, 0]
        hx, hy, hxy_n, det_n = hxx[live], hyy[live], hxy[live], det_k[live]
        step = np.stack([-(hy * bx - hxy_n * by) / det_n, -(hx * by - hxy_n * bx) / det_n], axis=-1)
        step = np.clip(step, -1.0, 1.0)
        d[live] += step
        moving = np.abs(step).max(axis=1) >= CONVERGED_PX
        if not moving.any():
            break
        if not moving.all():
            live = live[moving]
            t, ix, iy, xs, ys = t[moving], ix[moving], iy[moving], xs[moving], ys[moving]
    out = np.zeros((ny, nx, 2))
    out[rows, cols] = d
    valid &= (np.abs(out) < tile / 4).all(axis=-1)
    cy, cx = np.mgrid[0:ny, 0:nx]
    points = np.stack([x0 + (cx + 0.5) * tile, y0 + (cy + 0.5) * tile], axis=-1)[valid]
    return points.reshape(-1, 2).astype(np.float64), out[valid].reshape(-1, 2)


def _fit_once(src: np.ndarray, dst: np.ndarray, model: str) -> np.ndarray | None:
    if model == "translation":
        out = np.eye(3)
        out[:2, 2] = np.median(dst - src, axis=0)
        return out
    s32, d32 = src.astype(np.float32), dst.astype(np.float32)
    if model == "homography":
        matrix, _ = cv2.findHomography(s32, d32, 0)
        return matrix
    if model == "affine":
        a, _ = cv2.estimateAffine2D(s32, d32, method=cv2.LMEDS, refineIters=30)
    else:
        a, _ = cv2.estimateAffinePartial2D(s32, d32, method=cv2.LMEDS, refineIters=30)
    if a is None:
        return None
    out = np.vstack([a, [0, 0, 1]])
    if model == "rigid":
        out[:2, :2] /= np.sqrt(abs(np.linalg.det(out[:2, :2])))
    return out


def fit_model(points: np.ndarray, targets: np.ndarray, model: str, rounds: int = 3) -> np.ndarray | None:
    """Robust fit of a ``model`` transform taking points to targets.

    Tiles whose shift disagrees with the fit (an occlusion edge, a moving
    leaf) are trimmed and the fit is repeated on the rest.
    """
    keep = np.ones(len(points), bool)
    matrix = None
    for _ in range(rounds):
        if keep.sum() < 6:
            break
        matrix = _fit_once(points[keep], targets[keep], model)
        if matrix is None:
            return None
        pred = cv2.perspectiveTransform(points[None].astype(np.float64), matrix)[0]
        resid = np.hypot(*(pred - targets).T)
        limit = max(3.0 * float(np.median(resid[keep])), 0.03)
        new_keep = resid <= limit
        if (new_keep == keep).all():
            break
        keep = new_keep
    return matrix
