"""Pyramid fusion: per Laplacian-pyramid coefficient, the frame with the most local contrast.

Max-contrast selection in a Laplacian pyramid (Burt and Adelson [1]_). Given
the focus-index map, its coarse bands and low-pass residual are blended by
depth like the depth-map fusion: a defocused frame's glow (a near object's
blurred spill over the background) carries most energy at coarse scales,
where max-contrast selection would pick it, and averaging the residual over
all frames would mix it in.

References
----------
.. [1] P. J. Burt and E. H. Adelson, "The Laplacian pyramid as a compact image
   code", IEEE Trans. Communications 31(4), 1983.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.fuse.base import Rect, neg_half_inv_sq

__all__ = ["PyramidFusion", "collapse", "laplacian_pyramid"]


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

    Each fine band keeps the coefficient of the frame with the largest local
    energy (averaged over a small window, so neighbouring coefficients tend to
    come from the same frame). Without a focus-index map the low-pass residual
    is averaged over the frames; with one, the bands from ``coarse_from`` down
    and the residual are blended by depth (as :class:`DepthmapFusion` does),
    which keeps defocused frames' glow out of the coarse scales.

    Examples
    --------
    >>> fusion = PyramidFusion((480, 640), index_map=index_full)  # doctest: +SKIP
    >>> for k, frame in enumerate(aligned_frames): fusion.add(k, frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        shape: tuple[int, int],
        levels: int | None = None,
        window: int = 5,
        index_map: np.ndarray | None = None,
        coarse_from: int = 2,
        sharpness: float | np.ndarray = 0.35,
    ):
        self.shape = (int(shape[0]), int(shape[1]))
        self.levels = levels or _levels_for(shape)
        self.window = window
        self._bands: list[np.ndarray] | None = None
        self._energy: list[np.ndarray] = []
        self._base: np.ndarray | None = None
        self._count = 0
        self.coarse_from = coarse_from if index_map is not None else self.levels
        # Focus index and blend width at the size of every depth-blended level.
        self._index: dict[int, np.ndarray] = {}
        self._k: dict[int, np.float32 | np.ndarray] = {}
        self._weight: dict[int, np.ndarray] = {}
        if index_map is not None:
            idx = np.asarray(index_map, np.float32)
            sig = sharpness if np.ndim(sharpness) == 0 else np.asarray(sharpness, np.float32)
            for k in range(self.levels + 1):
                if k >= self.coarse_from:
                    self._index[k] = idx
                    self._k[k] = neg_half_inv_sq(sig)
                if k < self.levels:
                    idx = cv2.pyrDown(idx)
                    sig = sig if np.ndim(sig) == 0 else cv2.pyrDown(sig)

    def footprint(self, position: float) -> list[Rect]:  # noqa: ARG002 (the Fusion protocol)
        """Rectangles where a frame has weight: the whole picture (a pyramid mixes every pixel)."""
        return [(0, 0, *self.shape)]

    def add(self, position: float | None, frame: np.ndarray, region: Rect | None = None) -> None:
        """Fold in an aligned frame; ``position`` is its focus index (needed with an index map).

        ``region`` must be None or the whole picture (see :meth:`footprint`).
        """
        if region is not None and tuple(region) != (0, 0, *self.shape):
            raise ValueError("PyramidFusion adds whole frames only")
        pyr = laplacian_pyramid(frame.astype(np.float32), self.levels)
        if self._index and position is None:
            raise ValueError("PyramidFusion with an index map needs each frame's position")
        weights = {}
        for k, idx in self._index.items():
            d = idx - np.float32(position)
            d *= d
            d *= self._k[k]
            w = np.exp(d, out=d)
            np.maximum(w, np.float32(1e-8), out=w)
            weights[k] = w
            pyr[k] *= w[..., None]
        bands, base = pyr[:-1], pyr[-1]
        energies = []
        for k, band in enumerate(bands):
            if k >= self.coarse_from:
                energies.append(None)
                continue
            e = (band * band).sum(axis=2)
            energies.append(cv2.boxFilter(e, -1, (self.window, self.window)))
        if self._bands is None:
            self._bands, self._energy, self._base = bands, energies, base.copy()
            self._weight = weights
        else:
            for k, (band, e) in enumerate(zip(bands, energies)):
                if e is None:  # depth-blended band
                    self._bands[k] += band
                    continue
                better = e > self._energy[k]
                self._bands[k][better] = band[better]
                self._energy[k] = np.maximum(self._energy[k], e)
            self._base += base
            for k, w in weights.items():
                self._weight[k] += w
        self._count += 1

    def result(self) -> np.ndarray:
        if self._bands is None:
            raise ValueError("no frame was added")
        bands = [b / self._weight[k][..., None] if k in self._weight else b for k, b in enumerate(self._bands)]
        base = self._base / self._weight[self.levels][..., None] if self.levels in self._weight else self._base / self._count
        return collapse(bands + [base])
