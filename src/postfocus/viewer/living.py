"""What the page needs to make the picture live: depth for parallax, a background layer, the focus-pull hint.

The page and the web app tilt the picture as the pointer moves or the phone
turns (``living.js``): every pixel moves by an amount proportional to its
depth relative to the zero-parallax plane, here the background, so the
background stays put (and the picture's borders with it) while the
foreground moves against it. That needs

* the edge-aware, full-resolution depth map (:func:`postfocus.products.depth.depth_map`)
  at the page's picture size, as an 8-bit PNG spread over the scene's depth
  range (2nd to 98th percentile), 0 = nearest;
* a **background layer**: what lies behind the edges of near objects, where
  a tilt uncovers it. A focus sweep is shot from one place, so no frame sees
  behind an edge; the layer is made by background-side propagation (as the
  hole filling of depth-image-based rendering, Fehn 2004): near pixels within
  the reach of the largest tilt of a farther region take, step by step, the
  colour and depth of their farthest neighbour, so the background grows into
  the band that a tilt can uncover and the foreground never does. The
  layer is small (half the picture's long edge) and only shows in those
  bands;
* the order of the frames from near to far, for a short focus pull that the
  page plays once when it opens (a hint that the picture can be refocused).

References
----------
C. Fehn, "Depth-image-based rendering (DIBR), compression and transmission
for a new approach on 3D-TV", Proc. SPIE 5291, 2004.
"""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

__all__ = ["AMPLITUDE", "DEPTH_STEPS", "PULL_MS", "background_layer", "depth_levels", "living_data"]

AMPLITUDE = 0.02
"""Largest shift of the nearest pixels at a full tilt, as a share of the picture's width."""

DEPTH_STEPS = 64
"""Depth levels the page's depth map takes."""

PULL_MS = 2400
"""Length of the focus pull the page plays when it opens (near to far and back)."""

_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def depth_levels(depth: np.ndarray, steps: int = DEPTH_STEPS) -> tuple[np.ndarray, float, float]:
    """Depth spread over 0..255 between its 2nd and 98th percentiles (0 = nearest); and those two depths.

    The levels take ``steps`` values (64: a step moves a pixel by at most half a pixel at a full tilt of a
    1600-pixel picture), which the PNG keeps in half the bytes of 256.

    Examples
    --------
    >>> levels, lo, hi = depth_levels(np.tile(np.linspace(0, 7, 50, dtype=np.float32), (4, 1)))
    >>> int(levels.min()), int(levels.max()), round(lo, 2), round(hi, 2)
    (0, 255, 0.14, 6.86)
    """
    lo, hi = (float(v) for v in np.percentile(depth, [2, 98]))
    span = max(hi - lo, 1e-3)
    t = np.clip((np.asarray(depth, np.float32) - lo) / span, 0.0, 1.0)
    levels = np.round(t * (steps - 1)) * (255.0 / (steps - 1))
    return np.round(levels).astype(np.uint8), lo, hi


def background_layer(image: np.ndarray, levels: np.ndarray, reach: int, *,
                     jump: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Colours and depth levels of what lies behind near edges, ``reach`` pixels into the near side.

    Parameters
    ----------
    image : float32 (H, W, 3) picture in [0, 1].
    levels : uint8 (H, W) depth levels, 0 = nearest, 255 = farthest.
    reach : largest shift a tilt makes at this size, in pixels: how far behind an edge the layer must know.
    jump : depth step (levels) that makes an edge.

    Returns
    -------
    (float32 (H, W, 3) colours, uint8 (H, W) depth levels): the picture itself away from near edges.

    Examples
    --------
    >>> img = np.zeros((9, 9, 3), np.float32); img[:, 5:] = 1.0   # far white on the right
    >>> lev = np.zeros((9, 9), np.uint8); lev[:, 5:] = 255       # near black on the left
    >>> colour, depth = background_layer(img, lev, 2)
    >>> colour[4, :, 0].tolist()  # the near side 3 px (reach + 1) deep behind the edge takes the far colour
    [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    d = levels.astype(np.float32)
    r = max(1, int(reach))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * r + 1, 4 * r + 1))
    # Sources: pixels at the far level of their surroundings (twice the reach, so a near object's own
    # inside never grows into the band before the background has filled it).
    source = d >= cv2.dilate(d, disc) - jump
    colour = np.asarray(image, np.float32).copy()
    depth = d.copy()
    known = source.copy()
    h, w = d.shape
    for _ in range(r + 1):
        todo = ~known
        if not todo.any():
            break
        best_depth = np.full((h, w), -1.0, np.float32)
        best_colour = np.zeros_like(colour)
        pad_d = np.pad(np.where(known, depth, -1.0), 1, constant_values=-1.0)
        pad_c = np.pad(colour, ((1, 1), (1, 1), (0, 0)), mode="edge")
        for dy, dx in _NEIGHBOURS:
            nd = pad_d[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            better = nd > best_depth
            best_depth = np.where(better, nd, best_depth)
            best_colour = np.where(better[..., None], pad_c[1 + dy:1 + dy + h, 1 + dx:1 + dx + w], best_colour)
        take = todo & (best_depth >= 0) & (best_depth > depth)  # only ever the farther side
        colour[take] = best_colour[take]
        depth[take] = best_depth[take]
        known |= take
    return colour, np.round(depth).astype(np.uint8)


def living_data(frames_near_first: list[int], image: np.ndarray, depth: np.ndarray,
                raster: Callable[[str, np.ndarray], dict], picture: Callable[[str, np.ndarray], str], *,
                pull_on_load: bool = True) -> dict:
    """The ``living`` object of the page's data (see ``living.js``).

    Parameters
    ----------
    frames_near_first : slots of the page's frames ordered from near to far (the focus pull's path).
    image : float32 (h, w, 3) the all-in-focus picture at the page's size.
    depth : float32 (h, w) depth in frame units at the same size (0 = nearest frame).
    raster : makes a Raster of the data contract from (name, uint8 pixels).
    picture : makes a picture's src from (name, float image).
    pull_on_load : play the focus pull when the page opens.

    Returns
    -------
    dict, JSON-serialisable.
    """
    levels, lo, hi = depth_levels(depth)
    h, w = levels.shape
    scale = min(1.0, 800 / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_levels = cv2.resize(levels, size, interpolation=cv2.INTER_NEAREST)
    reach = int(math.ceil(AMPLITUDE * size[0] * 1.25)) + 2
    bg, bg_levels = background_layer(small, small_levels, reach)
    return {
        "depth": {**raster("living_depth", levels), "near": lo, "far": hi},
        "background": picture("living_background", bg),
        "backgroundDepth": raster("living_background_depth", bg_levels),
        "zero": 255,
        "amplitude": AMPLITUDE,
        "pull": {"order": [int(k) for k in frames_near_first], "ms": PULL_MS, "onLoad": bool(pull_on_load)},
    }
