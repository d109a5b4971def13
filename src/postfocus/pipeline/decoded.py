"""A small stack's frames decoded once: pass 1 keeps them, pass 2 takes them back (``pipeline/run.py``).

For stacks whose decoded frames fit ``run.DECODED_ONCE_MB``: each frame is read once by pass 1 and once by
pass 2, which gets the kept array and drops it, instead of decoding the file again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from postfocus.io.base import FrameSource

__all__ = ["DecodedOnce"]


class DecodedOnce(FrameSource):
    """A source whose frames pass 1 keeps, decoded, and pass 2 takes back instead of decoding them again.

    Each frame is read once by pass 1 (``read_pixels``, in order) and once by pass 2, which gets the
    kept array and drops it; for small stacks only (``run.DECODED_ONCE_MB``), so memory stays bounded.
    """

    def __init__(self, source: FrameSource, *, hold: bool = False):
        self.source, self.info = source, source.info
        self._kept: dict[int, np.ndarray] = {}
        self._seen: set[int] = set()
        # every kept frame, for the measured direction (:meth:`take_held`); only with ``hold`` (order "auto")
        self._held: dict[int, np.ndarray] | None = {} if hold else None

    def __len__(self) -> int:
        return len(self.source)

    def __getattr__(self, name: str) -> Any:  # e.g. ``header`` of image files
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def read(self, index: int) -> np.ndarray:
        return self.source.read(index)

    def read_pixels(self, index: int) -> np.ndarray:
        kept = self._kept.pop(index, None)
        if kept is not None:
            return kept
        pixels = self.source.read_pixels(index)
        if index not in self._seen and pixels.dtype.kind == "u":  # the first read (pass 1): kept for the
            self._seen.add(index)  # second (integer frames only: no pass works on them in place)
            self._kept[index] = pixels
            if self._held is not None:
                self._held[index] = pixels
        return pixels

    def identity(self) -> list[tuple[str, int, int]]:
        return self.source.identity()

    def take_held(self) -> dict[int, np.ndarray]:
        """The frames pass 1 kept, even those pass 2 (or its warping ahead) took already; held no longer."""
        held, self._held = self._held or {}, None
        return held

    def holds_all(self) -> bool:
        """Whether every frame is kept (after pass 1: all were integer frames)."""
        return len(self._kept) == len(self)
