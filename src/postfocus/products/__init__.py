"""What a processed stack makes after the shot, one product a module.

- :mod:`~postfocus.products.refocus` -- tap to refocus: the sharpest frame at a point.
- :mod:`~postfocus.products.pop` -- colour pop: what lies at the tapped depth keeps its colour.
- :mod:`~postfocus.products.depth` -- a refined depth map and its files.
- :mod:`~postfocus.products.aperture` -- shallow depth of field from depth and the all-in-focus image.
- :mod:`~postfocus.products.mesh` -- a textured 3D relief, its preview and a rocking GIF.
- :mod:`~postfocus.products.aligned` -- the aligned frames as files for other tools.
- :mod:`~postfocus.products.retouch` -- paint parts of the result from a source frame; :mod:`~postfocus.products.edits` keeps the edits.
- :mod:`~postfocus.products.animate` -- a focus pull (MP4, GIF, WebP) between frames or with the aperture.
- :mod:`~postfocus.products.stereo` -- left and right views from the depth map (DIBR), anaglyph, wiggle.

Each reads a :class:`~postfocus.store.ProcessedStack` (or its maps).
"""

from postfocus.products.aligned import align_frames
from postfocus.products.animate import FocusPull, animate, plan_pull, render_pull
from postfocus.products.aperture import (PRESETS, ApertureResult, Lens, aperture, f_number_lens, focus_at,
                                        render_aperture)
from postfocus.products.depth import DepthResult, colourise, depth_map, read_depth_png, write_depth_png
from postfocus.products.mesh import HeightMesh, build_mesh, render_view, rock_frames, write_gif, write_mesh
from postfocus.products.pop import PopResult, colour_pop, pop, pop_mask
from postfocus.products.refocus import Tap, parse_point, sharpest_frame, tap
from postfocus.products.edits import Edit, load_edits, save_edits
from postfocus.products.retouch import apply_edits, read_mask, retouch, retouched
from postfocus.products.stereo import StereoPair, anaglyph, side_by_side, stereo, stereo_pair, wiggle_frames

__all__ = [
    "PRESETS",
    "ApertureResult",
    "DepthResult",
    "Edit",
    "FocusPull",
    "HeightMesh",
    "Lens",
    "PopResult",
    "StereoPair",
    "Tap",
    "align_frames",
    "anaglyph",
    "animate",
    "aperture",
    "apply_edits",
    "build_mesh",
    "colour_pop",
    "colourise",
    "depth_map",
    "f_number_lens",
    "focus_at",
    "load_edits",
    "parse_point",
    "plan_pull",
    "pop",
    "pop_mask",
    "read_depth_png",
    "read_mask",
    "render_aperture",
    "render_pull",
    "render_view",
    "retouch",
    "retouched",
    "rock_frames",
    "save_edits",
    "sharpest_frame",
    "side_by_side",
    "stereo",
    "stereo_pair",
    "tap",
    "write_depth_png",
    "write_gif",
    "write_mesh",
    "wiggle_frames",
]
