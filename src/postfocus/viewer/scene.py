"""The frames a scene lives in: the focus slider's span on a long sweep.

A macro subject may fill a few frames of a long sweep (the keyboard video:
frames 2 to 5 of 41); a slider over all the frames spends most of its travel on
frames focused beyond the subject. The viewer's slider spans the scene's depths
(:func:`postfocus.products.depth.depth_range`, the range the depth preview is
coloured over) and :data:`SCENE_MARGIN` frames either side; the whole sweep
stays one button away.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SCENE_MARGIN", "scene_frames"]

SCENE_MARGIN = 1.0
"""Frames added on either side of the scene's depth range, so its nearest and farthest parts can be passed."""


def scene_frames(depth: np.ndarray, frames: int, used: Sequence[int], *, near_to_far: bool = True,
                 margin: float = SCENE_MARGIN) -> dict:
    """The first and last frame (0-based, recording order) of the scene's depths and a margin.

    Parameters
    ----------
    depth : numpy.ndarray
        Depth map in frames (0 = the nearest frame), as :func:`postfocus.products.depth_cache.stack_depth` makes it.
    frames : int
        Frames of the sweep (``len(stack.names)``).
    used : sequence of int
        The frame numbers kept in the stack (``stack.used``).
    near_to_far : bool
        Whether frame 0 is the nearest (else the depth counts from the last frame).
    margin : float
        Frames added on either side of the depth range.

    Returns
    -------
    dict
        ``{"first", "last"}``: the kept frames that bound the span, the frames nearest the depth range's ends
        moved out by ``margin`` (``first <= last``), and ``"depths"``: the scene's depth range ``[near, far]``
        (rounded to 0.01 frame).

    Examples
    --------
    >>> d = np.linspace(1.8, 4.6, 1000, dtype=np.float32).reshape(10, 100)
    >>> scene_frames(d, 41, range(41))
    {'first': 1, 'last': 6, 'depths': [1.83, 4.57]}
    >>> scene_frames(d, 41, range(41), near_to_far=False)["first"]
    34
    """
    from postfocus.products.depth import depth_range

    kept = sorted(int(i) for i in used)
    lo, hi = depth_range(depth, frames)
    top = float(max(frames - 1, 0))
    a, b = (lo, hi) if near_to_far else (top - hi, top - lo)  # frame numbers, recording order
    a, b = round(max(a - margin, 0.0)), round(min(b + margin, top))  # the nearest frames
    inside = [i for i in kept if a <= i <= b]
    if len(inside) < 2:  # too few kept frames there: the ones nearest the span's middle
        mid = 0.5 * (a + b)
        inside = sorted(sorted(kept, key=lambda i: (abs(i - mid), i))[:2])
    return {"first": inside[0], "last": inside[-1], "depths": [round(lo, 2), round(hi, 2)]}
