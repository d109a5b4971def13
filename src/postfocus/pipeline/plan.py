"""Planning a merge before any frame is decoded: the bands of rows a memory limit needs, and the frames to merge.

Both are known from the stack's size and frame list alone, so a limit that cannot be met or a frame
range with no usable frame is refused at once (:mod:`postfocus.pipeline.merge` runs the merge).
"""

from __future__ import annotations

from typing import Callable, Sequence

from postfocus.errors import OptionError, frame_runs, shown
from postfocus.options import is_whole
from postfocus.pipeline.analyse import work_scale
from postfocus.pipeline.memory import bands_for, machine_bands

__all__ = ["check_fuse", "merge_frames", "plan_bands"]


def plan_bands(size: tuple[int, int], n_frames: int, method: str, memory_mb: float | None,
               warn: Callable[[str], None], analysis_size: int = 800) -> int:
    """Bands of rows pass 2 needs to stay under ``memory_mb`` (see :mod:`postfocus.pipeline.memory`).

    Known before any frame is decoded, so an impossible limit is refused at once.

    Parameters
    ----------
    size : tuple of int
        (H, W) of the frames.
    n_frames : int
        Frames in the stack.
    method : str
        Fusion method; only the depth-map method merges in bands (others: a warning, 1).
    memory_mb : float or None
        The limit (None: the machine's memory, :func:`~postfocus.pipeline.memory.machine_bands`: 1 band for
        every stack estimated to fit whole).
    warn : callable
        Receives the warning text.
    analysis_size : int
        Long edge of the analysis maps.

    Returns
    -------
    int
    """
    s = work_scale(size, analysis_size)
    pixels = round(size[0] * s) * round(size[1] * s)
    if memory_mb is None:  # the machine's memory is the limit (a stack too large for it: refused at once)
        return machine_bands(size, n_frames, pixels, banded=method == "depthmap", warn=warn)
    if method != "depthmap":
        warn(f"a memory limit applies to the depthmap method; {method} merges the whole picture at once")
        return 1
    return bands_for(size, n_frames, pixels, memory_mb)


def merge_frames(used: Sequence[int], frame_range: tuple[int, int] | None) -> list[int]:
    """Used frames inside an inclusive ``(A, B)`` range (all used frames for None).

    Raises
    ------
    OptionError
        For ``frame_range``, when no used frame lies in it.

    Examples
    --------
    >>> merge_frames([0, 2, 3, 5], (1, 3))
    [2, 3]
    """
    if frame_range is None:
        return list(used)
    lo, hi = frame_range
    frames = [i for i in used if lo <= i <= hi]
    if not frames:
        raise OptionError("frame_range", frame_range, "no usable frame in that range")
    return frames


def pick_frames(used: Sequence[int], count: int, given: list) -> list[int]:
    """The kept frames among ``given`` frame numbers of a stack of ``count`` frames (``merge(frames=...)``), in
    the stack's order, each once.

    A frame left out (not aligned) is skipped; a value that is no frame number of the stack at all (``99`` of
    28 frames, ``-1``, ``2.5``) is refused, as ``frame_range`` refuses ``(3, 99)``: it was dropped without a word.
    The frames are a set: ``[2, 1, 0]`` or ``[0, 0, 1, 2]`` merge as ``[0, 1, 2]`` (the fusion reads a frame's
    place in the focus order from its rank among the frames given: in another order, or with a frame twice,
    it fused the wrong frame at each pixel, half the tiny stack blurred).

    Raises
    ------
    OptionError
        For ``frames``: a value that is not a frame number from 0 to ``count - 1``, or none of them kept.

    Examples
    --------
    >>> pick_frames([0, 2, 3], 4, [1, 2, 3])
    [2, 3]
    >>> pick_frames([0, 1, 2], 3, [2, 0, 2])
    [0, 2]
    >>> pick_frames([0, 1, 2], 3, [1, 5, 6])
    Traceback (most recent call last):
    postfocus.errors.OptionError: frames=[1, 5, 6]: frame 5 is not in this stack (frames 0 to 2)
    """
    for i in given:
        if not is_whole(i) or not 0 <= i < count:
            raise OptionError("frames", given, f"frame {shown(i)} is not in this stack (frames 0 to {count - 1})")
    frames = sorted({int(i) for i in given} & {int(i) for i in used})
    if not frames:  # named as given, not as the empty list left
        raise OptionError("frames", given, f"none of those frames is in this stack (frames kept: {frame_runs(used)})")
    return frames


def check_fuse(source: object, maps: object, frames: object, region: object, bands: object,
               alignment: object) -> tuple[list[int], tuple[int, int, int, int]]:
    """The frames :func:`~postfocus.pipeline.merge.fuse` merges, in the stack's order, each once, and its region.

    Each argument below was a TypeError, AttributeError, IndexError or ValueError from inside pass 2 (a list of
    frames for ``source``: "'list' object has no attribute 'info'"), and ``frames=[2, 1, 0]`` fused the wrong
    frame at each pixel (the fusion ranks the frames given; ``merge`` was mended by review13, ``fuse`` was not).

    Raises
    ------
    OptionError
        For ``source``, ``maps``, ``frames``, ``region``, ``bands`` or ``alignment``.
    """
    from postfocus.io.base import FrameSource
    from postfocus.maps import StackMaps

    if not isinstance(source, FrameSource):
        raise OptionError("source", type(source).__name__,
                          "not opened frames; open them with postfocus.io.open_source(...) first")
    if not isinstance(maps, StackMaps):
        raise OptionError("maps", maps, "must be a StackMaps (an analysis's maps or a processed stack's)")
    if frames is None:
        merge = [int(i) for i in maps.used]
    elif isinstance(frames, (str, bytes)) or not hasattr(frames, "__iter__"):
        raise OptionError("frames", frames, "give a sequence of frame numbers, e.g. range(3, 9)")
    else:
        given = list(frames)
        for i in given:
            if not is_whole(i) or not 0 <= i < len(source):
                raise OptionError("frames", given, f"frame {shown(i)} is not in this stack (frames 0 to "
                                                   f"{len(source) - 1})")
        merge = sorted({int(i) for i in given})
        if not merge:
            raise OptionError("frames", given, "give at least one frame number")
    if not is_whole(bands) or bands < 1:
        raise OptionError("bands", bands, "must be a whole number of at least 1")
    h, w = maps.size
    whole = (0, 0, h, w) if region is None else region
    if (isinstance(whole, (str, bytes)) or not hasattr(whole, "__len__") or len(whole) != 4
            or not all(is_whole(v) for v in whole) or not 0 <= whole[0] < whole[2] <= h
            or not 0 <= whole[1] < whole[3] <= w):
        raise OptionError("region", region, f"give (top, left, bottom, right) within the maps' {h}x{w} rows and "
                                            "columns, top above bottom and left before right")
    if alignment is not None and (not hasattr(alignment, "__len__") or len(alignment) <= merge[-1]):
        raise OptionError("alignment", type(alignment).__name__, f"needs a transform for every frame to merge "
                                                                 f"(frame {merge[-1]} too)")
    return merge, tuple(int(v) for v in whole)
