"""The forward-model check: re-render every frame from the result and see where the frames disagree.

:func:`forward_check` (a processed stack) and :func:`check_frames` (arrays)
return a :class:`CheckResult`: a residual map in output geometry (about 1 where
the all-in-focus image and its depth explain the frames, many times 1 at halos,
flecks and depth outliers), per-frame scores and the defocus model calibrated
from the stack (:class:`DefocusModel`). :func:`band_ratio` compares the
residual near depth edges with the residual inside regions.

Examples
--------
>>> from postfocus import process
>>> from postfocus.check import forward_check
>>> result = forward_check(process("shared/data/pcb"))  # doctest: +SKIP
>>> result.summary["flagged"]  # doctest: +SKIP
0.004
"""

from postfocus.check.defocus import DefocusModel, calibrate
from postfocus.check.forward import DEFAULT_PIXELS, FLAG_LEVEL, CheckResult, check_frames, worst_regions
from postfocus.check.layers import render_frame
from postfocus.check.stack import DEPTHS, band_ratio, depth_edges, forward_check, instant_map

__all__ = [
    "CheckResult",
    "DEPTHS",
    "DEFAULT_PIXELS",
    "DefocusModel",
    "FLAG_LEVEL",
    "band_ratio",
    "calibrate",
    "check_frames",
    "depth_edges",
    "forward_check",
    "instant_map",
    "render_frame",
    "worst_regions",
]
