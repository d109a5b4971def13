"""Fold aligned frames, one at a time, into an all-in-focus image.

One fusion a module, all streaming (a frame is added, then dropped) behind one
interface, :class:`~postfocus.fuse.base.Fusion`:

- :mod:`~postfocus.fuse.base` -- the :class:`Fusion` protocol and the depth
  blend both fusions share (:func:`depth_weights`, :func:`blend_width`,
  :func:`upscale_region`).
- :mod:`~postfocus.fuse.depthmap` -- :class:`DepthmapFusion`: each pixel takes
  the frame(s) focused at its depth.
- :mod:`~postfocus.fuse.occlusion` -- the occlusion-safe focus index: no
  frame where a near object's blur covers the pixel (:func:`occlusion_aware_index`).
- :mod:`~postfocus.fuse.clipped` -- the light of clipped highlights read from
  the frames where they are defocused (for the background solver; measured, off).
- :mod:`~postfocus.fuse.relight` -- the far surface beside darker near objects
  from the frame focused on it, relit by a coarse ratio (opt-in, ``relight=``).
- :mod:`~postfocus.fuse.pyramid` -- :class:`PyramidFusion`: max-contrast
  selection in a Laplacian pyramid, coarse bands blended by depth.
- :mod:`~postfocus.fuse.instant` -- :class:`InstantBlend`: moving regions
  shown from one instant over the fused image.
- :mod:`~postfocus.fuse.choice` -- the depth-map and pyramid results chosen
  per pixel by the forward-model check's residual (opt-in,
  :func:`postfocus.pipeline.checked.fuse_checked`).
"""

from postfocus.fuse.base import Fusion, Rect, blend_width, depth_weights, upscale_region
from postfocus.fuse.depthmap import DepthmapFusion, consistency_weight, consistent_blend
from postfocus.fuse.instant import InstantBlend
from postfocus.fuse.occlusion import defocus_slope, occlusion_aware_index, visible_index
from postfocus.fuse.pyramid import PyramidFusion, collapse, laplacian_pyramid

__all__ = [
    "DepthmapFusion",
    "Fusion",
    "InstantBlend",
    "PyramidFusion",
    "Rect",
    "blend_width",
    "collapse",
    "consistency_weight",
    "consistent_blend",
    "defocus_slope",
    "depth_weights",
    "laplacian_pyramid",
    "occlusion_aware_index",
    "upscale_region",
    "visible_index",
]
