"""The app's aperture lens: the library's f-number lens, with the words and header the app shows.

An f-number's blur is set over the scene's depths
(:func:`postfocus.products.aperture.f_number_lens`: at f/1.4 the blur across
the depth map's 1st to 99th percentile is 4 % of the long edge), as the Python
API, ``postfocus aperture --f-number`` and ``animate --f-number`` set it. A
macro subject in a few frames of a long sweep (the keyboard video: depths 1.8
to 4.6 of 0 to 40) is blurred visibly. The app says when the largest blur is
still under :data:`postfocus.cli.aperture.VISIBLE_BLUR_PX`, as the command does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from postfocus.products.aperture import Lens, f_number_lens

__all__ = ["HEADER", "SceneLens", "scene_lens"]

HEADER = "X-Postfocus-Lens"
"""The aperture render's header: its lens as JSON (:meth:`SceneLens.header`), read by the app's page."""


@dataclass(frozen=True)
class SceneLens(Lens):
    """An aperture render's lens (:class:`~postfocus.products.aperture.Lens`) with what the app says of it."""

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
    """The lens of an aperture render at f/``f_number`` focused at depth ``focus`` (the library's
    :func:`~postfocus.products.aperture.f_number_lens`, whose parameters these are; ``size`` is the picture
    rendered), with the app's words.

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
    return SceneLens(**vars(f_number_lens(depth, frames, focus, f_number, size=size)))
