"""Clean up a focus sweep before stacking: drop repeated frames, order near to far.

A camera's focus-sweep video often starts and ends with frames where the lens
holds still; those repeat their neighbour and only cost time. Both functions
here read the source once, in order, keeping only small per-frame summaries
(a grey thumbnail and a grid of tile focus measures), so they stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from postfocus.colour import to_grey
from postfocus.io.base import FrameSource

# drop_repeated_frames drops a frame only when BOTH differences are below these.
# Measured: the 40 pairs of consecutive real frames of keyboard_sweep.mp4 (1080p,
# focus steps that get tiny towards the end) have thumbnail MAD >= 0.0019 and
# median tile focus change >= 0.026. Keyboard frames repeated and re-encoded with
# libx264 crf 18 give MAD <= 0.0002 and focus change <= 0.008 (dropped); at crf 28
# MAD <= 0.0015 and change <= 0.016 (a repeat right after the keyframe is kept).
# A repeat with fresh sensor noise (sigma 0.01, crf 18) gave MAD 0.0006 but change
# 0.023 (kept), and with simulated hand shake (0.5 px) MAD 0.004 (kept): keeping a
# doubtful frame only costs time, dropping a real one loses a focus step.
# Heavily compressed video (crf 28) can merge real tiny steps into repeats.
REPEAT_MAD = 0.001
REPEAT_FOCUS = 0.02

THUMB_EDGE = 256  # long edge of the grey thumbnail compared by mean absolute difference
GRID = (6, 8)  # rows, columns of tiles for focus measures


@dataclass
class FrameSummary:
    """Small per-frame data: a grey thumbnail and tile focus measures."""

    thumb: np.ndarray  # float32 grey, long edge <= THUMB_EDGE
    focus: np.ndarray  # (rows, cols) mean squared Laplacian per tile


def summarize(frame: np.ndarray, grid: tuple[int, int] = GRID) -> FrameSummary:
    """Thumbnail and tile focus measures of one float RGB frame.

    The focus measure is the mean squared Laplacian of the grey frame (at the
    size given) over each tile of a ``grid`` (rows, columns).

    Examples
    --------
    >>> s = summarize(np.random.default_rng(0).random((60, 80, 3), dtype=np.float32))
    >>> s.thumb.shape, s.focus.shape
    ((60, 80), (6, 8))
    """
    grey = to_grey(frame)
    h, w = grey.shape
    scale = min(1.0, THUMB_EDGE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        thumb = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    else:
        thumb = grey
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    np.square(lap, out=lap)
    rows, cols = grid
    # tile means via an integral image: cheap for any grid
    integral = cv2.integral(lap, sdepth=cv2.CV_64F)
    ys = np.linspace(0, h, rows + 1).round().astype(int)
    xs = np.linspace(0, w, cols + 1).round().astype(int)
    sums = integral[np.ix_(ys[1:], xs[1:])] - integral[np.ix_(ys[:-1], xs[1:])] \
        - integral[np.ix_(ys[1:], xs[:-1])] + integral[np.ix_(ys[:-1], xs[:-1])]
    areas = np.outer(np.diff(ys), np.diff(xs))
    focus = (sums / np.maximum(areas, 1)).astype(np.float64)
    return FrameSummary(thumb=thumb, focus=focus)


def summarize_source(source: FrameSource, indices: Sequence[int] | None = None) -> dict[int, FrameSummary]:
    """Summaries of the frames at ``indices`` (all by default), read in one pass."""
    wanted = set(range(len(source))) if indices is None else {int(i) for i in indices}
    out: dict[int, FrameSummary] = {}
    last = max(wanted, default=-1)
    for i, frame in enumerate(source):
        if i in wanted:
            out[i] = summarize(frame)
        if i >= last:
            break
    return out


def frame_difference(a: FrameSummary, b: FrameSummary) -> tuple[float, float]:
    """(thumbnail mean absolute difference, median tile |log focus ratio|).

    Examples
    --------
    >>> s = summarize(np.zeros((8, 8, 3), np.float32))
    >>> frame_difference(s, s)
    (0.0, 0.0)
    """
    mad = float(np.mean(np.abs(a.thumb - b.thumb)))
    eps = 1e-10
    change = np.abs(np.log(a.focus + eps) - np.log(b.focus + eps))
    return mad, float(np.median(change))


def drop_repeated_frames(
    source: FrameSource,
    threshold: float = REPEAT_MAD,
    focus_threshold: float = REPEAT_FOCUS,
) -> tuple[list[int], list[int]]:
    """Find frames that repeat the previously kept frame (lens holding still).

    A frame is dropped when, compared with the last kept frame, its grey
    thumbnail (long edge 256) differs by a mean absolute difference below
    ``threshold`` AND the median over a 6 x 8 grid of tiles of the change in
    focus measure (|log| of the ratio of mean squared Laplacians) is below
    ``focus_threshold``. Real focus steps change the focus measure even where
    the picture hardly changes, so both must be small. The first frame is
    always kept.

    Parameters
    ----------
    source : frames in recorded order.
    threshold : mean absolute difference of thumbnails, in [0, 1] units.
    focus_threshold : median tile focus change (natural log units).

    Returns
    -------
    (kept indices, dropped indices), both ascending.

    Examples
    --------
    >>> kept, dropped = drop_repeated_frames(open_source("sweep.mp4"))  # doctest: +SKIP
    >>> dropped  # doctest: +SKIP
    [1, 2, 40]
    """
    kept: list[int] = []
    dropped: list[int] = []
    reference: FrameSummary | None = None
    for i, frame in enumerate(source):
        summary = summarize(frame)
        if reference is not None:
            mad, change = frame_difference(reference, summary)
            if mad < threshold and change < focus_threshold:
                dropped.append(i)
                continue
        kept.append(i)
        reference = summary
    return kept, dropped


# focus_order trusts the direction only when tile peaks and tile height agree this well.
ORDER_MIN_CORRELATION = 0.3
ORDER_MIN_TILES = 6
PEAK_PROMINENCE = 1.5  # a tile's peak focus must exceed its median focus by this factor


def _rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x))
    # average ties
    for value in np.unique(x):
        same = x == value
        if same.sum() > 1:
            ranks[same] = ranks[same].mean()
    return ranks


def sweep_direction(summaries: Sequence[FrameSummary]) -> tuple[int, float, int]:
    """Whether a sweep runs near to far (+1), far to near (-1) or is unclear (0).

    For every tile, the frame where it is sharpest (peak of its focus measure)
    is found; tiles without a clear peak are ignored. In most scenes the lower
    part of the picture is nearer the camera (a table, the ground, an object
    tilted towards the lens). So if lower tiles come into focus earlier than
    upper ones, the sweep goes near to far. The Spearman correlation between
    a tile's peak frame and its height in the picture decides.

    Returns
    -------
    (direction, correlation, number of tiles used)

    Examples
    --------
    >>> sweep_direction([])
    (0, 0.0, 0)
    """
    if len(summaries) < 2:
        return 0, 0.0, 0
    focus = np.stack([s.focus for s in summaries])  # (frames, rows, cols)
    n, rows, cols = focus.shape
    peak = focus.max(axis=0)
    median = np.median(focus, axis=0)
    clear = peak > PEAK_PROMINENCE * np.maximum(median, 1e-12)
    peak_frame = focus.argmax(axis=0).astype(np.float64)
    height = np.repeat(np.arange(rows, 0, -1, dtype=np.float64)[:, None], cols, axis=1)  # top = high
    used = int(clear.sum())
    if used < ORDER_MIN_TILES:
        return 0, 0.0, used
    p = _rank(peak_frame[clear])
    y = _rank(height[clear])
    if p.std() == 0 or y.std() == 0:
        return 0, 0.0, used
    r = float(np.corrcoef(p, y)[0, 1])
    if abs(r) < ORDER_MIN_CORRELATION:
        return 0, r, used
    # near to far: low (near) tiles peak early, high (far) tiles late -> r > 0
    return (1 if r > 0 else -1), r, used


def focus_order(source: FrameSource, indices: Sequence[int] | None = None) -> list[int]:
    """Order frames near to far, reversing a sweep recorded far to near.

    A focus sweep is recorded in focus order, so only its direction is
    estimated (see :func:`sweep_direction`: the frame where each tile is
    sharpest against the tile's height in the picture, assuming lower means
    nearer). When the evidence is unclear the given order is kept.

    Parameters
    ----------
    source : the frames.
    indices : frames to order, in recorded order (default: all).

    Returns
    -------
    The same indices, near to far.

    Examples
    --------
    >>> focus_order(open_source("sweep.mp4"), [0, 1, 2, 3])  # doctest: +SKIP
    [3, 2, 1, 0]
    """
    indices = list(range(len(source))) if indices is None else [int(i) for i in indices]
    summaries = summarize_source(source, indices)
    direction, _, _ = sweep_direction([summaries[i] for i in indices])
    return indices[::-1] if direction < 0 else indices
