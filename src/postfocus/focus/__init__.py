"""Where each frame is sharp, and which frame is in focus at each pixel.

- :mod:`~postfocus.focus.measure` -- focus measures of one frame
  (:func:`laplacian_energy`, :func:`tenengrad`) and its noise floor.
- :mod:`~postfocus.focus.map` -- from a focus volume to a regularised
  focus-index map and its confidence (:func:`focus_index_map`).
"""

from postfocus.focus.map import (
    aggregate,
    check_prefer,
    focus_index_map,
    guided_filter,
    peak_index,
    preferred_peak,
    push_pull_fill,
    refine_at,
)
from postfocus.focus.measure import laplacian_energy, noise_sigma, pool, tenengrad

__all__ = [
    "aggregate",
    "check_prefer",
    "focus_index_map",
    "guided_filter",
    "laplacian_energy",
    "noise_sigma",
    "peak_index",
    "pool",
    "preferred_peak",
    "push_pull_fill",
    "refine_at",
    "tenengrad",
]
