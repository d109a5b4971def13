"""The guided filter (He et al.) and the guided upsampling of a map to an image's size.

:func:`guided_filter` smooths an image along the edges of a grey guide with box
means; :func:`guided_upsample` resizes an analysis-size map (a depth map) to the
output size and snaps its edges to the full-size image's, a band of rows at a
time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from postfocus.colour import to_grey

__all__ = ["box", "guided_filter", "guided_upsample"]

UPSAMPLE_BAND = 128  # rows of the full-size image guided at a time in :func:`guided_upsample`


def box(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box, edges reflected."""
    k = 2 * radius + 1
    return cv2.boxFilter(image, -1, (k, k), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by the edges of ``guide`` (He et al. 2010).

    Parameters
    ----------
    guide : float32 (H, W) grey guide image.
    src : float32 (H, W) or (H, W, C) image to filter.
    radius : box radius in pixels.
    eps : regularisation; larger smooths across weaker edges.

    Returns
    -------
    float32 array shaped like ``src``.

    Examples
    --------
    >>> g = np.random.rand(16, 16).astype(np.float32)
    >>> guided_filter(g, g, 2, 1e-3).shape
    (16, 16)
    """
    mean_i = box(guide, radius)
    var_i = box(guide * guide, radius) - mean_i * mean_i
    if src.ndim == 3:
        mean_i3, var_i3, guide3 = mean_i[..., None], var_i[..., None], guide[..., None]
    else:
        mean_i3, var_i3, guide3 = mean_i, var_i, guide
    mean_p = box(src, radius)
    cov_ip = box(src * guide3, radius) - mean_i3 * mean_p
    a = cov_ip / (var_i3 + eps)
    b = mean_p - a * mean_i3
    return box(a, radius) * guide3 + box(b, radius)


def guided_upsample(values: np.ndarray, guide: np.ndarray, radius: int | None = None, eps: float = 1e-3, *,
                    band: int = UPSAMPLE_BAND, threads: int = 1) -> np.ndarray:
    """Resize ``values`` to the size of ``guide`` and snap its edges to the guide's edges.

    Bilinear upsampling followed by a guided filter at full size, clipped to
    the range of ``values``. The filter runs over ``band`` rows at a time with
    the ``2 radius`` rows around them that its two box passes read, written
    back into the upsampled array: at full size only that array and the
    caller's guide are alive, not the filter's eight full-size temporaries.

    Parameters
    ----------
    values : (h, w) map at analysis size.
    guide : (H, W) or (H, W, 3) float image at output size.
    radius : box radius of the guided filter (default: 1.5 times the scale, at least 2).
    eps : guided-filter regularisation.
    band : rows filtered at a time (memory only; at least ``2 radius``).
    threads : 1, or 2: a helper filters the bands of the top half of the rows, the calling thread those of the
        bottom half (the same bands, each from the rows as upsampled: the same bits; two bands' temporaries alive).

    Returns
    -------
    float32 (H, W).

    References
    ----------
    K. He, J. Sun, X. Tang, "Guided image filtering", ECCV 2010.

    Examples
    --------
    >>> guided_upsample(np.random.rand(10, 8).astype(np.float32), np.random.rand(40, 30), band=8).shape
    (40, 30)
    """
    h, w = guide.shape[:2]
    mh, mw = values.shape[:2]
    if (mh, mw) == (h, w):
        return values.astype(np.float32)
    up = cv2.resize(values.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    scale = max(h / mh, w / mw)
    r = radius if radius is not None else max(2, int(round(1.5 * scale)))
    lo, hi = np.float32(values.min()), np.float32(values.max())
    halo = 2 * r  # a box of a box: the rows within 2r of a band's edge read the rows beyond it
    band = max(int(band), halo, 1)
    split = (h // band // 2) * band if int(threads) >= 2 else 0  # a band edge: the same bands as on one thread
    if split < halo or split >= h:
        _filter_bands(up, guide, range(0, h, band), band, halo, r, eps, lo, hi)
        return up
    # each half reads the other's rows beside the split as they were upsampled, before either writes them
    above, below = up[split - halo:split].copy(), up[split:split + halo].copy()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-upsample") as pool:
        top = pool.submit(_filter_bands, up, guide, range(0, split, band), band, halo, r, eps, lo, hi, below=below)
        _filter_bands(up, guide, range(split, h, band), band, halo, r, eps, lo, hi, kept=above)
        top.result()
    return up


def _filter_bands(up: np.ndarray, guide: np.ndarray, starts: range, band: int, halo: int, r: int, eps: float,
                  lo: np.float32, hi: np.float32, *, kept: np.ndarray | None = None,
                  below: np.ndarray | None = None) -> None:
    """Guide the bands of ``up`` starting at ``starts``, in place, in order: each band from its rows and the ``halo``
    rows around it as upsampled (``kept``: those above the first band; ``below``: those under the last one, when
    another thread may have written them)."""
    h, end = up.shape[0], min(up.shape[0], starts.stop)
    for y0 in starts:
        y1 = min(h, y0 + band)
        a, b = max(0, y0 - halo), min(h, y1 + halo)
        src = up[a:b].copy()
        if kept is not None:
            src[:y0 - a] = kept
        if below is not None and b > end:
            src[end - a:] = below[:b - end]
        kept = up[max(0, y1 - halo):y1].copy()
        filtered = guided_filter(to_grey(guide[a:b]), src, r, eps)
        np.clip(filtered[y0 - a:y1 - a], lo, hi, out=up[y0:y1])
