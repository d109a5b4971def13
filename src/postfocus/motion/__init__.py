"""Moving subjects: where aligned frames change beyond what a change of focus explains.

A focus stacker assumes the scene stands still. Flames, water, leaves and
people do not: blending frames there mixes several instants into a ghost.
This package finds those regions; the fusion then takes each from one
instant (:class:`~postfocus.fuse.instant.InstantBlend`).

Detection (at analysis size, reference geometry, streaming over the frames):

1. *Blur-equalised comparison of neighbours.* Between neighbouring frames of a
   sweep the focus moves a little, so where nothing moved one frame is (very
   nearly) a blurred copy of the other. For each pair each frame is blurred
   with Gaussians of growing sigma and fitted locally (non-negative gain and an
   offset) to the other; the smallest share of local variance left unexplained
   (:func:`pair_change`) is what focus cannot explain: about 0 for a still
   scene whatever its texture, about 1 for unrelated content.
2. *Coarse check.* Defocus moves light only locally: low-passed beyond the
   focus step of the pair (measured from the blurs that explained the pair),
   two frames of a still scene agree even where the fine comparison fails
   (defocus rings and halos of microscopes, bokeh). Evidence counts only
   where the coarse light changed too (:func:`coarse_change`).
3. *Evidence over the sweep*: per pixel, the median of the pair residuals
   (changed in most pairs: seeds) and the mean of their largest quarter
   (changed clearly in a few: growth), so a single glitch (a specular
   highlight, a JPEG block) does not count.
4. *Hysteresis and clean-up*: seeds (opened, at least half a disc of one
   margin radius) grow through the growth evidence; gaps are closed, holes
   filled, specks dropped.
5. *Feathered mask*: the regions are widened by a margin and feathered, so the
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
    SIGMAS,
    WINDOW,
    Stats,
    blur_stats,
    coarse_change,
    coarse_light,
    local_mean,
    pair_change,
)
from postfocus.motion.detect import (
    COARSE_MIN,
    COARSE_WEAK,
    DETECT_SIZE,
    HIGH,
    LOW,
    SEED_AREA,
    Motion,
    MotionDetector,
    clean_mask,
    feather,
    fill_holes,
)
from postfocus.motion.regions import instant_at, region_frames, regions

__all__ = ["COARSE_MIN", "COARSE_SIGMA", "COARSE_WEAK", "DETECT_SIZE", "HIGH", "LOW", "SEED_AREA", "SIGMAS", "WINDOW",
           "Motion", "MotionDetector", "Stats", "blur_stats", "clean_mask", "coarse_change", "coarse_light", "feather",
           "fill_holes", "instant_at", "local_mean", "pair_change", "region_frames", "regions"]
