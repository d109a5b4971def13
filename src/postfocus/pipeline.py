"""The stacking pipeline: frames in, aligned, measured, mapped, fused.

Two streaming passes over the frames keep memory flat in the number of frames:

1. *analyse*: each frame is decoded, reduced to working size, matched to its
   neighbour and measured for focus; only small maps are kept.
2. *fuse*: each frame is decoded again, warped to the reference at full
   resolution, corrected for exposure and folded into the fusion.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Callable, Sequence

import cv2
import numpy as np

from postfocus.align import (
    FrameAlignment,
    SweepAligner,
    common_area,
    rescale_matrix,
    valid_mask,
    warp_to_reference,
)
from postfocus.colour import to_grey
from postfocus.errors import AlignmentError, PostfocusError, PostfocusWarning
from postfocus.focus import laplacian_energy, pool
from postfocus.focusmap import check_prefer, focus_index_map
from postfocus.fuse import DepthmapFusion, PyramidFusion, blend_width, upscale_region
from postfocus.io.base import FrameSource, SourceInfo
from postfocus.io.images import to_float
from postfocus.io.open import open_source
from postfocus.io.write import check_output_path, describe_stack, write_image
from postfocus.memory import bands_for
from postfocus.motion import InstantBlend, MotionDetector, apply_flow, chain_flows, check_mode, refined_warp, region_frames

METHODS = ("depthmap", "pyramid")
DEFAULT_METHOD = "depthmap"
ALIGN_MODELS = ("similarity", "affine", "homography", "rigid", "translation", "none")

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a long step runs."""


@dataclass
class StackResult:
    """An all-in-focus result and what it was made from.

    Attributes
    ----------
    image : float32 (H, W, 3) fused image in [0, 1] (cropped when ``crop`` is set).
    focus_index : float32 (h, w) focus-index map at analysis resolution, in
        reference geometry before cropping (frame index per pixel, sub-frame).
    confidence : float32 (h, w) confidence of ``focus_index`` in [0, 1].
    alignment : one :class:`FrameAlignment` per input frame.
    crop : (top, left, bottom, right) of ``image`` within the reference frame.
    info : what the source said about itself (size, bit depth, metadata).
    method : fusion method used.
    warnings : every warning raised during the run, as text.
    motion : float32 (h, w) motion mask in [0, 1] at analysis resolution, reference geometry
        before cropping (None with ``motion="off"``); moving regions show one instant.
    motion_share : fraction of the image whose content moved during the sweep.
    motion_frames : frame each moving region was taken from, by region label.
    """

    image: np.ndarray
    focus_index: np.ndarray
    confidence: np.ndarray
    alignment: list[FrameAlignment]
    crop: tuple[int, int, int, int]
    info: SourceInfo
    method: str
    reference: int
    frames_used: list[int]
    warnings: list[str] = field(default_factory=list)
    motion: np.ndarray | None = None
    motion_share: float = 0.0
    motion_frames: dict[int, int] = field(default_factory=dict)

    def focus_index_full(self) -> np.ndarray:
        """Focus-index map resized to the output image (cropped) geometry."""
        h, w = self.info.size
        full = cv2.resize(self.focus_index, (w, h), interpolation=cv2.INTER_LINEAR)
        t, l, b, r = self.crop
        return full[t:b, l:r]

    def save(self, path: str | os.PathLike, *, quality: int = 95, bit_depth: int | None = None) -> Path:
        """Write the image with the reference frame's metadata (atomically)."""
        description = describe_stack(self.frames_used, len(self.alignment), self.method, self.reference)
        return save_image(path, self.image, self.info, quality=quality, bit_depth=bit_depth, description=description)


def save_image(
    path: str | os.PathLike, image: np.ndarray, info: SourceInfo, *, quality: int = 95, bit_depth: int | None = None,
    description: str | None = None,
) -> Path:
    """Write a result in the format its suffix names, with the source's metadata.

    16-bit sources give 16-bit PNG/TIFF by default; JPEG is always 8-bit.
    """
    check_output_path(path, info.paths)
    if bit_depth is None and info.bit_depth > 8 and Path(path).suffix.lower() in (".tif", ".tiff", ".png"):
        bit_depth = 16
    return write_image(path, image, quality=quality, bit_depth=bit_depth, exif=info.exif, icc=info.icc, grey=info.grey,
                       description=description)


def _work_scale(size: tuple[int, int], long_edge: int) -> float:
    return min(1.0, long_edge / max(size))


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def read_ahead(
    source: FrameSource,
    indices: Sequence[int],
    read: Callable[[int], np.ndarray] | None = None,
    prepare: Callable[[int, np.ndarray], object] | None = None,
) -> Iterator[tuple[int, object]]:
    """Yield ``(index, frame)`` in order while the next frame is decoded in a background thread.

    Decoding (PyAV, Pillow, OpenCV) releases the GIL, so it overlaps with the
    work on the current frame; only one thread ever reads the source, and at
    most one frame is held ahead.

    Parameters
    ----------
    source : the frames.
    indices : which frames, in this order.
    read : how to read one (default ``source.read``; e.g. ``source.read_pixels``).
    prepare : ``prepare(index, frame)``, also done in the background thread on
        each frame read, in order (e.g. shrinking it to a working size), so
        the full frame is dropped there.

    Examples
    --------
    >>> [i for i, _ in read_ahead(source, [0, 1, 2])]  # doctest: +SKIP
    [0, 1, 2]
    """
    read = read or source.read
    task = read if prepare is None else (lambda index: prepare(index, read(index)))
    return compute_ahead(indices, task, "postfocus-decode")


def compute_ahead(indices: Sequence[int], task: Callable[[int], object],
                  name: str = "postfocus-ahead") -> Iterator[tuple[int, object]]:
    """Yield ``(index, task(index))`` in order, computing the next one in a background thread.

    Examples
    --------
    >>> list(compute_ahead([1, 2], lambda i: i * 10))
    [(1, 10), (2, 20)]
    """
    from concurrent.futures import ThreadPoolExecutor

    order = list(indices)
    if not order:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        pending = pool.submit(task, order[0])
        for k, index in enumerate(order):
            result = pending.result()
            if k + 1 < len(order):
                pending = pool.submit(task, order[k + 1])
            yield index, result
            del result


def parse_range(text: str | None, n: int) -> tuple[int, int] | None:
    """Parse ``A:B`` (inclusive frame numbers; either side may be empty)."""
    if text is None:
        return None
    try:
        a, b = text.split(":")
        lo = int(a) if a.strip() else 0
        hi = int(b) if b.strip() else n - 1
    except ValueError:
        raise PostfocusError(f"--range {text!r}: expected A:B with frame numbers, e.g. 3:12") from None
    if not (0 <= lo <= hi < n):
        raise PostfocusError(f"--range {text!r}: frames must satisfy 0 <= A <= B <= {n - 1}")
    return lo, hi


@dataclass
class Analysis:
    """What pass 1 learned about a stack (all maps in reference geometry).

    Attributes
    ----------
    alignment : one FrameAlignment per frame.
    reference : index of the reference frame.
    used : indices of the frames that could be aligned.
    volume : float32 (N, h, w) focus measure per frame at analysis size (zeros for unused frames).
    guide : float32 (h, w) grey rough all-in-focus at analysis size (edges for the focus map).
    scale : analysis size / full size.
    focus_index : float32 (h, w) regularised focus index (frame numbers, sub-frame).
    confidence : float32 (h, w) in [0, 1].
    size : (H, W) of the full-resolution reference frame.
    motion : float32 (h, w) motion mask in [0, 1] (None: not detected); see :mod:`postfocus.motion`.
    motion_share : fraction of the image whose content moved.
    flow : optional dense refinement per frame: float16 (h, w, 2) displacement in
        analysis pixels, ``reference(x) ~ aligned_frame(x + flow(x))``.
    """

    alignment: list[FrameAlignment]
    reference: int
    used: list[int]
    volume: np.ndarray
    guide: np.ndarray
    scale: float
    focus_index: np.ndarray
    confidence: np.ndarray
    size: tuple[int, int]
    motion: np.ndarray | None = None
    motion_share: float = 0.0
    flow: dict[int, np.ndarray] | None = None

    def motion_frames(self, frames: Sequence[int] | None = None) -> tuple[np.ndarray, dict[int, int]]:
        """Region labels of the motion mask and the one frame (of ``frames``) each region shows."""
        frames = list(self.used if frames is None else frames)
        if self.motion is None:
            return np.zeros(self.focus_index.shape, np.int32), {}
        return region_frames(self.motion, self.volume[frames], frames)

    def common_area(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) that every used frame covers, full resolution."""
        return common_area([self.alignment[i].matrix for i in self.used], self.size)


def analyse(
    source: FrameSource,
    *,
    reference: int | None = None,
    align: str = "similarity",
    align_size: int = 1600,
    analysis_size: int = 800,
    motion: str = "auto",
    refine_flow: bool = False,
    prefer: str = "none",
    progress: Progress | None = None,
    warn: Callable[[str], None] = lambda m: warnings.warn(m, PostfocusWarning, stacklevel=3),
    on_frame: Callable[[int, np.ndarray], None] | None = None,
    leave_out: Callable[[], dict[int, str]] | None = None,
) -> Analysis:
    """Pass 1: align every frame, measure its focus and map the focus index, streaming.

    ``on_frame(index, frame)`` sees every frame of this pass, in order, at the
    working size (long edge ``align_size``), in the decoding thread (e.g. to
    spot repeated frames without decoding again); ``leave_out()``, called after
    the pass, names frames to leave out of the maps and the merge, with reasons.

    Parameters
    ----------
    source : the frames.
    reference : frame whose geometry everything takes (default: middle).
    align : motion model (see :data:`ALIGN_MODELS`).
    align_size, analysis_size : long edges for alignment and for focus maps.
    motion : "auto" detects moving subjects (:mod:`postfocus.motion`), "off" assumes a still scene.
    refine_flow : also register every frame densely (DIS optical flow between
        neighbours, chained to the reference) for local parallax.
    prefer : "none" (strongest focus peak), "front" or "back": where a pixel's
        focus curve has two clear peaks, the one nearest frame 0 or the last
        frame (see :func:`postfocus.focusmap.focus_index_map`).
    progress : callback ``progress(stage, done, total)``.

    Returns
    -------
    Analysis

    Examples
    --------
    >>> a = analyse(open_source("shared/data/ring"))  # doctest: +SKIP
    >>> a.focus_index.shape  # doctest: +SKIP
    (600, 800)
    """
    n = len(source)
    size = source.info.size
    ref = n // 2 if reference is None else reference
    if not 0 <= ref < n:
        raise PostfocusError(f"--reference {reference}: must be a frame number from 0 to {n - 1}")
    if align not in ALIGN_MODELS:
        raise PostfocusError(f"--align {align!r}: choose one of {', '.join(ALIGN_MODELS)}")
    check_mode(motion)
    check_prefer(prefer)
    s_work = _work_scale(size, align_size)
    s_an = _work_scale(size, analysis_size)
    an_h, an_w = round(size[0] * s_an), round(size[1] * s_an)
    aligner = SweepAligner(source.names, ref, align if align != "none" else "similarity", s_work)
    measures: list[np.ndarray | None] = []
    smalls: list[np.ndarray | None] = []
    def prepare(index: int, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-frame work that needs no other frame, done in the decoding thread (in frame order): the
        full-resolution frame is shrunk there (in its stored type: a quarter of the work for 8-bit
        frames) and never reaches the loop below, which is left with the alignment."""
        work = to_float(_resize(pixels, s_work))
        grey = to_grey(work)
        measure = pool(laplacian_energy(grey), (an_h, an_w))
        small = np.clip(_resize(work, s_an / s_work) * 255 + 0.5, 0, 255).astype(np.uint8)
        if on_frame:
            on_frame(index, work)
        return work, grey, measure, small

    try:
        for i, (work, grey, measure, small) in read_ahead(source, range(n), read=source.read_pixels, prepare=prepare):
            if align != "none":
                aligner.add(i, grey, work)
            measures.append(measure)
            smalls.append(small)
            del work, grey
            if progress:
                progress("align and measure", i + 1, n)
    except BaseException:
        aligner.close()
        raise
    if align == "none":
        aligner.close()
        report = [FrameAlignment(i, source.names[i], method="none") for i in range(n)]
        report[ref].method = "reference"
    else:
        report = aligner.finish()
        if aligner.reference != ref:
            warn(f"reference frame {ref} could not be aligned; frame {aligner.reference} is the reference instead")
            ref = aligner.reference
    for i, why in (leave_out() if leave_out else {}).items():
        if report[i].used and i != ref:
            report[i].used, report[i].note = False, why
    for r in report:
        if not r.used:
            warn(f"{r.name}: left out ({r.note})")
    used = [r.index for r in report if r.used]
    if len(used) < 2:
        raise AlignmentError(
            f"{source.info.paths[0] if source.info.paths else 'input'}: fewer than two frames could be aligned; "
            "try --align affine or homography, or --align none for a tripod stack"
        )
    volume = np.zeros((n, an_h, an_w), np.float32)
    for i in used:  # each small map is dropped as soon as it is in reference geometry
        volume[i] = warp_to_reference(measures[i], rescale_matrix(report[i].matrix, s_an), (an_h, an_w))
        measures[i] = None
    # Rough all-in-focus at analysis size: the guide whose edges the focus map follows.
    best = np.argmax(volume[used], axis=0)
    guide = np.zeros((an_h, an_w), np.float32)
    detector = MotionDetector((an_h, an_w)) if motion == "auto" else None
    greys: dict[int, np.ndarray] = {}  # kept for the dense refinement only

    def aligned_small(i: int) -> tuple[np.ndarray, object]:
        """Frame i's small grey frame in reference geometry, and its motion-detection prep (background)."""
        small = smalls[i].astype(np.float32) * np.float32(1 / 255)
        matrix = rescale_matrix(report[i].matrix, s_an)
        grey = to_grey(warp_to_reference(small, matrix, (an_h, an_w)) * report[i].gain)
        smalls[i] = None
        prepared = detector.prepare(grey, valid_mask(matrix, small.shape[:2], (an_h, an_w))) if detector else None
        return grey, prepared

    for k, (i, (grey, prepared)) in enumerate(compute_ahead(used, aligned_small)):
        guide[best == k] = grey[best == k]
        if refine_flow:
            greys[i] = grey
        if detector is not None:  # neighbours compared in sweep order (on the globally aligned frames:
            detector.add(i, prepared=prepared)  # a flow would follow a moving object, not show it)
    moved = detector.finish() if detector is not None else None
    flow = None
    if refine_flow:
        flow = chain_flows(greys, used, ref)
        greys.clear()
        for i in used:
            volume[i] = apply_flow(volume[i], flow[i])
    if flow is not None:  # moving subjects come from one frame: no refinement there
        keep = 1.0 - (moved.mask if moved is not None else 0.0)
        flow = {i: (f * np.asarray(keep, np.float32)[..., None]).astype(np.float16) for i, f in flow.items()}
    moving = moved is not None and moved.any
    # A copy only where the volume must change or frames are missing (the volume is kept as it is).
    focus_volume = volume if len(used) == n and not moving else volume[used]
    if moving:
        # Motion is no focus: a changing texture has no focus peak to trust. Flat focus curves
        # there make the focus map fill those pixels from their static surroundings.
        core = moved.mask > 0.5
        focus_volume[:, core] = focus_volume[:, core].mean(axis=0)
    index_used, confidence = focus_index_map(focus_volume, guide, prefer=prefer)
    del focus_volume
    # Positions among the used frames back to frame numbers (frames may be missing).
    index = np.interp(index_used, np.arange(len(used), dtype=np.float32), np.asarray(used, np.float32))
    return Analysis(report, ref, used, volume, guide, float(s_an), index.astype(np.float32), confidence, size,
                    motion=None if moved is None else moved.mask, motion_share=0.0 if moved is None else moved.share,
                    flow=flow)


def fuse(
    source: FrameSource,
    analysis: Analysis,
    *,
    method: str = DEFAULT_METHOD,
    frames: Sequence[int] | None = None,
    region: tuple[int, int, int, int] | None = None,
    bands: int = 1,
    on_aligned: Callable[[int, np.ndarray], None] | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Pass 2: warp frames to the reference at full resolution and fuse them.

    Parameters
    ----------
    source : the frames (decoded again, one at a time).
    analysis : result of :func:`analyse`.
    method : "depthmap" or "pyramid".
    frames : frame indices to merge (default: all used); pixels whose focus
        lies outside them take the nearest merged frame, naturally blurred.
    region : (top, left, bottom, right) of the reference geometry to produce,
        e.g. the common area of :meth:`Analysis.common_area` (default: all).
        Pixels outside it are never computed.
    bands : fuse the region in this many bands of rows, one after the other
        (the frames are decoded once per band): the full-resolution blend
        state then takes 1/bands of the memory (see :mod:`postfocus.memory`).
        Depth-map method only (a pyramid's bands would show seams).
    on_aligned : called as ``on_aligned(index, aligned)`` for every used frame
        with the frame warped into ``region``, exposure-corrected, in the
        source's stored type (uint8, uint16 or float32; see
        :meth:`FrameSource.read_pixels`), e.g. to keep aligned frames for refocusing.

    With the depth-map method each frame is warped only where it weighs in
    the blend (:meth:`DepthmapFusion.footprint`), unless ``on_aligned`` wants
    it whole. Moving regions of ``analysis.motion`` show one instant: the
    merged frame sharpest over the region, feathered into the fused surroundings.

    Returns
    -------
    float32 (h, w, 3) image of ``region`` in reference geometry.

    Examples
    --------
    >>> image = fuse(source, analyse(source), region=analysis.common_area())  # doctest: +SKIP
    """
    if method not in METHODS:
        raise PostfocusError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if bands > 1 and method != "depthmap":
        raise PostfocusError(f"--method {method}: fusing in bands (a memory limit) needs the depthmap method")
    merge = list(analysis.used if frames is None else frames)
    H, W = analysis.size
    whole = region or (0, 0, H, W)
    top, left, bottom, right = whole
    edges = np.linspace(top, bottom, max(1, min(int(bands), bottom - top)) + 1).round().astype(int)
    parts = [(int(a), left, int(b), right) for a, b in zip(edges[:-1], edges[1:])]
    if len(parts) == 1:
        return _fuse_region(source, analysis, method, merge, whole, whole, on_aligned, progress, "fuse")
    image = np.empty((bottom - top, right - left, 3), np.float32)
    for k, part in enumerate(parts):
        stage = f"fuse (band {k + 1} of {len(parts)})"
        image[part[0] - top : part[2] - top] = _fuse_region(
            source, analysis, method, merge, part, whole, on_aligned if k == 0 else None, progress, stage)
    return image


def _fuse_region(
    source: FrameSource,
    analysis: Analysis,
    method: str,
    merge: list[int],
    region: tuple[int, int, int, int],
    aligned_region: tuple[int, int, int, int],
    on_aligned: Callable[[int, np.ndarray], None] | None,
    progress: Progress | None,
    stage: str,
) -> np.ndarray:
    """One pass over the frames producing ``region``; ``on_aligned`` gets frames warped into ``aligned_region``
    (which holds ``region``)."""
    report = analysis.alignment
    H, W = analysis.size
    top, left, bottom, right = region
    h, w = bottom - top, right - left
    target = np.clip(analysis.focus_index, merge[0], merge[-1])
    # Focus index as a position among the merged frames (they may have gaps).
    rank = np.interp(target, np.asarray(merge, np.float32), np.arange(len(merge), dtype=np.float32))
    rank = upscale_region(rank.astype(np.float32), (H, W), region)
    # Where the focus map is unsure (flat focus curve, no detail) blend more frames: less noise, no visible blur.
    width = blend_width(upscale_region(analysis.confidence.astype(np.float32), (H, W), region))
    if method == "depthmap":
        fusion: DepthmapFusion | PyramidFusion = DepthmapFusion(rank, width)
    else:  # fine bands by max contrast, coarse bands and residual by depth
        fusion = PyramidFusion((h, w), index_map=rank, sharpness=width)
    del rank, width
    labels, choice = analysis.motion_frames(merge)
    instant = InstantBlend(analysis.motion, labels, choice, (H, W), region=region) if choice else None
    # RAW frames are merged as light (linear values) and encoded once at the end.
    linear = source.info.linear
    if linear:
        from postfocus.colour import srgb_decode, srgb_encode

    # Offset of this region inside the frames handed to on_aligned.
    dy, dx = top - aligned_region[0], left - aligned_region[1]
    wanted = set(merge) | (set(analysis.used) if on_aligned else set())
    done = 0
    for i, stored in read_ahead(source, sorted(wanted), read=source.read_pixels):
        matrix, gain = report[i].matrix, np.asarray(report[i].gain, np.float32)
        factor = None if np.allclose(gain, 1.0) else gain
        position = float(merge.index(i)) if i in merge else None
        rects = [] if position is None else (
            fusion.footprint(position) if isinstance(fusion, DepthmapFusion) else [(0, 0, h, w)])
        aligned = None
        if on_aligned or analysis.flow is not None or not isinstance(fusion, DepthmapFusion):
            # The whole frame is wanted: warp it once and take the rectangles from it.
            if analysis.flow is not None and i != analysis.reference:
                aligned = _crop(refined_warp(stored, matrix, analysis.flow[i], (H, W)), aligned_region)
            else:
                aligned = warp_to_reference(stored, matrix, (H, W), interpolation=cv2.INTER_CUBIC,
                                            region=aligned_region)
            if on_aligned:
                on_aligned(i, apply_gain(aligned, gain))

        def part(t: int, l: int, b: int, r: int) -> np.ndarray:
            """Float pixels of rectangle (t, l, b, r) of this region, cut from the whole warp or warped alone."""
            pixels = aligned[dy + t : dy + b, dx + l : dx + r] if aligned is not None else warp_to_reference(
                stored, matrix, (H, W), interpolation=cv2.INTER_CUBIC, region=(top + t, left + l, top + b, left + r))
            return to_float(pixels, factor)

        for rect in rects:
            pixels = part(*rect)
            if linear:
                pixels = srgb_decode(pixels)
            if isinstance(fusion, DepthmapFusion):
                fusion.add(position, pixels, rect)
            else:
                fusion.add(pixels, position)
        if instant is not None and instant.wants(i) and position is not None:
            instant.add_box(i, part(*instant.box))
        del stored, aligned
        done += 1
        if progress:
            progress(stage, done, len(wanted))
    image = fusion.result()
    del fusion
    if linear:
        image = srgb_encode(image)
    if instant is not None:
        instant.apply(image)
    return np.clip(image, 0.0, 1.0, out=image)


def _crop(image: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    t, l, b, r = region
    return image if (t, l) == (0, 0) and (b, r) == image.shape[:2] else image[t:b, l:r]


def apply_gain(pixels: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Per-channel exposure ``gain`` applied to stored pixels, keeping their type (integers round and saturate).

    Examples
    --------
    >>> apply_gain(np.array([[[100, 200, 250]]], np.uint8), np.array([1.1, 1.0, 1.1])).tolist()
    [[[110, 200, 255]]]
    """
    if np.allclose(gain, 1.0):
        return pixels
    if pixels.dtype.kind == "f":
        return pixels * np.asarray(gain, np.float32)
    if pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == len(gain) == 3:  # a table per channel
        table = np.clip(np.round(np.arange(256, dtype=np.float64)[:, None] * np.asarray(gain, np.float64)), 0, 255)
        return cv2.LUT(pixels, table.astype(np.uint8).reshape(1, 256, 3))
    return cv2.multiply(pixels, tuple(float(g) for g in gain) + (0.0,) * (4 - len(gain)), dtype=-1)


def plan_bands(size: tuple[int, int], n_frames: int, method: str, memory_mb: float | None,
               warn: Callable[[str], None], analysis_size: int = 800) -> int:
    """Bands of rows pass 2 needs to stay under ``memory_mb`` (see :mod:`postfocus.memory`).

    Known before any frame is decoded, so an impossible limit is refused at once.
    """
    if memory_mb is None:
        return 1
    if method != "depthmap":
        warn(f"--memory applies to the depthmap method; {method} merges the whole picture at once")
        return 1
    s = _work_scale(size, analysis_size)
    return bands_for(size, n_frames, round(size[0] * s) * round(size[1] * s), memory_mb)


def merge_range(analysis: Analysis, frame_range: tuple[int, int] | None) -> list[int]:
    """Used frames inside an inclusive ``(A, B)`` range (all used frames for None)."""
    if frame_range is None:
        return list(analysis.used)
    lo, hi = frame_range
    frames = [i for i in analysis.used if lo <= i <= hi]
    if not frames:
        raise PostfocusError(f"--range {lo}:{hi}: no usable frame in that range")
    return frames


def collect_warnings(messages: list[str]) -> Callable[[str], None]:
    """A ``warn`` callback that records each message and also issues it as a warning."""

    def warn(message: str) -> None:
        messages.append(message)
        warnings.warn(message, PostfocusWarning, stacklevel=3)

    return warn


def open_quietly(inputs, warn: Callable[[str], None]) -> FrameSource:  # noqa: ANN001
    """open_source, with its warnings routed through ``warn``."""
    if isinstance(inputs, FrameSource):
        return inputs
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(f, np.ndarray) for f in inputs):
        from postfocus.io.arrays import ArraySource

        return ArraySource(inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        source = open_source(inputs)
    for w in caught:
        warn(str(w.message))
    return source


def stack(
    inputs: str | os.PathLike | Sequence[str | os.PathLike] | FrameSource,
    *,
    method: str = DEFAULT_METHOD,
    reference: int | None = None,
    align: str = "similarity",
    crop: bool = True,
    frame_range: str | tuple[int, int] | None = None,
    align_size: int = 1600,
    analysis_size: int = 800,
    motion: str = "auto",
    refine_flow: bool = False,
    prefer: str = "none",
    memory_mb: float | None = None,
    progress: Progress | None = None,
) -> StackResult:
    """Merge a focus stack into one all-in-focus image.

    Parameters
    ----------
    inputs : folder, image files in focus order, a video, a list of float RGB arrays, or a FrameSource.
    method : "depthmap" (blend by a regularised focus-index map) or "pyramid"
        (max-contrast selection in a Laplacian pyramid).
    reference : frame whose geometry the result has (default: the middle one).
    align : "similarity" (shift, rotation, scale: handheld with breathing),
        "affine", "homography", "rigid", "translation" or "none" (tripod).
    crop : crop to the area every frame covers.
    frame_range : merge only frames A..B (inclusive), e.g. "3:12" or (3, 12).
    align_size, analysis_size : long edge in pixels at which frames are
        aligned and focus is analysed; full resolution is used for the output.
    motion : "auto" (default) finds subjects that moved during the sweep
        (flames, water, leaves, people) and shows each from one instant instead
        of a blend of several; "off" treats the scene as still.
    refine_flow : register frames densely as well (local parallax of handheld
        close-ups; DIS optical flow); off by default.
    prefer : "none" (default: each pixel's strongest focus peak), "front" or
        "back": where a blurred near object lets far detail shine through (two
        clear peaks in a pixel's focus curve, as in microscopy), take the
        nearer (front, frame 0 side) or the farther peak.
    memory_mb : aim to stay under this much memory (MB): the output is then
        fused in bands of rows, decoding the frames once per band
        (:mod:`postfocus.memory`); depth-map method only.
    progress : optional callback ``progress(stage, done, total)``.

    Returns
    -------
    StackResult

    Examples
    --------
    >>> result = stack("shared/data/ring")  # doctest: +SKIP
    >>> result.save("ring.jpg")  # doctest: +SKIP
    """
    if method not in METHODS:
        raise PostfocusError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    check_mode(motion)
    check_prefer(prefer)
    messages: list[str] = []
    warn = collect_warnings(messages)
    source = open_quietly(inputs, warn)
    if isinstance(frame_range, str):
        frame_range = parse_range(frame_range, len(source))
    bands = plan_bands(source.info.size, len(source), method, memory_mb, warn, analysis_size)
    analysis = analyse(
        source, reference=reference, align=align, align_size=align_size, analysis_size=analysis_size,
        motion=motion, refine_flow=refine_flow, prefer=prefer, progress=progress, warn=warn,
    )
    frames = merge_range(analysis, frame_range)
    h, w = analysis.size
    box = analysis.common_area() if crop else (0, 0, h, w)
    image = fuse(source, analysis, method=method, frames=frames, region=box, bands=bands, progress=progress)
    info = source.info
    header = getattr(source, "header", None)  # image files: the result carries the reference frame's metadata
    if header is not None:
        info = dataclasses.replace(info, exif=header(analysis.reference).exif, icc=header(analysis.reference).icc)
    return StackResult(
        image=image,
        focus_index=analysis.focus_index,
        confidence=analysis.confidence,
        alignment=analysis.alignment,
        crop=box,
        info=info,
        method=method,
        reference=analysis.reference,
        frames_used=frames,
        warnings=messages,
        motion=analysis.motion,
        motion_share=analysis.motion_share,
        motion_frames=analysis.motion_frames(frames)[1],
    )
