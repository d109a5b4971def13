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

from typing import NamedTuple

import cv2
import numpy as np

__all__ = ["CONVERGED_PX", "TemplateTiles", "fit_model", "template_tiles", "tile_shifts"]

#: A tile whose remaining distance (its step over one minus the ratio of its last two steps) falls
#: below this (px) has converged and leaves the iteration.
CONVERGED_PX = 0.004
_BLUR_REACH = 4  # rows cv2.GaussianBlur reads on either side at sigma 1 (float32: a 9-tap kernel)
_BAND_ROWS = 128  # template rows filtered at a time (whole rows of tiles)
_GROUP_TILES = 256  # tiles iterated together (1 MB arrays at 32 px tiles; remap takes fewer than 2^15 rows;
# measured against 64: pcb alignment 0.70 -> 0.65 s CPU with two OpenCV threads, beetle and ring the same)


class TemplateTiles(NamedTuple):
    """A template cut into tiles for :func:`tile_shifts` (made once for every round against it)."""

    tile: int
    grid: tuple[int, int, int, int]  # ny, nx, y0, x0
    valid: np.ndarray  # (ny, nx) textured tiles
    cut: np.ndarray  # (k, 3, tile * tile): each textured tile's pixels and zero-mean x and y gradients
    hessian: np.ndarray  # (k, 3): sums of ix², ix·iy, iy²


def template_tiles(template: np.ndarray, tile: int) -> TemplateTiles | None:
    """Cut a (float32 grey) template into tiles, keep the textured ones with their gradients.

    Made a band of rows of tiles at a time (the blur, the gradients and their sums of about 128 rows, from
    the template's rows around it): no frame-sized array but the tiles' own, which two matches at once would
    otherwise hold four of each (the same values to the bit as whole-frame filters: each band reads the
    template as far as the filters reach, and the area resize of a band is its block means).

    Returns None when the template holds no whole tile.
    """
    h, w = template.shape
    margin = max(2, tile // 4)
    ny, nx = (h - 2 * margin) // tile, (w - 2 * margin) // tile
    if ny < 1 or nx < 1:
        return None
    y0, x0 = margin, margin
    x1 = x0 + nx * tile
    reach = _BLUR_REACH + 1  # template rows a band's blurred gradients read beyond it
    floor = 1e-6 * tile * tile  # least texture (smaller eigenvalue of a tile's gradient products) kept
    # The tiles with at least ``floor`` texture (pixels and gradients), written one after the other as the
    # bands are made: (at most ny * nx, 3, tile * tile); only the rows written are ever touched.
    cut = np.empty((ny * nx, 3, tile * tile), np.float32)
    sums = np.empty((5, ny, nx))  # per tile: ix, iy, ix², ix·iy, iy²
    textured = []  # the flat indices of the tiles written to ``cut``, in order
    count = 0

    def tile_sum(img: np.ndarray) -> np.ndarray:
        # INTER_AREA at an integer factor is the exact block mean.
        return cv2.resize(img, (nx, len(img) // tile), interpolation=cv2.INTER_AREA).astype(np.float64) * (tile * tile)

    def lay_out(img: np.ndarray, which: np.ndarray) -> np.ndarray:  # (rows * tile, nx * tile) -> (k, tile, tile)
        # (the chosen tiles gathered from a view of the band's tiles: no copy of the whole band first)
        return img.reshape(len(img) // tile, tile, nx, tile).transpose(0, 2, 1, 3)[which // nx, which % nx]

    step = max(1, _BAND_ROWS // tile)  # rows of tiles a band
    for r in range(0, ny, step):
        top, bottom = y0 + r * tile, y0 + min(ny, r + step) * tile
        lo, hi = max(0, top - reach), min(h, bottom + reach)
        t = cv2.GaussianBlur(template[lo:hi], (0, 0), 1.0)[top - 1 - lo: bottom + 1 - lo]
        ix = cv2.Sobel(t[:, x0 - 1: x1 + 1], cv2.CV_32F, 1, 0, ksize=3, scale=0.125)[1:-1, 1:-1]
        iy = cv2.Sobel(t[:, x0 - 1: x1 + 1], cv2.CV_32F, 0, 1, ksize=3, scale=0.125)[1:-1, 1:-1]
        for i, img in enumerate((ix, iy, cv2.multiply(ix, ix), cv2.multiply(ix, iy), cv2.multiply(iy, iy))):
            sums[i, r: r + step] = tile_sum(img)
        which = np.flatnonzero(_texture(sums[:, r: r + step], tile)[0] > floor)
        band = cut[count: count + len(which)].reshape(len(which), 3, tile, tile)
        band[:, 0] = lay_out(t[1:-1, x0:x1], which)
        band[:, 1] = lay_out(ix, which)
        band[:, 2] = lay_out(iy, which)
        textured.append(r * nx + which)
        count += len(which)

    lam_min, (mx, my, sxx, sxy, syy) = _texture(sums, tile)
    valid = lam_min > max(floor, 0.05 * float(np.median(lam_min)))
    # Only the textured tiles move (the others' steps are 0): the loop works on them alone, moved to the
    # front in order (each to a place at or before its own), with their zero-mean gradients.
    rows, cols = np.nonzero(valid)
    k = len(rows)
    kept = np.flatnonzero(valid.ravel()[np.concatenate(textured)])  # (valid tiles are among those written)
    # (when most tiles are untextured, as around a subject on a dark ground, a copy of the kept ones
    # lets the buffer go: 4 MB kept instead of 20 on ring's frames)
    if 4 * k < 3 * len(cut):
        cut = cut[kept]
    else:
        for i in range(0, k, 64):  # 64 at a time: each source lies at or after the rows being written
            cut[i: min(k, i + 64)] = cut[kept[i: i + 64]]
        cut = cut[:k]
    cut[:, 1] -= mx[rows, cols].astype(np.float32)[:, None]
    cut[:, 2] -= my[rows, cols].astype(np.float32)[:, None]
    hessian = np.stack([sxx[rows, cols], sxy[rows, cols], syy[rows, cols]], axis=-1)
    return TemplateTiles(tile, (ny, nx, y0, x0), valid, cut, hessian)


def _texture(sums: np.ndarray, tile: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Each tile's texture (the smaller eigenvalue of its zero-mean gradients' products) from its sums of
    ix, iy, ix², ix·iy, iy² (``sums``: (5, ...)); with the mean gradients and the products' sums."""
    # Sums over each tile of the zero-mean gradients' products (a tile's brightness offset is not a shift).
    mx, my, area = sums[0] / tile**2, sums[1] / tile**2, tile * tile
    sxx = sums[2] - area * mx * mx
    sxy = sums[3] - area * mx * my
    syy = sums[4] - area * my * my
    trace = sxx + syy
    lam_min = 0.5 * (trace - np.sqrt(np.maximum((sxx - syy) ** 2 + 4 * sxy * sxy, 0)))
    return lam_min, (mx, my, sxx, sxy, syy)


def tile_shifts(
    template: np.ndarray | TemplateTiles, aligned: np.ndarray, tile: int, iterations: int = 8, *,
    overwrite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Residual shift of every textured tile of ``aligned`` against ``template``.

    Parameters
    ----------
    template, aligned : numpy.ndarray
        float32 grey images of the same size, ``aligned`` already warped by the current estimate;
        ``template`` may be its :func:`template_tiles` (made once for several rounds).
    tile : int
        Tile side (px).
    iterations : int
        Most Lucas-Kanade steps per tile; a tile stops earlier once the distance its shrinking steps
        still have to go is below :data:`CONVERGED_PX`.
    overwrite : bool
        Blur ``aligned`` in its own memory (a frame fewer alive at once, when the caller is done with it).

    Returns
    -------
    (points (K, 2) tile centres, shifts (K, 2)): content of ``template`` at
    ``p`` sits at ``p + shift`` in ``aligned``.
    """
    prepared = template if isinstance(template, TemplateTiles) else template_tiles(template, tile)
    if prepared is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    ny, nx, y0, x0 = prepared.grid
    valid, cut, hessian = prepared.valid.copy(), prepared.cut, prepared.hessian
    rows, cols = np.nonzero(valid)
    k = len(rows)
    a = cv2.GaussianBlur(aligned, (0, 0), 1.0, dst=aligned if overwrite else None)
    grid = np.arange(tile, dtype=np.float32)
    xs = (x0 + cols * tile).astype(np.float32)[:, None, None] + grid[None, None, :]  # pixel coordinates
    ys = (y0 + rows * tile).astype(np.float32)[:, None, None] + grid[None, :, None]
    d = np.zeros((k, 2))
    # Every tile starts at shift 0, where the bilinear remap of its whole-pixel coordinates is its pixels
    # themselves (weights 1, 0, 0, 0): the first step reads them straight from the blurred frame.
    blocks = a[y0: y0 + ny * tile, x0: x0 + nx * tile].reshape(ny, tile, nx, tile).transpose(0, 2, 1, 3)
    # Up to 256 tiles at a time, each group iterated to the end while its arrays are in the cache.
    for c in range(0, k, _GROUP_TILES):
        part = slice(c, min(k, c + _GROUP_TILES))
        d[part] = _iterate(a, cut[part], xs[part], ys[part], hessian[part], iterations,
                           first=blocks[rows[part], cols[part]])
    out = np.zeros((ny, nx, 2))
    out[rows, cols] = d
    valid &= (np.abs(out) < tile / 4).all(axis=-1)
    cy, cx = np.mgrid[0:ny, 0:nx]
    points = np.stack([x0 + (cx + 0.5) * tile, y0 + (cy + 0.5) * tile], axis=-1)[valid]
    return points.reshape(-1, 2).astype(np.float64), out[valid].reshape(-1, 2)


def _iterate(a: np.ndarray, tiles: np.ndarray, xs: np.ndarray, ys: np.ndarray, hessian: np.ndarray,
             iterations: int, *, first: np.ndarray | None = None) -> np.ndarray:
    """Lucas-Kanade steps of a group of tiles until each has converged: their shifts (n, 2).

    ``tiles``: (n, 3, tile * tile) template tiles and their zero-mean x and y gradients; ``xs``,
    ``ys``: (n, 1, tile) and (n, tile, 1) the tiles' pixel coordinates in ``a``; ``hessian``: (n, 3)
    sums of ix², ix·iy, iy² per tile; ``first``: (n, tile, tile) the tiles' pixels of ``a`` at shift 0
    (what the first step's remap would give), if already cut out.

    Every tile's arithmetic is its own (a remap of its pixels, its sums), so a tile that has converged
    can stay in the arrays with its shift frozen: the arrays are cut down to the moving tiles only once
    a quarter of them have stopped (copying a group's 3 MB of tiles at every step cost more than the
    stopped tiles' share of the work), and the shifts are the same to the bit as when they were cut
    down at every step.
    """
    n, tile = xs.shape[0], xs.shape[2]
    d = np.zeros((n, 2))
    live = np.arange(n)  # the tiles in the arrays (moving, or stopped since the arrays were last cut down)
    moving = np.ones(n, bool)  # of those, the ones still moving
    maps = np.empty((2, n, tile, tile), np.float32)
    shifted_n = np.empty((n * tile, tile), np.float32)
    last = np.full(n, np.nan)  # each tile's previous step (largest component)
    for step_number in range(iterations):
        m = len(live)
        shifted = shifted_n[: m * tile]
        if step_number == 0 and first is not None:
            np.copyto(shifted.reshape(m, tile, tile), first)
        else:
            # The maps are a tile's coordinates plus its shift: the sums are made for one row (x) or one
            # column (y) of each tile and then spread over the tile (the same float32 values; a broadcast
            # copy costs half a broadcast add).
            shift = d[live].astype(np.float32)
            mapx, mapy = maps[0, :m], maps[1, :m]
            np.copyto(mapx, xs + shift[:, 0, None, None])
            np.copyto(mapy.transpose(0, 2, 1), (ys + shift[:, 1, None, None]).transpose(0, 2, 1))
            cv2.remap(a, mapx.reshape(m * tile, tile), mapy.reshape(m * tile, tile), cv2.INTER_LINEAR,
                      dst=shifted, borderMode=cv2.BORDER_REFLECT)
        # The gradients are zero-mean in every tile, so a tile's brightness offset drops out here.
        err = np.subtract(shifted.reshape(m, tile * tile), tiles[:, 0], out=shifted.reshape(m, tile * tile))
        b = np.matmul(tiles[:, 1:], err[..., None])[..., 0].astype(np.float64)  # (m, 2): sums of ix·err, iy·err
        hxx, hxy, hyy = hessian[:, 0], hessian[:, 1], hessian[:, 2]
        det = hxx * hyy - hxy * hxy
        step = np.empty((m, 2))
        step[:, 0] = -(hyy * b[:, 0] - hxy * b[:, 1]) / det
        step[:, 1] = -(hxx * b[:, 1] - hxy * b[:, 0]) / det
        np.clip(step, -1.0, 1.0, out=step)
        step[~moving] = 0.0  # stopped tiles keep their shift
        d[live] += step
        # Steps of a converging tile shrink geometrically by the ratio r of the last two, so the distance
        # still to go is about step / (1 - r): a tile leaves when that is below CONVERGED_PX (a tile whose
        # steps do not shrink stays until the last iteration, as every tile did before).
        size = np.abs(step).max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = size / last
            to_go = np.where(ratio < 1, size / (1 - ratio), np.inf)
        moving &= ~(to_go < CONVERGED_PX)
        if not moving.any():
            break
        last = np.where(moving, size, last)
        if 4 * np.count_nonzero(moving) <= 3 * m:  # a quarter stopped: cut the arrays down to the moving
            keep = moving
            live, last, moving = live[keep], last[keep], moving[keep]
            tiles, xs, ys, hessian = tiles[keep], xs[keep], ys[keep], hessian[keep]
    return d


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
