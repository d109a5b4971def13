"""Tap to refocus: which frame is sharpest at a point.

A tap reads the focus volume in a window around the point: the frame whose
focus measure there is highest wins (the window's focus curve, Nayar & Nakagawa
1994). How sure that is depends on how far the curve's peak stands above its
median and above the stack's noise floor (:mod:`postfocus.focus.floor`, kept by
the stack folder): a plain window's curve is noise, however peaked. Where the
window has too little texture to tell (a plain wall, the sky, a dark
background), the answer is read from the stack's fill at the point: its depth
map where one is kept in the stack folder (the depth ``aperture`` and ``pop``
focus at), else the same depth made on the focus map's grid at the first plain
tap and kept (:mod:`postfocus.products.tap_depth`); the result says so. A stack folder's
taps read that depth at every point, textured or not (:mod:`postfocus.products.tap_read`): beside a near
object the window's curve names the object; the window's confidence is still the answer's.

References
----------
S. K. Nayar, Y. Nakagawa, "Shape from focus", IEEE PAMI 16(8), 1994.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from postfocus.errors import PostfocusError
from postfocus.focus.floor import WINDOW, above_floor, window_floor
from postfocus.options import check_threads
from postfocus.maps import MapsView
from postfocus.products.tap_point import check_point
from postfocus.products.tap_read import depth_on_grid, depth_radius, depth_reading, depth_weights
from postfocus.store import ProcessedStack

__all__ = ["MIN_CONFIDENCE", "Tap", "check_point", "is_plain", "parse_point", "plain_fill", "plain_fill_ready",
           "sharpest_frame", "stack_floor", "tap"]

MIN_CONFIDENCE = 0.25


@dataclass(frozen=True)
class Tap:
    """Answer to a tap.

    Attributes
    ----------
    frame : frame number that is sharpest at the point.
    position : sub-frame focus position there (frame units).
    confidence : 0..1, how clearly one frame stands out.
    x, y : the tapped point (output pixels).
    source_x, source_y : where the answer was read (differs after a fallback).
    fallback : True when the point itself had too little texture.
    moving : True when the point lies on a subject that moved during the sweep:
        ``frame`` is the one instant the all-in-focus image shows it from.
    filled_from : after a fallback, the map whose fill answered at the point itself
        (``"depth map"``, ``"focus map"``); empty when the nearest confident window answered.
    """

    frame: int
    position: float
    confidence: float
    x: float
    y: float
    source_x: float
    source_y: float
    fallback: bool
    moving: bool = False
    filled_from: str = ""

    def describe(self, label: Callable[[int], str] | None = None) -> str:
        """The answer in one line; ``label(frame)`` names the frame (default ``"frame 3"``, its number).

        Examples
        --------
        >>> Tap(3, 3.0, 0.9, 10, 20, 10, 20, False).describe(lambda i: f"frame {i + 1} (c.jpg)")
        'frame 4 (c.jpg) is sharpest at 10,20 (confidence 0.90)'
        """
        name = label(self.frame) if label else f"frame {self.frame}"
        text = f"{name} is sharpest at {self.x:.0f},{self.y:.0f} (confidence {self.confidence:.2f})"
        if self.moving:
            return (f"{name} shows the moving subject at {self.x:.0f},{self.y:.0f} "
                    "(it moved during the sweep: one instant, the sharpest)")
        if self.fallback and self.filled_from:  # (no confidence: no window measured it, "confidence 0.00" read oddly)
            return (f"{name} is sharpest at {self.x:.0f},{self.y:.0f}; too little texture there, so the "
                    f"{self.filled_from}, filled in from the textured areas around, decided")
        if self.fallback:
            dist = np.hypot(self.source_x - self.x, self.source_y - self.y)
            text += (f"; too little texture there, so the nearest confident area at "
                     f"{self.source_x:.0f},{self.source_y:.0f} ({dist:.0f} px away) decided")
        return text


def parse_point(text: str, size: tuple[int, int]) -> tuple[float, float]:
    """Parse ``X,Y`` in pixels or ``40%,55%`` in fractions of width and height.

    Parameters
    ----------
    text : the point as typed.
    size : (height, width) of the output geometry.

    Returns
    -------
    (x, y) in output pixels; raises PostfocusError if outside the image.

    Examples
    --------
    >>> parse_point("50%,25%", (100, 200))
    (100.0, 25.0)
    """
    h, w = size
    m = re.fullmatch(r"\s*(-?[\d.]+)(%?)\s*,\s*(-?[\d.]+)(%?)\s*", text or "")
    if not m:
        raise PostfocusError(f"point {text!r}: expected X,Y in pixels (e.g. 640,360) or percentages (e.g. 40%,55%)")
    x = float(m.group(1)) * (w / 100 if m.group(2) else 1)
    y = float(m.group(3)) * (h / 100 if m.group(4) else 1)
    if not (m.group(2) or m.group(4)) and 0 < max(x, y) < 1:  # 0.5,0.5 meant the middle, not the corner
        raise PostfocusError(f"point {text!r}: pixels count from the top-left corner; for a share of the picture "
                             f"write percentages ({100 * x:g}%,{100 * y:g}%)")
    if not (0 <= x < w and 0 <= y < h) and not (m.group(2) and x == w or m.group(4) and y == h):
        raise PostfocusError(f"point {text!r} is outside the image ({w}x{h}; X from 0 to {w - 1}, Y from 0 to {h - 1})")
    return min(x, w - 1), min(y, h - 1)


def _window_scores(volume: np.ndarray, cx: int, cy: int, radius: int) -> np.ndarray:
    _, h, w = volume.shape
    y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
    x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
    return np.asarray(volume[:, y0:y1, x0:x1], np.float32).reshape(volume.shape[0], -1).mean(axis=1)


def _score_confidence(scores: np.ndarray, floor: float = 0.0) -> float:
    """How clearly one frame stands out of a window's curve: above its median, and above the noise ``floor``."""
    peak = float(scores.max())
    if peak <= 0:
        return 0.0
    return float(np.clip(1.5 * (1.0 - float(np.median(scores)) / peak), 0.0, 1.0)) * float(above_floor(peak, floor))


def sharpest_frame(
    volume: np.ndarray,
    frames: list[int],
    x: float,
    y: float,
    *,
    map_scale: tuple[float, float] = (1.0, 1.0),
    radius: int = WINDOW,
    confidence_map: np.ndarray | None = None,
    floor: float = 0.0,
    fill: np.ndarray | None = None,
    fill_name: str = "focus map",
    fill_radius: int | None = None,
    fill_weights: np.ndarray | None = None,
) -> Tap:
    """Frame sharpest at output point (x, y).

    Parameters
    ----------
    volume : (N, h, w) focus measure of the frames listed in ``frames``.
    frames : frame numbers of the volume's slices.
    x, y : tapped point in output pixels.
    map_scale : (sx, sy) from output pixels to volume pixels.
    radius : half-size of the window in volume pixels.
    confidence_map : optional (h, w) confidence; guides the fallback search.
    floor : the volume's noise floor (:func:`~postfocus.focus.floor.window_floor`); 0: none known, the
        confidence is the curve's shape alone.
    fill : optional (h, w) focus positions (frame numbers) on the volume's grid: a window with too little
        texture answers with its value at the point (see :func:`plain_fill`) instead of searching for the
        nearest confident window.
    fill_name : what ``fill`` is, for :attr:`Tap.filled_from`.
    fill_radius : with ``fill`` the stack's depth, every window answers with its median over this radius (map
        pixels) around the point (:mod:`~postfocus.products.tap_read`), the confidence still the window's.

    Returns
    -------
    Tap

    Examples
    --------
    >>> vol = np.zeros((3, 8, 8), np.float32); vol[1] = 1
    >>> sharpest_frame(vol, [0, 1, 2], 4, 4).frame
    1
    """
    cx, cy = _map_point(volume, x, y, map_scale)
    scores = _window_scores(volume, cx, cy, radius)
    return _answer(volume, frames, x, y, (cx, cy), scores, map_scale=map_scale, radius=radius,
                   confidence_map=confidence_map, floor=floor, fill=fill, fill_name=fill_name, fill_radius=fill_radius,
                   fill_weights=fill_weights)


def _map_point(volume: np.ndarray, x: float, y: float, map_scale: tuple[float, float],
               origins: tuple = ((0, 0), (0, 0))) -> tuple[int, int]:
    """The volume pixel (cx, cy) nearest output point (x, y); ``origins``: the pixel and map origins of cut maps
    (:meth:`~postfocus.maps.StackMaps.map_grid`), rounded as the uncut maps were."""
    _, h, w = volume.shape
    (ox, oy), (mx, my) = origins
    cx, cy = round((x + ox) * map_scale[0]) - mx, round((y + oy) * map_scale[1]) - my
    return int(np.clip(cx, 0, w - 1)), int(np.clip(cy, 0, h - 1))


def _answer(volume: np.ndarray, frames: list[int], x: float, y: float, at: tuple[int, int], scores: np.ndarray, *,
            map_scale: tuple[float, float], radius: int, confidence_map: np.ndarray | None, floor: float,
            fill: np.ndarray | None, fill_name: str, origins: tuple = ((0, 0), (0, 0)),
            fill_radius: int | None = None, fill_weights: np.ndarray | None = None) -> Tap:
    """:func:`sharpest_frame` with the tapped window, volume pixel ``at``, scored already (``scores``)."""
    _, h, w = volume.shape
    cx, cy = at
    (ox, oy), (mx, my) = origins
    conf = _score_confidence(scores, floor)
    sx, sy, fallback = cx, cy, False
    if fill is not None and fill_radius is not None:  # the stack's depth, read as aperture reads it (tap_read)
        at = depth_reading(fill, cx, cy, fill_radius, fill_weights)
        k = int(np.argmin(np.abs(np.asarray(frames, np.float64) - at)))
        plain = conf < MIN_CONFIDENCE
        return Tap(frame=int(frames[k]), position=at, confidence=conf, x=float(x), y=float(y), source_x=float(x),
                   source_y=float(y), fallback=plain, filled_from=fill_name if plain else "")
    if conf < MIN_CONFIDENCE and fill is not None:  # a plain window: the fill at the point
        at = float(fill[cy, cx])
        k = int(np.argmin(np.abs(np.asarray(frames, np.float64) - at)))
        return Tap(frame=int(frames[k]), position=at, confidence=conf, x=float(x), y=float(y),
                   source_x=float(x), source_y=float(y), fallback=True, filled_from=fill_name)
    if conf < MIN_CONFIDENCE:
        # Search rings of growing radius for the nearest window that is confident.
        best = None
        for ring in range(radius * 2, max(h, w), radius * 2):
            for dy in range(-ring, ring + 1, radius):
                for dx in (-ring, ring) if abs(dy) != ring else range(-ring, ring + 1, radius):
                    px, py = cx + dx, cy + dy
                    if not (0 <= px < w and 0 <= py < h):
                        continue
                    if confidence_map is not None and confidence_map[py, px] < MIN_CONFIDENCE * 0.5:
                        continue
                    s = _window_scores(volume, px, py, radius)
                    c = _score_confidence(s, floor)
                    if c >= MIN_CONFIDENCE and (best is None or dx * dx + dy * dy < best[0]):
                        best = (dx * dx + dy * dy, px, py, s, c)
            if best is not None:
                break
        if best is not None:
            _, sx, sy, scores, conf = best
            fallback = True
    k = int(np.argmax(scores))
    position = float(k)
    if 0 < k < len(scores) - 1:
        ym, y0, yp = np.log(np.maximum(scores[k - 1 : k + 2], 1e-12))
        denom = ym - 2 * y0 + yp
        if denom < -1e-9:
            position = k + float(np.clip(0.5 * (ym - yp) / denom, -0.5, 0.5))
    frame_pos = float(np.interp(position, np.arange(len(frames)), frames))
    return Tap(
        frame=int(frames[k]), position=frame_pos, confidence=conf, x=float(x), y=float(y),
        source_x=(sx + mx) / map_scale[0] - ox, source_y=(sy + my) / map_scale[1] - oy, fallback=fallback,
    )


def plain_fill(stack: MapsView, *, threads: int | None = None, make: bool = True) -> tuple[np.ndarray, str]:
    """Where a plain window's tap answer is read: focus positions (frame numbers) on the focus map's grid.

    The depth map kept in a stack folder (by ``depth``, ``aperture``, ``pop``, the web app), brought to the
    focus map's grid: its textureless areas are filled from the surfaces around them along colour edges
    (:mod:`postfocus.products.depth`), so the tap names the frame ``aperture`` focuses at there. Without one, the
    same rules run on the focus map's grid (:mod:`postfocus.products.tap_depth`: made at the stack's first plain
    tap, 1.5 s of CPU at 4K, then kept in the folder and read in milliseconds). A stack result (no folder, no
    kept image) answers from pass 1's focus-index map, also filled (:func:`~postfocus.focus.map.focus_index_map`),
    which carries a near object's spill around its outline.

    Parameters
    ----------
    stack : a processed stack (:class:`~postfocus.store.ProcessedStack`) or a stack result.
    threads : thread budget of the depth made at a first plain tap (None: the machine's cores; 1: the calling
        thread only).
    make : False: a depth not kept is not made (the focus map answers; the web app when making it failed).

    Returns
    -------
    (positions, name): float32 (h, w) array; ``"depth map"`` or ``"focus map"``.
    """
    index = stack.focus_index
    if isinstance(stack, ProcessedStack):
        fill = _kept_depth_fill(stack, index.shape)
        if fill is None:
            fill = _tap_depth_fill(stack, threads, make=make)
        if fill is not None:
            return fill, "depth map"
    return np.asarray(index, np.float32), "focus map"


#: The depth fills read last, on the focus map's grid, by (depth file, its key): reading a 4K stack's kept depth
#: map takes ~40 ms of CPU, a tap a fraction of a millisecond. Taken and changed under ``_FILLS_LOCK`` only: the web
#: app taps from a pool of threads, and a tap that read it while another evicted from it was a KeyError or
#: "dictionary changed size during iteration", a 500 (review14).
_FILLS: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_FILLS_KEPT = 4
_FILLS_LOCK = threading.Lock()


def _remembered(name: tuple[str, str]) -> np.ndarray | None:
    """The fill kept in memory under ``name``, now the last evicted; None."""
    with _FILLS_LOCK:
        small = _FILLS.get(name)
        if small is not None:
            _FILLS.move_to_end(name)  # (the last used is the last evicted)
        return small


def _remember(name: tuple[str, str], small: np.ndarray) -> np.ndarray:
    """Keep the fill ``small`` (read-only now) in memory under ``name``, evicting the least recently used."""
    small = np.asarray(small, np.float32)
    small.flags.writeable = False
    with _FILLS_LOCK:  # (read outside it: another thread may have put the same one meanwhile, as good)
        _FILLS[name] = small
        _FILLS.move_to_end(name)
        while len(_FILLS) > _FILLS_KEPT:  # the least recently used first
            _FILLS.popitem(last=False)
    return small


def _kept_depth_fill(stack: ProcessedStack, shape: tuple[int, int]) -> np.ndarray | None:
    """The depth map kept in the stack folder on the focus map's grid, in frame numbers (read-only); None when
    none is kept (it is never made here)."""
    from postfocus.products.depth_cache import depth_keys, depth_path, is_depth_map
    from postfocus.store.kept import load_kept

    for method, key in depth_keys(stack):
        name = (str(depth_path(stack, method)), key)
        small = _remembered(name)
        if small is not None:
            return small
        arrays = load_kept(depth_path(stack, method), key, ("depth", "frames"))  # (not its confidence)
        # (a file under the key with NaN or 1e30 depths, or two frame counts, is no depth map: review15)
        if arrays is None or not is_depth_map(arrays, tuple(stack.size), confidence=False):
            continue
        depth, frames = np.asarray(arrays["depth"], np.float32), int(arrays["frames"])
        mh, mw = shape
        small = depth_on_grid(depth, (mh, mw), stack.maps.map_grid()) if depth.shape != (mh, mw) else depth
        if not stack.near_to_far:  # the depth map counts from the nearest frame; the frames from frame 0
            small = (frames - 1) - small
        return _remember(name, small)
    return None


def _tap_depth_fill(stack: ProcessedStack, threads: int | None, *, make: bool = True) -> np.ndarray | None:
    """The depth map's rules on the focus map's grid (:mod:`~postfocus.products.tap_depth`), kept in the folder
    and in memory; None when the folder holds no all-in-focus image to guide them (or, with ``make=False``, when
    none is kept: it is not made)."""
    from postfocus.products.tap_depth import kept_tap_depth, tap_depth, tap_depth_path, tap_depth_source

    source = tap_depth_source(stack)
    if source is None:
        return None
    method, key = source
    name = (str(tap_depth_path(stack, method)), key)
    small = _remembered(name)
    if small is not None:
        return small
    depth = tap_depth(stack, method, key, threads=threads) if make else kept_tap_depth(stack, method, key)
    return None if depth is None else _remember(name, depth)


def plain_fill_ready(stack: MapsView) -> bool:
    """Whether :func:`plain_fill` answers without making anything: its fill in memory or kept in the stack folder
    (read now, then kept in memory), or none to make (a stack result). False when a plain tap would make the
    depth first (1.5 s of CPU at 4K; the web app makes it ahead, bounded: :mod:`postfocus.web.taps`)."""
    from postfocus.products.tap_depth import tap_depth_source

    if not isinstance(stack, ProcessedStack) or _kept_depth_fill(stack, stack.focus_index.shape) is not None:
        return True
    return tap_depth_source(stack) is None or _tap_depth_fill(stack, None, make=False) is not None


def stack_floor(stack: MapsView) -> float:
    """The noise floor of a stack's focus volume for a tap's window: kept by a stack folder, else measured.

    Examples
    --------
    >>> stack_floor(process("sweep.mp4")) > 0  # doctest: +SKIP
    True
    """
    if isinstance(stack, ProcessedStack):
        return stack.tap_floor
    return window_floor(stack.volume)


def tap(stack: ProcessedStack, x: float, y: float, radius: int = 6, *, threads: int | None = None,
        make: bool = True) -> Tap:
    """Tap on a processed stack at output pixel (x, y).

    Examples
    --------
    >>> tap(process("sweep.mp4"), 640, 360).frame  # doctest: +SKIP
    12

    Raises
    ------
    OptionError
        For a ``stack`` that is not one (a folder's path: ``process`` it first), an ``x`` or ``y`` that is not a
        number, a ``radius`` that is not a whole number of at least 1.
    PostfocusError
        For a point outside the image.

    ``threads`` is the thread budget of the depth a stack's first plain tap makes when none is kept (None: the
    machine's cores; 1: the calling thread only); ``make=False`` makes none (:func:`plain_fill`).
    """
    check_point(stack, x, y, radius)
    x, y, threads = float(x), float(y), check_threads(threads)
    motion = stack.motion
    if motion is not None:  # a moving subject: the one instant the stack shows it from
        from postfocus.motion import instant_at

        grid = stack.maps.map_grid()  # (the window's map pixel; cut maps on the uncut maps' grid, grid10)
        cx, cy = _map_point(stack.volume, x, y, grid[0], grid[1:])
        frame = instant_at(motion, stack.volume, stack.used, cx, cy)
        if frame is not None:
            return Tap(frame=frame, position=float(frame), confidence=1.0, x=float(x), y=float(y),
                       source_x=float(x), source_y=float(y), fallback=False, moving=True)
    radius = int(radius)  # (np.int64(2**62) * 2 overflowed in the ring search: review13)
    (scale, *origins), at, scores, floor, plain = _window_at(stack, x, y, radius)
    # A folder's depth answers every window (tap_read: beside a near object the window's curve names the object);
    # a stack result's filled focus map only a plain one. (make=False and no depth kept: the focus map, as before.)
    fill, name = plain_fill(stack, threads=threads, make=make) if plain or isinstance(stack, ProcessedStack) \
        else (None, "")
    if name == "focus map" and not plain:
        fill = None
    return _answer(stack.volume, stack.used, x, y, at, scores, map_scale=scale, radius=radius,
                   confidence_map=stack.confidence, floor=floor, fill=fill, fill_name=name, origins=origins,
                   fill_radius=depth_radius(stack.size, scale) if name == "depth map" else None,
                   fill_weights=depth_weights(stack, fill.shape) if name == "depth map" else None)


def _window_at(stack: MapsView, x: float, y: float, radius: int):  # noqa: ANN202
    """((map scale, pixel origin, map origin), map point, the window's scores, the noise floor, whether the window
    is plain) of a tap: the maps' own grid, for cut maps the uncut maps' (:meth:`.StackMaps.map_grid`, grid10)."""
    grid, volume, floor = stack.maps.map_grid(), stack.volume, stack_floor(stack)
    at = _map_point(volume, x, y, grid[0], grid[1:])
    scores = _window_scores(volume, *at, radius)  # (once: it was scored again by sharpest_frame; review15)
    return grid, at, scores, floor, _score_confidence(scores, floor) < MIN_CONFIDENCE


def is_plain(stack: MapsView, x: float, y: float, radius: int = 6) -> bool:
    """Whether a :func:`tap` at (x, y) answers from the stack's fill (:func:`plain_fill`): its window has too
    little texture to name a frame. Refuses what :func:`tap` refuses (OptionError, PostfocusError)."""
    check_point(stack, x, y, radius)
    return bool(_window_at(stack, float(x), float(y), int(radius))[-1])
