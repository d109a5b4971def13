"""Moving subjects: where aligned frames change beyond what a change of focus explains.

A focus stacker assumes the scene stands still. Flames, water, leaves and
people do not: blending frames there mixes several instants into a ghost.
This package finds those regions; the fusion then takes each from one
instant (:class:`~postfocus.fuse.instant.InstantBlend`).

Detection (at a low resolution, long edge :data:`DETECT_SIZE`, reference
geometry, streaming over the frames; every :func:`frame_step`-th frame is
compared with the compared frames ``step`` and ``2 step`` before it, so a
subject moving a pixel or two per frame has moved several pixels):

1. *Blur-equalised comparison.* Where nothing moved, of two frames of a sweep
   one is (very nearly) a blurred copy of the other. Each frame is blurred
   with Gaussians of growing sigma and fitted locally (non-negative gain and an
   offset) to the other; the smallest share of local variance left unexplained
   (:func:`pair_change`) is what focus cannot explain: about 0 for a still
   scene whatever its texture, about 1 for unrelated content.
2. *Displacement.* A change of focus moves no structure; a moving subject does.
   The DIS optical flow between the two frames warps the second back onto the
   first; the part of the change that the warp explains (the comparison of
   step 1 before minus after, :func:`displacement_change`) is the evidence of
   a moving subject, also one that is blurred in most frames and sharp in few,
   where it moved further than the scene's own shake and parallax.
3. *Coarse check* (for changes no displacement explains: flames, water).
   Defocus moves light only locally: low-passed beyond the focus step of the
   pair, two frames of a still scene agree even where the fine comparison
   fails (defocus rings and halos of microscopes, bokeh). That evidence counts
   only where the coarse light changed too (:func:`coarse_change`).
4. *Evidence over the sweep*: per pixel, seeds where a displacement explains
   the change in at least two pairs (the mean of the two largest), or where
   the content changed in most pairs (the median); growth where it changed
   clearly in a few (the mean of the largest quarter). A single glitch (a
   specular highlight, a JPEG block) does not count.
5. *Hysteresis and clean-up*: seeds (opened, at least half a disc of one
   margin radius) grow through the growth evidence; gaps are closed, holes
   filled, specks dropped.
6. *Feathered mask*: the regions are widened by a margin and feathered, so the
   seam to the all-in-focus surroundings lies in static content.

Each moving region is taken from one frame: the frame whose focus measure
over the region is highest (:func:`region_frames`).

Examples
--------
>>> det = MotionDetector((120, 160))  # doctest: +SKIP
>>> for i, grey, valid in aligned_small_frames: det.add(i, grey, valid)  # doctest: +SKIP
>>> motion = det.finish()  # doctest: +SKIP
>>> motion.share < 0.01  # doctest: +SKIP
True
"""

from postfocus.motion.compare import (
    COARSE_SIGMA,
    JITTER,
    MIN_SHIFT,
    SIGMAS,
    WINDOW,
    Stats,
    blur_stats,
    coarse_change,
    coarse_light,
    displacement_change,
    local_mean,
    pair_change,
)
from postfocus.motion.detect import (
    COARSE_MIN,
    COARSE_WEAK,
    DETECT_SIZE,
    HIGH,
    LOW,
    MAX_STEP,
    SEED_AREA,
    Motion,
    MotionDetector,
    clean_mask,
    feather,
    fill_holes,
    frame_step,
)
from postfocus.motion.regions import instant_at, region_frames, regions

__all__ = ["COARSE_MIN", "COARSE_SIGMA", "COARSE_WEAK", "DETECT_SIZE", "HIGH", "JITTER", "LOW", "MAX_STEP", "MIN_SHIFT",
           "SEED_AREA", "SIGMAS", "WINDOW", "Motion", "MotionDetector", "Stats", "blur_stats", "clean_mask",
           "coarse_change", "coarse_light", "displacement_change", "feather", "fill_holes", "frame_step",
           "instant_at", "local_mean", "pair_change", "region_frames", "regions"]
