"""Transforms between a frame and the reference, and resampling by them.

A transform ``W`` is a 3x3 matrix mapping *reference* pixel coordinates to
*frame* pixel coordinates (the convention of the whole :mod:`postfocus.align`
package); :func:`warp_to_reference` applies it, :func:`valid_mask` tells where
the warped frame has real pixels and :func:`common_area` the rectangle every
frame of a sweep covers.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["common_area", "project_to_similarity", "rescale_matrix", "scaling", "valid_mask", "warp_to_reference"]


def scaling(s: float) -> np.ndarray:
    """3x3 matrix that scales pixel coordinates by ``s``."""
    return np.diag([s, s, 1.0])


def rescale_matrix(matrix: np.ndarray, s: float) -> np.ndarray:
    """Express a transform given in one resolution in a resolution ``s`` times larger."""
    return scaling(s) @ matrix @ scaling(1.0 / s)


def project_to_similarity(matrix: np.ndarray) -> np.ndarray:
    """Nearest similarity (rotation, uniform scale, shift) to an affine matrix."""
    a = 0.5 * (matrix[0, 0] + matrix[1, 1])
    b = 0.5 * (matrix[1, 0] - matrix[0, 1])
    out = np.eye(3)
    out[:2, :2] = [[a, -b], [b, a]]
    out[:2, 2] = matrix[:2, 2]
    return out


def warp_to_reference(
    frame: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int] | None = None,
    border: int = cv2.BORDER_REFLECT,
    interpolation: int = cv2.INTER_LINEAR,
    region: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Resample ``frame`` into reference geometry with transform ``matrix``.

    Parameters
    ----------
    frame : image in its own geometry.
    matrix : 3x3 reference coords -> frame coords.
    size : (height, width) of the output; default the frame's.
    interpolation : OpenCV interpolation; cubic keeps fine detail for outputs.
    region : (top, left, bottom, right) of the reference geometry to produce
        (default: all of ``size``); the same pixels as cropping the full warp.

    Returns
    -------
    The aligned image (or region of it), same dtype.

    Examples
    --------
    >>> shift = np.array([[1.0, 0, 2], [0, 1, 0], [0, 0, 1]])
    >>> warp_to_reference(np.arange(12, dtype=np.float32).reshape(3, 4), shift, region=(0, 0, 1, 2)).tolist()
    [[2.0, 3.0]]
    """
    h, w = size or frame.shape[:2]
    if region is not None:
        top, left, bottom, right = region
        if np.allclose(matrix, np.eye(3)) and bottom <= frame.shape[0] and right <= frame.shape[1]:
            return frame[top:bottom, left:right].copy()
        matrix = matrix @ np.array([[1.0, 0.0, left], [0.0, 1.0, top], [0.0, 0.0, 1.0]])
        h, w = bottom - top, right - left
    flags = interpolation | cv2.WARP_INVERSE_MAP
    if np.allclose(matrix, np.eye(3)) and (h, w) == frame.shape[:2]:
        return frame
    if abs(matrix[2, 0]) + abs(matrix[2, 1]) > 1e-12:
        return cv2.warpPerspective(frame, matrix, (w, h), flags=flags, borderMode=border)
    return cv2.warpAffine(frame, matrix[:2], (w, h), flags=flags, borderMode=border)


def valid_mask(matrix: np.ndarray, frame_size: tuple[int, int], size: tuple[int, int] | None = None) -> np.ndarray:
    """Where, in reference geometry, the frame has real pixels (uint8 0/1)."""
    ones = np.ones(frame_size, np.uint8)
    h, w = size or frame_size
    flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    if abs(matrix[2, 0]) + abs(matrix[2, 1]) > 1e-12:
        return cv2.warpPerspective(ones, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.warpAffine(ones, matrix[:2], (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def common_area(masks_or_matrices: list[np.ndarray], frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Largest axis-aligned rectangle (top, left, bottom, right) every frame covers.

    Parameters
    ----------
    masks_or_matrices : 3x3 transforms reference -> frame of the used frames.
    frame_size : (height, width) of the frames and of the reference.
    """
    h, w = frame_size
    top, left, bottom, right = 0.0, 0.0, float(h), float(w)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    for matrix in masks_or_matrices:
        inv = np.linalg.inv(matrix)
        pts = cv2.perspectiveTransform(corners[None], inv)[0]  # frame corners in reference coords
        xs, ys = pts[:, 0], pts[:, 1]
        left = max(left, xs[0], xs[3])
        right = min(right, xs[1], xs[2])
        top = max(top, ys[0], ys[1])
        bottom = min(bottom, ys[2], ys[3])
    t, l = int(np.ceil(top)), int(np.ceil(left))
    b, r = int(np.floor(bottom)), int(np.floor(right))
    if b - t < h // 4 or r - l < w // 4:
        return 0, 0, h, w
    return t, l, b, r
