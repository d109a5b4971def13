"""The depth a plain tap answers from before a depth map is kept: the depth map's rules on the focus map's grid.

A tap on a window with too little texture answers with the stack's depth at the point
(:func:`postfocus.products.refocus.plain_fill`): the depth map kept in the stack folder when ``depth``,
``aperture``, ``pop`` or the web app made one. Before that, pass 1's filled focus-index map answered, and
it carries a near object's spill: a sharp near outline raises the focus measure of the background beside
it, so the focus map reads the near object's frame, confidently, in a band around its outline (the
"foreground fattening" of window matching, Kang et al. 2001), and its fill spreads that band into the plain
area behind. The depth map's rules take it off (:func:`~postfocus.products.depth.refine_depth`: the
band given back to the far side it looks like, the spilled pixels distrusted, the plain area filled along
colour edges by its region's weighted median where its region holds two surfaces).

:func:`tap_depth` runs those rules on the focus volume kept in the stack folder, at its own grid, guided by the
all-in-focus image brought to that grid: what :func:`~postfocus.products.depth.depth_map` does before it
upsamples to the output size. It is made at the stack's first plain tap, about as long as the depth map takes
(its upsampling is cheap: on the 30-frame 4K sweep, map 785 x 441, 1.5 s of CPU against 1.7 s for the depth map
made and kept, a 64 MB file against 2.8 MB), and kept in the folder beside the depth map
(``tap_depth_<method>.npz``, under the depth map's key, :mod:`postfocus.store.kept`: a damaged or stale file is
made again, a folder that cannot be written makes it unkept), so a later process, or the page's tap map, reads
it in a few milliseconds. It keeps its confidence too (1.4 MB more at 4K): the depth map made later under the same
key starts from it (:func:`kept_grid`) and only upsamples, the same bits, so a tap then an aperture make the grid
depth once (reuse20: the first aperture after the first tap, 4K sweep, 5.7 -> 4.5 s of CPU).

References
----------
S. B. Kang, R. Szeliski, J. Chai, "Handling occlusions in dense multi-view stereo", CVPR 2001.
S. K. Nayar, Y. Nakagawa, "Shape from focus", IEEE PAMI 16(8), 1994.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from postfocus.options import DEFAULT_METHOD
from postfocus.products.depth import grid_depth
from postfocus.products.depth_cache import depth_keys
from postfocus.store import ProcessedStack
from postfocus.store.kept import kept, load_kept

__all__ = ["kept_grid", "kept_tap_depth", "tap_depth", "tap_depth_path", "tap_depth_source"]


def tap_depth_path(stack: ProcessedStack, method: str = DEFAULT_METHOD) -> Path:
    """Where the tap's depth guided by the all-in-focus image of ``method`` is kept in the stack folder."""
    return stack.folder / f"tap_depth_{method}.npz"


def tap_depth_source(stack: ProcessedStack) -> tuple[str, str] | None:
    """The fusion method whose all-in-focus image guides the stack's tap depth (the stack's own, else the default
    method's) and the key it is kept under (the depth map's: the maps, the guide, the versions); None when the
    folder holds neither image."""
    return next(iter(depth_keys(stack)), None)


def tap_depth(stack: ProcessedStack, method: str, key: str, *, threads: int | None = None) -> np.ndarray:
    """The depth map's positions on the focus map's grid, in frame numbers: read from the folder, else made and kept.

    Parameters
    ----------
    stack : a processed stack (:class:`~postfocus.store.ProcessedStack`).
    method, key : the guide's fusion method and the key, as :func:`tap_depth_source` gives them.
    threads : thread budget of a depth made now (None: the machine's cores); the result is the same.

    Returns
    -------
    float32 (h, w) frame numbers, the focus map's shape (frame 0 is the stack's first frame, as in
    ``focus_index``).

    Examples
    --------
    >>> ps = process("sweep.mp4")  # doctest: +SKIP
    >>> tap_depth(ps, *tap_depth_source(ps)).shape == ps.focus_index.shape  # doctest: +SKIP
    True
    """
    shape = tuple(stack.focus_index.shape)
    def make() -> dict[str, np.ndarray]:
        depth, confidence = grid_depth(stack, stack.all_in_focus(method), threads=threads)
        return {"depth": depth, "confidence": confidence}  # (its confidence too: the depth map is made from both)

    arrays = kept(tap_depth_path(stack, method), key, make,
                  valid=lambda found: _is_tap_depth(found.get("depth"), shape, len(stack.names)))
    return np.asarray(arrays["depth"], np.float32)


def kept_tap_depth(stack: ProcessedStack, method: str, key: str) -> np.ndarray | None:
    """The tap's depth kept in the folder as :func:`tap_depth` reads it, never made here: float32 (h, w) frame
    numbers, or None when none is kept under ``key`` (or the file holds no tap depth)."""
    found = load_kept(tap_depth_path(stack, method), key, ("depth",))
    if found is None or not _is_tap_depth(found["depth"], tuple(stack.focus_index.shape), len(stack.names)):
        return None
    return np.asarray(found["depth"], np.float32)


def kept_grid(stack: ProcessedStack, method: str, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The tap's depth and its confidence kept in the folder under ``key``, as made:
    :func:`~postfocus.products.depth.grid_depth`'s result for the all-in-focus image of ``method``, from which
    :func:`~postfocus.products.depth_cache.stack_depth` makes the depth map without making it again (the same bits).
    None when none is kept under ``key``, or the file holds no confidence (a tap depth kept before the
    seventeenth session) or no valid one."""
    found = load_kept(tap_depth_path(stack, method), key, ("depth", "confidence"))
    if found is None:
        return None
    depth, confidence = found["depth"], found["confidence"]
    shape = tuple(stack.focus_index.shape)
    if not (_is_tap_depth(depth, shape, len(stack.names)) and depth.dtype == np.float32
            and isinstance(confidence, np.ndarray) and confidence.shape == shape and confidence.dtype == np.float32
            and np.isfinite(confidence).all()):
        return None
    return depth, confidence


def _is_tap_depth(depth: object, shape: tuple[int, ...], frames: int) -> bool:
    """Whether a kept array is a tap depth of the focus map's ``shape``: float, finite, within the sweep."""
    if not (isinstance(depth, np.ndarray) and depth.shape == shape and depth.dtype.kind == "f"):
        return False
    return bool(depth.size == 0 or (np.isfinite(depth).all() and 0 <= depth.min() and depth.max() <= frames - 1))
