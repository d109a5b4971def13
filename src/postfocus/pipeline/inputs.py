"""Opening what the library is given to stack: files, a folder, a video, arrays or a FrameSource.

:func:`open_quietly` opens the inputs (:func:`~postfocus.io.open.open_source`, or an
:class:`~postfocus.io.arrays.ArraySource` for arrays) and routes the warnings opening gives through a
callback, so :func:`~postfocus.pipeline.run.stack` and :func:`~postfocus.pipeline.run.process` can keep
them with the result (:func:`collect_warnings`) as well as issue them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Set as AbstractSet
from typing import Callable, Iterable, Sequence

import numpy as np

from postfocus.errors import InputError, PostfocusWarning
from postfocus.io.arrays import ArraySource
from postfocus.io.base import MIN_FRAME_SIDE, FrameSource
from postfocus.io.open import open_source

__all__ = ["Inputs", "collect_warnings", "open_quietly"]

Inputs = str | os.PathLike | Sequence[str | os.PathLike] | Sequence[np.ndarray] | FrameSource
"""What the library stacks: a folder, image/RAW files in focus order, a video, float RGB arrays, or a FrameSource."""


def collect_warnings(messages: list[str]) -> Callable[[str], None]:
    """A ``warn`` callback that records each message and also issues it as a warning."""

    def warn(message: str) -> None:
        messages.append(message)
        warnings.warn(message, PostfocusWarning, stacklevel=3)

    return warn


def open_quietly(inputs: Inputs, warn: Callable[[str], None], *, threads: int | None = None) -> FrameSource:
    """:func:`open_source` (or an ArraySource for arrays), with its warnings routed through ``warn``."""
    if isinstance(inputs, FrameSource):
        return inputs
    if (not isinstance(inputs, (str, bytes, os.PathLike, np.ndarray, list, tuple, AbstractSet))
            and isinstance(inputs, Iterable)):  # (a set has no order: open_source refuses it; review20)
        inputs = list(inputs)  # a generator of frames (its arrays were taken for paths: a TypeError)
    arrays = isinstance(inputs, np.ndarray) or (isinstance(inputs, (list, tuple))
                                                and any(isinstance(f, np.ndarray) for f in inputs))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        source = ArraySource(inputs) if arrays else open_source(inputs, threads=threads)
    if arrays and min(source.info.size) < MIN_FRAME_SIDE:  # (files are checked when opened)
        h, w = source.info.size
        raise InputError(f"frames of {w}x{h} pixels; a focus stack needs frames of at least "
                         f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE}")
    for w in caught:
        warn(str(w.message))
    return source
