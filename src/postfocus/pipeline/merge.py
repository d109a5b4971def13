"""Pass 2: every frame decoded again, warped to the reference at full resolution, fused.

Streaming: frames are decoded one ahead in a background thread, warped
(bicubic, in their stored type) into the output region, corrected for
exposure, and folded into a fusion (:mod:`postfocus.fuse`) that keeps only
its running state; each frame is freed as soon as it is folded in. With the
depth-map method a frame is warped only in the tiles where it weighs in the
blend (:meth:`~postfocus.fuse.base.Fusion.footprint`). Moving regions of
the maps show one instant (:class:`~postfocus.fuse.instant.InstantBlend`). Under a
memory limit the region is fused in bands of rows, decoding the frames once
per band (:mod:`postfocus.pipeline.memory`).

References
----------
.. [1] P. J. Burt and E. H. Adelson, "The Laplacian pyramid as a compact image
   code", IEEE Trans. Communications 31(4), 1983 (the pyramid method).
"""

from __future__ import annotations

from concurrent.futures import wait
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from postfocus.align.report import FrameAlignment
from postfocus.align.warp import warp_to_reference
from postfocus.colour import srgb_decode, srgb_encode
from postfocus.errors import OptionError
from postfocus.fuse.base import Fusion, blend_width, upscale_bands
from postfocus.fuse.depthmap import DepthmapFusion
from postfocus.fuse.instant import InstantBlend
from postfocus.fuse.occlusion import occlusion_aware_index, solver_growth
from postfocus.fuse.relight import local_far_index
from postfocus.fuse.pyramid import PyramidFusion
from postfocus.io.images import to_float
from postfocus.io.base import FrameSource
from postfocus.maps import StackMaps
from postfocus.options import DEFAULT_METHOD, METHODS, check_threads
from postfocus.pipeline.analyse import Progress
from postfocus.pipeline.memory import FOLD_ROWS, compact
from postfocus.pipeline.plan import check_fuse
from postfocus.pipeline.plan import merge_frames, plan_bands  # (re-exported: their callers import them from here)
from postfocus.pipeline.strips import StripFolder
from postfocus.pipeline.threads import helper_threads, in_background, read_ahead
from postfocus.pipeline.warping import MARGIN, WarpTurns, aligned_region, apply_gain, warp_whole  # (re-exported)

__all__ = ["aligned_region", "apply_gain", "fuse", "merge_frames", "plan_bands", "warp_whole"]

Region = tuple[int, int, int, int]

_BYTES = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # (to_float of it: pass 2's table)


def fuse(
    source: FrameSource,
    maps: StackMaps,
    *,
    alignment: Sequence[FrameAlignment] | None = None,
    flow: dict[int, np.ndarray] | None = None,
    method: str = DEFAULT_METHOD,
    frames: Sequence[int] | None = None,
    region: Region | None = None,
    bands: int = 1,
    on_aligned: Callable[[int, np.ndarray], None] | None = None,
    progress: Progress | None = None,
    occlusion: bool = True,
    restore: bool = False,
    warped: Callable[[int], np.ndarray] | None = None,
    threads: int | None = None,
    near_to_far: bool | Callable[[], bool] = True,
    keep_volume: bool = True,
    relight: bool = False,
    whole_warps: bool = False,
    whole_above: float | None = None,
) -> np.ndarray:
    """Pass 2: warp frames into the maps' geometry at full resolution and fuse them.

    Parameters
    ----------
    source : FrameSource
        The frames (decoded again, one at a time), addressed by frame number.
    maps : StackMaps
        Focus index, confidence and motion of the geometry to produce
        (:attr:`Analysis.maps`, or a stack folder's maps).
    alignment : sequence of FrameAlignment, optional
        Per frame number: the transform into the maps' geometry and the
        exposure gain. None: the frames are already aligned (a stack folder's).
    flow : dict, optional
        Dense refinement per frame (:attr:`Analysis.flow`).
    method : str
        "depthmap" or "pyramid".
    frames : sequence of int, optional
        Frames to merge (default: all used); pixels whose focus lies outside
        them take the nearest merged frame, naturally blurred.
    region : tuple of int, optional
        (top, left, bottom, right) of the maps' geometry to produce, e.g.
        :meth:`Analysis.common_area` (default: all). Pixels outside it are never computed.
    bands : int
        Fuse the region in this many bands of rows, one after the other (the
        frames are decoded once per band); depth-map method only.
    on_aligned : callable, optional
        ``on_aligned(index, aligned)`` for every used frame, warped into ``region``, exposure-corrected,
        in the source's stored type (e.g. to keep aligned frames for refocusing; it may be a view into
        the warped frame: read it, do not change it); called in frame order from the decoding thread.
    progress : callable, optional
        ``progress(stage, done, total)``.
    occlusion : bool
        Depth-map method: at occlusion edges, leave out frames where a near object's blur covers
        the pixel, where that shows (:mod:`postfocus.fuse.occlusion`); False: by the focus map alone.
    restore : bool
        Depth-map method with ``occlusion``: also solve the matting equation for the background behind
        near objects (their blur's spill taken off, :func:`~postfocus.fuse.occlusion.occluder_cover`,
        in the sweep direction ``near_to_far``). Needs depth edges that are right to a pixel or two and
        costs a few blurs per frame and layer; off by default (docs/quality.md, "Second step"). A band
        or region sees near objects only within its 16 px margin, so a banded result may differ from
        the whole near band borders.
    relight : bool
        Depth-map method with ``occlusion``: the far surface beside darker near objects taken from the frame
        focused on it, relit by its coarse ratio to the blend (:mod:`postfocus.fuse.relight`); off by default
        (docs/quality.md, "Seventh step, eighth session").
    whole_warps : bool
        Warp every frame whole in the decoding thread and cut the rectangles from it, as with ``on_aligned``
        (the same image as a run that hands its frames on: in the first band only, as those), without handing them on
        or correcting a copy of each.
    whole_above : float, optional
        Depth-map method: warp a frame whole in the decoding thread (in turns, :class:`WarpTurns`, and the
        rectangles cut from it) when its footprint covers at least this share of the region, only its footprint
        otherwise (the first frame whole: its footprint is known once the blend state is made). A frame kept in
        rectangles holds its stored pixels beside their warps; warped whole it holds the warp alone. None: by
        ``whole_warps`` alone.
    warped : callable, optional
        ``warped(index)``: frame ``index`` already warped over the region grown as
        :func:`aligned_region` grows it (:func:`warp_whole`, no exposure correction), instead
        of decoding and warping it here (one band only).
    threads : int, optional
        1: fold every frame in this thread; otherwise (None: as many as there are cores) the
        depth-map fusion, without ``restore``, has a helper thread fold the lower half of each large
        frame's rectangles (:mod:`postfocus.pipeline.strips`; the same result) and make the
        occlusion-safe index beside the other maps.
    near_to_far : bool or callable
        Frame 0 is the nearest focus (False: the last), for ``occlusion``; a callable is asked when needed.
    keep_volume : bool
        False: ``maps.volume`` is set to None once pass 2 has made its last use of it (the moving regions'
        frames and the occlusion-safe index, both made before the first frame is folded), so a caller
        that keeps the volume elsewhere (a stack folder) has its memory back before the fold's peak.

    Returns
    -------
    numpy.ndarray
        float32 (h, w, 3) image of ``region`` in [0, 1].

    Raises
    ------
    OptionError
        An unknown method, bands with the pyramid method, or a ``threads`` that is not a whole number from 1;
        a ``source``, ``maps``, ``frames``, ``region``, ``bands`` or ``alignment`` it cannot use (``check_fuse``).

    Examples
    --------
    >>> a = analyse(source)  # doctest: +SKIP
    >>> image = fuse(source, a.maps, alignment=a.alignment, region=a.common_area())  # doctest: +SKIP
    """
    if method not in METHODS:
        raise OptionError("method", method, f"choose one of {', '.join(METHODS)}")
    merge, whole = check_fuse(source, maps, frames, region, bands, alignment)  # (TypeErrors from pass 2 were not)
    if bands > 1 and method != "depthmap":
        raise OptionError("method", method, "fusing in bands (a memory limit) needs the depthmap method")
    threads = check_threads(threads)  # ("2" was a TypeError deep in pass 2, 0 and 10**6 taken silently: review15)
    H, W = maps.size
    top, left, bottom, right = whole
    edges = np.linspace(top, bottom, max(1, min(int(bands), bottom - top)) + 1).round().astype(int)
    parts = [(int(a), left, int(b), right) for a, b in zip(edges[:-1], edges[1:])]
    if warped is not None and len(parts) > 1:
        raise ValueError("frames warped ahead go with one band")
    job = _Merge(source, maps, alignment, flow, method, merge, occlusion, restore, warped, threads, near_to_far)
    job.keep_volume, job.relight = keep_volume, relight
    grown = aligned_region(whole, (H, W), method, occlusion)
    m = MARGIN if method == "depthmap" and occlusion else 0
    oy, ox = top - grown[0], left - grown[1]

    def keep(i: int, aligned: np.ndarray, gain: np.ndarray) -> None:  # cut, then corrected: no copy at gain 1
        on_aligned(i, apply_gain(aligned[oy:oy + bottom - top, ox:ox + right - left], gain))

    image = None
    for k, part in enumerate(parts):
        stage = "fuse" if len(parts) == 1 else f"fuse (band {k + 1} of {len(parts)})"
        ext = (max(grown[0], part[0] - m), grown[1], min(grown[2], part[2] + m), grown[3])
        job.whole_warps = whole_warps and k == 0  # (as ``on_aligned``: the first band's frames)
        job.whole_above = whole_above
        fused = job.run(ext, grown, keep if k == 0 and on_aligned else None, progress, stage)
        inner = (part[0] - ext[0], left - ext[1], part[2] - ext[0], right - ext[1])
        if len(parts) == 1:  # the region moved to the front of the fused array: no second image
            return compact(fused, inner)
        image = np.empty((bottom - top, right - left, 3), np.float32) if image is None else image
        image[part[0] - top:part[2] - top] = fused[inner[0]:inner[2], inner[1]:inner[3]]
    return image


class _Merge:
    """One merge: the frames, their transforms and the maps, run over one region at a time."""

    def __init__(self, source: FrameSource, maps: StackMaps, alignment: Sequence[FrameAlignment] | None,
                 flow: dict[int, np.ndarray] | None, method: str, merge: list[int], occlusion: bool = True,
                 restore: bool = False, warped: Callable[[int], np.ndarray] | None = None,
                 threads: int | None = None, near_to_far: bool | Callable[[], bool] = True):
        self.source, self.maps, self.alignment, self.flow = source, maps, alignment, flow
        self.method, self.merge, self.occlusion, self.restore = method, merge, occlusion, restore
        self.warped, self.threads, self.near_to_far = warped, threads, near_to_far
        self.labels, self.choice = maps.motion_frames(merge)
        self._occlusion: tuple[np.ndarray, float | None] | None = None
        self.keep_volume = True  # (False: the maps' volume is let go once the blend state is made)
        self.relight = False  # (the far surface beside darker near objects relit, fuse/relight.py)
        self.whole_warps = False  # (True: frames warped whole even with nothing to hand them to)
        self.whole_above: float | None = None  # (frames warped whole where their footprint is at least this share)
        self._fusion: Fusion | None = None  # (the blend state of the run, once made: its footprints)
        self.far: np.ndarray | None = None  # (its far index, maps' size; made with the occlusion-safe index)
        self._turns: WarpTurns | None = None  # (the run's turns of whole warps, if it warps frames whole)

    def transform(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Matrix into the maps' geometry and exposure gain of frame ``i``."""
        if self.alignment is None:
            return np.eye(3), np.ones(3, np.float32)
        return self.alignment[i].matrix, np.asarray(self.alignment[i].gain, np.float32)

    def occlusion_index(self) -> tuple[np.ndarray, float | None]:
        """At occlusion edges, the index of the blend without frames where a near object's blur covers the
        pixel, and (with ``restore``) the blur growth in output pixels a frame; made once, the same for every
        band."""
        if self._occlusion is None:
            maps = self.maps
            near = self.near_to_far() if callable(self.near_to_far) else self.near_to_far  # (measured beside)
            safe, growth = occlusion_aware_index(maps.focus_index, maps.volume, maps.confidence, maps.used,
                                                 near_to_far=near, with_slope=True, slope=maps.blur_slope)
            maps.blur_slope = growth  # (kept with the maps: a stack folder's merge uses it, not its cut volume's)
            slope = None
            if self.restore:  # for the matting equation
                own = np.interp(maps.focus_index, np.asarray(maps.used, np.float32),
                                np.arange(len(maps.used), dtype=np.float32)).astype(np.float32)
                slope = solver_growth(maps.volume, own, maps.confidence, guide=maps.guide) * maps.size[1] / maps.shape[1]
            if self.relight:  # the far index within the blur reach, at the maps' size (fuse/relight.py)
                ranks = np.interp([maps.focus_index.min(), maps.focus_index.max()], maps.used, np.arange(len(maps.used)))
                self.far = local_far_index(maps.focus_index, int(np.ceil(growth * float(np.ptp(ranks)))), near_to_far=near)
            self._occlusion = safe, slope
            if not self.keep_volume:  # (its last consumer: it goes before the blend state is made, mem10)
                maps.volume = None
        return self._occlusion

    def fusion(self, region: Region) -> Fusion:
        """The fusion state of ``region``, from the maps upscaled into it."""
        maps, merge, threads = self.maps, self.merge, helper_threads(self.threads)
        frames = np.asarray(merge, np.float32)
        shape = np.shape(maps.focus_index)  # (upscaled with a band of the grid at a time: 25 MB less at pcb's 3 MP)

        def upscale(small: np.ndarray, then: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
            return upscale_bands(small, maps.size, region, place=maps.grid_place if small.shape == shape else None,
                                 then=then)

        def rank_of(index: np.ndarray) -> np.ndarray:
            """Focus index as a position among the merged frames (they may have gaps), upscaled into the region."""
            rank = np.interp(np.clip(index, merge[0], merge[-1]), frames, np.arange(len(merge), dtype=np.float32))
            return upscale(rank.astype(np.float32))

        safe = None  # the occlusion-safe index (made beside the other maps when there is a second core)
        if self.method == "depthmap" and self.occlusion:

            def safe_rank() -> tuple[np.ndarray, float | None]:
                index, slope = self.occlusion_index()
                return rank_of(index), slope

            safe = in_background(safe_rank, "postfocus-fuse", inline=threads == 1)

        def sharpness() -> np.ndarray:
            # Where the focus map is unsure (flat focus curve, no detail) blend more frames: less noise, no visible blur.
            return upscale(np.asarray(maps.confidence, np.float32), blend_width)  # (its temporaries a band's)

        # (beside the rank and the safe index: upscales of about the same time each, shared by the cores)
        widths = in_background(sharpness, "postfocus-fuse", inline=threads == 1)
        try:
            rank = rank_of(maps.focus_index)
            width = widths.result()
        except BaseException:  # no thread outlives the failure (its own error is not the one to report)
            wait([f for f in (safe, widths) if f is not None])
            raise
        if self.method == "depthmap":
            safe_index, slope = safe.result() if safe is not None else (None, None)  # (result() on both threads)
            near = self.near_to_far() if callable(self.near_to_far) else self.near_to_far  # (measured: asked now)
            far = rank_of(self.far) if self.far is not None else None
            return DepthmapFusion(rank, width, safe_index=safe_index, slope=slope, threads=threads, near_to_far=near,
                                  far_index=far, overwrite_sharpness=True, detail=maps.size[1] / shape[1])  # (the widths are ours: made its k)
        t, l, b, r = region  # fine bands by max contrast, coarse bands and residual by depth
        return PyramidFusion((b - t, r - l), index_map=rank, sharpness=width)

    def run(self, region: Region, aligned_region: Region, on_aligned: Callable[..., None] | None,
            progress: Progress | None, stage: str) -> np.ndarray:
        """One pass over the frames producing ``region``; ``on_aligned(i, aligned, gain)`` gets frames warped into
        ``aligned_region`` (which holds ``region``) and their exposure gains."""
        source, maps, merge, flow = self.source, self.maps, self.merge, self.flow
        H, W = maps.size
        top, left = region[:2]
        # Only the depth-map fusion adds rectangles of a frame; the others take the whole
        # frame, warped once (the instant's box is then cut from it too).
        whole_frames = self.method != "depthmap"
        instant = InstantBlend(maps.motion, self.labels, self.choice, (H, W), region=region) if self.choice else None
        # Sources that hold light (RAW) are merged as light and encoded once at the end.
        linear = source.info.linear
        # Offset of this region inside the frames handed to on_aligned.
        dy, dx = top - aligned_region[0], left - aligned_region[1]
        wanted = set(merge) | (set(maps.used) if on_aligned else set())
        whole = bool(on_aligned) or self.whole_warps or flow is not None or whole_frames or self.warped is not None
        large = None if whole or self.whole_above is None else self.whole_above  # (whole where the footprint is)
        read = source.read_pixels
        # A frame is decoded while the one before is folded, but warped only once that one is folded and dropped.
        turns = WarpTurns() if (whole or large is not None) and self.warped is None else None
        order = {i: k for k, i in enumerate(sorted(wanted))}
        self._turns = turns

        def prepare(i: int, stored: np.ndarray) -> tuple:
            """In the decoding thread, decoded while the previous frame is fused: when the whole frame is wanted
            (``whole_above``: the first, and those whose footprint is that large), it is warped there once (the
            rectangles are then cut from it), once the previous frame is folded (the first while the blend state
            is made), and handed to ``on_aligned`` exposure-corrected, from this thread; (stored frame or None,
            aligned or None)."""
            if not whole and large is None:
                return stored, None
            if turns is not None and not turns.wait(order[i]):
                return None, None  # (the pass failed: nothing to warp)
            if not whole and order[i] > 0:  # (the blend state is made: the frame before it is folded)
                fusion = self._fusion  # (None only once the pass is over, e.g. failed: nothing to warp)
                if fusion is None or _share(fusion, merge.index(i), region) < large:
                    return (stored if fusion is not None else None), None
            matrix, gain = self.transform(i)
            aligned = warp_whole(stored, matrix, (H, W), aligned_region, flow.get(i) if flow is not None else None)
            if on_aligned:
                on_aligned(i, aligned, gain)
            return None, aligned

        if self.warped is not None:  # warped ahead (and kept, if wanted, by whoever warped them)
            read = self.warped

            def prepare(i: int, aligned: np.ndarray) -> tuple:
                if on_aligned:
                    on_aligned(i, aligned, self.transform(i)[1])
                return None, aligned

        # The first frame is decoded (and warped) while the blend state is made.
        frames = read_ahead(source, sorted(wanted), read=read, prepare=prepare)
        with frames:
            try:
                fusion = self._fusion = self.fusion(region)
                if not self.keep_volume:  # its last consumer is done (the index above is kept for every band)
                    self.maps.volume = None
                image = self._fold(frames, fusion, instant, region, dy, dx, progress, stage, len(wanted))
                del fusion  # (the blend state, all but the image it finished in place)
            finally:  # (a warp still waiting for its turn goes before the decoding thread is joined)
                self._fusion = None
                if turns is not None:
                    turns.stop()
        if linear:
            image = srgb_encode(image)
        if instant is not None:
            instant.apply(image)
        return np.clip(image, 0.0, 1.0, out=image)

    def _fold(self, frames: Iterable, fusion: Fusion, instant: InstantBlend | None, region: Region, dy: int, dx: int,
              progress: Progress | None, stage: str, total: int) -> np.ndarray:
        """Every frame folded into ``fusion`` (and the instant's box): the fused image, before encoding."""
        # The depth-map blend adds disjoint rectangles pixel by pixel: two threads fold a frame's upper and
        # lower rectangles (the background solver keeps per-frame state, so it folds on one).
        shared = isinstance(fusion, DepthmapFusion) and not self.restore
        with StripFolder(helper_threads(self.threads) if shared else 1) as folder:
            return self._fold_frames(frames, fusion, instant, region, dy, dx, progress, stage, total, folder, shared)

    def _fold_frames(self, frames: Iterable, fusion: Fusion, instant: InstantBlend | None, region: Region, dy: int,
                     dx: int, progress: Progress | None, stage: str, total: int, folder: StripFolder, banded: bool):
        """:meth:`_fold` with its rectangles folded by ``folder`` (``banded``: the depth-map blend, a band at a time)."""
        merge, linear = self.merge, self.source.info.linear
        H, W = self.maps.size
        top, left = region[:2]
        done = 0
        for i, (stored, aligned) in frames:
            matrix, gain = self.transform(i)
            factor = None if np.allclose(gain, 1.0) else gain
            table = to_float(_BYTES, factor) if np.size(1.0 if factor is None else factor) in (1, 3) else None
            position = float(merge.index(i)) if i in merge else None
            rects = [] if position is None else fusion.footprint(position)

            border: list = []  # (rect, its warp): a rectangle warped alone whose rows the two threads share

            def warp(t: int, l: int, b: int, r: int) -> np.ndarray:
                return warp_to_reference(stored, matrix, (H, W), interpolation=cv2.INTER_CUBIC,
                                         region=(top + t, left + l, top + b, left + r))

            def part(t: int, l: int, b: int, r: int, *, raw: bool = False) -> np.ndarray:
                """Float (``raw``: stored) pixels of rectangle (t, l, b, r), cut from the whole warp or warped alone
                (or cut from the border rectangle's warp, when it is a piece of it)."""
                if aligned is not None:
                    pixels = aligned[dy + t : dy + b, dx + l : dx + r]
                elif border and border[0][1] == l and border[0][3] == r and border[0][0] <= t and b <= border[0][2]:
                    pixels = border[1][t - border[0][0]:b - border[0][0]]
                else:
                    pixels = warp(t, l, b, r)
                return pixels if raw else to_float(pixels, factor)

            def fold(rect: Region) -> None:
                t, l, b, r = rect  # warped whole, then made float a band of rows at a time (``rows``)
                pixels, rows = part(*rect, raw=True), FOLD_ROWS if banded else b - t
                for a in range(t, b, rows):
                    band = pixels[a - t:a - t + rows]  # (RGB bytes looked up: 4-5x faster than converting)
                    band = cv2.LUT(band, table) if table is not None and band.shape[2:] == (3,) and band.dtype == np.uint8 \
                        else to_float(band, factor)
                    fusion.add(position, srgb_decode(band) if linear else band, (a, l, min(b, a + rows), r))

            # (a rectangle warped alone is never warped in pieces: the border one is warped whole, then shared)
            folder.fold(rects, fold, cut=aligned is not None,
                        whole=None if aligned is not None else lambda rect: border.extend((rect, warp(*rect))))
            border.clear()
            if instant is not None and instant.wants(i) and position is not None:
                instant.add_box(i, part(*instant.box))
            del stored, aligned
            if self._turns is not None:  # (the next frame's whole warp may start)
                self._turns.folded()
            done += 1
            if progress:
                progress(stage, done, total)
        return fusion.result()


def _share(fusion: Fusion, position: float, region: Region) -> float:
    """The share of ``region`` that the footprint of the frame at ``position`` covers (:meth:`Fusion.footprint`).

    Examples
    --------
    >>> from postfocus.fuse.depthmap import DepthmapFusion
    >>> f = DepthmapFusion(np.array([[0.0] * 4 + [5.0] * 4] * 2, np.float32), tile=4)
    >>> _share(f, 0.0, (0, 0, 2, 8)), _share(f, 2.5, (0, 0, 2, 8))
    (0.5, 0.0)
    """
    t, l, b, r = region
    return sum((y1 - y0) * (x1 - x0) for y0, x0, y1, x1 in fusion.footprint(float(position))) / ((b - t) * (r - l))
