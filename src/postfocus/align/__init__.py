"""Align handheld frames: shake, rotation, focus breathing, exposure drift.

One stage a module:

- :mod:`~postfocus.align.warp` -- transforms (reference coords -> frame
  coords) and resampling by them: :func:`warp_to_reference`,
  :func:`valid_mask`, :func:`common_area`.
- :mod:`~postfocus.align.pair` -- one frame matched to its neighbour
  (:func:`match_pair`: correlation, tile refinement, feature fallback) and
  the exposure gain between them (:func:`channel_gain`).
- :mod:`~postfocus.align.ecc` -- the inverse-compositional correlation match
  (:func:`~postfocus.align.ecc.ic_ecc`) that starts a similarity or affine match.
- :mod:`~postfocus.align.tiles` -- per-tile Lucas-Kanade shifts
  (:func:`tile_shifts`) and the robust fit of a global model to them
  (:func:`fit_model`), which refine each match.
- :mod:`~postfocus.align.sweep` -- :class:`SweepAligner`: a whole sweep,
  streamed, neighbour matches chained to the reference frame.
- :mod:`~postfocus.align.report` -- :class:`FrameAlignment`, the per-frame report.
- :mod:`~postfocus.align.flow` -- dense optical-flow refinement of the
  global transforms (local parallax of handheld close-ups).

A transform ``W`` is a 3x3 matrix mapping *reference* pixel coordinates to
*frame* pixel coordinates; :func:`warp_to_reference` applies it.
"""

from postfocus.align.flow import apply_flow, chain_flows, neighbour_flow, refined_warp
from postfocus.align.pair import (
    ECC_MAX_SIZE,
    MIN_CORRELATION,
    MODELS,
    PairMatch,
    channel_gain,
    coarse_shift,
    ecc_match,
    feature_match,
    FramePyramid,
    match_pair,
    prepare_frame,
    refine_with_tiles,
)
from postfocus.align.tiles import fit_model, tile_shifts
from postfocus.align.report import FrameAlignment
from postfocus.align.sweep import SweepAligner
from postfocus.align.warp import (
    common_area,
    project_to_similarity,
    rescale_matrix,
    scaling,
    valid_mask,
    warp_to_reference,
)

__all__ = [
    "ECC_MAX_SIZE",
    "MIN_CORRELATION",
    "MODELS",
    "FrameAlignment",
    "FramePyramid",
    "PairMatch",
    "SweepAligner",
    "apply_flow",
    "chain_flows",
    "channel_gain",
    "coarse_shift",
    "common_area",
    "ecc_match",
    "feature_match",
    "fit_model",
    "match_pair",
    "neighbour_flow",
    "prepare_frame",
    "project_to_similarity",
    "refine_with_tiles",
    "refined_warp",
    "rescale_matrix",
    "scaling",
    "tile_shifts",
    "valid_mask",
    "warp_to_reference",
]
