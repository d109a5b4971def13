"""The depth map of a stack folder, made once and kept in it (``depth_<method>.npz``).

:func:`stack_depth` is :func:`~postfocus.products.depth.depth_map` for every
consumer of a stack folder (aperture, depth, mesh, pop, the web app): the first
call makes the map and keeps it (:mod:`postfocus.store.kept`), later calls read
it (about 0.1 s instead of 1-2 s at 4K). A map made where a tap kept its depth under the same key
(:func:`postfocus.products.tap_depth.kept_grid`) starts from that grid depth and only upsamples it (the same
bits). The key holds what the map depends
on: the depth algorithm's version (:data:`~postfocus.products.depth.DEPTH_VERSION`),
the fusion method and options, and the stack itself (the size and checksum of
each map the manifest records, the frames kept, the focus direction, and the
size and modification time of the all-in-focus image that guides the map). A
change to any of them, or a damaged file, makes the map again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from postfocus._version import __version__
from postfocus.options import DEFAULT_METHOD, check_threads
from postfocus.products.depth import DEPTH_VERSION, DepthResult, depth_map
from postfocus.products.depth_frames import frames_kept
from postfocus.store import ProcessedStack
from postfocus.store.kept import kept

__all__ = ["DEPTH_STAGE", "depth_key", "depth_keys", "depth_path", "is_depth_map", "stack_depth"]

DEPTH_STAGE = "depth map"
"""The stage :func:`stack_depth` reports to its ``progress`` callback while it makes a map."""

_MAPS = ("focus_index.npy", "confidence.npy", "volume.npy", "motion.npy")


def depth_path(stack: ProcessedStack, method: str = DEFAULT_METHOD) -> Path:
    """Where the depth map of ``method`` is kept in the stack folder."""
    return stack.folder / f"depth_{method}.npz"


def depth_key(stack: ProcessedStack, method: str = DEFAULT_METHOD, options: dict | None = None) -> str | None:
    """The key of the stack's depth map; None when it cannot be kept (options that are not plain
    values, or no all-in-focus image of ``method`` yet).

    Examples
    --------
    >>> depth_key(process("sweep.mp4")) != depth_key(process("sweep.mp4"), "pyramid")  # doctest: +SKIP
    True
    """
    options = options or {}
    if not all(isinstance(v, (type(None), bool, int, float, str)) for v in options.values()):
        return None
    try:
        guide = stack.all_in_focus_path(method).stat()
    except OSError:
        return None
    files = stack.manifest.get("files", {})
    parts = {
        "depth": DEPTH_VERSION,
        "postfocus": __version__,  # a release may change the depth's modules without raising DEPTH_VERSION
        "method": method,
        "options": options,
        "maps": {name: files.get(name) for name in _MAPS},
        "guide": [guide.st_size, guide.st_mtime_ns],
        "used": list(stack.used),
        "frames": len(stack.names),
        "near_to_far": stack.near_to_far,
        "size": list(stack.size),
        "created": stack.manifest.get("created"),
    }
    if not frames_kept(stack):  # made without the frames' step: another depth, not served once the files are back
        parts["frames_read"] = False  # (only then: a depth kept with them keeps its key, in every folder made before)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def depth_keys(stack: ProcessedStack) -> list[tuple[str, str]]:
    """The stack's own fusion method, then the default one, each with its depth map's key, for those whose
    all-in-focus image the folder holds (the order in which a tap looks for a kept depth)."""
    found = ((method, depth_key(stack, method)) for method in dict.fromkeys((stack.options.method, DEFAULT_METHOD)))
    return [(method, key) for method, key in found if key is not None]


def stack_depth(stack: ProcessedStack, *, method: str | None = None, image: np.ndarray | None = None,
                progress: Callable[[str, int, int], None] | None = None, threads: int | None = None,
                made: Callable[[DepthResult], None] | None = None, **options) -> DepthResult:
    """Depth map of a processed stack, read from the stack folder when kept there, else made and kept.

    Parameters
    ----------
    stack : :class:`postfocus.store.ProcessedStack`
    method : fusion method of the all-in-focus guide (default: the stack's default).
    image : the stack's all-in-focus image of ``method``, when the caller holds it (used to make the map).
    progress : called ``("depth map", 0, 1)`` before a map is made and ``("depth map", 1, 1)`` after (not when
        it is read from the folder): one step, a few seconds on a large stack.
    threads : thread budget of a map made now (None: the machine's cores; 1: the calling thread only); not part of
        the key (the map is the same to the bit).
    made : called with a map made now (not one read from the folder), before the folder keeps it: a caller that
        writes the map out can start encoding it while it is kept (the depth command's PNG).
    options : passed to :func:`~postfocus.products.depth.refine_depth` (part of the key).

    Returns
    -------
    DepthResult, the same as :func:`~postfocus.products.depth.depth_map`'s.

    Examples
    --------
    >>> result = stack_depth(process("sweep.mp4"))  # doctest: +SKIP
    """
    method = method or DEFAULT_METHOD
    threads = check_threads(threads)
    if image is None and not stack.all_in_focus_path(method).exists():
        image = stack.all_in_focus(method, threads=threads)  # the guide first: the key holds its file
    key = depth_key(stack, method, options)

    def fresh() -> DepthResult:
        if progress is not None:
            progress(DEPTH_STAGE, 0, 1)
        grid = None
        if key is not None:  # the tap's depth kept under the same key: the depth map's grid, not made again
            from postfocus.products.tap_depth import kept_grid

            grid = kept_grid(stack, method, key)
        result = depth_map(stack, method=method, image=image, threads=threads, grid=grid, **options)
        if progress is not None:
            progress(DEPTH_STAGE, 1, 1)
        if made is not None:
            made(result)
        return result

    if key is None:
        return fresh()

    def make() -> dict[str, np.ndarray]:
        result = fresh()
        return {"depth": result.depth, "confidence": result.confidence, "frames": np.asarray(result.frames)}

    # (a kept file of another size, or NaN depths, two frame counts, no confidence, cannot be ours: not trusted)
    arrays = kept(depth_path(stack, method), key, make, valid=lambda found: is_depth_map(found, tuple(stack.size)))
    depth, confidence = arrays["depth"], arrays["confidence"]
    return DepthResult(depth=depth.astype(np.float32, copy=False), confidence=confidence.astype(np.float32, copy=False),
                       frames=int(arrays["frames"]))


def is_depth_map(arrays: dict[str, np.ndarray], size: tuple[int, int], *, confidence: bool = True) -> bool:
    """Whether arrays read from a kept depth file are a depth map of ``size``: float depths, finite and within the
    sweep, one whole frame count and (``confidence``: read too) a float confidence of the same size. NaN depths
    were handed to every product, two frame counts or no confidence a TypeError or KeyError in each (review15).

    Examples
    --------
    >>> is_depth_map({"depth": np.zeros((2, 3), np.float32), "frames": np.asarray(4)}, (2, 3), confidence=False)
    True
    >>> is_depth_map({"depth": np.full((2, 3), np.nan, np.float32), "frames": np.asarray(4)}, (2, 3), confidence=False)
    False
    """
    depth, frames, trust = arrays.get("depth"), arrays.get("frames"), arrays.get("confidence")
    if not (isinstance(depth, np.ndarray) and depth.shape == size and depth.dtype.kind == "f"
            and isinstance(frames, np.ndarray) and frames.shape == () and frames.dtype.kind in "iu" and frames >= 1):
        return False
    if confidence and not (isinstance(trust, np.ndarray) and trust.shape == size and trust.dtype.kind == "f"):
        return False
    return bool(depth.size == 0 or (np.isfinite(depth).all() and -1 <= depth.min() and depth.max() <= int(frames)))
