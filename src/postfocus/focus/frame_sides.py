"""The pixels beside a depth step judged in the aligned frames: the finest focus measure and the pixel's appearance.

:func:`~postfocus.focus.outline_sides.pixel_sides` decides which side of a
depth step a pixel lies on from the stored focus volume, a 5 px window's
energy that straddles the outline from both sides. The frames themselves see
a pixel more nearly alone, and :func:`frame_sides` reads them, only where a
depth step is, in the two frames the step lies between (its near side's and
its far side's), with two kinds of evidence that must agree:

* *Focus, at the finest scale.* The squared 3x3 Laplacian of the frame,
  averaged over 3x3 (a Laplacian energy at the finest scale, of the family of
  Nayar & Nakagawa 1994), reaches 2 px, not the stored measure's 4. Its log ratio
  between the far side's frame and the near side's, placed between the medians
  of the two sides' interiors (0: like the near interior, 1: like the far),
  must lie in the other side's outer part (beyond ``0.5 + margin``).
* *Appearance, in each frame.* A near pixel looks like the near surface in the
  frame focused on it and like the near surface's blur over the far one in the
  frame focused far, a far pixel like the far surface's blurred view in the
  first and its sharp texture in the second (partial occlusion: Favaro &
  Soatto 2003). Among the interior pixels of the disc whose intensity in that
  frame is nearest the pixel's (the ``neighbours`` nearest, as a
  nearest-neighbour classifier), the other side must hold the majority, in both
  frames. A smooth near object (a shaded pin, a blade of one colour) gives the
  focus evidence nothing to read, and the outline's own contrast makes its edge
  pixel look far by focus; its appearance in one of the two frames keeps it.

The interiors, the two depths and the decided pixel's new depth (its side's
interior mean) are those of :func:`~postfocus.focus.outline_sides.pixel_sides`
(the pixels of the disc off the band, on either side of the step's middle).
No level is in the frames' units: the measure's floor is each frame's own
noise (its Laplacian's energy on a noise of the frame's measured sigma), the
rest are ranks and majorities among the stack's own pixels. Given the stored
volume, only the pixels whose stored measure leans to the other side already
are judged in the frames (the cost: :mod:`postfocus.products.depth_frames`).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from postfocus.focus.measure import noise_sigma
from postfocus.focus.outline_sides import interiors, step_rounds
from postfocus.focus.turns import in_turns

__all__ = ["frame_sides"]

_LAPLACE_NOISE = 80.0  # energy of cv2's 3x3 Laplacian (2 0 2 / 0 -8 0 / 2 0 2) on white noise of unit sigma


def frame_sides(depth: np.ndarray, frames: Callable[[int], np.ndarray], *, count: int, jump: float, band: int = 1,
                reach: int = 8, rounds: int = 2, margin: float = 0.2, neighbours: int = 5,
                volume: np.ndarray | None = None, floor: float = 0.0, lean: float = 0.5, threads: int = 1) -> np.ndarray:
    """``depth`` with the pixels beside a depth step given the side the two sides' frames show.

    Parameters
    ----------
    depth : float32 (H, W) depth in slices (0 = the first, ``count - 1`` the last).
    frames : ``frames(k)``: slice ``k``'s aligned frame, float32 grey (H, W) in [0, 1] (read only when asked).
    count : number of slices.
    jump : depth step (slices) between neighbouring pixels that makes a depth edge.
    band : pixels within this many px of a step pixel (a pixel whose 3x3 spans more than ``jump``) are decided.
    reach : radius (px) of the disc whose pixels off the band describe the two sides.
    rounds : passes at most (a decided pixel moves the step: its neighbours are decided in the next).
    margin : the pixel's focus ratio must lie beyond ``0.5 + margin`` of the way towards the other interior.
    neighbours : interior pixels nearest in intensity that vote, in each frame.
    volume, floor : the stored focus volume (N, H, W) and its noise floor, if given: a pixel is judged in the frames
        only where the stored measure already leans to the other side (its log ratio beyond ``lean`` of the way
        from its own side's interior mean to the other's): fewer pixels to judge, the same frames read.
    lean : see ``volume``.
    threads : 1, or 2: the frames (and stored slices) a batch of pixels asks for are read and measured on the
        calling thread and a helper in turns (:func:`~postfocus.focus.turns.in_turns`; the same bits).

    Returns
    -------
    float32 (H, W): ``depth`` with the decided pixels set to the mean depth of their side's interior around them.

    References
    ----------
    S. K. Nayar, Y. Nakagawa, "Shape from focus", IEEE PAMI 16(8), 1994.
    P. Favaro, S. Soatto, "Seeing beyond occlusions (and other marvels of a finite lens aperture)", CVPR 2003.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> texture = rng.random((24, 24)).astype(np.float32)
    >>> blur = cv2.GaussianBlur(texture, (0, 0), 2.0)
    >>> left = np.arange(24) < 12
    >>> near = np.where(left, 0.2 + 0.2 * texture, 0.6 + 0.2 * blur)  # frame 0: a dark near half sharp
    >>> far = np.where(left, 0.3, 0.6 + 0.2 * texture)  # frame 1: the far half sharp, the near one blurred
    >>> d = np.zeros((24, 24), np.float32); d[:, 13:] = 1.0  # the near side read a column too wide
    >>> frame_sides(d, [near, far].__getitem__, count=2, jump=0.5)[12, 10:15].tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0]
    """
    d = np.array(depth, np.float32)
    if count < 2:
        return d
    seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    logs: dict[int, np.ndarray] = {}

    def read(k: int) -> tuple[np.ndarray, np.ndarray]:
        """Slice ``k``'s grey values and the log of its finest focus measure over its noise floor (both flat)."""
        grey = np.ascontiguousarray(frames(k), np.float32)
        lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
        fine = cv2.boxFilter(lap * lap, -1, (3, 3))
        return grey.ravel(), np.log(fine.ravel() + (_LAPLACE_NOISE * noise_sigma(grey) ** 2 + 1e-12))

    def stored_log(k: int) -> np.ndarray:
        """The log of the stored measure of slice ``k`` over its floor (flat)."""
        return np.log(np.asarray(volume[k], np.float32).ravel() + np.float32(floor + 1e-12))

    def ready(made: dict, make: Callable[[int], object]) -> Callable[[np.ndarray], Callable[[int], object]]:
        """``ask(slices)``: the slices not made yet made (in turns with a helper), then ``made[k]`` read by ``k``."""
        def ask(slices: np.ndarray) -> Callable[[int], object]:
            missing = [int(k) for k in np.unique(slices) if int(k) not in made]
            made.update(zip(missing, in_turns(make, missing, threads=threads)))
            return made.__getitem__
        return ask

    stored = None if volume is None else ready(logs, stored_log)
    return step_rounds(d, lambda flat_d, flat_in, at, lo, hi: _decide(
        flat_d, flat_in, at, lo, hi, ready(seen, read), count=count, jump=jump, margin=margin, neighbours=neighbours,
        stored=stored, lean=lean), jump=jump, band=band, reach=reach, rounds=rounds)


def _decide(flat_d: np.ndarray, flat_in: np.ndarray, at: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            frames: Callable[[np.ndarray], Callable[[int], tuple[np.ndarray, np.ndarray]]], *, count: int, jump: float,
            margin: float, neighbours: int, stored: Callable[[np.ndarray], Callable[[int], np.ndarray]] | None = None,
            lean: float = 0.5) -> np.ndarray:
    """The depth of each band pixel (row of ``at``, flat indices of its disc, the pixel in the middle; ``lo`` and
    ``hi`` the nearest and farthest depth beside it): its own, or the other side's interior mean. ``frames(slices)``
    and ``stored(slices)`` make the slices asked for and return a reader of one slice's flat frame (grey, log
    measure) or stored log measure."""
    centre = at.shape[1] // 2
    own, mid, near, far, cn, cf, dn, df, kn, kf, ok = interiors(flat_d, flat_in, at, lo, hi, count=count, jump=jump)
    if stored is not None and ok.any():  # only where the stored measure leans to the other side (interior means)
        sel = np.nonzero(ok)[0]
        log = stored(np.concatenate([kn[sel], kf[sel]]))
        r = _gather(log, kf[sel], at[sel]) - _gather(log, kn[sel], at[sel])
        n_, f_ = near[sel], far[sel]
        mn = (r * n_).sum(axis=1) / cn[sel]
        mf = (r * f_).sum(axis=1) / cf[sel]
        p = (r[:, centre] - mn) / np.where(mf > mn, mf - mn, 1.0)
        is_far_ = own[sel] >= mid[sel, 0]
        ok[sel] = (mf > mn) & np.where(is_far_, p < 1.0 - lean, p > lean)
    rows = np.nonzero(ok)[0]
    result = own.astype(np.float32)
    if rows.size == 0:
        return result
    at, near, far, own, mid = at[rows], near[rows], far[rows], own[rows], mid[rows, 0]
    kn, kf, cn, cf = kn[rows], kf[rows], cn[rows], cf[rows]
    frame = frames(np.concatenate([kn, kf]))  # (the frames these rows ask for, read and measured two at a time)
    grey_n, grey_f = _gather(lambda k: frame(k)[0], kn, at), _gather(lambda k: frame(k)[0], kf, at)
    ratio = _gather(lambda k: frame(k)[1], kf, at) - _gather(lambda k: frame(k)[1], kn, at)  # log far / near measure
    mn, mf = _median(ratio, near, cn), _median(ratio, far, cf)
    apart = mf > mn
    place = (ratio[:, centre] - mn) / np.where(apart, mf - mn, 1.0)  # 0: like the near interior, 1: the far
    is_far = own >= mid
    to_far = apart & ~is_far & (place > 0.5 + margin)
    to_near = apart & is_far & (place < 0.5 - margin)
    asked = np.nonzero(to_far | to_near)[0]  # (the look is asked of the pixels the focus would move only)
    if asked.size:
        far_a = far[asked]
        votes = [_votes(g[asked], near[asked], far_a, neighbours) for g in (grey_n, grey_f)]
        look_far = (votes[0] > 0.5) & (votes[1] > 0.5)
        look_near = (votes[0] < 0.5) & (votes[1] < 0.5)
        to_far[asked] &= look_far
        to_near[asked] &= look_near
    dn, df = dn[ok], df[ok]
    result[rows] = np.where(to_far, df, np.where(to_near, dn, own))
    return result


def _gather(flat: Callable[[int], np.ndarray], slices: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per row, the values at ``at`` (flat indices) of the flat array ``flat(k)`` of the row's slice ``k``."""
    out = np.empty(at.shape, np.float32)
    for k in np.unique(slices):
        which = slices == k
        out[which] = flat(int(k))[at[which]]
    return out


def _median(values: np.ndarray, member: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per row, the median of the members' values (the mean of the two middle ones of an even count)."""
    ordered = np.sort(np.where(member, values, np.inf), axis=1)
    rows = np.arange(values.shape[0])
    top = np.maximum(count - 1, 0)
    return 0.5 * (ordered[rows, top // 2] + ordered[rows, (top + 1) // 2])


def _votes(values: np.ndarray, near: np.ndarray, far: np.ndarray, neighbours: int) -> np.ndarray:
    """Per row, the share of far pixels among the ``neighbours`` interior pixels nearest the middle one in value."""
    centre = values.shape[1] // 2
    dist = np.abs(values - values[:, centre:centre + 1])
    dist[~(near | far)] = np.inf
    dist[:, centre] = np.inf
    nearest = np.argpartition(dist, neighbours, axis=1)[:, :neighbours]
    return np.take_along_axis(far, nearest, axis=1).mean(axis=1)
