"""Which way the focus swept: near to far or far to near, measured at the stack's occlusion edges.

Nothing in a frame's number says which frame is focused nearest, yet every
product that composites by depth (the occlusion-safe fusion, aperture, mesh,
the forward-model check) needs it. Occlusion says it. Where a near object A
(in focus at frame ``a``) hides a far surface B (frame ``b``), A's silhouette
is a sharp step only in the frames focused on A: there the blurred B behind
it is cut off by A's sharp outline. In the frames focused on B, A is blurred
and its outline is a soft ramp spreading over B (Asada et al. [1]_; the
partial-occlusion model of Bhasin and Chaudhuri [2]_). The colour edge
between A and B is therefore sharpest in A's frame: the edge pixel's focus
curve peaks at the *near* side's index, and that index overflows the edge
onto the far side (the "foreground fattening" of window-based matching).
Focus breathing is not used: the sign of the magnification change depends on
the lens design.

:func:`sweep_direction` takes each strong edge of the sharpest-frame
composite (non-maximum suppressed), reads the focus peak of the raw focus
measure at the edge pixel and the focus index on either side of it, beyond an edge's
reach in the regularised focus map (:data:`SPILL`), and, where the two
sides lie at least a frame apart, asks which side the edge's peak belongs
to: the near side. A vote says whether that near side has the smaller index
(near to far). Votes are weighted by the depth step and the focus curves'
confidence, pooled into pieces (one outline within a 32 px cell: its votes
share their side samples), and the pieces' weighted signs are tested against
chance (a sign test, normal approximation, Kish's effective count [3]_): the
answer is trusted at :data:`DECIDE` significance with a :data:`MAJORITY` of
the evidence agreeing; otherwise the recording order is assumed near to far,
as before.

References
----------
.. [1] N. Asada, H. Fujiwara and T. Matsuyama, "Seeing behind the scene: analysis of photometric properties
   of occluding edges by the reversed projection blurring model", IEEE TPAMI 20(2), 1998.
.. [2] S. S. Bhasin and S. Chaudhuri, "Depth from defocus in presence of partial self occlusion",
   ICCV 2001.
.. [3] L. Kish, "Survey Sampling", Wiley 1965 (the effective sample size of weighted observations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from postfocus.focus.edge_frames import edge_votes, pick_frames
from postfocus.focus.peak import parabola_peak, streamed_peak
from postfocus.focus.sides import MEASURE_REACH, edge_spill

__all__ = ["DECIDE", "FRAMES", "MAJORITY", "SPILL", "SweepDirection", "direction_of", "stated_direction",
           "sweep_direction"]

DECIDE = 0.99
"""Significance (two-sided, of the sign test over the pieces of evidence) from which the measured direction is
used."""
MAJORITY = 0.75
"""Weighted share of the evidence that must agree (3 to 1): the sign test guards against noise, this against a
systematic confound (detail of a far surface right beside a near outline, which the analysis size cannot
resolve, votes the wrong way whatever the sample size)."""

SPILL = edge_spill()
"""Pixels (analysis size) that a sharp edge's focus energy reaches in the regularised focus map: the sides are
read beyond it."""
_FAR = 48  # px: the farthest side sample (analysis size)
_CELL = 32  # px: votes of one outline within a cell of this side are pooled into one (they share samples)
_SURE = 0.3  # a focus curve at least this confident has a peak to read
_PER_PIECE = 3  # candidates of a piece judged in the frames (its heaviest)
FRAMES = 12
"""At most this many frames are read for the full-resolution judgement."""


@dataclass(frozen=True)
class SweepDirection:
    """The sweep's order and the evidence for it.

    Attributes
    ----------
    near_to_far : bool
        Frame 0 is focused nearest (the answer used).
    measured : bool
        The answer is the measurement's (False: stated, or the evidence was too weak and near to far is assumed).
    confidence : float
        In [0, 1]: how sure the measurement is of the way it leans (1 - the sign test's two-sided p-value).
    leans_near_to_far : bool
        The way the evidence leans, decided or not.
    agreement : float
        Weighted share of the pieces that vote the way the evidence leans.
    pieces : int
        Pieces of evidence (an outline within a 32 px cell) holding votes.
    effective_pieces : float
        Kish's effective number of pieces.
    edges : int
        Edge pixels that voted.
    source : str
        ``"measured"``, ``"assumed"`` (weak evidence) or ``"stated"``.
    """

    near_to_far: bool
    measured: bool
    confidence: float
    leans_near_to_far: bool
    agreement: float
    pieces: int
    effective_pieces: float
    edges: int
    source: str

    def as_dict(self) -> dict:
        """JSON-able fields (for a stack folder's manifest)."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "SweepDirection":
        """The inverse of :meth:`as_dict`."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def stated_direction(order: str, measured: SweepDirection | None = None) -> SweepDirection | None:
    """The direction a user stated (``"near-to-far"`` or ``"far-to-near"``, :data:`postfocus.options.ORDERS`),
    keeping a measurement's evidence; None for ``"auto"``.

    Examples
    --------
    >>> stated_direction("far-to-near").near_to_far
    False
    """
    if order == "auto":
        return None
    near = order == "near-to-far"
    if measured is None:
        return SweepDirection(near, False, 0.0, near, 0.0, 0, 0.0, 0, "stated")
    return SweepDirection(near, False, measured.confidence, measured.leans_near_to_far, measured.agreement,
                          measured.pieces, measured.effective_pieces, measured.edges, "stated")


def _peaks(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's sub-frame focus peak in the raw measure and its confidence (the focus map's formula:
    how far the peak stands above the mean frame, and above the noise floor)."""
    n = volume.shape[0]
    p = streamed_peak((np.asarray(volume[k], np.float32) for k in range(n)), n)
    position = parabola_peak(p.k, p.top, p.before, p.after, n)
    floor = float(np.median(p.low)) + 1e-12
    contrast = 1.0 - p.mean / np.maximum(p.top, 1e-12)
    level = np.log(np.maximum(p.top / floor, 1.0)) / np.log(8.0)
    return position, (np.clip(1.5 * contrast, 0, 1) * np.clip(level, 0, 1)).astype(np.float32)


def _edges(guide: np.ndarray, keep: np.ndarray, most: int) -> tuple[np.ndarray, ...]:
    """Strong, thin edges of ``guide`` where ``keep``: rows, columns, unit normals (y, x), and the outline
    (8-connected run of edge pixels) each belongs to."""
    g = cv2.GaussianBlur(np.asarray(guide, np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    h, w = mag.shape
    m = 8  # (side samples are clipped to the picture)
    inner = np.zeros_like(keep)
    inner[m:h - m, m:w - m] = keep[m:h - m, m:w - m]
    strong = inner & (mag > 4.0 * float(np.median(mag)) + 1e-6)
    ys, xs = np.nonzero(strong)
    if ys.size == 0:
        return ys, xs, np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32)
    ny, nx = gy[ys, xs] / mag[ys, xs], gx[ys, xs] / mag[ys, xs]
    a = mag[np.clip(np.rint(ys + ny).astype(int), 0, h - 1), np.clip(np.rint(xs + nx).astype(int), 0, w - 1)]
    b = mag[np.clip(np.rint(ys - ny).astype(int), 0, h - 1), np.clip(np.rint(xs - nx).astype(int), 0, w - 1)]
    top = (mag[ys, xs] >= a) & (mag[ys, xs] >= b)  # a local maximum across the edge
    ys, xs, ny, nx = ys[top], xs[top], ny[top], nx[top]
    thin = np.zeros(mag.shape, np.uint8)
    thin[ys, xs] = 1
    _, labels = cv2.connectedComponents(thin, connectivity=8)
    if ys.size > most:  # evenly thinned
        pick = np.linspace(0, ys.size - 1, most).astype(np.int64)
        ys, xs, ny, nx = ys[pick], xs[pick], ny[pick], nx[pick]
    return ys, xs, ny, nx, labels[ys, xs]


def _detail(look: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The smoothed guide's structure tensor (5x5 box: gx², gy², gx gy) and its noise level (the 10th
    percentile of its trace: flat areas' gradient energy)."""
    gx = cv2.Sobel(look, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(look, cv2.CV_32F, 0, 1, ksize=3)
    xx, yy, xy = (cv2.boxFilter(v, -1, (5, 5)) for v in (gx * gx, gy * gy, gx * gy))
    return xx, yy, xy, float(np.percentile(xx + yy, 10)) + 1e-12


def _side(maps: tuple[np.ndarray, ...], look: np.ndarray, detail: tuple, edges: tuple[np.ndarray, ...], sign: float,
          at: np.ndarray, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth of one side of each edge pixel at the edge, and the side's mean confidence (NaN where fewer than
    three samples spanning 4 px are left).

    Sampled along the normal: from the measure's reach to :data:`SPILL` px in the raw peaks (whose own edge
    overflow is only :data:`~postfocus.focus.sides.MEASURE_REACH`), beyond it to :data:`_FAR` px in the
    regularised map. A sample is read while the path still looks like that side (in ``look``, the smoothed
    guide: nearer the side's colour just beside the edge than the other side's; past another outline
    nothing is read), where it is confident, and, unless it holds the edge's own index (``at``, within a
    frame: that side's, or its overflow), only where neither the edge, blurred as it is in the sample's own
    frame (``slope`` px a frame), nor the reach of its focus energy reaches it, and where it has detail of
    its own (``detail``, :func:`_detail`: gradient energy along the edge above four times the noise and at
    least a quarter of that across it). A textureless surface beside an edge otherwise peaks in a frame
    where that edge's blur crosses it (a ramp across the edge, in a real lens's wide skirt far beyond the
    disc's radius), a frame that says nothing about its own depth. The samples' line (weighted least
    squares) is read at the edge, so a slanted surface meets itself there: only a depth step is a step.
    """
    position, sure, index, confidence = maps
    ys, xs, ny, nx = edges
    h, w = index.shape

    def along(dist: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
        yy = np.clip(np.rint(ys[:, None] + s * ny[:, None] * dist), 0, h - 1).astype(np.int64)
        xx = np.clip(np.rint(xs[:, None] + s * nx[:, None] * dist), 0, w - 1).astype(np.int64)
        return yy, xx

    beside = np.array([3.0], np.float32)
    own, other = look[along(beside, sign)][:, 0], look[along(beside, -sign)][:, 0]
    dist = np.concatenate([np.arange(3.0, SPILL + 1.0), np.arange(SPILL + 1.0, _FAR + 1.0, 2.0)]).astype(np.float32)
    yy, xx = along(dist, sign)
    alike = np.logical_and.accumulate(np.abs(look[yy, xx] - own[:, None]) < 0.5 * np.abs(own - other)[:, None],
                                      axis=1)
    raw = dist <= SPILL
    value = np.where(raw[None, :], position[yy, xx], index[yy, xx])
    conf = np.where(raw[None, :], sure[yy, xx], confidence[yy, xx])
    reach = np.where(raw, MEASURE_REACH, SPILL).astype(np.float32)[None, :]
    gap = np.abs(value - at[:, None])
    xx2, yy2, xy2, noise = detail
    c2, s2, cs = nx[:, None] ** 2, ny[:, None] ** 2, nx[:, None] * ny[:, None]
    e_xx, e_yy, e_xy = xx2[yy, xx], yy2[yy, xx], xy2[yy, xx]
    tangent = e_xx * s2 + e_yy * c2 - 2.0 * e_xy * cs  # gradient energy along the edge
    normal = e_xx * c2 + e_yy * s2 + 2.0 * e_xy * cs
    own_detail = (tangent > 4.0 * noise) & (4.0 * tangent > normal)
    ok = alike & (dist[None, :] > MEASURE_REACH) & (conf >= _SURE)
    ok &= (gap < 1.0) | ((slope * gap + reach < dist[None, :]) & own_detail)
    wt = np.where(ok, conf, 0.0).astype(np.float64)
    d = dist[None, :].astype(np.float64)
    s0, s1, s2_ = wt.sum(1), (wt * d).sum(1), (wt * d * d).sum(1)
    sv, sdv = (wt * value).sum(1), (wt * d * value).sum(1)
    det = s0 * s2_ - s1 * s1
    span = np.where(ok, d, -np.inf).max(1) - np.where(ok, d, np.inf).min(1)
    good = (ok.sum(1) >= 3) & (span >= 4.0) & (det > 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = (s0 * sdv - s1 * sv) / det
        alpha = (sv - beta * s1) / s0
    out = np.where(good, alpha, np.nan).astype(np.float32)
    mean_conf = np.where(good, s0 / np.maximum(ok.sum(1), 1), 0.0)
    return out, mean_conf.astype(np.float32)


def _extent(look: np.ndarray, edges: tuple[np.ndarray, ...], sign: float) -> np.ndarray:
    """How far (px, analysis size, up to :data:`_FAR`) one side of each edge still looks like that side beside
    the edge (in ``look``, the smoothed guide: nearer its colour at 3 px than the other side's)."""
    ys, xs, ny, nx = edges
    h, w = look.shape
    dist = np.arange(1.0, _FAR + 1.0, dtype=np.float32)

    def at(d: np.ndarray, s: float) -> np.ndarray:
        yy = np.clip(np.rint(ys[:, None] + s * ny[:, None] * d), 0, h - 1).astype(np.int64)
        xx = np.clip(np.rint(xs[:, None] + s * nx[:, None] * d), 0, w - 1).astype(np.int64)
        return look[yy, xx]

    three = np.array([3.0], np.float32)
    own, other = at(three, sign)[:, 0], at(three, -sign)[:, 0]
    alike = np.abs(at(dist, sign) - own[:, None]) < 0.5 * np.abs(own - other)[:, None]
    alike[:, :3] = True  # (the edge's own ramp)
    return np.logical_and.accumulate(alike, axis=1).sum(1).astype(np.float32)


def sweep_direction(volume: np.ndarray, guide: np.ndarray, index: np.ndarray, confidence: np.ndarray, *,
                    slope: float, motion: np.ndarray | None = None, most: int = 60000) -> SweepDirection:
    """Measure whether a stack was focused near to far (frame 0 nearest) or far to near.

    At each strong edge of ``guide`` the raw focus peak of the edge pixel is
    compared with the focus index of either side, read beyond the reach of
    an edge's focus energy (:func:`~postfocus.focus.sides.edge_spill`) at
    pixels that still look like that side: the edge belongs to the near side.

    Parameters
    ----------
    volume : numpy.ndarray
        (N, h, w) raw focus measure of each frame in sweep order (:attr:`StackMaps.volume`; float16 is read
        a slice at a time).
    guide : numpy.ndarray
        float32 (h, w) grey sharpest-frame composite at the volume's size (:attr:`Analysis.guide`, or the
        all-in-focus image made grey and resized), where the near silhouettes are sharp and in place.
    index, confidence : numpy.ndarray
        float32 (h, w) regularised focus index in positions of the volume's slices (0..N-1) and its
        confidence (:func:`~postfocus.focus.map.focus_index_map`).
    slope : float
        Blur growth, analysis pixels of disc radius per frame
        (:func:`~postfocus.fuse.occlusion.defocus_slope`).
    motion : numpy.ndarray, optional
        float32 (h, w) motion mask: moving pixels do not vote.
    most : int
        At most this many edge pixels are read (evenly thinned).

    Returns
    -------
    SweepDirection
        Near to far, ``source="assumed"``, when fewer than three frames or no significant evidence.

    References
    ----------
    Asada, Fujiwara and Matsuyama (1998); Bhasin and Chaudhuri (2001); Kish (1965): see the module.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> flat = np.full((64, 64), 2.0, np.float32)
    >>> v, g = rng.random((5, 64, 64)).astype(np.float32), rng.random((64, 64)).astype(np.float32)
    >>> sweep_direction(v, g, flat, np.ones_like(flat), slope=1.0).source
    'assumed'
    """
    c = _candidates(volume, guide, index, confidence, slope=slope, motion=motion, most=most)
    if c is None:
        return _WEAK
    t = (c["at"] - c["db"]) / c["step"]  # 1: the edge peaks at side A's index (A is near), 0: at B's
    return _decide(np.clip(2.0 * t - 1.0, -1.0, 1.0) * np.sign(-c["step"]), c["weight"], c["piece"])


_WEAK = SweepDirection(True, False, 0.0, True, 0.0, 0, 0.0, 0, "assumed")


def _candidates(volume: np.ndarray, guide: np.ndarray, index: np.ndarray, confidence: np.ndarray, *,
                slope: float, motion: np.ndarray | None, most: int) -> dict[str, np.ndarray] | None:
    """The edges of ``guide`` whose two sides lie more than a frame apart: positions, normals (to side A), the
    edge's own peak ``at``, the sides' indices ``da``, ``db``, ``step = da - db``, each vote's weight and the
    piece of evidence it belongs to; None when there are fewer than three frames or no such edge."""
    if int(volume.shape[0]) < 3:
        return None
    position, sure = _peaks(volume)
    keep = np.ones(position.shape, bool) if motion is None else np.asarray(motion, np.float32) < 0.5
    ys, xs, ny, nx, outline = _edges(guide, keep, most)
    if ys.size == 0:
        return None
    at, at_sure = position[ys, xs], sure[ys, xs]
    look = cv2.GaussianBlur(np.asarray(guide, np.float32), (0, 0), 1.0)
    index, confidence = np.asarray(index, np.float32), np.asarray(confidence, np.float32)
    detail = _detail(look)
    maps = (position, sure, index, confidence)
    da, ca = _side(maps, look, detail, (ys, xs, ny, nx), 1.0, at, slope)
    db, cb = _side(maps, look, detail, (ys, xs, ny, nx), -1.0, at, slope)
    step = da - db
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(step) & (np.abs(step) > 1.0) & (at_sure >= _SURE)
    if not ok.any():
        return None
    # weighted by the step beyond a frame (full from 3) and the curves' trust
    weight = np.clip((np.abs(step[ok]) - 1.0) / 2.0, 0.0, 1.0) * at_sure[ok] * np.minimum(ca[ok], cb[ok])
    # A piece of evidence: one outline within one cell (votes along an outline share their side samples).
    rows, cols = (-(-k // _CELL) for k in position.shape)
    ys, xs, outline = ys[ok], xs[ok], outline[ok]
    _, piece = np.unique((outline.astype(np.int64) * rows + ys // _CELL) * cols + xs // _CELL, return_inverse=True)
    edges = (ys, xs, ny[ok], nx[ok])
    return {"ys": ys, "xs": xs, "ny": ny[ok], "nx": nx[ok], "at": at[ok], "da": da[ok], "db": db[ok],
            "step": step[ok], "weight": weight, "piece": piece.ravel(),
            "extent": np.stack([_extent(look, edges, 1.0), _extent(look, edges, -1.0)], 1)}


def _decide(vote: np.ndarray, weight: np.ndarray, piece: np.ndarray) -> SweepDirection:
    """Pool the votes (+1: near to far) into their pieces and test the pieces' weighted signs against chance:
    decided at :data:`DECIDE` significance with a :data:`MAJORITY` agreeing, else near to far assumed."""
    if piece.size == 0:
        return _WEAK
    pieces = int(piece.max()) + 1
    total = np.bincount(piece, weight, pieces)
    lean = np.bincount(piece, weight * vote, pieces)
    held = total > 0
    v = lean[held] / total[held]  # each piece's mean vote in [-1, 1]
    strength = total[held] * np.abs(v)  # a piece counts by its evidence and by how clearly it votes
    if strength.sum() <= 0:
        return _WEAK
    effective = float(strength.sum() ** 2 / np.sum(strength**2))
    positive = float(strength[v > 0].sum() / strength.sum())
    leans = positive >= 0.5
    agreement = positive if leans else 1.0 - positive
    z = (2.0 * agreement - 1.0) * math.sqrt(effective)
    confidence = math.erf(z / math.sqrt(2.0))
    decided = confidence >= DECIDE and agreement >= MAJORITY
    return SweepDirection(leans if decided else True, decided, confidence, leans, agreement, int(held.sum()),
                          effective, int((weight * np.abs(vote) > 0).sum()), "measured" if decided else "assumed")


def direction_of(maps: object, guide: np.ndarray, *, read: Callable[[int], np.ndarray] | None = None,
                 alignment: Sequence[object] | None = None, most_frames: int = FRAMES) -> SweepDirection:
    """:func:`sweep_direction` of a stack's maps (:class:`~postfocus.maps.StackMaps`: the focus index in
    frame numbers is read as positions among the used frames) and its ``guide``; with ``read``, each
    candidate edge is judged in the full-resolution frames instead (:func:`~postfocus.focus.edge_frames.edge_votes`).

    Parameters
    ----------
    maps : StackMaps
        The analysis' maps.
    guide : numpy.ndarray
        Its grey sharpest-frame composite at the analysis size.
    read : callable, optional
        ``read(i)``: frame ``i``'s stored pixels (at most ``most_frames`` frames are read, each once).
    alignment : sequence of FrameAlignment, optional
        Per frame, its ``matrix`` from the maps' full geometry (``maps.size``) into the frame (None: identity).
    most_frames : int
        The frames read cover the heaviest candidates (:func:`~postfocus.focus.edge_frames.pick_frames`).
    """
    from postfocus.fuse.occlusion import defocus_slope  # (the blur growth is measured where the fusion needs it)

    used = np.asarray(maps.used, np.float32)
    rank = np.interp(maps.focus_index, used, np.arange(used.size, dtype=np.float32)).astype(np.float32)
    slope = defocus_slope(maps.volume, rank, maps.confidence)
    if read is None:
        return sweep_direction(maps.volume, guide, rank, maps.confidence, slope=slope, motion=maps.motion)
    c = _candidates(maps.volume, guide, rank, maps.confidence, slope=slope, motion=maps.motion, most=60000)
    if c is None:
        return _WEAK
    order = np.lexsort((-c["weight"], c["piece"]))  # the heaviest few votes of each piece
    run = np.r_[0, np.cumsum(c["piece"][order][1:] != c["piece"][order][:-1])]
    first = np.r_[0, np.nonzero(np.diff(run))[0] + 1]
    take = order[np.arange(order.size) - first[run] < _PER_PIECE]
    scale = maps.size[1] / maps.shape[1]
    centre = (np.stack([c["ys"][take], c["xs"][take]], 1) + 0.5) * scale - 0.5
    normal = np.stack([c["ny"][take], c["nx"][take]], 1)
    reach = np.clip(np.rint(1.5 * slope * scale * np.abs(c["step"][take]) + 4.0), 8, 40).astype(np.int64)
    frames = pick_frames(maps.used, most_frames)
    matrices = {i: np.eye(3) if alignment is None else alignment[i].matrix for i in frames}
    used = np.asarray(maps.used, np.float32)
    sides = np.interp(np.stack([c["da"][take], c["db"][take]], 1), np.arange(used.size), used)  # frame numbers
    vote, ok = edge_votes(read, matrices, centre, normal, reach, frames, sides, c["extent"][take] * scale)
    # a vote checked in the frames counts by how clearly the edge is steeper in one frame (the analysis' trust in
    # the sides no longer applies: the frames said where they are)
    return _decide(vote, ok.astype(np.float64), c["piece"][take])
