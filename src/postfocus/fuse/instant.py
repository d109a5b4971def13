"""Moving regions shown from one instant: the chosen frame blended over the fused image.

Motion detection (:mod:`postfocus.motion`) finds the regions that moved during
the sweep and picks one frame for each (:func:`~postfocus.motion.region_frames`);
:class:`InstantBlend` collects those frames' pixels while pass 2 streams and
blends them, feathered, over the all-in-focus image, so a moving subject
appears once instead of as a ghost of several instants.
"""

from __future__ import annotations

import numpy as np

from postfocus.fuse.base import upscale_region

__all__ = ["InstantBlend"]


class InstantBlend:
    """Blends the chosen instant of every moving region into a fused image, streaming.

    Only the bounding box of the moving regions is kept at full resolution.

    Parameters
    ----------
    mask : (h, w) motion mask at analysis size.
    labels, choice : from :func:`region_frames`.
    size : (H, W) full resolution.
    region : (top, left, bottom, right) of the full-resolution picture that the
        fused image covers (default: all); :attr:`box` is relative to it.
    """

    def __init__(self, mask: np.ndarray, labels: np.ndarray, choice: dict[int, int], size: tuple[int, int],
                 region: tuple[int, int, int, int] | None = None):
        self.size = size
        H, W = size
        self.region = region or (0, 0, H, W)
        rt, rl, rb, rr = self.region
        mh, mw = mask.shape
        sy, sx = H / mh, W / mw
        ys, xs = np.nonzero(labels)
        if ys.size == 0:
            self.box = None
            return
        pad = 2
        t, l = max(rt, int(np.floor((ys.min() - pad) * sy))), max(rl, int(np.floor((xs.min() - pad) * sx)))
        b, r = min(rb, int(np.ceil((ys.max() + 1 + pad) * sy))), min(rr, int(np.ceil((xs.max() + 1 + pad) * sx)))
        if b <= t or r <= l:  # the moving regions lie outside the region
            self.box = None
            return
        self.box = (t - rt, l - rl, b - rt, r - rl)
        self.frames: dict[int, list[int]] = {}
        for region, frame in choice.items():
            self.frames.setdefault(frame, []).append(region)
        self._mask, self._labels = np.asarray(mask, np.float32), labels
        self._acc = np.zeros((b - t, r - l, 3), np.float32)
        self._alpha = np.zeros((b - t, r - l), np.float32)

    def wants(self, frame: int) -> bool:
        return self.box is not None and frame in self.frames

    def _alpha_full(self, regions_: list[int]) -> np.ndarray:
        t, l, b, r = self.box
        t, l, b, r = t + self.region[0], l + self.region[1], b + self.region[0], r + self.region[1]
        small = np.where(np.isin(self._labels, regions_), self._mask, 0).astype(np.float32)
        return upscale_region(small, self.size, (t, l, b, r))  # only the box, at full resolution

    def add(self, frame: int, aligned: np.ndarray) -> None:
        """Fold in the aligned frame ``frame`` (covering the region) if a moving region chose it."""
        if self.wants(frame):
            t, l, b, r = self.box
            self.add_box(frame, aligned[t:b, l:r])

    def add_box(self, frame: int, pixels: np.ndarray) -> None:
        """Fold in the aligned frame ``frame``, given only inside :attr:`box`, if a moving region chose it."""
        if not self.wants(frame):
            return
        a = self._alpha_full(self.frames[frame])
        self._acc += pixels * a[..., None]
        self._alpha += a

    def apply(self, image: np.ndarray) -> np.ndarray:
        """``image`` with the chosen instants blended in (in place)."""
        if self.box is None:
            return image
        t, l, b, r = self.box
        alpha = np.minimum(self._alpha, 1.0)[..., None]
        inst = self._acc / np.maximum(self._alpha, 1e-6)[..., None]
        region = image[t:b, l:r]
        region *= 1.0 - alpha
        region += alpha * inst
        return image
