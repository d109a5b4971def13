"""A focus pull: the focus glides from one depth to another, as an MP4, GIF or WebP.

The focus position moves through depth (frame units, 0 = the nearest frame)
with an ease-in, ease-out profile, so the pull starts and stops softly as a
focus puller's hand does. Each output frame is one of two renders:

* **the recorded frames** (default): the two aligned frames whose focus lies
  either side of the position are mixed in linear light by how close each is,
  so the picture passes smoothly between frames instead of jumping from one
  to the next. The blur is the lens's own.
* **a virtual aperture** (``f_number``): the all-in-focus image and the depth
  map rendered by :func:`postfocus.products.aperture.render_aperture`
  focused at the position itself, any depth between frames, with that
  aperture's depth of field.

The ends of the pull are ``"near"`` (the nearest subject, the depth map's
3rd percentile), ``"far"`` (the background, its 97th), a frame number, a
share of the sweep (``"40%"``) or a point ``(x, y)`` whose subject's depth is
read from the depth map (as :func:`postfocus.products.aperture.focus_at`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

import cv2
import numpy as np

from postfocus.colour import gamma_decode, gamma_encode
from postfocus.errors import OptionError, PostfocusError
from postfocus.io.animation import ANIMATION_FORMATS, MAX_FPS, MIN_FPS, write_animation
from postfocus.io.write import check_output_path
from postfocus.options import check_threads, is_number, is_whole
from postfocus.pipeline.analyse import Progress
from postfocus.products.aperture import f_number_lens, focus_at, preset_focus, render_aperture
from postfocus.store import ProcessedStack

__all__ = ["MAX_FRAMES", "MIN_PULL", "FocusPull", "PullEnd", "animate", "check_pull_options", "ease", "plan_pull",
           "pull_positions", "render_pull"]

PullEnd = Union[str, int, tuple]
"""``"near"``, ``"far"``, ``"40%"`` (share of the sweep), a frame number, or an ``(x, y)`` point."""

MAX_FRAMES = 3000

MIN_PULL = 0.1
"""Frames of depth the two ends of a pull must lie apart; closer, every output frame is the same picture."""


def ease(t: np.ndarray) -> np.ndarray:
    """Ease-in, ease-out (smoothstep ``3t^2 - 2t^3``) of times in [0, 1].

    Examples
    --------
    >>> ease(np.array([0.0, 0.5, 1.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def pull_positions(start: float, end: float, count: int, *, bounce: bool = False) -> np.ndarray:
    """Focus positions (depth, frame units) of ``count`` output frames from ``start`` to ``end``.

    With ``bounce`` the pull goes there and back in the same number of frames
    (a loop that does not jump back).

    Examples
    --------
    >>> pull_positions(0.0, 4.0, 5).tolist()
    [0.0, 0.625, 2.0, 3.375, 4.0]
    """
    if count < 2:
        raise PostfocusError(f"a pull needs at least 2 frames, got {count}")
    t = np.linspace(0.0, 1.0, count)
    if bounce:
        t = 1.0 - np.abs(1.0 - 2.0 * np.linspace(0.0, 1.0, count, endpoint=False))
    return start + (end - start) * ease(t)


@dataclass
class FocusPull:
    """A planned focus pull (see :func:`plan_pull`).

    Attributes
    ----------
    positions : float64 (count,) focus depth of every output frame (0 = nearest frame).
    start, end : depth of the two ends.
    size : (height, width) of the output frames (even).
    fps : frames per second.
    f_number : the virtual aperture, or None for the recorded frames.
    depth : the stack's :class:`~postfocus.products.depth.DepthResult`, when it was needed.
    """

    positions: np.ndarray = field(repr=False)  # (printed, the ends say it)
    start: float
    end: float
    size: tuple[int, int]
    fps: float
    f_number: float | None
    depth: object | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return len(self.positions)


def _frame_depth(stack: ProcessedStack, frame: int) -> float:
    last = len(stack.names) - 1
    return float(frame if stack.near_to_far else last - frame)


def _end_depth(stack: ProcessedStack, param: str, spec: PullEnd, depth) -> float:  # noqa: ANN001 (DepthResult)
    last = len(stack.names) - 1
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if int(spec) not in stack.used:
            raise OptionError(param, spec, f"frame {int(spec)} is not in this stack (frames kept: {list(stack.used)})")
        return _frame_depth(stack, int(spec))
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise OptionError(param, spec, "a point is (x, y)")
        try:
            return focus_at(depth.depth, float(spec[0]), float(spec[1]), depth.confidence)
        except PostfocusError as exc:
            raise OptionError(param, spec, str(exc)) from None
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in ("near", "far"):
            value = preset_focus(depth.depth, text, depth.confidence)
            assert value is not None
            return float(value)
        m = re.fullmatch(r"(-?[\d.]+)\s*%", text)
        if m:
            share = float(m.group(1))
            if not 0 <= share <= 100:
                raise OptionError(param, spec, "a share of the sweep is 0% (nearest frame) to 100% (farthest)")
            return share / 100.0 * last
    raise OptionError(param, spec, "use near, far, a frame number, a share of the sweep like 40% or a point X,Y")


def _needs_depth(spec: PullEnd) -> bool:
    return isinstance(spec, tuple) or (isinstance(spec, str) and spec.strip().lower() in ("near", "far"))


def _output_size(size: tuple[int, int], long_edge: int | None) -> tuple[int, int]:
    h, w = size
    s = 1.0 if not long_edge else min(1.0, long_edge / max(h, w))
    return max(2, int(round(h * s / 2)) * 2), max(2, int(round(w * s / 2)) * 2)


def check_pull_options(*, duration: float, fps: float, f_number: float | None = None,
                       long_edge: int | None = None) -> int:
    """Refuse a bad duration, frame rate, f-number or size before any work; return the number of frames.

    Raises
    ------
    OptionError

    Examples
    --------
    >>> check_pull_options(duration=2, fps=12)
    24
    """
    if not (is_number(duration) and math.isfinite(duration) and duration > 0):
        raise OptionError("duration", duration, "must be more than 0 seconds")
    if not (is_number(fps) and math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):  # (0.001: an OverflowError)
        raise OptionError("fps", fps, f"use {MIN_FPS:g} to {MAX_FPS:g} frames per second")
    frames = float(duration) * float(fps)  # (1e308 s at 120 fps is infinite: int(round()) was an OverflowError)
    count = int(round(frames)) if frames <= MAX_FRAMES else MAX_FRAMES + 1
    if not 2 <= count <= MAX_FRAMES:
        made = count if count <= MAX_FRAMES else f"more than {MAX_FRAMES}"
        raise OptionError("duration", duration, f"at {fps:g} frames per second this makes {made} frames; "
                          f"a pull has 2 to {MAX_FRAMES}")
    if long_edge is not None and not (is_whole(long_edge) and long_edge >= 16):  # ("720" was a TypeError)
        raise OptionError("long_edge", long_edge, "a whole number of at least 16 pixels")
    if f_number is not None and not (is_number(f_number) and math.isfinite(f_number) and f_number > 0):
        raise OptionError("f_number", f_number, "must be a number above 0 (e.g. 1.4, 2.8, 8)")
    return count


def plan_pull(stack: ProcessedStack, *, start: PullEnd = "near", end: PullEnd = "far", duration: float = 3.0,
              fps: float = 24.0, f_number: float | None = None, long_edge: int | None = 1080,
              bounce: bool = False, progress: Progress | None = None, threads: int | None = None) -> FocusPull:
    """Check the options of a pull and choose its focus positions (before any rendering).

    Parameters
    ----------
    stack : ProcessedStack
    start, end : PullEnd
        The two ends (see the module's description).
    duration : float
        Seconds from start to end (there and back with ``bounce``).
    fps : float
        Frames per second.
    f_number : float or None
        Render with a virtual aperture of this f-number instead of the recorded frames.
    long_edge : int or None
        Long edge of the output frames in pixels (None: the stack's size); made even.
    bounce : bool
        Go there and back.
    progress : callable, optional
        ``progress(stage, done, total)``: the "depth map" stage, when the stack's map is made for the pull.
    threads : int or None
        Thread budget of the depth map when it is made for the pull (None: the machine's cores).

    Returns
    -------
    FocusPull

    Raises
    ------
    PostfocusError
        For a bad end, duration, frame rate or f-number.
    """
    count = check_pull_options(duration=duration, fps=fps, f_number=f_number, long_edge=long_edge)
    threads = check_threads(threads)
    depth = None
    if f_number is not None or _needs_depth(start) or _needs_depth(end):
        from postfocus.products.depth_cache import stack_depth

        depth = stack_depth(stack, progress=progress, threads=threads)
    a, b = _end_depth(stack, "start", start, depth), _end_depth(stack, "end", end, depth)
    if abs(b - a) < MIN_PULL:
        near, far = ((0.0, float(len(stack.names) - 1)) if depth is None else
                     (preset_focus(depth.depth, side, depth.confidence) for side in ("near", "far")))
        raise OptionError("end", end, f"is at depth {b:.2f}, where the pull starts: it would not move; choose ends at "
                          f"two depths (the scene spans {near:.2f} to {far:.2f})")
    return FocusPull(positions=pull_positions(a, b, count, bounce=bounce), start=a, end=b,
                     size=_output_size(stack.size, long_edge), fps=float(fps), f_number=f_number, depth=depth)


def _bracket(depths: np.ndarray, p: float) -> tuple[int, int, float]:
    """Slots of the frames either side of depth ``p`` (``depths`` ascending) and the weight of the second."""
    if p <= depths[0]:
        return 0, 0, 0.0
    if p >= depths[-1]:
        k = len(depths) - 1
        return k, k, 0.0
    k = int(np.searchsorted(depths, p, side="right")) - 1
    t = (p - depths[k]) / max(float(depths[k + 1] - depths[k]), 1e-9)
    return k, k + 1, float(t)


def render_pull(stack: ProcessedStack, pull: FocusPull, *, progress: Progress | None = None) -> Iterator[np.ndarray]:
    """The frames of a pull, one at a time: float32 (H, W, 3) in [0, 1].

    With the recorded frames, at most two aligned frames (at output size, in
    linear light) are held at a time while the pull moves on.
    """
    h, w = pull.size
    count = pull.count
    if pull.f_number is not None:
        result = pull.depth
        image = cv2.resize(stack.all_in_focus(), (w, h), interpolation=cv2.INTER_AREA)
        depth = cv2.resize(result.depth, (w, h), interpolation=cv2.INTER_AREA)  # type: ignore[union-attr]
        # the lens over the scene's depths, as aperture's (its blur per frame does not depend on the focus)
        blur = f_number_lens(result.depth, result.frames, pull.start, pull.f_number,  # type: ignore[union-attr]
                             size=(h, w)).blur_px
        for i, p in enumerate(pull.positions):
            yield render_aperture(image, depth, float(p), blur_px=blur)
            if progress:
                progress("focus pull", i + 1, count)
        return
    frames = sorted(stack.used, key=lambda f: _frame_depth(stack, f))
    depths = np.asarray([_frame_depth(stack, f) for f in frames], np.float64)
    held: dict[int, np.ndarray] = {}

    def linear(slot: int) -> np.ndarray:
        if slot not in held:
            small = cv2.resize(stack.read_frame(frames[slot]), (w, h), interpolation=cv2.INTER_AREA)
            held[slot] = gamma_decode(np.clip(small, 0.0, 1.0))
        return held[slot]

    for i, p in enumerate(pull.positions):
        a, b, t = _bracket(depths, float(p))
        for slot in [s for s in held if s not in (a, b)]:
            del held[slot]
        mixed = linear(a) if t <= 1e-4 else (1.0 - t) * linear(a) + t * linear(b)
        yield gamma_encode(mixed)
        if progress:
            progress("focus pull", i + 1, count)


def animate(stack: ProcessedStack, path: str | os.PathLike, *, start: PullEnd = "near", end: PullEnd = "far",
            duration: float = 3.0, fps: float = 24.0, f_number: float | None = None,
            long_edge: int | None = 1080, bounce: bool = False, quality: int = 80,
            progress: Progress | None = None, threads: int | None = None) -> tuple[Path, FocusPull]:
    """Render a focus pull of a processed stack and write it (MP4, GIF or WebP by the suffix), atomically.

    Parameters
    ----------
    stack : ProcessedStack
    path : str or os.PathLike
        ``.mp4``, ``.gif`` or ``.webp``.
    start, end, duration, fps, f_number, long_edge, bounce, threads
        As for :func:`plan_pull`.
    quality : int
        WebP quality, MP4 rate (1-100).
    progress : callable, optional
        ``progress(stage, done, total)`` once per output frame (and for the "depth map" stage when the pull
        makes the stack's map).

    Returns
    -------
    (pathlib.Path, FocusPull)

    Examples
    --------
    >>> from postfocus import process
    >>> animate(process("sweep/"), "pull.mp4", start="near", end="far", duration=3)  # doctest: +SKIP
    """
    if Path(path).suffix.lower() not in ANIMATION_FORMATS:
        raise PostfocusError(f"{path}: a focus pull is written as {', '.join(ANIMATION_FORMATS)}")
    check_output_path(path, stack.info.paths, ANIMATION_FORMATS)  # (a pull written over its input video: review17)
    pull = plan_pull(stack, start=start, end=end, duration=duration, fps=fps, f_number=f_number,
                     long_edge=long_edge, bounce=bounce, progress=progress, threads=threads)
    written = write_animation(path, render_pull(stack, pull, progress=progress), fps=pull.fps, quality=quality)
    return written, pull
