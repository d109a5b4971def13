"""Frames already in memory as a frame source (the library API's ``stack(list_of_arrays)``)."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from postfocus.errors import InputError
from postfocus.io.base import FrameSource, SourceInfo

__all__ = ["ArraySource"]


class ArraySource(FrameSource):
    """Frames already in memory (float RGB arrays in [0, 1]) as a source.

    Parameters
    ----------
    frames : Sequence[np.ndarray]
        At least two (H, W, 3) arrays of one size, in focus order.
    names : Sequence[str] or None
        A name per frame (default ``frame0``, ``frame1``, ...).

    Raises
    ------
    InputError
        When there are fewer than two frames or one differs in shape.

    Examples
    --------
    >>> src = ArraySource([np.zeros((4, 6, 3), np.float32)] * 2)
    >>> len(src), src.info.size
    (2, (4, 6))
    """

    def __init__(self, frames: Sequence[np.ndarray], names: Sequence[str] | None = None):
        if len(frames) < 2:
            raise InputError("a stack needs at least two frames")
        h, w = frames[0].shape[:2]
        for k, f in enumerate(frames):
            if f.shape[:2] != (h, w) or f.ndim != 3 or f.shape[2] != 3:
                raise InputError(f"frame {k}: shape {f.shape} differs from ({h}, {w}, 3)")
        self.frames = list(frames)
        self.info = SourceInfo("images", list(names or [f"frame{i}" for i in range(len(frames))]), h, w)

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as float32.

        Parameters
        ----------
        index : int
            Position in the list of arrays.

        Returns
        -------
        np.ndarray
            The array as float32 (copied only when it held another type).
        """
        return np.asarray(self.frames[index], np.float32)

    def identity(self) -> list[tuple[str, int, int]]:
        """Content hash: arrays have no file to date, so their pixels key the cache.

        Returns
        -------
        list[tuple[str, int, int]]
            One entry: ``("array:<SHA-256 of the pixels>", number of frames, 0)``.
        """
        digest = hashlib.sha256()
        for f in self.frames:
            digest.update(np.ascontiguousarray(f, np.float32).tobytes())
        return [(f"array:{digest.hexdigest()}", len(self.frames), 0)]
