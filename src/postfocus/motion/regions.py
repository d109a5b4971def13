"""Moving regions and the one frame each is shown from."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["instant_at", "region_frames", "regions"]


def regions(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """Moving regions: connected parts of ``mask > 0`` -> (count, int32 labels, 0 = static)."""
    n, labels = cv2.connectedComponents((np.asarray(mask) > 0).astype(np.uint8), connectivity=8)
    return n - 1, labels.astype(np.int32)


def region_frames(mask: np.ndarray, volume: np.ndarray, frames: Sequence[int]) -> tuple[np.ndarray, dict[int, int]]:
    """The one frame each moving region is taken from: where its focus measure is highest.

    Parameters
    ----------
    mask : (h, w) motion mask (see :class:`Motion`).
    volume : (len(frames), h, w) focus measure of the candidate frames (an array, or a list of its slices).
    frames : frame numbers of the volume's slices.

    Returns
    -------
    (labels, choice): int32 (h, w) region labels (0 = static) and ``{label: frame}``.

    Examples
    --------
    >>> m = np.zeros((8, 8), np.float32); m[2:5, 2:5] = 1
    >>> vol = np.zeros((3, 8, 8), np.float32); vol[2, 3, 3] = 1
    >>> region_frames(m, vol, [4, 5, 6])[1]
    {1: 6}
    """
    m = np.asarray(mask, np.float32)
    n, labels = regions(m)
    choice: dict[int, int] = {}
    if n == 0:
        return labels, choice
    flat = labels.ravel()
    # Only the moving content itself votes, not the static margin around it.
    weight = (m.ravel() >= 0.999).astype(np.float32)
    for k, f in enumerate(frames):
        score = np.bincount(flat, weights=np.asarray(volume[k], np.float32).ravel() * weight, minlength=n + 1)
        if k == 0:
            best, best_score = np.zeros(n + 1, int), score
        else:
            better = score > best_score
            best[better], best_score = k, np.where(better, score, best_score)
    for r in range(1, n + 1):
        choice[r] = int(frames[best[r]])
    return labels, choice


def instant_at(mask: np.ndarray, volume: np.ndarray, frames: Sequence[int], x: int, y: int) -> int | None:
    """The frame the moving region at map pixel (x, y) is shown from, or None if (x, y) is static.

    The same choice as :func:`region_frames`, reading only the region's bounding box.

    Examples
    --------
    >>> m = np.zeros((8, 8), np.float32); m[2:5, 2:5] = 1
    >>> vol = np.zeros((3, 8, 8), np.float32); vol[2, 3, 3] = 1
    >>> instant_at(m, vol, [4, 5, 6], 3, 3), instant_at(m, vol, [4, 5, 6], 7, 7)
    (6, None)
    """
    m = np.asarray(mask, np.float32)
    if m[y, x] <= 0.5:
        return None
    _, labels = regions(m)
    inside = labels == labels[y, x]
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    vote = inside[y0:y1, x0:x1] & (m[y0:y1, x0:x1] >= 0.999)
    scores = [float(np.asarray(volume[k, y0:y1, x0:x1], np.float32)[vote].sum(dtype=np.float64))
              for k in range(len(frames))]
    return int(frames[int(np.argmax(scores))])
