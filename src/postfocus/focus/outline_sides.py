"""Depth edges placed to the pixel: each pixel beside a depth step takes the side its own focus evidence shows.

The focus measure is a window's energy, and the aggregation before the peak
fit widens it again, so beside an occlusion edge a pixel's depth is decided by
what the window around it saw: the near outline, sharp in the frames focused
on it, lends its energy to the far pixels next to it (the near side is read a
pixel or two too wide), and the far texture, sharp in its own frames, to the
near pixels next to it. What the pixel itself is shows in the frames: a far
pixel is sharp far texture in the frames focused far and blurred, partly
hidden by the near object's blurred light, in the frames focused near (partial
occlusion: Bhasin & Chaudhuri 2001; Favaro & Soatto 2003); a near pixel the
reverse. :func:`pixel_sides` reads that evidence in the *stored* focus volume
(the measure before any aggregation, the narrowest window the stack keeps) as
the log ratio of the pixel's measure in the far side's frame to the near
side's, and compares it with the same ratio over each side's interior around
it (the pixels off the step, whose side is not in doubt; a pixel's own focus
curve as in confocal stereo, Hasinoff & Kutulakos 2009). The two sides are
the nearest and farthest depths within ``band + 1`` px of the pixel, each
described by the pixels of the disc around it that lie off the band on its
side of their middle, if their mean depth is within a step (``jump``) of it
(a nearer surface farther off is not the step's near side). The decisions are
ranks among the stack's own pixels, no level in the measure's units:

* a pixel read near goes to the far side where the two interiors are told
  apart by the ratio (nine in ten near pixels below one in ten far ones, the
  near interior's median sharper in the near frame, the far one's in the far
  frame) and its own ratio is beyond nine in ten of the near interior's and
  at least the far interior's median;
* a pixel read far goes to the near side only where every interior pixel but
  a tenth of each side is sharper in its own side's frame, and its own ratio
  is under one in ten far pixels' and at most the near interior's median. The
  near outline's own contrast, sharp in the near frame, lowers the ratio of
  the far pixels beside it (it is what fattened the near side): that evidence
  for "near" is weaker than evidence for "far", so it needs both interiors
  clear.

A side with fewer than ``_LEAST`` pixels off the band in the disc (a pin, a
blade of grass a few pixels wide, all of it near a step) is not described and
the pixel stays. A pass moves a step by a pixel; a second pass decides the
pixels beside the step where it now lies.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import cv2
import numpy as np

from postfocus.focus.turns import in_turns

__all__ = ["Interiors", "interiors", "pixel_sides", "step_rounds"]

_CHUNK = 4096  # band pixels whose discs are gathered at once (4096 x 197 values per array at reach 8: ~3 MB)
_LEAST = 5  # interior pixels a side needs within the window before its ranks say anything


def pixel_sides(depth: np.ndarray, volume: np.ndarray, *, jump: float, floor: float = 0.0, band: int = 1,
                reach: int = 8, rounds: int = 2, threads: int = 1) -> np.ndarray:
    """``depth`` with the pixels beside a depth step given the side their own focus measure shows.

    Parameters
    ----------
    depth : float32 (H, W) depth in slices of ``volume`` (0 = its first slice).
    volume : float (N, H, W) focus measure of each slice, before aggregation (the stored volume).
    jump : depth step (slices) between neighbouring pixels that makes a depth edge.
    floor : the measure's noise floor (added before the logarithm: a ratio of noise says nothing).
    band : pixels within this many px of a step pixel (a pixel whose 3x3 spans more than ``jump``) are decided.
    reach : radius (px) of the disc whose pixels outside the band describe the two sides
        (:func:`~postfocus.products.depth.refine_depth` passes twice the measure's reach).
    rounds : passes at most (a pixel decided moves the step: its neighbours are decided in the next).
    threads : 1, or 2: a pass's batches of pixels decided on the calling thread and a helper in turns (the same bits).

    Returns
    -------
    float32 (H, W): ``depth`` with the decided pixels set to the mean depth of their side's interior around them.

    References
    ----------
    S. S. Bhasin, S. Chaudhuri, "Depth from defocus in presence of partial self occlusion", ICCV 2001.
    P. Favaro, S. Soatto, "Seeing beyond occlusions (and other marvels of a finite lens aperture)", CVPR 2003.
    S. W. Hasinoff, K. N. Kutulakos, "Confocal stereo", IJCV 81(1), 2009.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> texture = rng.random((24, 24)).astype(np.float32)
    >>> vol = np.stack([np.where(np.arange(24) < 12, 1.0, 0.1) * texture,  # frame 0: the near half sharp
    ...                 np.where(np.arange(24) < 12, 0.1, 1.0) * texture])  # frame 1: the far half
    >>> d = np.zeros((24, 24), np.float32); d[:, 14:] = 1.0  # the near side read two columns too wide
    >>> pixel_sides(d, vol, jump=0.5)[12, 10:16].tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """
    d = np.asarray(depth, np.float32)
    h, w = d.shape
    n = volume.shape[0]
    if n < 2:
        return d.copy() if d is depth else d
    flat_vol = np.asarray(volume).reshape(n, h * w)  # (a view of a contiguous volume: nothing copied)
    low = np.float32(floor + 1e-12)
    out = step_rounds(d, lambda flat_d, flat_in, at, lo, hi: _decide(flat_d, flat_in, flat_vol, at, [lo, hi], low,
                                                                        jump=jump),
                      jump=jump, band=band, reach=reach, rounds=rounds, threads=threads)
    return out.copy() if out is depth else out


def step_rounds(depth: np.ndarray, decide: Callable[..., np.ndarray], *, jump: float, band: int, reach: int,
                rounds: int, threads: int = 1) -> np.ndarray:
    """The passes over the pixels beside a depth step that :func:`pixel_sides` and
    :func:`~postfocus.focus.frame_sides.frame_sides` make: ``depth`` with each band pixel given what ``decide`` says.

    ``decide(flat_d, flat_in, at, lo, hi)`` gets the flat depth, the flat "off the band" mask, per band pixel the flat
    indices of its disc (edge-clamped, the pixel in the middle) and the nearest and farthest depth beside it, and
    returns the pixels' depths. After the first pass only the pixels near a changed one are decided again (a decision
    reads the depths within ``reach + band + 2`` px: the same result, less work). Returns ``depth`` itself when no
    pass changed a pixel. With ``threads`` 2 a pass's batches are decided on the calling thread and a helper in turns
    (:func:`~postfocus.focus.turns.in_turns`; the same bits): ``decide`` must then be safe on two threads.
    """
    d = depth
    h, w = d.shape
    yy, xx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    disc = yy * yy + xx * xx <= reach * reach
    oy, ox = yy[disc], xx[disc]
    three = np.ones((3, 3), np.uint8)
    near_change = np.ones((2 * (reach + band + 2) + 1,) * 2, np.uint8)
    changed = None
    for _ in range(rounds):
        step = ((cv2.dilate(d, three) - cv2.erode(d, three)) > jump).astype(np.uint8)
        inband = cv2.dilate(step, np.ones((2 * band + 1, 2 * band + 1), np.uint8)) > 0
        todo = inband if changed is None else inband & (cv2.dilate(changed.astype(np.uint8), near_change) > 0)
        ys, xs = np.nonzero(todo)
        if ys.size == 0:
            break
        flat_d, flat_in = d.ravel(), ~inband.ravel()
        beside = np.ones((2 * band + 3, 2 * band + 3), np.uint8)  # the two depths the step is between
        lo_map, hi_map = cv2.erode(d, beside), cv2.dilate(d, beside)
        out = d.copy()

        def batch(i: int) -> np.ndarray:  # (a bounded batch of pixels at a time: bounded memory)
            cy, cx = ys[i:i + _CHUNK], xs[i:i + _CHUNK]
            at = (np.clip(cy[:, None] + oy, 0, h - 1) * w + np.clip(cx[:, None] + ox, 0, w - 1))  # edge-clamped
            return decide(flat_d, flat_in, at, lo_map[cy, cx], hi_map[cy, cx])

        starts = range(0, ys.size, _CHUNK)  # (each batch reads the round's depth only: the batches in turns)
        for i, decided in zip(starts, in_turns(batch, starts, threads=threads)):
            out[ys[i:i + _CHUNK], xs[i:i + _CHUNK]] = decided
        changed = out != d
        if not changed.any():
            break
        d = out
    return d


class Interiors(NamedTuple):
    """Per band pixel: its own depth, the step's middle (a column), the disc's off-band pixels on the near and the
    far side of it (masks) and their counts, the two sides' mean depths and slices, and whether both sides are
    described (at least ``_LEAST`` pixels each, the step more than ``jump``, each mean near its side's depth)."""

    own: np.ndarray
    mid: np.ndarray
    near: np.ndarray
    far: np.ndarray
    cn: np.ndarray
    cf: np.ndarray
    dn: np.ndarray
    df: np.ndarray
    kn: np.ndarray
    kf: np.ndarray
    ok: np.ndarray


def interiors(flat_d: np.ndarray, flat_in: np.ndarray, at: np.ndarray, lo: np.ndarray, hi: np.ndarray, *,
              count: int, jump: float) -> Interiors:
    """The two sides of each band pixel's disc (``at``: flat indices, the pixel in the middle; ``lo``, ``hi``: the
    nearest and farthest depth beside it), among ``count`` slices, as :class:`Interiors`."""
    v = flat_d[at]
    use = flat_in[at]
    own = v[:, at.shape[1] // 2]
    mid = (0.5 * (lo + hi))[:, None]
    near, far = use & (v < mid), use & (v >= mid)
    cn, cf = near.sum(axis=1), far.sum(axis=1)
    dn = (v * near).sum(axis=1) / np.maximum(cn, 1)
    df = (v * far).sum(axis=1) / np.maximum(cf, 1)
    # (a NaN depth in the disc makes its side's mean NaN: not ok below, and read at slice 0, not cast to an index)
    kn = np.clip(np.rint(np.nan_to_num(dn)), 0, count - 1).astype(np.int64)
    kf = np.clip(np.rint(np.nan_to_num(df)), 0, count - 1).astype(np.int64)
    ok = (hi - lo > jump) & (cn >= _LEAST) & (cf >= _LEAST) & (kf > kn) & (np.abs(dn - lo) < jump)
    ok &= np.abs(df - hi) < jump
    return Interiors(own, mid, near, far, cn, cf, dn, df, kn, kf, ok)


def _decide(flat_d: np.ndarray, flat_in: np.ndarray, flat_vol: np.ndarray, at: np.ndarray, sides: list[np.ndarray],
            floor: np.float32, *, jump: float) -> np.ndarray:
    """The depth of each band pixel (row of ``at``, flat indices of its disc, the pixel itself in the middle;
    ``sides`` the nearest and farthest depth beside it): its own, or the other side's interior mean."""
    lo, hi = sides
    own, mid, near, far, cn, cf, dn, df, kn, kf, ok = interiors(flat_d, flat_in, at, lo, hi,
                                                                count=flat_vol.shape[0], jump=jump)
    # the log ratio of the far side's frame's measure to the near side's, at every pixel of the disc
    ratio = np.log(flat_vol[kf[:, None], at] + floor) - np.log(flat_vol[kn[:, None], at] + floor)
    mine = ratio[:, at.shape[1] // 2]
    near_rank = _ranks(ratio, near, cn, (0.5, 0.9))
    far_rank = _ranks(ratio, far, cf, (0.1, 0.5))
    apart = ok & (near_rank[1] < far_rank[0]) & (near_rank[0] < 0.0) & (far_rank[1] > 0.0)
    strict = ok & (near_rank[1] < 0.0) & (far_rank[0] > 0.0)
    is_far = own >= mid[:, 0]
    # near -> far: the far side's frame explains the pixel although the near outline's contrast lowers its ratio
    to_far = apart & ~is_far & (mine > near_rank[1]) & (mine >= far_rank[1])
    # far -> near: only where both interiors are clear (a far pixel beside the outline reads lower, above)
    to_near = strict & is_far & (mine < far_rank[0]) & (mine <= near_rank[0])
    return np.where(to_far, df, np.where(to_near, dn, own)).astype(np.float32)


def _ranks(values: np.ndarray, member: np.ndarray, count: np.ndarray, shares: tuple[float, ...]) -> list[np.ndarray]:
    """Per row, the values of the members at the given shares of their count (nearest rank, smallest first)."""
    ordered = np.sort(np.where(member, values, np.inf), axis=1)
    rows = np.arange(values.shape[0])
    top = np.maximum(count - 1, 0)
    return [ordered[rows, np.minimum(np.floor(s * top).astype(np.int64), top)] for s in shares]
