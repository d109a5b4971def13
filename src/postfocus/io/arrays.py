"""Frames already in memory as a frame source (the library API's ``stack(list_of_arrays)``).

Arrays come from anywhere (a camera SDK, a microscope, another program), so
they are checked the way files are: every frame must be finite, non-empty and
of one size; integer frames are read by their type's range (uint8 0-255 is
black to white), and frames of 32 or 64 bits whose values all lie within
0-65535 (``(frame * 255).astype(int)``), black at their type's range, are
refused; float frames are taken as [0, 1] and a warning says when they
are far outside it. Grey frames (H, W) and a whole stack as one
(N, H, W[, C]) array are accepted.

Arrays have no file names: their frames are named as a video's are (``frame 0000``, ``frame 0001`` ...), so
every message says them as :func:`postfocus.labels.frame_label` does, counted from 1 (``frame 3``); this
module's own messages add the list's index (``frame 1 (frames[0]): is empty``).
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Sequence

import numpy as np

from postfocus.errors import InputError, PostfocusWarning
from postfocus.io.base import FrameSource, SourceInfo
from postfocus.io.images import to_float

__all__ = ["ArraySource", "InvalidFrameError", "as_frames"]

#: Float frames whose values stray further than this outside [0, 1] are worth a warning.
FLOAT_SLACK = 0.05


def _said(k: int) -> str:
    """Frame ``k`` of the list as messages say it: counted from 1 (:mod:`postfocus.labels`), with its index.

    >>> _said(0)
    'frame 1 (frames[0])'
    """
    return f"frame {k + 1} (frames[{k}])"


class InvalidFrameError(InputError, ValueError):
    """A frame given as an array cannot be stacked (not finite, empty, wrong shape or type)."""


def as_frames(frames: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """The frames of a stack given as arrays: a sequence of (H, W[, C]) arrays or one (N, H, W[, C]) array.

    A 3-D array is read as N grey frames (N, H, W); one colour frame is not a stack.

    Parameters
    ----------
    frames : numpy.ndarray or sequence of numpy.ndarray

    Returns
    -------
    list of numpy.ndarray

    Raises
    ------
    InvalidFrameError
        For a single 2-D array or anything that is not an array.

    Examples
    --------
    >>> len(as_frames(np.zeros((3, 4, 6, 3), np.uint8)))
    3
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim in (3, 4):
            return list(frames)
        raise InvalidFrameError(f"an array of shape {frames.shape} is not a stack: give a list of frames "
                                "or one (N, H, W) / (N, H, W, 3) array")
    out = list(frames)
    for k, f in enumerate(out):
        if not isinstance(f, np.ndarray):
            raise InvalidFrameError(f"{_said(k)}: a {type(f).__name__}, not an array; give arrays only, "
                                    "or file paths only")
    return [np.asarray(f) for f in out]  # (a np.matrix stays 2-D when indexed: "shape too large to be a matrix")


def _check(k: int, f: np.ndarray) -> np.ndarray:
    """Frame ``k`` checked; returned as (H, W) or (H, W, 3) in its own type."""
    if f.dtype == bool or f.dtype.kind not in "uif":
        raise InvalidFrameError(f"{_said(k)}: values of type {f.dtype} cannot be pixels; use uint8, uint16 or float")
    if f.ndim == 3 and f.shape[2] in (1, 3, 4):
        f = f[:, :, 0] if f.shape[2] == 1 else f[:, :, :3]  # alpha is dropped, as for files
    if f.ndim not in (2, 3) or (f.ndim == 3 and f.shape[2] != 3):
        raise InvalidFrameError(f"{_said(k)}: shape {f.shape} is not a picture; expected (H, W) or (H, W, 3)")
    if f.size == 0:
        raise InvalidFrameError(f"{_said(k)}: is empty (shape {f.shape})")
    if f.dtype.kind in "ui" and f.dtype.itemsize >= 4:  # ((f * 255).astype(int): black at int64's range; review20)
        lo, hi = int(f.min()), int(f.max())
        if 0 <= lo and 0 < hi <= 65535:
            meant = "uint8" if hi <= 255 else "uint16"
            raise InvalidFrameError(
                f"{_said(k)}: {f.dtype.name} values from {lo} to {hi} are black at {f.dtype.name}'s range (to "
                f"{np.iinfo(f.dtype).max:.3g}); give {meant} frames (e.g. frames.astype(np.{meant})) or floats in [0, 1]")
    if f.dtype.kind == "f":
        if not np.isfinite(f.min() + f.max()):  # NaN or inf shows in the extremes: no frame-sized mask unless so
            bad = int(f.size - np.count_nonzero(np.isfinite(f)))
            raise InvalidFrameError(f"{_said(k)}: {bad} value{'s' if bad > 1 else ''} NaN or infinite; "
                                    "replace them (e.g. numpy.nan_to_num) before stacking")
    return f


def _warn_out_of_range(frames: list[np.ndarray]) -> None:
    """One warning for the float frames whose values stray far outside [0, 1]."""
    out = []
    for k, f in enumerate(frames):
        if f.dtype.kind == "f":
            lo, hi = float(f.min()), float(f.max())
            if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
                out.append((k, lo, hi))
    if out:
        which = ", ".join(str(k + 1) for k, _, _ in out[:5]) + (" ..." if len(out) > 5 else "")
        which += f" (frames[{out[0][0]}]{', ...' if len(out) > 1 else ''})"  # (counted from 1, as messages do)
        lo, hi = min(o[1] for o in out), max(o[2] for o in out)
        warnings.warn(f"frame{'s' if len(out) > 1 else ''} {which}: float values from {lo:.3g} to {hi:.3g} are "
                      "taken as [0, 1] light levels and clipped there; scale float frames to [0, 1] "
                      "(or pass integer arrays)", PostfocusWarning, stacklevel=4)


class ArraySource(FrameSource):
    """Frames already in memory as a source.

    Parameters
    ----------
    frames : sequence of numpy.ndarray, or numpy.ndarray
        At least two frames of one size, in focus order: (H, W) grey or
        (H, W, 3) RGB; uint8 / uint16 / other integers (scaled by their
        type's range) or floats in [0, 1]; or one (N, H, W[, 3]) array.
    names : sequence of str, optional
        A name per frame (default ``frame 0000``, ``frame 0001``, ..., as a video's frames: messages say them
        counted from 1, ``frame 1``, ``frame 2``, by :func:`postfocus.labels.frame_label`).

    Raises
    ------
    InvalidFrameError
        (a ValueError and an InputError) naming the frame: fewer than two
        frames, sizes that differ, NaN or infinite values, empty frames,
        32- or 64-bit integers of 8- or 16-bit values.

    Examples
    --------
    >>> src = ArraySource([np.zeros((4, 6, 3), np.float32)] * 2)
    >>> len(src), src.info.size
    (2, (4, 6))
    >>> float(ArraySource([np.full((2, 2), 255, np.uint8)] * 2).read(0).max())
    1.0
    """

    def __init__(self, frames: Sequence[np.ndarray] | np.ndarray, names: Sequence[str] | None = None):
        frames = as_frames(frames)
        if len(frames) < 2:
            raise InvalidFrameError("a stack needs at least two frames")
        checked = [_check(k, f) for k, f in enumerate(frames)]
        h, w = checked[0].shape[:2]
        for k, f in enumerate(checked):
            if f.shape[:2] != (h, w):
                raise InvalidFrameError(f"{_said(k)}: size {f.shape[1]}x{f.shape[0]} differs from {_said(0)}'s {w}x{h}")
        _warn_out_of_range(checked)
        self.frames = checked
        grey = all(f.ndim == 2 for f in checked)
        deep = any(f.dtype.kind in "ui" and f.dtype.itemsize > 1 for f in checked)
        names = [f"frame {i:04d}" for i in range(len(frames))] if names is None else [str(n) for n in names]
        if len(names) != len(frames):
            raise InvalidFrameError(f"{len(names)} names for {len(frames)} frames: give one name a frame")
        self.info = SourceInfo("images", names, h, w,
                               bit_depth=16 if deep else 8, grey=grey)

    def __len__(self) -> int:
        return len(self.frames)

    def read_pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB in its stored type where that is uint8 or uint16, else float32 in [0, 1]."""
        f = self.frames[index]
        if f.ndim == 2:
            f = np.repeat(f[:, :, None], 3, axis=2)
        if f.dtype in (np.uint8, np.uint16):
            return f
        if f.dtype.kind in "ui":  # other integers: by their type's range, negatives are black
            info = np.iinfo(f.dtype)
            return np.clip(f.astype(np.float64) / info.max, 0.0, 1.0).astype(np.float32)
        return np.asarray(f, np.float32)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as float32 RGB (floats as given; integers scaled by their type's range)."""
        return to_float(self.read_pixels(index))

    def identity(self) -> list[tuple[str, int, int]]:
        """Content hash: arrays have no file to date, so their pixels key the cache.

        Returns
        -------
        list[tuple[str, int, int]]
            One entry: ``("array:<SHA-256 of the pixels>", number of frames, 0)``.
        """
        digest = hashlib.sha256()
        for f in self.frames:
            digest.update(str((f.dtype.str, f.shape)).encode())
            digest.update(np.ascontiguousarray(f))  # the buffer itself: no copy of the pixels
        return [(f"array:{digest.hexdigest()}", len(self.frames), 0)]
