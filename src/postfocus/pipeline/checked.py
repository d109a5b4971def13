"""Pass 2 with both fusions and a choice between them by the forward-model check (opt-in).

The depth-map and pyramid results are fused as :func:`postfocus.pipeline.merge.fuse` does; while the
pyramid's frames are warped, each is kept at the check's analysis size and its clipped light is counted
at full resolution (light clipped in at least two frames, whose blur clips too, counts); then :func:`postfocus.fuse.choice.residual_choice` takes the pyramid's pixels where
the frames explain them better, never within the blur reach of clipped light (the stack's blur growth,
measured by the depth-map fusion's occlusion-safe index, times its span of frames).

References
----------
.. [1] A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987 (the blur reach).
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from postfocus.align.report import FrameAlignment
from postfocus.fuse.choice import CLIP_LEVEL, Choice, residual_choice
from postfocus.io.base import FrameSource
from postfocus.io.images import to_float
from postfocus.maps import StackMaps
from postfocus.pipeline.merge import Region, fuse

__all__ = ["fuse_checked"]


def fuse_checked(
    source: FrameSource,
    maps: StackMaps,
    *,
    alignment: Sequence[FrameAlignment] | None = None,
    flow: dict[int, np.ndarray] | None = None,
    region: Region | None = None,
    threads: int | None = None,
    near_to_far: bool = True,
    sigma: float = 2.0,
    margin: float = 0.0,
    clipped_frames: int = 2,
    pixels: int | None = None,
    shared_clipped: bool = True,
    glints: bool = False,
) -> Choice:
    """The depth-map result with the pyramid's taken where the forward-model check prefers it.

    Parameters
    ----------
    source, maps, alignment, flow, region, threads, near_to_far
        As :func:`postfocus.pipeline.merge.fuse` (every used frame is merged).
    sigma, margin : float
        As :func:`postfocus.fuse.choice.residual_choice`.
    clipped_frames : int
        Light counts as clipped (and guarded) where at least this many aligned frames clip it. A glint clipped
        only in the frame focused on it has a bloom below white one frame away, so its light is at most about
        white over a disc of the blur growth's radius, and the render from its clipped value misses little
        of it beyond a few such radii; light whose blur clips too may be many times white.
    pixels : int, optional
        The check's analysis size (default: the check's own, :data:`~postfocus.check.forward.DEFAULT_PIXELS`
        or less for long stacks); the check's time grows with it.
    shared_clipped, glints : bool
        As :func:`postfocus.fuse.choice.residual_choice`.

    Returns
    -------
    Choice
        ``image`` is the result (float32 (h, w, 3) of ``region``).

    Examples
    --------
    >>> a = analyse(source)  # doctest: +SKIP
    >>> image = fuse_checked(source, a.maps, alignment=a.alignment, region=a.common_area()).image  # doctest: +SKIP
    """
    from postfocus.check.forward import _MIN_PIXELS, _PIXEL_FRAMES, DEFAULT_PIXELS

    common = dict(alignment=alignment, flow=flow, region=region, threads=threads, near_to_far=near_to_far)
    depthmap = fuse(source, maps, method="depthmap", **common)
    h, w = depthmap.shape[:2]
    used = list(maps.used)
    if pixels is None:
        pixels = max(_MIN_PIXELS, min(DEFAULT_PIXELS, _PIXEL_FRAMES // max(len(used), 1)))
    scale = min(1.0, math.sqrt(pixels / float(h * w)))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small: dict[int, np.ndarray] = {}
    count = np.zeros((h, w), np.uint16)

    def keep(i: int, aligned: np.ndarray) -> None:
        frame = to_float(aligned)
        count[...] += frame.max(axis=2) >= CLIP_LEVEL
        small[i] = cv2.resize(frame, size, interpolation=cv2.INTER_AREA).astype(np.float16)

    pyramid = fuse(source, maps, method="pyramid", on_aligned=keep, **common)
    H, W = maps.size
    t, l = (0, 0) if region is None else region[:2]
    ranks = np.interp(maps.focus_index, np.asarray(used, np.float32), np.arange(len(used), dtype=np.float32))
    depth = maps.upscale(ranks.astype(np.float32))[t:t + h, l:l + w]
    slope = maps.blur_slope if maps.blur_slope is not None else 1.0  # map px a used frame (set by the fusion)
    reach = float(slope) * W / maps.shape[1] * float(np.ptp(ranks))
    return residual_choice(depthmap, pyramid, depth, lambda k: small[used[k]].astype(np.float32),
                           list(range(len(used))), clipped=count >= clipped_frames, reach=reach, sigma=sigma, margin=margin,
                           pixels=pixels, shared_clipped=shared_clipped, glints=glints)
