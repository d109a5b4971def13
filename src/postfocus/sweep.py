"""Tell a repeated frame of a focus sweep from a real focus step.

A camera's focus-sweep video often starts and ends with frames where the lens
holds still; those repeat their neighbour and only cost time.
:class:`RepeatedFrames` leaves them out while the sweep streams
through the first pass, comparing small per-frame summaries made here (a grey
thumbnail and a grid of tile focus measures, :func:`summarize`) with
:func:`frame_difference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from postfocus.colour import to_grey

__all__ = ["GRID", "REPEAT_FOCUS", "REPEAT_MAD", "THUMB_EDGE", "FrameSummary", "RepeatedFrames", "frame_difference", "summarize"]

# A frame repeats the one before it only when BOTH differences are below these.
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

    Parameters
    ----------
    frame : np.ndarray
        (H, W, 3) float RGB in [0, 1].
    grid : tuple[int, int]
        Rows and columns of tiles.

    Returns
    -------
    FrameSummary

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


def frame_difference(a: FrameSummary, b: FrameSummary) -> tuple[float, float]:
    """How much two frames differ: (thumbnail mean absolute difference, median tile |log focus ratio|).

    Parameters
    ----------
    a, b : FrameSummary
        Summaries of the two frames (same size and grid).

    Returns
    -------
    tuple[float, float]
        Compared with :data:`REPEAT_MAD` and :data:`REPEAT_FOCUS`.

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


class RepeatedFrames:
    """Spot frames that repeat the previous one (the lens held still), during pass 1.

    Videos only: the recording order is taken as near to far (cameras sweep
    from the nearest subject outwards); defocus alone cannot tell near from
    far, so the order is not guessed from the pictures.

    Examples
    --------
    >>> repeats = RepeatedFrames()
    >>> analyse(source, on_frame=repeats.see, leave_out=repeats.leave_out)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.dropped: list[int] = []
        self._last: FrameSummary | None = None

    def see(self, index: int, frame: np.ndarray) -> None:
        """Look at frame ``index`` (in order, any size).

        Parameters
        ----------
        index : int
            Frame number; frames are seen in increasing order.
        frame : np.ndarray
            The frame, (H, W, 3) RGB at any size.
        """
        summary = summarize(frame)
        if self._last is not None:
            mad, change = frame_difference(self._last, summary)
            if mad < REPEAT_MAD and change < REPEAT_FOCUS:
                self.dropped.append(index)
                return
        self._last = summary

    def leave_out(self) -> dict[int, str]:
        """The repeated frames with the reason, for :func:`~postfocus.pipeline.analyse.analyse`.

        Returns
        -------
        dict[int, str]
            Frame number to why it is left out.
        """
        return {i: "repeats the frame before it (the lens held still)" for i in self.dropped}
