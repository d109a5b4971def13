"""Depth from a focus sweep: where along the sweep every pixel is sharp.

The depth of a pixel is the (fractional) frame number whose focal plane passes
through it, 0 = the nearest frame. :func:`depth_map` refines the focus-index map
of a processed stack:

1. *Per-pixel fit.* Every slice of the stored focus volume is aggregated with a guided filter steered by the
   all-in-focus image, and the peak along the sweep is found with sub-frame precision: a Gaussian fitted to the
   log-measures of the frames that carry the focus curve, three of its widths on each side of the best frame
   (:func:`postfocus.focus.map.gaussian_peak`; Subbarao & Choi 1995, Guo 2011; a dense sweep's curve is flat over
   several frames and a three-frame parabola reads its noise); the cleaning below decides on it. A pixel's own reading
   is the fit over the curve's core, 1.5 widths, and on a dense sweep (curves 1.5 frames wide or wider) the stack's own
   curve shape, flat-topped with heavy tails (:func:`postfocus.focus.core_fit.first_fit`). A curve cut by the
   sweep's first or last frame is placed from its visible flank instead (:mod:`postfocus.products.depth_ends`).
   Confidence is how far the peak stands above the average frame and the noise floor. A near outline raises the
   background's measure beside it (up to :func:`~postfocus.focus.sides.edge_spill` px): such a pixel goes back to
   the far surface where it looks like it (:func:`~postfocus.focus.sides.occlusion_sides`; any pixel with a focus
   peak, weak or not, shows what a surface looks like) and its own focus curve has a peak at that surface's frame;
   one with no detail of its own in the composite (:func:`~postfocus.focus.sides.spilled`) carries no evidence and
   is filled.
2. *Outliers.* A patch can peak clearly at the wrong frame (the rim of a bright object's bokeh disc in the far
   frames, a glint, a frame edge at the border). Pixels more than 1.5 focus-curve widths from the confidence-
   weighted, edge-aware median of their neighbourhood (6 % of the long edge; Ma et al. 2013,
   :mod:`postfocus.focus.clean`) are candidates; a connected patch of them is rejected only if it is an island, i.e.
   no confident pixel around it shares its depth (:func:`~postfocus.focus.clean.islands`): a pin or a blade of grass
   is a minority in that neighbourhood too, but its tip touches its own body.
3. *Occlusion bands.* Near a depth edge, the sharp edge of the near object lends its focus energy to the background
   pixels next to it, and the background's own texture is hidden under the blurred foreground in the frames focused
   far. Depth-from-focus therefore paints the near object a few pixels too wide (a "halo"). Pixels that lie within a
   band of a clearly farther neighbourhood are distrusted: their confidence is cut, and they take the median depth
   of the trusted pixels of their colour region (a median, not a mean: one surface or the other, not a depth
   between) (:mod:`postfocus.products.depth_bands`).
4. *Edge-aware fill.* A confidence-weighted normalised convolution with a domain-transform filter (a fast
   joint-bilateral filter, Gastal & Oliveira 2011) guided by the all-in-focus colours spreads trusted depth along
   image regions but not across colour edges: outliers and halo pixels take the depth of the surface they look like,
   textureless areas take the depth of their surroundings (with :func:`~postfocus.focus.map.push_pull_fill` where no
   trusted pixel is reachable). It fits a plane, not a mean (first-order normalised convolution,
   :func:`postfocus.focus.fill.plane_fill`): a floor seen from one side, at the picture's border, keeps its slope. A
   pixel that takes most of its depth from the fill takes its region's median instead of the mean where the two are
   a depth step apart: its region holds two surfaces of its colour, and it belongs to one of them, not between.
   A plain region (one colour) whose own outline reads a far surface beside a near one lies behind the near object
   whose blur spills onto it: it takes the far surface (:func:`~postfocus.focus.plain.plain_sides`).
5. *Depth edges onto outlines.* Within the measure's reach of a depth edge each pixel takes the colour-weighted
   median depth around it (the side it looks like; :func:`postfocus.focus.edges.snap_to_outlines`); then each pixel
   beside a step takes the side its own unaggregated measure shows in the two sides' frames
   (:func:`postfocus.focus.outline_sides.pixel_sides`), and the side the frames themselves show, at the finest scale
   and by its look (:func:`postfocus.focus.frame_sides.frame_sides`). Every consumer (aperture, mesh, pop, the
   page, the depth files) reads this cleaned depth.
6. *Guided upsampling* to the output size with the full-resolution all-in-focus image as guide, so depth edges
   follow image edges.

Depth files
-----------
``.png``: 16-bit grey; 0 = the nearest frame, 65535 = the farthest
(frame ``N - 1``), i.e. ``frame = value / 65535 * (N - 1)``. The scale is also
written into the PNG's text chunks (``postfocus:depth_frames`` = N,
``postfocus:depth_scale`` = frames per count, ``postfocus:depth_zero``).
``.npy``: float32 frame units. The preview is colourised (turbo colour map,
near = red, far = blue) over the scene's own depth range (its 1st to 99th
percentile, written into the file's description), the confidence an 8-bit grey
PNG (white = sure; 0 where an outlier was rejected).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from postfocus.colour import to_grey
from postfocus.errors import InputError, PostfocusError
from postfocus.focus.clean import islands, outliers
from postfocus.focus.edges import snap_to_outlines
from postfocus.focus.frame_sides import frame_sides
from postfocus.focus.outline_sides import pixel_sides
from postfocus.focus.plain import plain_sides
from postfocus.focus.sides import MEASURE_REACH, edge_spill, occlusion_sides, seen_through, spilled
from postfocus.focus.core_fit import first_fit
from postfocus.focus.map import aggregate, curve_width, guided_upsample, peak_near
from postfocus.numeric import argmax0, pick0
from postfocus.options import DEFAULT_METHOD, check_threads
from postfocus.pipeline.threads import helper_threads
from postfocus.products.depth_bands import fixed_band
from postfocus.products.depth_ends import end_peaks
from postfocus.products.depth_frames import grid_frames
from postfocus.products.depth_fill import fill_regions, fill_weights
from postfocus.products.depth_png import colourise, depth_range, read_depth_png, write_depth_npy, write_depth_png
from postfocus.io.write import check_output_path, write_image
from postfocus.store import ProcessedStack

DEPTH_VERSION = 13  # raise with any change to what depth_map makes: a stack folder's kept depth is made again
LEVEL_RATIO = (3.0, 30.0)  # peak energy / noise floor: below the first, no trust; above the second, full
OUTLIER_WIDTHS = 1.5  # farther than this many focus-curve widths from the robust neighbourhood depth: an outlier
OUTLIER_REACH = 0.06  # radius of that neighbourhood, share of the long edge
FILLED = 0.5  # below this confidence a pixel takes most of its depth from its region (the median, not a mean)
SIDE_STEP = 1.5  # an index step (slices) that is a depth edge to occlusion_sides, not a slope
SIDE_SURE = 1e-6  # any focus peak at all shows occlusion_sides what a surface looks like (a weak far wall too)
SHAPE_WIDTH = 1.5  # focus curves this wide (sigma, slices) or wider: a flat top over frames, placed by its shape
SHAPE_AGREE = 1.0  # slices: a shape fit this far from the Gaussian one is a curve the shape does not describe
MEDIAN_SIGMA_R = 0.5  # colour tolerance of the median that refills outliers: texture does not stop it, outlines do

__all__ = ["DEPTH_VERSION", "DepthResult", "depth_map", "refine_depth", "write_depth_png", "read_depth_png",
           "write_depth_npy", "write_depth_preview", "write_confidence", "colourise", "depth_range", "check_output"]


@dataclass
class DepthResult:
    """A depth map and how sure it is.

    Attributes
    ----------
    depth : float32 (H, W) output size; frame units with sub-frame precision,
        0 = the nearest frame, ``frames - 1`` = the farthest.
    confidence : float32 (H, W) in [0, 1]; low where depth was filled in from
        the surroundings (no texture) or lies in an occlusion band.
    frames : number of frames of the sweep (depth lies in ``[0, frames - 1]``).
    """

    depth: np.ndarray
    confidence: np.ndarray
    frames: int

    @property
    def size(self) -> tuple[int, int]:
        return self.depth.shape[:2]  # type: ignore[return-value]

    def normalised(self) -> np.ndarray:
        """Depth scaled to [0, 1] over the whole sweep (0 = nearest frame)."""
        return (self.depth / max(self.frames - 1, 1)).astype(np.float32)


# The depth map -------------------------------------------------------------


def refine_depth(
    volume: np.ndarray,
    image: np.ndarray,
    *,
    radius: int | None = None,
    eps: float = 1e-3,
    band: int | None = None,
    jump: float | None = None,
    sigma_s: float | None = None,
    sigma_r: float = 0.2,
    motion: np.ndarray | None = None,
    tolerance: float | None = None,
    reach: int | None = None,
    sides: bool = True,
    ends: bool = True,
    shape: bool = True,
    through: bool = True,
    plane: bool = True,
    pixel: bool = True,
    frames: Callable[[int], np.ndarray] | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Depth (positions along the volume's axis 0) and confidence at the volume's size.

    Parameters
    ----------
    volume : float (N, h, w) focus measure of each frame (nearest first).
    image : float32 (h, w, 3) all-in-focus colours at the same size (the guide).
    radius, eps : guided aggregation of each slice before the peak fit (default
        radius: 0.5 % of the long edge, at least 2 px, the same share of the
        picture at any analysis size).
    band : width in pixels of the occlusion band distrusted on the near side of depth edges (default 3 % of the long
        edge; :func:`~postfocus.products.depth_bands.fixed_band`).
    jump : depth step (in slices) that makes a depth edge (default
        ``max(1, 0.1 * (N - 1))``).
    sigma_s, sigma_r : reach in pixels (default 10 % of the long edge) and colour
        tolerance of the edge-aware fill.
    motion : optional (h, w) motion mask in [0, 1] (:mod:`postfocus.motion`): a
        subject that moved has no trustworthy focus peak; its depth is filled
        from the static surroundings and its confidence is low.
    tolerance : largest distance in slices from the edge-aware weighted median
        of the confident neighbourhood (:func:`postfocus.focus.clean.outliers`)
        that is not an outlier (default ``OUTLIER_WIDTHS`` times the focus
        curves' width, :func:`postfocus.focus.map.curve_width`, at least 1 slice).
    reach : slices on each side of the best one that the Gaussian peak fit and the shape fit use (default three
        focus-curve widths, the reading over the core's 1.5; 1 is the three-frame parabola).
    sides : give pixels beside a near object's outline, whose index the outline's focus energy raised, back
        to the far surface they look like (:func:`postfocus.focus.sides.occlusion_sides`), where their own
        focus curve has a local maximum within a curve width of its index. The fusion keeps the bled index
        (``focus_index_map(sides=False)``, docs/quality.md); the depth does not.
    ends : place the peak of a focus curve cut by the sweep's first or last frame from its visible flank
        (:func:`postfocus.products.depth_ends.end_peaks`), not by the symmetric fit, which lands inside.
    shape : on a dense sweep (focus curves ``SHAPE_WIDTH`` slices wide or wider, whose flat top spans several
        frames), where a pixel's curve peaks inside the sweep ``LEVEL_RATIO[1]`` noise floors up, place its peak by the
        stack's own focus-curve shape (:func:`postfocus.focus.peak.shape_peak`, the matched filter of the median
        clear curve), unless that moves it ``SHAPE_AGREE`` slices or more from the Gaussian fit (a curve of two
        surfaces, which the shape does not describe). Only the pixel's own reading moves (less than a slice); the
        cleaning's decisions (sides, outliers, bands, fill) are made on the Gaussian fit, as before.
    through : keep the own readings of the island patches that are a faint surface seen through a gap in a near
        object (:func:`postfocus.focus.sides.seen_through`: behind the gap's edges, wider than their blur there,
        one shared focus peak, one smooth surface) instead of refilling them with the object's depth.
    plane : the fill fits a plane (:func:`postfocus.focus.fill.plane_fill`, first-order normalised convolution,
        its slope from the measured pixels of one surface), not a weighted mean, which reads a slope seen from one
        side (a floor at the picture's border) as the surface farther in.
    pixel : last, each pixel beside a depth step takes the side its own focus measure shows, before aggregation
        (:func:`postfocus.focus.outline_sides.pixel_sides`): depth edges placed to the pixel.
    frames : ``frames(k)``: slice ``k``'s aligned frame, grey at the volume's size (read only beside a depth step;
        :func:`postfocus.products.depth_frames.grid_frames`): with ``pixel``, the pixels beside a step then take the
        side both the finest focus measure and their look in the two sides' frames show (``frame_sides``).
    threads : thread budget (None: the machine's cores): with 2 or more a helper shares the aggregation, the peak fit,
        the end peaks' blur responses, the occlusion sides' classes and the outliers' median, makes the fill's weights
        ahead and shares the fill and its two medians (:mod:`postfocus.products.depth_fill`); 1 keeps all work on the
        calling thread. Same bits.

    Returns
    -------
    (depth, confidence): float32 (h, w); depth in [0, N - 1]; confidence 0 where an outlier was rejected.

    References
    ----------
    M. Subbarao, T. Choi, "Accurate recovery of three-dimensional shape from image focus", IEEE PAMI 17(3), 1995.
    H. Guo, "A simple algorithm for fitting a Gaussian function", IEEE Signal Processing Magazine 28(5), 2011.
    Z. Ma, K. He, Y. Wei, J. Sun, E. Wu, "Constant time weighted median filtering for stereo matching and
    beyond", ICCV 2013.
    E. S. L. Gastal, M. M. Oliveira, "Domain transform for edge-aware image and video processing", ACM
    Transactions on Graphics 30(4), 2011.
    S. Pertuz, D. Puig, M. A. Garcia, "Analysis of focus measure operators for shape-from-focus", Pattern
    Recognition 46(5), 2013 (focus-curve confidence).
    K.-J. Yoon, I. S. Kweon, "Adaptive support-weight approach for correspondence search", TPAMI 28(4), 2006.
    """
    threads = check_threads(threads)
    vol = np.asarray(volume, np.float32)
    n, h, w = vol.shape
    guide_rgb = np.asarray(image, np.float32)
    if guide_rgb.shape[:2] != (h, w):
        raise PostfocusError(f"guide image is {guide_rgb.shape[1]}x{guide_rgb.shape[0]}, focus volume {w}x{h}")
    if n == 1:
        return np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    guide = to_grey(guide_rgb)
    long_edge = max(h, w)
    radius = max(2, int(round(0.005 * long_edge))) if radius is None else int(radius)
    sigma_s = 0.1 * long_edge if sigma_s is None else float(sigma_s)
    agg = aggregate(vol, guide, radius, eps, threads=helper_threads(threads))
    # Detail above the noise floor (the typical energy of a pixel in its most blurred frame):
    # in a textureless area the "peak" is noise, however much it stands out.
    floor = float(np.median(agg.min(axis=0))) + 1e-12
    best = argmax0(agg)
    peak = pick0(agg, best)
    width = max(1.0, curve_width(agg, best, floor))  # sigma of the focus curves, in slices
    # The cleaning decides on a Gaussian fit over the curve's frames (three of its sigmas on each side); the pixel's
    # own reading is the fit over its core and, on a dense sweep, the stack's own focus-curve shape (a shift to add)
    clear = (best > 0) & (best < n - 1) & (peak > LEVEL_RATIO[1] * floor) if shape and width >= SHAPE_WIDTH else None
    index, shift = first_fit(agg, best, peak, width, floor, reach=reach, least=LEVEL_RATIO[0], clear=clear,
                             agree=SHAPE_AGREE, threads=helper_threads(threads))
    if ends:  # a curve cut by the sweep's end: its symmetric fit lands inside the sweep
        fitted = index
        index = end_peaks(agg, best, index, floor, guide, radius, eps, least=LEVEL_RATIO[0],
                          threads=helper_threads(threads))
        shift[index != fitted] = 0.0
    contrast = 1.0 - agg.mean(axis=0) / np.maximum(peak, 1e-12)
    level = np.clip(np.log(np.maximum(peak / floor, 1e-6) / LEVEL_RATIO[0]) / np.log(LEVEL_RATIO[1] / LEVEL_RATIO[0]),
                    0.0, 1.0)
    # A flat focus curve (contrast ~0.3 or less) says nothing; a clear peak says a lot.
    confidence = (np.clip((contrast - 0.3) / 0.3, 0.0, 1.0) * (0.25 + 0.75 * level)).astype(np.float32)
    confidence[peak <= 0] = 0.0
    if motion is not None:
        confidence *= 1.0 - np.clip(np.asarray(motion, np.float32), 0.0, 1.0)
    jump = max(1.0, 0.1 * (n - 1)) if jump is None else float(jump)
    band = max(2, int(round(0.03 * long_edge))) if band is None else int(band)
    if sides:  # the near outline's bled index given back to the far surface it lies on (docs/quality.md), on the
        # median-filtered index (a speck of noise is no far surface), before the outliers (a far patch it spreads is
        # judged with them); only where the pixel's own curve peaks there (a black checker cell looks like a dark wall
        # but has no peak there), not on the outline (a pixel touching the near surface that stays is its rim)
        level_index = cv2.medianBlur(index, 5)
        given = occlusion_sides(level_index, confidence, guide, spill=edge_spill(radius), step=SIDE_STEP,
                                sure=SIDE_SURE, threads=helper_threads(threads))
        keep = peak_near(agg, given, given != level_index, int(np.ceil(width)), floor)
        stays = cv2.erode(np.where(keep, np.inf, index).astype(np.float32), np.ones((3, 3), np.uint8))
        keep &= stays >= given - SIDE_STEP
        index = np.where(keep, given, index).astype(np.float32)
        shift[keep] = 0.0
    # A pixel whose focus peak is a near outline's spilled energy (no detail of its own) is filled from its surface.
    confidence[spilled(index, guide, spill=edge_spill(radius), step=SIDE_STEP, least=LEVEL_RATIO[0] * floor)] = 0.0
    # Outliers: confident-looking patches many frames away from the surface around them.
    reach_px = max(4, int(round(OUTLIER_REACH * long_edge)))
    tolerance = OUTLIER_WIDTHS * width if tolerance is None else float(tolerance)
    bad, median = outliers(index, confidence, guide, radius=reach_px, tolerance=tolerance,
                           threads=helper_threads(threads))
    weights = fill_weights(guide_rgb, sigma_s=sigma_s, sigma_r=sigma_r, outlier_sigma_r=MEDIAN_SIGMA_R,
                           threads=threads)  # (the guide's only: made on a helper while this thread goes on)
    # A pin or a blade is a minority there too, but touches its own trusted part at its depth: only islands are.
    flagged = bad
    bad = islands(index, confidence, bad, tolerance=0.5 * tolerance, sure=0.75)
    gap = np.zeros_like(bad)
    if through:  # a faint surface seen through a gap in a near object: its own readings, not the object's depth
        gap = seen_through(index, agg, peak < LEVEL_RATIO[1] * floor, bad, (confidence >= 0.75) & ~flagged,
                           width=width, tolerance=0.5 * tolerance)
        bad &= ~gap
    agg = None  # (read no more: let go before the fill, whose filters hold the most at once)
    clean = np.where(bad, median, index).astype(np.float32)
    # Occlusion band: something confidently (not noise in a textureless area) much farther within ``band`` px.
    smooth = cv2.medianBlur(clean, 5)
    trusted = np.where((confidence > 0.5) & ~bad, smooth, np.float32(-1.0)).astype(np.float32)
    occluding = fixed_band(smooth, trusted, band=band, jump=jump)
    distrust = bad | occluding
    weight = (confidence * confidence * np.where(occluding, 0.02, 1.0) * ~bad).astype(np.float32)
    # The fill's slope is fitted to measured depths of one surface: a focus peak above the noise, not distrusted.
    surface = weight * ((peak >= LEVEL_RATIO[0] * floor) & ~distrust) if plane else None
    # Distrusted pixels take the median of the trusted pixels of their region, not a mean: a slope stays a
    # slope, and a pixel between a near and a far surface takes one of them, not a depth between. So do the
    # pixels that take most of their depth from the fill where the mean and the median of their region are
    # a depth step apart (the region holds two surfaces; on one surface the mean follows its slope). Outliers
    # look for their surface through texture (a wider colour tolerance), occlusion bands only along colours.
    local = fill_regions(index, weight, guide_rgb, bands=occluding, weak=confidence < FILLED, outliers=bad,
                         surface=surface, sigma_s=sigma_s, sigma_r=sigma_r, outlier_sigma_r=MEDIAN_SIGMA_R, jump=jump,
                         plane=plane, threads=threads, weights=weights)
    weights = None  # (the filters' weights: let go)
    blend = np.where(gap, 1.0, np.where(distrust, 0.0, confidence))  # a gap's weak readings: its only evidence
    depth = (blend * (index + shift) + (1.0 - blend) * local).astype(np.float32)
    # a plain region whose own outline reads a far surface beside a near one is the far one (its near stretch spills)
    depth = plain_sides(depth, index, weight, guide_rgb, distrust | (confidence < FILLED), jump=jump,
                        reach=MEASURE_REACH)
    out_conf = np.where(bad, 0.0, np.where(occluding, 0.25 * confidence, confidence)).astype(np.float32)
    depth = snap_to_outlines(depth, guide_rgb, out_conf, reach=MEASURE_REACH, jump=jump, sigma_r=0.5 * sigma_r,
                             threads=helper_threads(threads))
    if pixel:  # the side each pixel beside a depth step is on, from its own measure in the two sides' frames
        depth = pixel_sides(depth, vol, jump=jump, floor=floor, reach=2 * MEASURE_REACH,
                            threads=helper_threads(threads))
        if frames is not None:
            depth = frame_sides(depth, frames, count=n, jump=jump, reach=2 * MEASURE_REACH, volume=vol, floor=floor,
                                threads=helper_threads(threads))
    return np.clip(depth, 0, n - 1).astype(np.float32), out_conf


def depth_map(stack: ProcessedStack, *, method: str | None = None, image: np.ndarray | None = None,
              threads: int | None = None, grid: tuple[np.ndarray, np.ndarray] | None = None,
              **options) -> DepthResult:
    """Depth map of a processed stack at output size.

    Parameters
    ----------
    stack : :class:`postfocus.store.ProcessedStack` (see :func:`postfocus.process`).
    method : fusion method of the all-in-focus guide (default: the stack's default).
    image : the stack's all-in-focus image of ``method``, when the caller holds it already (not read again).
    threads : thread budget of :func:`refine_depth` (None: the machine's cores; 1: the calling thread only).
    grid : :func:`grid_depth`'s result for ``image`` and ``options``, when the caller holds it (not made again).
    options : passed to :func:`refine_depth`.

    Returns
    -------
    DepthResult, depth in frame numbers (0 = nearest frame, flipped for sweeps
    recorded far to near).

    Examples
    --------
    >>> from postfocus import process
    >>> result = depth_map(process("shared/data/pcb_depthmap"))  # doctest: +SKIP
    >>> result.depth.shape == result.confidence.shape  # doctest: +SKIP
    True
    """
    threads = check_threads(threads)
    frames = len(stack.names)
    if image is None:
        image = stack.all_in_focus(method or DEFAULT_METHOD)
    h, w = image.shape[:2]
    frame, confidence = grid if grid is not None else grid_depth(stack, image, threads=threads, **options)
    depth = guided_upsample(frame, image, threads=helper_threads(threads))
    conf = cv2.resize(confidence, (w, h), interpolation=cv2.INTER_LINEAR) if confidence.shape != (h, w) else confidence
    if not stack.near_to_far:
        depth = (frames - 1) - depth
    depth = np.clip(depth, 0, frames - 1).astype(np.float32)
    return DepthResult(depth=depth, confidence=np.clip(conf, 0, 1).astype(np.float32), frames=frames)


def grid_depth(stack: ProcessedStack, image: np.ndarray, *, threads: int | None = None,
               **options) -> tuple[np.ndarray, np.ndarray]:
    """:func:`refine_depth` on the volume's grid, guided by ``image`` shrunk to it: (float32 frame numbers, frame 0
    the stack's first; confidence). :func:`depth_map` upsamples it; a plain tap reads it (``tap_depth``)."""
    used = list(stack.used)
    volume = np.asarray(stack.volume, np.float32)
    if volume.ndim != 3 or volume.shape[0] != len(used):
        raise InputError(f"{stack.folder}: focus volume does not match the frames kept; refresh the stack")
    mh, mw = volume.shape[1:]
    small = cv2.resize(image, (mw, mh), interpolation=cv2.INTER_AREA) if image.shape[:2] != (mh, mw) else image
    if stack.motion is not None:
        options.setdefault("motion", stack.motion)
    near_first = stack.near_to_far  # refine_depth reads slice 0 as the nearest (its occlusion bands and sides)
    read = grid_frames(stack, (mh, mw))  # (slice k is frame used[k], or used[-1 - k] read far to near)
    if read is not None:  # (a folder copied without its frames' files: the depth without them)
        options.setdefault("frames", lambda k: read(used[k] if near_first else used[len(used) - 1 - k]))
    position, confidence = refine_depth(volume if near_first else volume[::-1], small, threads=threads, **options)
    position = position if near_first else (len(used) - 1) - position
    frame = np.interp(position, np.arange(len(used), dtype=np.float32), np.asarray(used, np.float32))
    return frame.astype(np.float32), confidence


def check_output(path: str | os.PathLike, suffixes: Sequence[str], inputs: Sequence[Path] | None = None) -> Path:
    """Refuse an output path with another suffix, in a missing or read-only folder, or naming an input."""
    return check_output_path(path, inputs, suffixes)


def write_depth_preview(path: str | os.PathLike, result: DepthResult, *, quality: int = 92) -> Path:
    """Colourised depth (PNG or JPEG) over the scene's own depth range (:func:`depth_range`).

    The range is written into the file's description (PNG text, JPEG/TIFF
    ImageDescription): ``frames 1.52 (red, near) to 6.71 (blue, far) of 0-40``.
    """
    lo, hi = depth_range(result.depth, result.frames)
    text = (f"postfocus depth preview: turbo colours from frame {lo:.2f} (red, near) to frame {hi:.2f} "
            f"(blue, far) of 0-{result.frames - 1}")
    return write_image(path, colourise(result.depth, result.frames, lo=lo, hi=hi), quality=quality, description=text)


def write_confidence(path: str | os.PathLike, result: DepthResult) -> Path:
    """Confidence as an 8-bit grey PNG (white = sure)."""
    return write_image(path, result.confidence, grey=True)
