"""Colour pop: what lies at the tapped depth keeps its colour, the rest turns grey.

The mask comes from the focus-index map: pixels whose focus position is within
a tolerance of the tapped one. It is made soft (a ramp, not a step), then
aligned to the image's own edges with a guided filter, so it follows the
subject's outline without a hard cut-out or coloured fringes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from postfocus.colour import to_grey
from postfocus.errors import OptionError
from postfocus.focus.map import guided_filter
from postfocus.options import DEFAULT_METHOD, check_threads
from postfocus.products.depth_cache import stack_depth
from postfocus.products.refocus import Tap, check_point, tap
from postfocus.store import ProcessedStack

__all__ = ["PopResult", "colour_pop", "pop", "pop_mask", "saturation"]


@dataclass
class PopResult:
    """A colour pop of a processed stack (see :func:`pop`).

    Attributes
    ----------
    image : numpy.ndarray
        float32 (H, W, 3): the subject in colour, the rest grey.
    mask : numpy.ndarray
        float32 (H, W) in [0, 1]: where colour was kept.
    tap : Tap
        What the tap found at the point (frame, focus position).
    share : float
        Share of the picture that kept its colour (the mean of ``mask``, 0..1).
    """

    image: np.ndarray
    mask: np.ndarray
    tap: Tap
    share: float


def pop(stack: ProcessedStack, x: float, y: float, *, tolerance: float = 1.0, method: str = DEFAULT_METHOD,
        progress: Callable[[str, int, int], None] | None = None, threads: int | None = None) -> PopResult:
    """Colour pop of a processed stack: what lies at the depth tapped at (x, y) keeps its colour.

    Parameters
    ----------
    stack : ProcessedStack
    x, y : float
        The subject, in output pixels.
    tolerance : float
        Frames of depth on either side of the subject that keep their colour.
    method : str
        Fusion method of the all-in-focus image that is greyed.
    progress : optional ``progress(stage, done, total)``: hears of the all-in-focus image and the depth map
        when the stack has not made them yet.
    threads : thread budget of the all-in-focus image and the depth map when they are made (None: the machine's
        cores; 1: the calling thread only).

    Returns
    -------
    PopResult

    Examples
    --------
    >>> result = pop(process("sweep.mp4"), 640, 360)  # doctest: +SKIP
    >>> f"kept colour on {100 * result.share:.0f} % of the picture"  # doctest: +SKIP
    """
    threads = check_threads(threads)  # (refused before any work)
    check_point(stack, x, y)
    image = stack.all_in_focus(method, progress, threads=threads)
    # The full-resolution, edge-aware depth (not the analysis-size focus index): its edges follow the
    # picture's, so no coloured fringe of the background stays around a popped subject.
    depth = stack_depth(stack, method=method, image=image, progress=progress, threads=threads).depth  # nearest frame 0, whatever the recording order
    answer = tap(stack, x, y, threads=threads)  # (after the depth map: a plain window reads it, not a second depth)
    position = answer.position if stack.near_to_far else len(stack.names) - 1 - answer.position
    mask = pop_mask(depth, position, to_grey(image), tolerance=tolerance)
    return PopResult(image=colour_pop(image, mask), mask=mask, tap=answer, share=float(mask.mean()))


def pop_mask(
    focus_index: np.ndarray,
    position: float,
    guide: np.ndarray,
    tolerance: float = 1.0,
    softness: float = 0.75,
    edge_radius: int | None = None,
) -> np.ndarray:
    """Soft, edge-aware mask of pixels focused near ``position``.

    Parameters
    ----------
    focus_index : float32 (h, w) frame number per pixel (any size; resized to the guide).
    position : focus position of the tapped subject (frames).
    guide : float32 (H, W) grey image whose edges the mask should follow.
    tolerance : frames of depth on either side that count as the subject.
    softness : width of the ramp from in to out, in frames.
    edge_radius : guided-filter radius in pixels (default: ~0.4% of the long edge).

    Returns
    -------
    float32 (H, W) mask in [0, 1].

    Examples
    --------
    >>> float(pop_mask(np.zeros((4, 4), np.float32), 0.0, np.zeros((4, 4), np.float32)).min())
    1.0
    """
    if not (math.isfinite(tolerance) and tolerance >= 0):  # nan kept nothing's colour, inf everything's
        raise OptionError("tolerance", tolerance, "must be a number of frames >= 0")
    h, w = guide.shape
    idx = cv2.resize(np.asarray(focus_index, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    distance = np.abs(idx - np.float32(position))
    mask = np.clip(1.0 - (distance - tolerance) / max(softness, 1e-3), 0.0, 1.0).astype(np.float32)
    radius = edge_radius or max(2, int(0.004 * max(h, w)))
    mask = guided_filter(guide.astype(np.float32), mask, radius, 1e-3)
    return np.clip(mask, 0.0, 1.0)


def colour_pop(image: np.ndarray, mask: np.ndarray, grey_level: float = 1.0) -> np.ndarray:
    """Keep colour where ``mask`` is 1, turn grey where it is 0.

    Parameters
    ----------
    image : float32 (H, W, 3) RGB in [0, 1].
    mask : float32 (H, W) in [0, 1].
    grey_level : 1 for full grey outside, less to keep some colour.

    Returns
    -------
    float32 (H, W, 3).

    Examples
    --------
    >>> img = np.random.default_rng(0).random((4, 4, 3), dtype=np.float32)
    >>> bool(np.allclose(colour_pop(img, np.ones((4, 4), np.float32)), img, atol=1e-6))  # (float32 rounding)
    True
    """
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    keep = (1.0 - grey_level * (1.0 - mask))[..., None]
    return (luma + (image - luma) * keep).astype(np.float32)


def saturation(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean HSV saturation (0..1) of an RGB image, optionally over a mask."""
    hsv = cv2.cvtColor(np.clip(image, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    s = hsv[..., 1]
    if mask is not None:
        s = s[mask.astype(bool)]
    return float(s.mean()) if s.size else 0.0
