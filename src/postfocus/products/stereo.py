"""Stereo pairs from one viewpoint: left and right views by depth-image-based rendering.

A focus sweep is shot from one place, but its depth map says how far every
pixel is, which is what a second viewpoint needs. Following Fehn's
depth-image-based rendering (DIBR), each view is made from the all-in-focus
image and the depth map:

1. **Disparity.** Depth is in frame units, evenly spaced in inverse distance
   (see :mod:`postfocus.products.aperture`), and the disparity of two pinhole
   views is linear in inverse distance, so disparity is linear in depth:
   ``d = strength * width * (zero - depth) / range``. ``zero`` is the
   zero-parallax plane (it stays in place; nearer is in front of the screen,
   farther behind), ``range`` the scene's depth range (2nd to 98th percentile,
   at least a quarter of the sweep, so a flat scene is not blown up) and
   ``strength`` the total disparity across it as a share of the width (depths
   beyond that range count as its ends). The left view moves every pixel by
   ``+d / 2``, the right by ``-d / 2``.
2. **Forward warp with z-ordering.** Every source pixel's shift is splatted
   to its target pixel; where several land on one pixel, the nearest wins (a
   z-buffer), so a foreground covers the background it moves over. The
   colours are then sampled backwards, with sub-pixel (bilinear) accuracy,
   at the target pixel minus its warped shift.
3. **Holes.** Where no source pixel lands, the view sees something the camera
   did not: background beside a foreground edge (a disocclusion; the aligned
   frames see it no better, all of them are taken from the same place). One
   pixel cracks of a stretched surface take its own colour; a disocclusion is
   filled from its background side only (never the foreground), by mirroring
   the background's texture across the hole's edge, so it is neither smeared
   nor a copy of the object.

References
----------
C. Fehn, "Depth-image-based rendering (DIBR), compression and transmission
for a new approach on 3D-TV", Proc. SPIE 5291, Stereoscopic Displays and
Virtual Reality Systems XI, 2004.

E. Dubois, "A projection method to generate anaglyph stereo images",
Proc. IEEE ICASSP 2001 (the red-cyan anaglyph matrices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from postfocus.colour import gamma_decode, gamma_encode
from postfocus.errors import OptionError, PostfocusError
from postfocus.options import check_threads, is_number, is_whole
from postfocus.store import ProcessedStack

__all__ = ["BAND_ROWS", "DEFAULT_STRENGTH", "StereoPair", "anaglyph", "check_strength", "disparity", "render_view", "side_by_side", "stereo",
           "stereo_pair", "wiggle_frames"]

DEFAULT_STRENGTH = 0.02
"""Total disparity across the scene's depth range, as a share of the image width (2 %)."""

_DUBOIS_LEFT = np.asarray([[0.456, 0.500, 0.176], [-0.040, -0.038, -0.016], [-0.015, -0.021, -0.005]], np.float32)
_DUBOIS_RIGHT = np.asarray([[-0.043, -0.088, -0.002], [0.378, 0.734, -0.018], [-0.072, -0.113, 1.226]], np.float32)


@dataclass
class StereoPair:
    """Left and right views made from one image and its depth.

    Attributes
    ----------
    left, right : float32 (H, W, 3) views in [0, 1].
    disparity : float32 (H, W) left-minus-right shift of each source pixel, in pixels (positive = near).
    zero : depth of the zero-parallax plane (frame units).
    holes : share of the pixels of the two views that no source pixel reached (filled).
    """

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    zero: float
    holes: float


def _check(image: np.ndarray, depth: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image, np.float32)
    depth = np.asarray(depth, np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise PostfocusError(f"image must be RGB (H, W, 3), got shape {image.shape}")
    if depth.shape != image.shape[:2]:
        raise PostfocusError(f"depth map {depth.shape} and image {image.shape[:2]} must be the same size")
    if not np.isfinite(depth).all():
        raise PostfocusError("depth map has NaN or infinite values")
    check_strength(strength)
    return image, depth


def check_strength(strength: float) -> None:
    """Refuse a stereo strength outside 0..0.2 of the width (OptionError on ``strength``)."""
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and 0 <= strength <= 0.2):
        raise OptionError("strength", strength, "use 0 to 0.2 (a share of the width; 0.02 is gentle)")


def disparity(depth: np.ndarray, *, strength: float = DEFAULT_STRENGTH, zero: float | None = None,
              frames: int | None = None) -> tuple[np.ndarray, float]:
    """Left-minus-right disparity in pixels of every pixel, and the zero-parallax depth used.

    Parameters
    ----------
    depth : float32 (H, W) depth in frame units (0 = nearest frame).
    strength : total disparity across the scene's depth range, as a share of the width.
    zero : depth that stays in place (default: the middle of the scene's depth range).
    frames : frames of the sweep (the scene's range counts at least a quarter of it).

    Returns
    -------
    (float32 (H, W) disparity, zero)

    Examples
    --------
    >>> d = np.tile(np.linspace(0, 4, 5, dtype=np.float32), (2, 1))
    >>> disp, z = disparity(d, strength=0.2, zero=2.0)
    >>> disp[0].tolist(), z
    ([0.5, 0.25, 0.0, -0.25, -0.5], 2.0)
    """
    # (a NaN or infinite zero, or one no view of the scene reaches, was an IndexError; "1" was taken as 1.0;
    # frames="6" was a TypeError, 0 and -3 were taken)
    if zero is not None and not (is_number(zero) and math.isfinite(zero)):
        raise OptionError("zero", zero, "must be a depth in frames (a finite number), or None")
    if frames is not None and not (is_whole(frames) and frames >= 1):
        raise OptionError("frames", frames, "must be the sweep's number of frames (a whole number from 1), or None")
    lo, hi = (float(v) for v in np.percentile(depth, [2, 98]))
    span = max(hi - lo, 0.25 * max((frames or 1) - 1, 0), 1e-3)
    zero = 0.5 * (lo + hi) if zero is None else float(zero)
    width = depth.shape[1]
    inside = np.clip(depth, lo, hi)  # a stray depth beyond the scene's range must not fly out of the picture
    with np.errstate(over="ignore"):  # a zero plane far from the scene: every pixel shifts out of the view
        disp = np.clip(strength * width * (zero - inside) / span, -2.0 * width, 2.0 * width)
    return disp.astype(np.float32), zero


def _nearest_hit(hit: np.ndarray, forward: bool) -> np.ndarray:
    """Column of the nearest hit pixel at or before (``forward``) / at or after each pixel of its row; -1 if none."""
    h, w = hit.shape
    cols = np.broadcast_to(np.arange(w), (h, w))
    if forward:
        return np.maximum.accumulate(np.where(hit, cols, -1), axis=1)
    rev = np.maximum.accumulate(np.where(hit[:, ::-1], cols, -1), axis=1)[:, ::-1]
    return np.where(rev >= 0, w - 1 - rev, -1)


BAND_ROWS = 256
"""Rows warped at a time (a view's rows are independent: the shift is horizontal)."""


def render_view(image: np.ndarray, depth: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One view: every source pixel moved right by ``shift`` pixels, nearest first, holes filled.

    Parameters
    ----------
    image : float32 (H, W, 3) in [0, 1].
    depth : float32 (H, W), 0 = nearest (decides who covers whom).
    shift : float32 (H, W) horizontal shift of each source pixel (pixels, + = right).

    Returns
    -------
    (float32 (H, W, 3) view, bool (H, W) holes: pixels no source pixel reached)
    """
    h, w = depth.shape
    lo, hi = float(depth.min()), float(depth.max())
    view = np.empty((h, w, 3), np.float32)
    holes = np.empty((h, w), bool)
    for y0 in range(0, h, BAND_ROWS):
        rows = slice(y0, min(h, y0 + BAND_ROWS))
        view[rows], holes[rows] = _render_rows(np.asarray(image[rows], np.float32), depth[rows], shift[rows], lo, hi)
    return view, holes


def _render_rows(image: np.ndarray, depth: np.ndarray, shift: np.ndarray, lo: float,
                 hi: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = depth.shape
    rows = np.repeat(np.arange(h, dtype=np.int64), w)
    target = np.rint(np.arange(w, dtype=np.float32)[None, :] + shift).astype(np.int64).ravel()
    ok = (target >= 0) & (target < w)
    pix = rows[ok] * w + target[ok]
    d = depth.ravel()[ok]
    top = 2**20 - 1
    nearness = np.clip((hi - d) / max(hi - lo, 1e-9) * top, 0, top).astype(np.int64)
    order = np.argsort((pix << 20) | nearness, kind="stable")
    pix_s = pix[order]
    last = np.r_[pix_s[1:] != pix_s[:-1], True][:pix_s.size]  # the nearest source pixel of each target pixel
    # ([:size]: rows none of whose pixels lands in the view, with the zero plane far from the scene, are all hole)
    winners = np.flatnonzero(ok)[order[last]]
    warped_shift = np.zeros(h * w, np.float32)
    warped_depth = np.full(h * w, np.float32(lo), np.float32)
    hit = np.zeros(h * w, bool)
    warped_shift[pix_s[last]] = shift.ravel()[winners]
    warped_depth[pix_s[last]] = d[order[last]]
    hit[pix_s[last]] = True
    warped_shift, warped_depth, hit = (a.reshape(h, w) for a in (warped_shift, warped_depth, hit))
    holes = ~hit
    # Each hole takes the shift and depth of its background side: the nearer-hit neighbour that is farther away.
    left, right = _nearest_hit(hit, True), _nearest_hit(hit, False)
    yy = np.arange(h)[:, None]
    d_left = np.where(left >= 0, warped_depth[yy, np.maximum(left, 0)], -np.inf)
    d_right = np.where(right >= 0, warped_depth[yy, np.maximum(right, 0)], -np.inf)
    use_left = d_left >= d_right
    edge = np.where(use_left, left, right)
    any_side = edge >= 0
    edge = np.maximum(edge, 0)
    bg_shift = warped_shift[yy, edge]
    bg_depth = warped_depth[yy, edge]
    fill = holes & any_side
    warped_shift = np.where(fill, bg_shift, warped_shift)
    map_x = (np.arange(w, dtype=np.float32)[None, :] - warped_shift).astype(np.float32)
    map_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1)
    view = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # A hole whose source pixel is the background itself is a crack of a stretched surface: keep the sample.
    # One whose source is nearer than its background edge is a disocclusion: mirror the background across the edge.
    src_x = np.clip(np.rint(map_x).astype(np.int64), 0, w - 1)
    src_depth = depth[yy, src_x]
    tolerance = max(0.05 * (hi - lo), 1e-3)
    disoccluded = fill & (src_depth < bg_depth - tolerance)
    if disoccluded.any():
        cols = np.arange(w)[None, :]
        mirror = np.clip(2 * edge - cols, 0, w - 1)  # as far into the background as the pixel is into the hole
        good = hit[yy, mirror] & (warped_depth[yy, mirror] >= bg_depth - tolerance)
        source_col = np.where(good, mirror, edge)
        view = np.where(disoccluded[..., None], view[yy, source_col], view)
    return np.clip(view, 0.0, 1.0).astype(np.float32), holes


def stereo_pair(image: np.ndarray, depth: np.ndarray, *, strength: float = DEFAULT_STRENGTH,
                zero: float | None = None, frames: int | None = None) -> StereoPair:
    """Left and right views of an all-in-focus image and its depth map (see the module's description).

    Parameters
    ----------
    image : float32 (H, W, 3) all-in-focus image in [0, 1].
    depth : float32 (H, W) depth in frame units (0 = nearest frame).
    strength : total disparity across the scene's depth range, as a share of the width.
    zero : zero-parallax depth (default: the middle of the scene's range).
    frames : frames of the sweep.

    Returns
    -------
    StereoPair

    Examples
    --------
    >>> img = np.random.default_rng(0).random((20, 40, 3)).astype(np.float32)
    >>> d = np.zeros((20, 40), np.float32); d[:, 20:] = 5
    >>> pair = stereo_pair(img, d, strength=0.1)
    >>> pair.left.shape, round(float(pair.disparity.max() - pair.disparity.min()), 1)
    ((20, 40, 3), 4.0)
    """
    image, depth = _check(image, depth, strength)
    disp, zero = disparity(depth, strength=strength, zero=zero, frames=frames)
    left, holes_l = render_view(image, depth, 0.5 * disp)
    right, holes_r = render_view(image, depth, -0.5 * disp)
    share = float(0.5 * (holes_l.mean() + holes_r.mean()))
    return StereoPair(left=left, right=right, disparity=disp, zero=zero, holes=share)


def stereo(stack: ProcessedStack, *, strength: float = DEFAULT_STRENGTH, zero: float | None = None,
           progress: Callable[[str, int, int], None] | None = None, threads: int | None = None) -> StereoPair:
    """Stereo pair of a processed stack: its all-in-focus image and full-resolution depth map.

    ``progress(stage, done, total)``, optional, hears of the all-in-focus image and the depth map when the stack
    has not made them yet; ``threads`` is their thread budget when they are made (None: the machine's cores).

    Examples
    --------
    >>> from postfocus import process
    >>> pair = stereo(process("beetle/"), strength=0.02)  # doctest: +SKIP
    """
    from postfocus.products.depth_cache import stack_depth

    threads = check_threads(threads)  # (refused before any work)
    image = stack.all_in_focus(progress=progress, threads=threads)
    result = stack_depth(stack, image=image, progress=progress, threads=threads)
    return stereo_pair(image, result.depth, strength=strength, zero=zero, frames=result.frames)


def side_by_side(pair: StereoPair, *, cross: bool = False, gap: int = 0) -> np.ndarray:
    """The two views next to each other: left on the left (parallel viewing), or swapped (``cross``-eyed).

    Parameters
    ----------
    pair : StereoPair
    cross : bool
        Right view on the left, for cross-eyed viewing.
    gap : int
        Black columns between the views.

    Returns
    -------
    float32 (H, 2 W + gap, 3) image.
    """
    a, b = (pair.right, pair.left) if cross else (pair.left, pair.right)
    h = a.shape[0]
    spacer = np.zeros((h, max(0, int(gap)), 3), np.float32)
    return np.concatenate([a, spacer, b], axis=1)


def anaglyph(pair: StereoPair) -> np.ndarray:
    """Red-cyan anaglyph (Dubois's least-squares projection in linear light): left eye red, right eye cyan.

    Parameters
    ----------
    pair : StereoPair

    Returns
    -------
    float32 (H, W, 3) image in [0, 1].

    References
    ----------
    E. Dubois, "A projection method to generate anaglyph stereo images", ICASSP 2001.
    """
    left, right = gamma_decode(pair.left), gamma_decode(pair.right)
    mixed = left @ _DUBOIS_LEFT.T + right @ _DUBOIS_RIGHT.T
    return gamma_encode(np.clip(mixed, 0.0, 1.0))


def wiggle_frames(image: np.ndarray, depth: np.ndarray, *, strength: float = DEFAULT_STRENGTH,
                  zero: float | None = None, frames: int | None = None, count: int = 8) -> list[np.ndarray]:
    """Views swinging from the left eye's to the right eye's and back (a wiggle stereogram).

    Parameters
    ----------
    image, depth, strength, zero, frames
        As for :func:`stereo_pair`.
    count : int
        Views in one swing (on a sine: the middle view, the left eye's, the middle, the right eye's).

    Returns
    -------
    list of float32 (H, W, 3) views.
    """
    image, depth = _check(image, depth, strength)
    if not is_whole(count) or not 2 <= count <= 1000:  # ("3" was a TypeError, 10**9 a MemoryError)
        raise PostfocusError(f"a wiggle needs 2 to 1000 views, got {count!r:.30}")
    disp, _ = disparity(depth, strength=strength, zero=zero, frames=frames)
    phases = np.sin(2 * np.pi * np.arange(count) / count)
    return [render_view(image, depth, 0.5 * float(p) * disp)[0] for p in phases]
