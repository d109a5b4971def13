"""Fold aligned frames, one at a time, into an all-in-focus image.

Two fusions, both streaming (a frame is added, then dropped):

* :class:`DepthmapFusion` blends frames by their distance to the focus-index
  map: each pixel takes the frame(s) focused at its depth.
* :class:`PyramidFusion` selects, per Laplacian-pyramid coefficient, the frame
  with the most local contrast at that scale (max-contrast family).
"""

from __future__ import annotations

import cv2
import numpy as np


def depth_weights(index_map: np.ndarray, frame: float, sharpness: float = 0.35) -> np.ndarray:
    """Weight of frame ``frame`` at each pixel, given the focus-index map.

    A narrow Gaussian of the distance between the frame and the pixel's focus
    index: the frames focused at a pixel dominate, neighbours blend in smoothly
    where the index falls between frames.

    Examples
    --------
    >>> float(depth_weights(np.array([[2.0]]), 2.0)[0, 0])
    1.0
    """
    d = index_map - np.float32(frame)
    return np.exp(d * d * np.float32(-0.5 / (sharpness * sharpness))).astype(np.float32)


class DepthmapFusion:
    """Weighted blend of frames by a focus-index map (DMap family).

    Examples
    --------
    >>> fusion = DepthmapFusion(index_full)  # doctest: +SKIP
    >>> for i, frame in aligned_frames: fusion.add(i, frame)  # doctest: +SKIP
    >>> image = fusion.result()  # doctest: +SKIP
    """

    def __init__(self, index_map: np.ndarray, sharpness: float = 0.35):
        self.index_map = index_map.astype(np.float32)
        self.sharpness = sharpness
        h, w = index_map.shape
        self._sum = [np.zeros((h, w), np.float32) for _ in range(3)]
        self._weight = np.zeros((h, w), np.float32)

    def add(self, position: float, frame: np.ndarray) -> None:
        """Fold in the aligned frame focused at index ``position``."""
        w = depth_weights(self.index_map, position, self.sharpness)
        np.maximum(w, np.float32(1e-8), out=w)
        for c in range(3):  # channel by channel: no full-size temporary
            cv2.accumulateProduct(np.ascontiguousarray(frame[:, :, c]), w, self._sum[c])
        self._weight += w

    def result(self) -> np.ndarray:
        inv = 1.0 / np.maximum(self._weight, 1e-12)
        return cv2.merge([plane * inv for plane in self._sum])


def _levels_for(shape: tuple[int, int], smallest: int = 16) -> int:
    return max(1, int(np.log2(max(1, min(shape) / smallest))))


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Band-pass levels, finest first, then the low-pass residual."""
    gauss = [image]
    for _ in range(levels):
        gauss.append(cv2.pyrDown(gauss[-1]))
    pyr = []
    for fine, coarse in zip(gauss[:-1], gauss[1:]):
        up = cv2.pyrUp(coarse, dstsize=(fine.shape[1], fine.shape[0]))
        pyr.append(fine - up)
    pyr.append(gauss[-1])
    return pyr


def collapse(pyr: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`."""
    image = pyr[-1]
    for band in reversed(pyr[:-1]):
        image = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])) + band
    return image


class PyramidFusion:
    """Max-contrast selection in a Laplacian pyramid, with a consistency window.

    Each band keeps the coefficient of the frame with the largest local energy
    (averaged over a small window, so neighbouring coefficients tend to come
    from the same frame); the low-pass residual is averaged.

    Examples
    --------
    >>> fusion = PyramidFusion((480, 640))  # doctest: +SKIP
    >>> for frame in aligned_frames: fusion.add(frame)  # doctest: +SKIP
    """

    def __init__(self, shape: tuple[int, int], levels: int | None = None, window: int = 5):
        self.levels = levels or _levels_for(shape)
        self.window = window
        self._bands: list[np.ndarray] | None = None
        self._energy: list[np.ndarray] = []
        self._base: np.ndarray | None = None
        self._count = 0

    def add(self, frame: np.ndarray) -> None:
        pyr = laplacian_pyramid(frame.astype(np.float32), self.levels)
        bands, base = pyr[:-1], pyr[-1]
        energies = []
        for band in bands:
            e = (band * band).sum(axis=2)
            energies.append(cv2.boxFilter(e, -1, (self.window, self.window)))
        if self._bands is None:
            self._bands, self._energy, self._base = bands, energies, base.copy()
        else:
            for k, (band, e) in enumerate(zip(bands, energies)):
                better = e > self._energy[k]
                self._bands[k][better] = band[better]
                self._energy[k] = np.maximum(self._energy[k], e)
            self._base += base
        self._count += 1

    def result(self) -> np.ndarray:
        if self._bands is None:
            raise ValueError("no frame was added")
        return collapse(self._bands + [self._base / self._count])
