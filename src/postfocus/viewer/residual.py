"""The forward-model check in the page: the residual heat map and its numbers for ``residual.js``.

:func:`residual_data` runs :func:`postfocus.check.forward_check` on a processed
stack and returns the ``residual`` field of the viewer's data: a transparent
heat map the size of the page's pictures (encoded by the export as a PNG; unverifiable pixels tinted
blue), the flag level, the share flagged and unverifiable, and the worst regions. ``residual.js`` (inlined by
:func:`postfocus.viewer.export.render_page`) adds the "Residual" toggle.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING
import numpy as np

from postfocus.check import forward_check
from postfocus.check.view import heat_layer
from postfocus.store import ProcessedStack

if TYPE_CHECKING:
    from postfocus.products.depth import DepthResult

__all__ = ["residual_data", "residual_script"]


def residual_script() -> str:
    """The add-on (``residual.js``) as text."""
    return resources.files("postfocus.viewer").joinpath("residual.js").read_text(encoding="utf-8")


def residual_data(stack: ProcessedStack, size: tuple[int, int], *, image: np.ndarray | None = None,
                  depth: DepthResult | None = None) -> tuple[np.ndarray, dict]:
    """The heat-map picture and the numbers of the ``residual`` field of the viewer's data.

    Parameters
    ----------
    stack : ProcessedStack
    size : (height, width)
        Size of the page's pictures.
    image : np.ndarray, optional
        The all-in-focus picture the page shows (retouched, if it is), float32 (H, W, 3) output geometry
        (default: the stack's untouched one).
    depth : DepthResult, optional
        Its depth map (:func:`postfocus.products.depth.depth_map` of ``image``), when already made.

    Returns
    -------
    pixels : np.ndarray
        uint8 (height, width, 4) RGBA heat map (:func:`postfocus.check.view.heat_layer`), for the ``src``.
    info : dict
        ``{"level", "flagged", "unverifiable", "p99", "regions"}`` (regions in output pixels).
    """
    result = forward_check(stack, image=image, depth=None if depth is None else depth.depth,
                           confidence=None if depth is None else depth.confidence)
    s = result.summary
    return heat_layer(result.residual, size, s["level"], unverifiable=result.unverifiable), {
        "level": s["level"],
        "flagged": s["flagged"],
        "unverifiable": s["unverifiable"],
        "p99": s["p99"],
        "regions": [{k: r[k] for k in ("x", "y", "width", "height", "peak")} for r in s["regions"]],
    }
