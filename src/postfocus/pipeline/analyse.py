"""Pass 1: every frame decoded once, aligned to its neighbour, measured for focus, mapped.

Streaming: each frame is shrunk to the alignment size (long edge 1600 px) in
the decoding thread, matched to its neighbour (:class:`~postfocus.align.sweep.SweepAligner`,
ECC then a tile refinement, chained to the reference), and reduced to a
focus measure and a small copy at the analysis size (long edge 800 px). The
full-resolution frame is dropped in the decoding thread; only small maps are
kept, so memory stays flat in the number of frames. After the last frame the
measures are warped into the reference geometry and turned into the focus-index
map (:func:`~postfocus.focus.map.focus_index_map`); moving subjects are found on
the aligned small frames (:mod:`postfocus.motion`); with ``refine_flow`` the
alignment is refined densely (:mod:`postfocus.align.flow`).

References
----------
.. [1] S. K. Nayar and Y. Nakagawa, "Shape from focus", IEEE Trans. PAMI 16(8), 1994
   (a focus measure per frame, the focus index where it peaks).
.. [2] G. D. Evangelidis and E. Z. Psarakis, "Parametric image alignment using
   enhanced correlation coefficient maximization", IEEE Trans. PAMI 30(10), 2008.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from postfocus.align.flow import apply_flow, chain_flows
from postfocus.align.report import FrameAlignment
from postfocus.align.sweep import SweepAligner
from postfocus.align.warp import common_area, rescale_matrix, valid_mask, warp_to_reference
from postfocus.colour import gamma_decode, to_grey
from postfocus.errors import AlignmentError, OptionError, PostfocusWarning
from postfocus.focus.measure import laplacian_energy, pool
from postfocus.focus.map import focus_index_map
from postfocus.focus.passes import said_passes
from postfocus.io.images import to_float
from postfocus.io.base import FrameSource
from postfocus.labels import frame_label
from postfocus.maps import StackMaps
from postfocus.motion import MotionDetector
from postfocus.numeric import to_float16
from postfocus.options import StackOptions, resolve
from postfocus.pipeline.small_grey import reference_grey
from postfocus.pipeline.threads import compute_ahead, helper_threads, in_background, read_ahead

__all__ = ["Analysis", "Progress", "analyse", "work_scale"]

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a long step runs."""


@dataclass
class Analysis:
    """What pass 1 learned about a stack, in the reference frame's geometry.

    Attributes
    ----------
    alignment : list of FrameAlignment
        One per frame (``used`` False for frames left out).
    reference : int
        The reference frame.
    maps : StackMaps
        Focus index, confidence, focus volume and motion, uncropped.
    guide : numpy.ndarray
        float32 (h, w) grey rough all-in-focus at analysis size (the edges the focus map follows).
    scale : float
        Analysis size / full size.
    flow : dict or None
        Optional dense refinement per frame but the reference: float16 (h, w, 2)
        displacement in analysis pixels, ``reference(x) ~ aligned_frame(x + flow(x))``.
    """

    alignment: list[FrameAlignment]
    reference: int
    maps: StackMaps
    guide: np.ndarray
    scale: float
    flow: dict[int, np.ndarray] | None = None

    @property
    def used(self) -> list[int]:
        """Frames that could be aligned."""
        return self.maps.used

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the full-resolution reference frame."""
        return self.maps.size

    def common_area(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) that every used frame covers, full resolution."""
        return common_area([self.alignment[i].matrix for i in self.used], self.size)

    def output_maps(self, box: tuple[int, int, int, int]) -> StackMaps:
        """The maps cut to an output ``box`` of the reference geometry (see :meth:`StackMaps.crop`)."""
        return self.maps.crop(box, self.scale)


_BYTES = np.arange(256, dtype=np.uint8)
# gamma_decode(to_float(v)) of every 8-bit value v: a table gives the same values as the power law, 10x faster.
_FLOAT_OF_BYTE = to_float(_BYTES)
_LINEAR_OF_BYTE = gamma_decode(_FLOAT_OF_BYTE)
# Whether to_float and back to 8 bits (as the small copies are made) returns every 8-bit value unchanged.
_BYTE_ROUND_TRIP = bool((np.clip(to_float(_BYTES) * 255 + 0.5, 0, 255).astype(np.uint8) == _BYTES).all())


#: At most this many frames prepared ahead of the alignment in pass 1, holding at most this many MB.
#: 1: measured so (the run-to-run differences seen with 3 were OpenCV's phaseCorrelate windowing a
#: frame's shared small copy in place, fixed in ``align/pair.py``; 3 has not been measured since).
PREPARED_AHEAD, PREPARED_AHEAD_MB = 1, 24.0
#: Frames brought into reference geometry ahead of the motion comparison (a small grey frame each at the
#: analysis size), by this many threads: one thread was the slower side (the main thread's comparison
#: waited for it in about half the samples on beetle and sub1mp, eighth session).
MEASURED_AHEAD, MEASURED_WORKERS = 3, 2
#: Image files whose frames hold at least this many times the working size's pixels are decoded and
#: prepared two at a time: decoding and shrinking grow with the frame, a match with the working size
#: (measured, one OpenCV thread: pcb, 1.6 times, 50 ms a frame against a match of 96 ms on one of two
#: threads, 48 ms a frame; 24 MP JPEG, 14 times, 200 ms against 52 ms: the match threads wait for the
#: one decoding thread; algae's 20 MP PNGs, 18 times, 58 ms against 52 ms).
PARALLEL_DECODE_AREA = 2.0
#: Below that area, image files' second frame is still decoded and prepared beside the first (in a thread of
#: its own), so the first match starts one frame's preparation sooner (docs/performance.md, "Medium stacks,
#: fourteenth session").
EARLY_SECOND = True


def _second_beside(frames: Iterable, early: Future | None) -> Iterator:
    """``frames``' first item, then ``(1, early.result().pop())``, then the rest: the frames in order when
    ``frames`` holds every frame but the second, which ``early`` prepares in a list (``frames`` itself when
    ``early`` is None); taken out of the list, it is not held by the Future once the loop is done with it."""
    frames = iter(frames)
    if early is not None:
        yield next(frames)
        yield 1, early.result().pop()
    yield from frames


class _Scratch(threading.local):
    """Frame-sized arrays a decoding thread reuses from one frame to the next, by name (one set a thread).

    A frame-sized array made afresh faults its pages in every time; these are made once (pcb's decoding
    thread: 0.14 -> 0.09 s of system time in 7 frames, docs/performance.md "Medium stacks, fourteenth session").
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """The thread's array ``name`` of this shape and type (uninitialised when new)."""
        array = self.arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self.arrays[name] = np.empty(shape, dtype)
        return array


def _measure_scratch(scratch: _Scratch, work: np.ndarray | None, shape: tuple[int, int]) -> tuple:
    """The smoothed image's and its Laplacian's arrays for a grey frame of ``shape``: two of the three planes'
    worth of ``work`` (a float RGB frame not read again before it is written) when given, else the thread's
    own two: a decoding thread then holds one float RGB frame between frames, not also two grey ones."""
    if work is not None and work.shape == (*shape, 3) and work.flags.c_contiguous:
        planes = work.reshape(3, *shape)  # (a view: the same memory, three contiguous grey-sized arrays)
        return planes[0], planes[1]
    return scratch.get("smoothed", shape, np.float32), scratch.get("laplacian", shape, np.float32)


def work_scale(size: tuple[int, int], long_edge: int) -> float:
    """Scale that brings the long edge of ``size`` down to ``long_edge`` (never up).

    Examples
    --------
    >>> work_scale((1000, 2000), 800)
    0.4
    """
    return min(1.0, long_edge / max(size))


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def analyse(
    source: FrameSource,
    options: StackOptions | None = None,
    *,
    progress: Progress | None = None,
    warn: Callable[[str], None] = lambda m: warnings.warn(m, PostfocusWarning, stacklevel=3),
    on_frame: Callable[[int, np.ndarray], None] | None = None,
    leave_out: Callable[[], dict[int, str]] | None = None,
    on_alignment: Callable[[list[FrameAlignment], list[int]], None] | None = None,
    on_measured: Callable[[], None] | None = None,
    **changes: Any,
) -> Analysis:
    """Pass 1: align every frame, measure its focus and map the focus index, streaming.

    Parameters
    ----------
    source : FrameSource
        The frames.
    options : StackOptions, optional
        ``align``, ``reference``, ``align_size``, ``analysis_size``, ``motion``,
        ``refine_flow``, ``prefer`` and ``threads`` are used (default: :class:`StackOptions`).
    progress : callable, optional
        ``progress(stage, done, total)``.
    warn : callable
        Receives every warning as text (default: :class:`PostfocusWarning`).
    on_frame : callable, optional
        ``on_frame(index, frame)`` sees every frame of this pass, in order, at
        the working size (long edge ``align_size``), in the decoding thread
        (e.g. to spot repeated frames without decoding again).
    leave_out : callable, optional
        Called after the pass; names frames to leave out of the maps and the
        merge, with reasons (``{index: why}``).
    on_alignment : callable, optional
        ``on_alignment(alignment, used)`` as soon as the alignment is final, before
        the maps are made (e.g. to start warping frames for pass 2 beside them).
    on_measured : callable, optional
        ``on_measured()`` once every frame's measure and small copy is in reference geometry, as the
        focus map starts (on one thread: work started here fills the other core).
    **changes
        Fields of :class:`StackOptions` to change, e.g. ``motion="off"``.

    Returns
    -------
    Analysis

    Raises
    ------
    OptionError
        A reference beyond the stack; a ``source`` that is not opened frames.
    AlignmentError
        Fewer than two frames could be aligned.

    Examples
    --------
    >>> a = analyse(open_source("shared/data/ring"))  # doctest: +SKIP
    >>> a.maps.focus_index.shape  # doctest: +SKIP
    (600, 800)
    """
    if not isinstance(source, FrameSource):  # (a list of frames: "'list' object has no attribute 'info'")
        raise OptionError("source", type(source).__name__,
                          "not opened frames; open them with postfocus.io.open_source(...) first")
    n = len(source)
    size = source.info.size
    options = resolve(options, changes, n)
    options.check_frames(n)
    ref = n // 2 if options.reference is None else options.reference
    align = options.align
    s_work = work_scale(size, options.align_size)
    s_an = work_scale(size, options.analysis_size)
    an_h, an_w = round(size[0] * s_an), round(size[1] * s_an)
    aligner = SweepAligner(source.names, ref, align if align != "none" else "similarity", s_work,
                           workers=helper_threads(options.threads), turns=source.info.kind != "video",
                           fps=source.info.fps)
    # Every frame's focus measure and small copy, each kind in one block: after the pass the used frames'
    # measures are warped into the block's first slices, which become the focus volume (no second copy of
    # all the measures), and the small copies go back to the system whole when freed (no hole in the heap).
    measures = np.empty((n, an_h, an_w), np.float32)
    smalls: np.ndarray | list | None = None
    # When the small copy would be the 8-bit working frame itself, that frame is kept instead of a copy of
    # it (a stack decoded once holds it for pass 2 anyway), and dropped once in reference geometry.
    shared_smalls = s_an == s_work and _BYTE_ROUND_TRIP

    scratch = _Scratch() if on_frame is None else None  # (``on_frame`` may keep the float frame it is shown)

    def prepare(index: int, pixels: np.ndarray) -> tuple:
        """Per-frame work that needs no other frame, done in the decoding thread(s) (two frames at once for
        large images, so it writes only its own frame's slots): the
        full-resolution frame is shrunk there (in its stored type: a quarter of the work for 8-bit
        frames) and never reaches the loop below, which is left with the alignment. The frame-sized
        arrays that do not leave it are the thread's ``scratch``, reused from frame to frame."""
        stored = _resize(pixels, s_work)
        eight_bit = stored.dtype == np.uint8
        # (an RGB frame only: a grey one would be its own grey frame, which the aligner keeps)
        reused = eight_bit and scratch is not None and stored.ndim == 3 and stored.shape[2] == 3
        if reused:  # (to_float's values, from a table)
            work = cv2.LUT(stored, _FLOAT_OF_BYTE, dst=scratch.get("work", stored.shape, np.float32))
        else:
            work = to_float(stored)
        grey = to_grey(work)
        if eight_bit and shared_smalls:
            small = stored  # what the 8-bit copy below would be (kept as it is, see ``shared_smalls``)
        else:  # (in place: the values of ``np.clip(shrunk * 255 + 0.5, 0, 255)``; made before the measure, which
            # may be made in ``work``'s memory)
            small = _resize(work, s_an / s_work)
            small = small.copy() if small is work else small
            np.add(np.multiply(small, 255, out=small), 0.5, out=small)
            small = np.clip(small, 0, 255, out=small).astype(np.uint8)
        direct = grey.shape == (an_h, an_w)  # measured at the analysis size: straight into its slice
        if scratch is None:
            energy = laplacian_energy(grey, out=measures[index] if direct else None)
        else:  # (the smoothed image's array takes the measure: it is not needed once its Laplacian is made)
            smoothed, laplacian = _measure_scratch(scratch, work if reused else None, grey.shape)
            energy = laplacian_energy(grey, out=measures[index] if direct else smoothed,
                                      scratch=(smoothed, laplacian))
        if not direct:
            measures[index] = pool(energy, (an_h, an_w))
        del energy
        if on_frame:
            on_frame(index, work)
        exposure = None  # what the aligner compares exposures on (made from a table here, for 8-bit frames)
        if eight_bit and align != "none":  # (into the float frame's scratch, no longer needed)
            linear = cv2.LUT(stored, _LINEAR_OF_BYTE, dst=work if reused else None)
            exposure = SweepAligner.exposure_frame(linear)
            del linear
        # The float frame goes on only when the aligner still needs it (its exposure copy is made from it):
        # at 1600 px a float RGB frame is 23 MB, held while it waits in the queue.
        return (work if exposure is None and align != "none" else None), grey, small, exposure, small is stored

    # Small frames are prepared several ahead, so decoding goes on while the loop waits for matches.
    work_mb = round(size[0] * s_work) * round(size[1] * s_work) * 20 / 2**20  # float RGB and grey frames
    ahead = max(1, min(PREPARED_AHEAD, int(PREPARED_AHEAD_MB / max(work_mb, 1e-6))))
    # (prepare writes only its own frame's slices; on_frame wants the frames in order; a second frame in
    # flight is not in the memory limit's estimate)
    files = source.info.kind == "images" and on_frame is None and helper_threads(options.threads) > 1 \
        and options.memory_mb is None
    workers = 2 if files and s_work * s_work * PARALLEL_DECODE_AREA <= 1.0 else 1
    # The first match waits for two frames: with one decoding thread, the second file is decoded and prepared
    # beside the first (EARLY_SECOND), instead of after it with the other core idle.
    early = in_background(lambda: [prepare(1, source.read_pixels(1))], "postfocus-decode") \
        if EARLY_SECOND and files and workers == 1 and n > 2 else None
    try:
        with read_ahead(source, [0, *range(2, n)] if early else range(n), read=source.read_pixels,
                        prepare=prepare, ahead=ahead, workers=workers) as frames:
            for i, (work, grey, small, exposure, shared) in _second_beside(frames, early):
                if align != "none":
                    aligner.add(i, grey, work, exposure)
                if smalls is None:
                    smalls = [None] * n if shared else np.empty((n,) + small.shape, np.uint8)
                smalls[i] = small
                del work, grey, small, exposure
                if progress:
                    progress("align and measure", i + 1, n)
    except BaseException:
        aligner.close()
        if early is not None:  # (not left reading the source)
            wait([early])
        raise
    if align == "none":
        aligner.close()
        report = [FrameAlignment(i, source.names[i], method="none") for i in range(n)]
        report[ref].method = "reference"
    else:
        report, linked_ref = aligner.finish()
        if linked_ref != ref:
            warn(f"the reference frame ({frame_label(source.names, ref, fps=source.info.fps)}) could not be aligned; "
                 f"{frame_label(source.names, linked_ref, fps=source.info.fps)} is the reference instead")
            ref = linked_ref
    for i, why in (leave_out() if leave_out else {}).items():
        if report[i].used and i != ref:
            report[i].used, report[i].note = False, why
    for r in report:
        if not r.used:
            warn(f"{frame_label(source.names, r.index, fps=source.info.fps)}: left out ({r.note})")
    used = [r.index for r in report if r.used]
    if len(used) < 2:
        raise AlignmentError(
            f"{source.info.paths[0] if source.info.paths else 'input'}: fewer than two frames could be aligned; "
            "try another alignment model (affine or homography), or none for a tripod stack"
        )
    if on_alignment is not None:
        on_alignment(report, used)
    volume = measures[: len(used)]  # slice k: used frame k's measure in reference geometry (warped below)
    # Rough all-in-focus at analysis size: the guide whose edges the focus map follows, each pixel
    # from the frame where its focus measure is highest (the first such frame, as np.argmax picks).
    guide = np.zeros((an_h, an_w), np.float32)
    sharpest = np.zeros((an_h, an_w), np.float32)  # the highest measure so far
    detector = MotionDetector((an_h, an_w), frames=len(used)) if options.motion == "auto" else None
    greys: dict[int, np.ndarray] = {}  # kept for the dense refinement only

    def aligned_small(ki: tuple[int, int]) -> tuple[np.ndarray, object]:
        """Frame i's focus measure and small grey frame in reference geometry, and its motion-detection
        prep (in the background; each small map is dropped as soon as it is in reference geometry)."""
        k, i = ki
        matrix = rescale_matrix(report[i].matrix, s_an)
        # Slice k is frame k's measure, which is used frame k or one before it (done), or unused.
        volume[k] = warp_to_reference(measures[i], matrix, (an_h, an_w))
        small = smalls[i]
        if isinstance(smalls, list):
            smalls[i] = None
        grey = reference_grey(small, matrix, report[i].gain, (an_h, an_w))  # (the guide's, the detector's)
        prepared = (detector.prepare(grey, valid_mask(matrix, small.shape[:2], (an_h, an_w)), position=k)
                    if detector else None)
        return grey, prepared

    # Two frames at once when the measure a task reads is never the slice another one writes (task k writes
    # slice k and reads frame used[k]'s, so a frame left out would let task k read what task k+1 writes).
    workers = MEASURED_WORKERS if helper_threads(options.threads) > 1 and used == list(range(len(used))) else 1
    with compute_ahead(list(enumerate(used)), aligned_small, ahead=MEASURED_AHEAD, workers=workers) as warped:
        for (k, i), (grey, prepared) in warped:
            if k == 0:
                guide[:], sharpest[:] = grey, volume[0]
            else:
                # (OpenCV's comparison, masked copy and maximum: NumPy's values, at a quarter of the time)
                cv2.copyTo(grey, cv2.compare(volume[k], sharpest, cv2.CMP_GT), guide)
                cv2.max(sharpest, volume[k], dst=sharpest)
            if options.refine_flow:
                greys[i] = grey
            if detector is not None:  # compared in sweep order (on the globally aligned frames:
                detector.add(i, prepared=prepared)  # a flow would follow a moving object, not show it)
    del sharpest, smalls
    # --prefer names the near (front) or far (back) surface; the focus map counts from frame 0, the nearest
    # focus unless the order is stated far to near ("auto" is measured after this pass: frame 0 is taken as front)
    prefer = {"front": "back", "back": "front"}.get(options.prefer, options.prefer) \
        if options.order == "far-to-near" else options.prefer
    still_map = None
    if detector is not None and not options.refine_flow and helper_threads(options.threads) > 1:
        # Unless something moved, the focus map does not depend on the motion: made beside the motion
        # clean-up (and made again below in the rare case that something moved).
        still_map = in_background(lambda: focus_index_map(volume, guide, prefer=prefer), "postfocus-map")
    if on_measured is not None:
        on_measured()
    moved = detector.finish() if detector is not None else None
    flow = None
    if options.refine_flow:
        flow = chain_flows(greys, used, ref)
        greys.clear()
        for k, i in enumerate(used):
            volume[k] = apply_flow(volume[k], flow[i])
    if flow is not None:  # moving subjects come from one frame: no refinement there; the reference needs none
        keep = 1.0 - (moved.mask if moved is not None else 0.0)
        flow = {i: to_float16(f * np.asarray(keep, np.float32)[..., None]) for i, f in flow.items() if i != ref}
    moving = moved is not None and moved.any
    # A copy only where the volume must change (the volume is kept as it is).
    focus_volume = volume.copy() if moving else volume
    if moving:
        # Motion is no focus: a changing texture has no focus peak to trust. Flat focus curves
        # there make the focus map fill those pixels from their static surroundings.
        core = moved.mask > 0.5
        focus_volume[:, core] = focus_volume[:, core].mean(axis=0)
    if still_map is not None and not moving:
        index_used, confidence = still_map.result()
    else:
        index_used, confidence = focus_index_map(focus_volume, guide, prefer=prefer)
    del focus_volume, still_map
    # Positions among the used frames back to frame numbers (frames may be missing).
    index = np.interp(index_used, np.arange(len(used), dtype=np.float32), np.asarray(used, np.float32))
    said_passes(volume, used, lambda i: frame_label(source.names, i, fps=source.info.fps), warn)  # (turning back)
    maps = StackMaps(index.astype(np.float32), confidence, volume, used, size, guide=guide,
                     motion=None if moved is None else moved.mask, motion_share=0.0 if moved is None else moved.share)
    return Analysis(report, ref, maps, guide, float(s_an), flow=flow)
