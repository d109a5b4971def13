"""The app's aperture and colour pop over the scene's depths, not the sweep's.

The Python API and ``postfocus aperture --f-number`` set an f-number's blur
over the whole sweep (4 % of the long edge across all its frames at f/1.4,
:func:`postfocus.products.aperture.blur_from_f_number`). A macro subject may
fill a few frames of a long sweep (the keyboard video: depths 1.8 to 4.6 of
0 to 40); there even f/1.4 blurs it by a pixel or two, and the app's slider
showed no change. The app sets the same lens over the scene's own depth range
(:func:`postfocus.products.depth.depth_range`), which is what ``--blur`` lets
the command do: at f/1.4 the blur across the scene is 4 % of the long edge,
whatever part of the sweep it fills. On a sweep that the scene fills the two
agree. The app says when the largest blur is still under
:data:`postfocus.cli.aperture.VISIBLE_BLUR_PX`, as the command does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

__all__ = ["HEADER", "SceneLens", "scene_lens"]

HEADER = "X-Postfocus-Lens"
"""The aperture render's header: its lens as JSON (:meth:`SceneLens.header`), read by the app's page."""


@dataclass(frozen=True)
class SceneLens:
    """An aperture render's lens: blur in pixels per frame of depth, the largest blur over the scene, the scene."""

    focus: float
    blur_px: float
    largest_blur_px: float
    scene: tuple[float, float]
    long_edge: int
    f_number: float

    def note(self) -> str:
        """What the app says of the render (the caption's second half)."""
        from postfocus.cli.aperture import VISIBLE_BLUR_PX

        text = (f"blur up to {self.largest_blur_px:.0f} px on this {self.long_edge}-pixel picture "
                f"(the scene spans depths {self.scene[0]:.2f} to {self.scene[1]:.2f})")
        if self.largest_blur_px < VISIBLE_BLUR_PX:
            text += "; too little to see: a smaller f-number blurs more"
        return text

    def headers(self) -> dict[str, str]:
        """The render's :data:`HEADER`: this lens as JSON (ASCII)."""
        return {HEADER: json.dumps({"focus": round(self.focus, 3), "blur_px": round(self.blur_px, 3),
                           "largest_blur_px": round(self.largest_blur_px, 2),
                           "scene": [round(v, 2) for v in self.scene], "long_edge": self.long_edge,
                           "f_number": self.f_number, "note": self.note()}, separators=(",", ":"))}


def scene_lens(depth: np.ndarray, frames: int, focus: float, f_number: float, size: tuple[int, int]) -> SceneLens:
    """The lens of an aperture render at f/``f_number`` focused at depth ``focus``, set over the scene's depths.

    Parameters
    ----------
    depth : numpy.ndarray
        Depth map in frames (0 = the nearest frame), any size.
    frames : int
        Frames of the sweep.
    focus : float
        Depth focused at, in frames.
    f_number : float
        The f-number (above 0).
    size : tuple of int
        (height, width) of the picture rendered: the blur scales with its long edge.

    Returns
    -------
    SceneLens

    Examples
    --------
    >>> d = np.linspace(1.8, 4.6, 1000, dtype=np.float32).reshape(10, 100)
    >>> lens = scene_lens(d, 41, 1.8, 1.4, (360, 640))
    >>> round(lens.blur_px, 2), round(lens.largest_blur_px, 1)
    (9.33, 25.9)
    """
    from postfocus.products.aperture import blur_from_f_number
    from postfocus.products.depth import depth_range

    lo, hi = depth_range(depth, frames)  # at least one frame apart
    blur = blur_from_f_number(f_number, size, hi - lo)
    largest = blur * max(hi - focus, focus - lo, 0.0)
    return SceneLens(focus=float(focus), blur_px=float(blur), largest_blur_px=float(largest), scene=(lo, hi),
                     long_edge=int(max(size)), f_number=float(f_number))
