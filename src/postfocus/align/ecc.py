"""Enhanced-correlation match of a similarity or affine transform, inverse compositional.

The enhanced correlation coefficient (ECC) criterion of Evangelidis and
Psarakis [1]_ in its inverse-compositional form (their Section 4.2, after
Baker and Matthews [2]_): the template's gradients, Jacobian and Hessian are
made once a level, so an iteration warps the moving frame once and projects
it on the template's Jacobian. The forward-additive form (OpenCV's
``findTransformECC``) warps the frame and both its gradients, rebuilds the
Jacobian and its Hessian, and blurs and differentiates both images on every
call. The iteration stops when an update moves no corner of the matched area
by more than :data:`CONVERGED_PX` working-size pixels, which is counted.

References
----------
.. [1] G. D. Evangelidis and E. Z. Psarakis, "Parametric image alignment using
   enhanced correlation coefficient maximization", IEEE TPAMI 30(10), 2008.
.. [2] S. Baker and I. Matthews, "Lucas-Kanade 20 years on: a unifying
   framework", IJCV 56(3), 2004.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.align.warp import project_to_similarity, rescale_matrix

__all__ = ["CONVERGED_PX", "EccDiverged", "ic_ecc", "ic_ecc_level", "smooth"]

#: An iteration whose update moves no corner of the matched area by more than this (working-size px) ends
#: the level's iterations.
CONVERGED_PX = 0.05
_SMOOTH = (5, 5)  # the Gaussian OpenCV's findTransformECC applies to both images (``gaussFiltSize`` 5)


class EccDiverged(cv2.error):
    """The correlation match moved away from a maximum (its step's denominator is not positive)."""


def smooth(level: np.ndarray) -> np.ndarray:
    """A pyramid level as the correlation match reads it (float32, 5x5 Gaussian)."""
    return cv2.GaussianBlur(level, _SMOOTH, 0, borderType=cv2.BORDER_REPLICATE)


def _inner_box(matrix: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of template pixels whose image under ``matrix`` lies in the frame."""
    h, w = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], np.float64).T
    inside = np.linalg.solve(matrix, corners)  # the frame's corners in template coordinates
    xs, ys = inside[0] / inside[2], inside[1] / inside[2]
    left, right = int(np.ceil(max(0.0, xs[0], xs[3]))), int(np.floor(min(w - 1.0, xs[1], xs[2]))) + 1
    top, bottom = int(np.ceil(max(0.0, ys[0], ys[1]))), int(np.floor(min(h - 1.0, ys[2], ys[3]))) + 1
    if bottom - top < h // 4 or right - left < w // 4:  # (not a neighbour: the match is refused later)
        return 0, 0, h, w
    return top, left, bottom, right


def ic_ecc_level(template: np.ndarray, moving: np.ndarray, matrix: np.ndarray, *,
                 iterations: int, converged: float) -> tuple[np.ndarray, float, int]:
    """Inverse-compositional ECC iterations of an affine transform at one pyramid level.

    Parameters
    ----------
    template, moving : numpy.ndarray
        :func:`smooth` levels of the two frames, the same size.
    matrix : numpy.ndarray
        3x3 start, template coords -> moving coords at this level.
    iterations : int
        Most iterations.
    converged : float
        Largest corner move (this level's px) of an update that ends the iterations.

    Returns
    -------
    (matrix, correlation before the last update, iterations done). Raises :class:`EccDiverged`.
    """
    h, w = template.shape
    # The area both frames cover at the start (as OpenCV's match reads it; 2 or 8 px less of it moved the
    # match on pcb by up to 0.15 px: a similarity fits its depth only approximately, so its best one depends
    # on the area)
    top, left, bottom, right = _inner_box(matrix, (h, w))
    t = template[top:bottom, left:right]
    gx, gy = (cv2.Sobel(template, cv2.CV_32F, dx, 1 - dx, ksize=3, scale=0.125, borderType=cv2.BORDER_REPLICATE)
              [top:bottom, left:right] for dx in (1, 0))
    ch, cw = t.shape
    cx, cy = (left + right - 1) / 2.0, (top + bottom - 1) / 2.0
    x = (np.arange(left, right, dtype=np.float32) - np.float32(cx))[None, :]
    y = (np.arange(top, bottom, dtype=np.float32) - np.float32(cy))[:, None]
    g = np.empty((6, ch, cw), np.float32)  # the steepest-descent images of the six affine parameters
    np.multiply(gx, x, out=g[0])
    np.multiply(gx, y, out=g[1])
    np.multiply(gy, x, out=g[3])
    np.multiply(gy, y, out=g[4])
    g[2], g[5] = gx, gy
    g = g.reshape(len(g), -1)
    g -= g.mean(axis=1, keepdims=True)  # the zero-mean template's Jacobian
    tz = (t - np.float32(t.mean())).ravel()
    # Products of rows one dot at a time: OpenBLAS's matrix products of so few rows (gemv, gemm) took 5-150
    # times as long as their dots on this machine (threads it starts and waits for).
    # (pseudo-inverse: a template without texture in some direction, a ramp or a flat grey, moves only in the
    # others; a flat one then has no correlation to gain and is reported as diverged, as OpenCV's match does)
    hessian = np.array([[float(a.dot(b)) for b in g] for a in g])
    if not np.all(np.isfinite(hessian)):
        raise EccDiverged("the correlation match diverged")
    hess_inv = np.linalg.pinv(hessian, rcond=1e-10)
    gt = _dots(g, tz)
    t_norm2 = float(tz @ tz)
    t_proj = float(gt @ hess_inv @ gt)
    centre = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    uncentre = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    offset = np.array([[1.0, 0.0, left], [0.0, 1.0, top], [0.0, 0.0, 1.0]])
    box = np.array([[left, right, right, left], [top, top, bottom, bottom]], np.float64) - [[cx], [cy]]
    rho, done = 0.0, 0
    while done < iterations:
        done += 1
        warped = cv2.warpAffine(moving, (matrix @ offset)[:2], (cw, ch), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE).ravel()
        # The template's values and Jacobian are zero-mean: the frame's mean matters only to its norm.
        gi = _dots(g, warped)
        ti = float(tz @ warped)
        i_norm = np.sqrt(max(float(warped @ warped) - float(warped.sum(dtype=np.float64)) ** 2 / warped.size, 0.0))
        rho = ti / max(np.sqrt(t_norm2) * i_norm, 1e-30)
        hgt = hess_inv @ gt
        denominator = ti - float(gi @ hgt)
        if not denominator > 0:
            raise EccDiverged("the correlation match diverged")
        lam = (t_norm2 - t_proj) / denominator
        dp = hess_inv @ (lam * gi - gt)
        step = np.eye(3)
        step[:2] += dp.reshape(2, 3)
        matrix = matrix @ centre @ np.linalg.inv(step) @ uncentre
        moved = step[:2, :2] @ box + step[:2, 2:] - box
        if not np.all(np.isfinite(matrix)):
            raise EccDiverged("the correlation match diverged")
        if np.abs(moved).max() < converged:
            break
    return matrix, rho, done


def _dots(rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``rows @ vector`` as one dot product a row (float64)."""
    return np.array([float(row.dot(vector)) for row in rows])


def ic_ecc(template: list[np.ndarray], moving: list[np.ndarray], matrix: np.ndarray, model: str, *,
           scale: float, iterations: int = 30, counts: list[int] | None = None) -> tuple[np.ndarray, float]:
    """Coarse-to-fine :func:`ic_ecc_level` over :func:`smooth` levels (finest first).

    Parameters
    ----------
    template, moving : list of numpy.ndarray
        The two frames' smoothed levels, each half the one before; the first is ``scale`` times the working size.
    matrix : numpy.ndarray
        3x3 start at the working size, template coords -> moving coords.
    model : str
        "affine", or "similarity": solved as affine and projected after each level, as
        :func:`~postfocus.align.pair.ecc_match` does (solved as a similarity, the start it gives the tile
        refinement left ramp's worst corner error at 0.381 px instead of 0.369 px, ``bench/bench_align.py``).
    scale : float
        The finest level's size over the working size.
    iterations : int
        Most iterations a level.
    counts : list of int, optional
        Gets each level's iterations, coarsest first.

    Returns
    -------
    (3x3 matrix at the working size, correlation at the finest level). Raises :class:`EccDiverged`.
    """
    n = len(template)
    s = scale * 0.5 ** (n - 1)
    matrix = rescale_matrix(matrix, s)
    rho = 0.0
    for level in range(n - 1, -1, -1):
        matrix, rho, done = ic_ecc_level(template[level], moving[level], matrix, iterations=iterations,
                                         converged=CONVERGED_PX * s)
        if model == "similarity":
            matrix = project_to_similarity(matrix)
        if counts is not None:
            counts.append(done)
        if level:
            matrix, s = rescale_matrix(matrix, 2.0), s * 2
    return rescale_matrix(matrix, 1.0 / s), rho
