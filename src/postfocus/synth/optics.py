"""Thin-lens defocus of a layered scene.

The scene is cut into fronto-parallel slabs by depth. Each slab is blurred with
the disc (pillbox) point-spread function of its circle of confusion and laid
over the slabs behind it, far to near, with premultiplied alpha, so a defocused
occluder spreads over what lies behind it and a sharp one does not. Blurring is
done in linear light, so bright highlights bloom into discs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["KernelCache", "Slabs", "disc_kernel", "premultiply", "render_defocus", "slab_labels"]

# A blur of radius r is computed at 1/floor(r / _LOWRES_RADIUS) resolution, so
# radii below 2 * _LOWRES_RADIUS use exact full-size kernels and larger ones a
# low-resolution disc of at least ~_LOWRES_RADIUS px (image error < -40 dB).
_LOWRES_RADIUS = 3.0
_KERNEL_STEP = 1.0 / 64.0  # radii are rounded to this before building kernels


def disc_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """Anti-aliased pillbox kernel: each tap is the area of its pixel inside the disc.

    Parameters
    ----------
    radius : float
        Disc radius in pixels; below 0.5 the kernel is the 1x1 identity.
    supersample : int
        Sub-samples per pixel side used to estimate the covered area.

    Returns
    -------
    np.ndarray
        float32 (2k+1, 2k+1) kernel summing to 1.

    Examples
    --------
    >>> disc_kernel(2.0).shape
    (5, 5)
    """
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    half = int(math.ceil(radius - 0.5))
    n = 2 * half + 1
    sub = (np.arange(n * supersample) + 0.5) / supersample - (half + 0.5)
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    inside = (xx * xx + yy * yy <= radius * radius).astype(np.float64)
    k = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


class KernelCache:
    """Per-call cache of disc kernels keyed by rounded radius."""

    def __init__(self) -> None:
        self._cache: dict[int, np.ndarray] = {}

    def get(self, radius: float) -> np.ndarray:
        """The disc kernel of ``radius``, made on first use.

        Parameters
        ----------
        radius : float
            Disc radius in pixels, rounded to 1/64 px.

        Returns
        -------
        np.ndarray
            The :func:`disc_kernel` of the rounded radius (shared: do not modify).
        """
        key = int(round(radius / _KERNEL_STEP))
        k = self._cache.get(key)
        if k is None:
            k = disc_kernel(key * _KERNEL_STEP)
            self._cache[key] = k
        return k


def _blur(planes: np.ndarray, radius: float, kernels: KernelCache) -> np.ndarray:
    """Disc blur of a planar (4, h, w) patch whose outside is zero.

    Large radii are blurred at 1/s resolution (box down-sampling, disc of radius
    sqrt(r^2 - s^2)/s, bilinear up-sampling), which keeps the second moment of
    the point-spread function and costs a fraction of the full-size filter.
    ``h`` and ``w`` must be multiples of s.
    """
    s = _factor(radius)
    out = np.empty_like(planes)
    if s == 1:
        k = kernels.get(radius)
        for c in range(planes.shape[0]):
            cv2.filter2D(planes[c], -1, k, dst=out[c], borderType=cv2.BORDER_REFLECT_101)
        return out
    h, w = planes.shape[1:]
    k = kernels.get(math.sqrt(max(radius * radius - s * s, 0.25)) / s)
    for c in range(planes.shape[0]):
        small = cv2.resize(planes[c], (w // s, h // s), interpolation=cv2.INTER_AREA)
        small = cv2.filter2D(small, -1, k, borderType=cv2.BORDER_REFLECT_101)
        cv2.resize(small, (w, h), dst=out[c], interpolation=cv2.INTER_LINEAR)
    return out


def _resize_planes(planes: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """``cv2.resize`` of every plane of a planar (C, h, w) array to ``size`` (w, h)."""
    out = np.empty((planes.shape[0], size[1], size[0]), np.float32)
    for c in range(planes.shape[0]):
        cv2.resize(planes[c], size, dst=out[c], interpolation=interpolation)
    return out


def _extend(planes: np.ndarray, behind: float, depth: int, where: np.ndarray | None = None) -> None:
    """Fill the gaps of premultiplied planes (alpha at index 3, premultiplied depth at ``depth``) by pull-push,
    in place, where the extended content lies at ``behind`` or farther (and ``where`` allows): alpha 1 there."""
    alpha = planes[3]
    if alpha.min() >= 1.0 - 1e-6 or alpha.max() <= 1e-6:
        return
    levels = [planes.copy()]  # planar (C, h, w): one resize per plane, no channel-splitting copies
    np.clip(levels[0][3], 0.0, 1.0, out=levels[0][3])  # rounding leaves alpha a hair below 0: never divide by it
    while min(levels[-1].shape[1:]) > 2:  # pull: premultiplied averages of coarser cells
        h, w = levels[-1].shape[1:]
        levels.append(_resize_planes(levels[-1], ((w + 1) // 2, (h + 1) // 2), cv2.INTER_AREA))
    filled = levels[-1] / np.maximum(levels[-1][3:4], 1e-6)
    for fine in reversed(levels[:-1]):  # push: each level's gaps from the coarser one, normalised
        up = _resize_planes(filled, (fine.shape[2], fine.shape[1]), cv2.INTER_LINEAR)
        a = np.clip(fine[3:4], 0.0, 1.0)
        filled = fine + (1.0 - a) * up
        filled /= np.maximum(filled[3:4], 1e-6)
        filled = np.where(a >= 1.0 - 1e-6, fine, filled)
    # the extended content's depth where there was none (the gap's part of the filled depth)
    gap = 1.0 - np.clip(alpha, 0.0, 1.0)
    extended = (filled[depth] - planes[depth]) / np.maximum(gap, 1e-6)
    deep = (gap > 1e-6) & (extended >= behind)
    if where is not None:
        deep &= where
    np.copyto(planes, filled, where=deep[None])


def _merged(parts: list, pad: int, region: tuple[int, int, int, int], cell: int = 8) -> list[tuple[int, int, int, int]]:
    """The boxes of ``parts`` grown by ``pad`` within ``region`` (y0, y1, x0, x1), overlapping ones merged.

    Overlaps are found on a grid of ``cell`` pixels (boxes rounded outwards to it), so merged boxes may
    reach up to a cell further, never less far.
    """
    y0, y1, x0, x1 = region
    boxes = [(max(a - pad, y0), min(b + pad, y1), max(c - pad, x0), min(d + pad, x1)) for a, b, c, d in parts]
    boxes = [q for q in boxes if q[0] < q[1] and q[2] < q[3]]
    if len(boxes) < 2:
        return boxes
    cover = np.zeros((-(-(y1 - y0) // cell), -(-(x1 - x0) // cell)), np.uint8)
    for a, b, c, d in boxes:
        cover[(a - y0) // cell : -(-(b - y0) // cell), (c - x0) // cell : -(-(d - x0) // cell)] = 1
    stats = cv2.connectedComponentsWithStats(cover, connectivity=4)[2][1:]
    return [(y0 + int(y) * cell, min(y0 + int(y + h) * cell, y1), x0 + int(x) * cell, min(x0 + int(x + w) * cell, x1))
            for x, y, w, h, _ in stats]


def _factor(radius: float) -> int:
    """Down-sampling factor used for a blur of ``radius`` px."""
    return max(1, int(radius // _LOWRES_RADIUS))


def slab_labels(depth_index: np.ndarray, span: float, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantise depth into ``layers`` equal slabs over ``[0, span]``.

    Parameters
    ----------
    depth_index : np.ndarray
        (H, W) depth per pixel, in focus-index units from 0 to ``span``.
    span : float
        The farthest depth.
    layers : int
        Number of slabs.

    Returns
    -------
    labels : np.ndarray
        int32 (H, W) slab of every pixel (0 = nearest).
    slab_depth : np.ndarray
        float64 (layers,) mean depth of the pixels in each slab (NaN if empty).
    """
    if span <= 0:
        labels = np.zeros(depth_index.shape, np.int32)
    else:
        labels = np.floor(depth_index * (layers / span)).astype(np.int32)
        np.clip(labels, 0, layers - 1, out=labels)
    count = np.bincount(labels.ravel(), minlength=layers)
    total = np.bincount(labels.ravel(), weights=depth_index.ravel().astype(np.float64), minlength=layers)
    with np.errstate(invalid="ignore", divide="ignore"):
        slab_depth = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return labels, slab_depth


class Slabs:
    """Where each depth slab lies on the canvas, computed once per stack.

    Parameters
    ----------
    labels : np.ndarray
        int32 (H, W) slab index per pixel, 0 = nearest.
    count : int
        Number of slabs.
    overlap : int
        Each slab also covers the pixels of the ``overlap`` slabs nearer than it: a surface that continues
        across slabs then lies, blurred, under the rim of its nearer part, so the seam between two slabs is
        covered as the unbroken surface would be (the nearer slab is laid over it); 0 for disjoint slabs.
    """

    def __init__(self, labels: np.ndarray, count: int, *, overlap: int = 0) -> None:
        self.shape = labels.shape
        self.boxes: dict[int, tuple[int, int, int, int, np.ndarray]] = {}
        for k in range(count):
            if not (labels == k).any():
                continue
            mask = labels == k if overlap <= 0 else (labels <= k) & (labels >= k - int(overlap))
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            self.boxes[k] = (y0, y1, x0, x1, mask[y0:y1, x0:x1].copy())

    def mask(self, k: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Float32 mask of slab ``k`` cut to the window ``[y0:y1, x0:x1]``.

        Parameters
        ----------
        k : int
            A slab that holds pixels (a key of ``boxes``).
        y0, y1, x0, x1 : int
            The window, which must contain the slab's bounding box.

        Returns
        -------
        np.ndarray
            float32 (y1 - y0, x1 - x0): 1 on the slab's pixels, 0 elsewhere.
        """
        by0, by1, bx0, bx1, m = self.boxes[k]
        out = np.zeros((y1 - y0, x1 - x0), np.float32)
        out[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = m
        return out


def premultiply(linear: np.ndarray) -> np.ndarray:
    """Planar RGB plus an alpha plane of ones, float32 (4, H, W).

    Parameters
    ----------
    linear : np.ndarray
        (H, W, 3) RGB in linear light.

    Returns
    -------
    np.ndarray
        float32 (4, H, W): the three colour planes, then alpha = 1.
    """
    out = np.empty((4,) + linear.shape[:2], np.float32)
    out[:3] = linear.transpose(2, 0, 1)
    out[3] = 1.0
    return out


def render_defocus(
    premult: np.ndarray,
    slabs: Slabs,
    radii: np.ndarray,
    kernels: KernelCache | None = None,
    *,
    hidden: np.ndarray | None = None,
    jump: float | np.ndarray = 1.0,
    zone: np.ndarray | None = None,
    plain: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Composite defocused slabs far to near in linear light.

    Each slab k is blurred with the disc of its radius and laid over the result
    so far: ``acc = acc * (1 - blur(alpha_k)) + blur(colour * alpha_k)``. The
    accumulated alpha is divided out at the end, which fills the gaps that
    blurred far slabs leave behind sharp near ones.

    A depth map holds only what is seen: behind a near object there is
    nothing, so a blurred near object stays filled with its own colour to its
    sharp outline. With ``hidden`` (the slabs' depths) the scene gets a
    background there: before a blurred slab is laid, the gaps of what lies
    behind it (in the slab's reach) are filled by pull-push extension of that
    content (Kraus and Strengert [1]_), so the background shows through the near
    object's blurred rim, as through a real lens. Only where that content lies
    more than ``jump`` behind the slab: a surface continuing across slabs hides
    nothing behind its nearer part.

    Parameters
    ----------
    premult : np.ndarray
        float32 (4 + E, H, W) planar linear RGB and alpha (see :func:`premultiply`),
        then E optional extra planes carried along like the colours.
    slabs : Slabs
        Slab layout of the canvas.
    radii : np.ndarray
        (layers,) circle-of-confusion radius of every slab in pixels (NaN for
        empty slabs); below 0.5 a slab is pasted sharp.
    kernels : KernelCache or None
        Kernel cache shared between calls.
    hidden : np.ndarray or None
        (layers,) depth of every slab (as its radii's depth; NaN for empty
        ones): extend the farther content behind each blurred slab (see above).
    jump : float or np.ndarray
        Depth step (units of ``hidden``) from which content counts as behind a slab, or (layers,) one per slab.
    zone : np.ndarray or None
        bool (H, W): with ``hidden``, extend content only there (e.g. near depth steps), and run the
        extension only on the boxes around its connected parts; default everywhere.
    plain : bool
        Also return the composite without a hidden background, from the same blurs.

    Returns
    -------
    np.ndarray
        float32 (H, W, 3 + E) defocused image, linear light (then the extra planes); with ``plain``, a
        tuple of it and the same without a hidden background.

    References
    ----------
    .. [1] M. Kraus and M. Strengert, "Depth-of-field rendering by pyramidal image processing",
       Computer Graphics Forum 26(3), 2007 (disocclusion by pull-push of the farther layers).

    Examples
    --------
    >>> img = premultiply(np.full((8, 8, 3), 0.5, np.float32))
    >>> out = render_defocus(img, Slabs(np.zeros((8, 8), np.int32), 1), np.array([2.0]))
    >>> bool(np.allclose(out, 0.5))
    True
    """
    kernels = kernels or KernelCache()
    h, w = slabs.shape
    planes = premult.shape[0]
    acc = np.zeros((planes + (hidden is not None), h, w), np.float32)  # with a premultiplied depth plane
    bare = np.zeros((planes, h, w), np.float32) if plain else None  # the same without a hidden background
    parts = []
    behind = None if hidden is None else np.asarray(hidden, np.float64) + np.asarray(jump, np.float64)
    if hidden is not None and zone is not None:
        stats = cv2.connectedComponentsWithStats(zone.astype(np.uint8), connectivity=8)[2][1:]
        parts = [(int(y), int(y + bh), int(x), int(x + bw)) for x, y, bw, bh, _ in stats]
    for k in sorted(slabs.boxes, reverse=True):  # far to near
        r = float(radii[k])
        by0, by1, bx0, bx1, m = slabs.boxes[k]
        if r < 0.5:
            m8 = m.view(np.uint8)
            for c in range(planes):
                cv2.copyTo(premult[c, by0:by1, bx0:bx1], m8, acc[c, by0:by1, bx0:bx1])
                if bare is not None:
                    cv2.copyTo(premult[c, by0:by1, bx0:bx1], m8, bare[c, by0:by1, bx0:bx1])
            if hidden is not None:
                acc[planes, by0:by1, bx0:bx1][m] = float(hidden[k])
            continue
        s = _factor(r)
        pad = int(math.ceil(r)) + 2 * s + 1
        y0, y1 = max(by0 - pad, 0), min(by1 + pad, h)
        x0, x1 = max(bx0 - pad, 0), min(bx1 + pad, w)
        ph, pw = y1 - y0, x1 - x0
        # zero-extend to a multiple of s so the box down-sampling is exact
        patch = np.zeros((planes, -(-ph // s) * s, -(-pw // s) * s), np.float32)
        np.multiply(premult[:, y0:y1, x0:x1], slabs.mask(k, y0, y1, x0, x1), out=patch[:, :ph, :pw])
        b = _blur(patch, r, kernels)[:, :ph, :pw]
        region = acc[:, y0:y1, x0:x1]
        if hidden is not None and zone is None:
            _extend(region, float(behind[k]), planes)
        elif hidden is not None:  # only on the zone's parts (with this slab's reach around them) in the region
            for cy0, cy1, cx0, cx1 in _merged(parts, pad, (y0, y1, x0, x1)):
                _extend(acc[:, cy0:cy1, cx0:cx1], float(behind[k]), planes, zone[cy0:cy1, cx0:cx1])
        if hidden is not None:
            region[planes] *= 1.0 - b[3]
            region[planes] += b[3] * float(hidden[k])
        region[:planes] *= 1.0 - b[3]
        region[:planes] += b
        if bare is not None:
            bare[:, y0:y1, x0:x1] *= 1.0 - b[3]
            bare[:, y0:y1, x0:x1] += b
    out = [np.ascontiguousarray((np.concatenate([a[:3], a[4:planes]]) / np.maximum(a[3], 1e-6)).transpose(1, 2, 0))
           for a in ((acc, bare) if bare is not None else (acc,))]
    return (out[0], out[1]) if plain else out[0]
