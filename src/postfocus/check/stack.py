"""The forward-model check of a processed stack, and how it reads near depth edges.

:func:`forward_check` takes what the products use (the all-in-focus image of a
method and :func:`postfocus.products.depth.depth_map`) and the aligned frames
of a stack folder, and runs :func:`postfocus.check.forward.check_frames`; it
can also judge the raw depth (the depth map without its outlier rejection, as
the products read it before the cleaning) or any depth given. Moving subjects
(the motion mask) are judged against the instant the result shows them from.
:func:`band_ratio` compares the residual in a band around depth edges (where
halos live) with the residual away from them.
"""

from __future__ import annotations

import dataclasses

from typing import Callable, Sequence

import cv2
import numpy as np

from postfocus.check.defocus import DefocusModel
from postfocus.check.forward import FLAG_LEVEL, CheckResult, check_frames
from postfocus.errors import InputError, OptionError, PostfocusError
from postfocus.options import DEFAULT_METHOD, check_threads
from postfocus.store import ProcessedStack

__all__ = ["DEPTHS", "band_ratio", "depth_edges", "forward_check", "instant_map"]

DEPTHS = ("clean", "raw")
"""Named depths :func:`forward_check` can judge: the depth map the products use, or the same without outlier rejection."""


def forward_check(
    stack: ProcessedStack,
    *,
    frames: Sequence[int] | None = None,
    method: str | None = None,
    image: np.ndarray | None = None,
    depth: str | np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    motion: bool = True,
    model: DefocusModel | None = None,
    pixels: int | None = None,
    level: float = FLAG_LEVEL,
    progress: Callable[[str, int, int], None] | None = None,
    threads: int | None = None,
) -> CheckResult:
    """Re-render every aligned frame from the all-in-focus image and the depth map, and compare.

    Parameters
    ----------
    stack : ProcessedStack
        From :func:`postfocus.process`.
    frames : sequence of int, optional
        Frame numbers to check (default: every frame kept).
    method : str, optional
        Fusion method whose all-in-focus image is checked (default: the stack's default).
    image : np.ndarray, optional
        float32 (H, W, 3) all-in-focus image to check instead of the stack's (output geometry).
    depth : str or np.ndarray, optional
        "clean" (default): :func:`~postfocus.products.depth.depth_map`, what the products use;
        "raw": the same without its outlier rejection (every confident-looking focus peak kept, as
        the products read depth before the cleaning); or a float32 depth in its units (frame
        numbers, 0 = the nearest frame), any size of the output's aspect.
    confidence : np.ndarray, optional
        Trust in ``depth`` (default: the depth map's confidence; none with a depth array).
    motion : bool
        Judge moving subjects (the stack's motion mask) against the one instant the result shows
        them from (:func:`instant_map`); False judges them like everything else.
    model : DefocusModel, optional
        Use this defocus instead of calibrating one.
    pixels : int, optional
        Analysis size in pixels (default: :data:`~postfocus.check.forward.DEFAULT_PIXELS`, less for long stacks).
    level : float
        Residual above which a pixel is flagged.
    progress : callable, optional
        ``progress(stage, done, total)``.
    threads : int or None
        Thread budget of the all-in-focus image and the depth map when they are made here (None: the machine's
        cores; 1: the calling thread only).

    Returns
    -------
    CheckResult
        ``residual`` in output geometry.

    Raises
    ------
    OptionError
        ``frames`` holds a frame that is not kept, or fewer than 2 frames; an unknown named ``depth``.
    InputError
        The stack keeps fewer than 2 frames.

    Examples
    --------
    >>> from postfocus import process
    >>> result = forward_check(process("shared/data/pcb"))  # doctest: +SKIP
    >>> result.summary["regions"][0]  # doctest: +SKIP
    {'x': 1392, 'y': 744, 'width': 160, 'height': 150, 'peak': 14.2, 'mean': 5.1, 'area': 0.004}
    """
    threads = check_threads(threads)  # (refused before any work)
    used = list(stack.used)
    if frames is None:
        if len(used) < 2:
            raise InputError(f"{stack.folder}: {len(used)} frame kept; the check compares at least 2")
        frames = used
    else:
        frames = sorted({int(i) for i in frames})
        missing = [i for i in frames if i not in used]
        if missing:
            raise OptionError("frames", missing, f"not in this stack (frames kept: {used})")
    if image is None:
        image = stack.all_in_focus(method or DEFAULT_METHOD, threads=threads)
    h, w = stack.size
    if image.shape[:2] != (h, w):
        raise PostfocusError(f"image is {image.shape[1]}x{image.shape[0]}, the stack {w}x{h}")
    if depth is None or isinstance(depth, str):
        from postfocus.products.depth import depth_map

        name = depth or "clean"
        if name not in DEPTHS:
            raise OptionError("depth", name, f"choose one of {', '.join(DEPTHS)} (or give a depth array)")
        # "raw": no deviation can exceed the sweep's length, so no focus peak is rejected as an outlier
        options = {"tolerance": float(len(stack.names))} if name == "raw" else {}
        result = depth_map(stack, method=method, image=image, threads=threads, **options)
        depth, confidence = result.depth, result.confidence if confidence is None else confidence
    depth = np.asarray(depth, np.float32)
    if depth.shape != (h, w):
        depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
    if confidence is not None and confidence.shape != (h, w):
        confidence = cv2.resize(np.asarray(confidence, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    instant = instant_map(stack) if motion else None
    if stack.near_to_far:
        return check_frames(image, depth, stack.read_frame, frames, confidence=confidence, instant=instant,
                            model=model, pixels=pixels, level=level, progress=progress)
    # Swept far to near: the depth counts from the nearest frame, and the check lays its layers nearest first,
    # so the frames are renumbered nearest first for it and its answers numbered back.
    last = len(stack.names) - 1
    nearest = None if instant is None else np.where(instant >= 0, last - instant, instant)
    result = check_frames(image, depth, lambda i: stack.read_frame(last - i), [last - i for i in frames][::-1],
                          confidence=confidence, instant=nearest, model=model, pixels=pixels, level=level,
                          progress=progress)
    return dataclasses.replace(
        result, per_frame={last - k: v for k, v in sorted(result.per_frame.items(), reverse=True)},
        flagged_per_frame={last - k: v for k, v in sorted(result.flagged_per_frame.items(), reverse=True)},
        instant=instant, better_depth=None if result.better_depth is None else last - result.better_depth)


def instant_map(stack: ProcessedStack) -> np.ndarray | None:
    """Per output pixel, the frame a moving subject is shown from (-1 where nothing moved), or None.

    The same regions and frames the fusion uses (:meth:`postfocus.maps.StackMaps.motion_frames`
    over every kept frame): the default all-in-focus image shows each moving region from that instant.

    Examples
    --------
    >>> from postfocus import process
    >>> instant_map(process("shared/data/pcb")) is None  # a still subject  # doctest: +SKIP
    True
    """
    if stack.motion is None or not (np.asarray(stack.motion) > 0).any():
        return None
    labels, choice = stack.maps.motion_frames()
    if not choice:
        return None
    lookup = np.full(int(labels.max()) + 1, -1, np.int32)
    for label, frame in choice.items():
        lookup[label] = frame
    h, w = stack.size
    return cv2.resize(lookup[labels], (w, h), interpolation=cv2.INTER_NEAREST)


def depth_edges(depth: np.ndarray, *, jump: float = 1.0) -> np.ndarray:
    """Pixels next to a depth step of more than ``jump`` frames (bool, same shape).

    Examples
    --------
    >>> d = np.zeros((5, 6), np.float32); d[:, 3:] = 4.0
    >>> depth_edges(d)[0].tolist()
    [False, False, True, True, False, False]
    """
    d = np.asarray(depth, np.float32)
    kernel = np.ones((3, 3), np.uint8)
    return (cv2.dilate(d, kernel) - cv2.erode(d, kernel)) > jump


def band_ratio(result: CheckResult, depth: np.ndarray, width: int, *, jump: float = 1.0) -> float:
    """Mean residual within ``width`` px of a depth edge over the mean residual away from depth edges.

    About 1 when the result is as consistent with the frames at occlusion edges
    as inside regions; a halo makes it grow. It reads the render's own residual
    (:attr:`CheckResult.rendering`), not the depth test's evidence, which judges the depth.

    Parameters
    ----------
    result : CheckResult
        From :func:`forward_check` or :func:`~postfocus.check.forward.check_frames`.
    depth : np.ndarray
        Depth in frame units (any size of the residual's aspect; e.g. the true depth of a rendered scene).
    width : int
        Half-width of the band in output pixels.
    jump : float
        Depth step (frames) that makes an edge.

    Returns
    -------
    float
        The ratio (NaN if there is no depth edge or no interior).
    """
    residual = result.residual if result.rendering is None else result.rendering  # the render's own, no evidence
    h, w = residual.shape
    d = np.asarray(depth, np.float32)
    if d.shape != (h, w):
        d = cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST)
    edges = depth_edges(d, jump=jump).astype(np.uint8)
    if not edges.any():
        return float("nan")
    # distance of every pixel to the nearest edge pixel
    dist = cv2.distanceTransform(1 - edges, cv2.DIST_L2, 3)
    band = dist <= width
    interior = dist > 2 * width
    if not interior.any():
        return float("nan")
    return float(residual[band].mean() / max(float(residual[interior].mean()), 1e-9))
