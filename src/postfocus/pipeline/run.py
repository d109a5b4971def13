"""Both passes end to end: :func:`stack` (a result in memory) and :func:`process` (kept in a stack folder).

One path serves both: the source is opened, the options checked against it,
pass 1 (:func:`~postfocus.pipeline.analyse.analyse`) and pass 2
(:func:`~postfocus.pipeline.merge.fuse`) run over the output region, and the
maps are cut to the output geometry. :func:`process` also hands every aligned
frame to a :class:`~postfocus.store.FrameWriter` during pass 2, writes the
maps beside pass 2 (:func:`~postfocus.store.write_maps`) and then the image and a
manifest (:func:`~postfocus.store.write_stack_folder`), in a temporary folder
renamed into place.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import wait
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from postfocus.errors import InputError, OptionError
from postfocus.focus.direction import SweepDirection, direction_of, stated_direction
from postfocus.io.base import FrameSource
from postfocus.options import StackOptions, is_whole, resolve
from postfocus.pipeline.analyse import Analysis, Progress, analyse
from postfocus.pipeline.decoded import DecodedOnce as _DecodedOnce
from postfocus.pipeline.finish import OnImage, write_beside
from postfocus.pipeline.inputs import Inputs, collect_warnings, open_quietly
from postfocus.pipeline.memory import give_back_freed
from postfocus.pipeline.merge import fuse, merge_frames, plan_bands
from postfocus.pipeline.kept import WarpAhead
from postfocus.pipeline.threads import configure_threads, helper_threads, in_background
from postfocus.result import StackResult
from postfocus.store import (
    FORMAT_VERSION,
    CacheError,
    DamagedStackError,
    FileCopies,
    FrameWriter,
    PartialFolder,
    ProcessedStack,
    cache_root,
    check_cache,
    folder_lock,
    tap_floor,
    write_maps,
    write_stack_folder,
)
from postfocus.store.unwarped import UNWARPED_KEY, HandOver
from postfocus.sweep import RepeatedFrames

__all__ = ["Inputs", "collect_warnings", "open_quietly", "process", "stack"]

#: Stacks whose decoded frames take at most this many MB are decoded once: pass 1 keeps them for pass 2.
DECODED_ONCE_MB = 64
#: Above this many pixels a kept stack's files are decoded again to be warped ahead (:func:`_warped_from_files`);
#: at or below it (beetle, sub1mp) the peak is pass 1's end, not its matches: held, as before (mem9).
AGAIN_PIXELS = 1_000_000
#: A kept photo stack's frame (warped in pass 2) is warped whole when its footprint covers at least this share of
#: the picture, only its footprint otherwise: as fast where it is small (100 x 24 MP), and where it is most of the
#: frame the warp is held without the decoded frame beside it (algae: 97-99.8 %; warp25).
WHOLE_SHARE = 0.5


def _decode_once(source: FrameSource, bands: int, *, hold: bool = False, again: bool = False
                 ) -> tuple[FrameSource, Callable[[], None]]:
    """``source`` wrapped to decode each frame once when its frames fit :data:`DECODED_ONCE_MB` (files only);
    ``hold``: pass 1's frames are also held for the direction's measurement until it takes them; ``again``:
    image files are not held but decoded again (:func:`_warped_from_files`). With ``release()``, to call when
    both passes are over: a video's scratch file started here goes then, with the frames pass 2 did not read
    again (outside a merged range, left out), not when the source does (a caller's source may live on)."""
    info = source.info
    if bands > 1 or info.kind not in ("images", "raw", "video") or not _small(source) or again:
        # a video: its decoded frames kept in a scratch file instead (dropped by ``release``, if started here)
        if hasattr(source, "keep_decoded") and source.keep_decoded():
            return source, source.drop_decoded
        return source, lambda: None
    return _DecodedOnce(source, hold=hold), lambda: None


def _small(source: FrameSource) -> bool:
    """Whether the stack's decoded frames take at most :data:`DECODED_ONCE_MB`."""
    (h, w), depth = source.info.size, source.info.bit_depth
    return len(source) * h * w * 3 * (1 if depth <= 8 else 2) / 2**20 <= DECODED_ONCE_MB


def _warped_from_files(source: FrameSource, opts: StackOptions, bands: int) -> bool:
    """Whether :func:`process` warps a small stack of image files ahead from the files decoded again, not from
    frames pass 1 held: the same frames, without pass 1's peak holding them all beside its matches (mem9:
    pcb 7 x 9 MB); the order stated (a measured one holds them for its look, :func:`_frame_reader`); JPEG and PNG
    files only, whose frames are integers (a TIFF's may be float, which pass 1 never held)."""
    info = source.info
    return (info.kind == "images" and len(info.paths) == len(source) and bands == 1 and not opts.refine_flow
            and opts.order != "auto" and info.size[0] * info.size[1] > AGAIN_PIXELS and _small(source)
            and all(Path(p).suffix.lower() in (".jpg", ".jpeg", ".png") for p in info.paths))


def _prepare(inputs: Inputs, options: StackOptions | None, changes: dict[str, Any], messages: list[str],
             progress: Progress | None, *, again: bool = False
             ) -> tuple[FrameSource, StackOptions, int, Callable[[str], None], Callable[[], None]]:
    """Open the source, settle the options against it and plan the bands of pass 2; with the ``release`` of
    :func:`_decode_once` (``again``: its own)."""
    if progress is not None and not callable(progress):  # (was a TypeError once the work had begun)
        raise OptionError("progress", progress, "must be a function progress(stage, done, total), or None")
    warn = collect_warnings(messages)
    threads = changes.get("threads", getattr(options, "threads", None))  # (options checked by resolve, below)
    source = open_quietly(inputs, warn, threads=threads)
    opts = resolve(options, changes, len(source))
    opts.check_frames(len(source))
    restore = configure_threads(opts.threads)  # OpenCV's, the process's: set back by ``release`` (or on an error)
    try:
        bands = plan_bands(source.info.size, len(source), opts.method, opts.memory_mb, warn, opts.analysis_size)
        source, release = _decode_once(source, bands, hold=opts.order == "auto",
                                       again=again and _warped_from_files(source, opts, bands))
    except BaseException:
        restore()
        raise

    def release_all() -> None:
        try:
            release()
        finally:
            restore()

    return source, opts, bands, warn, release_all


def _both_passes(source: FrameSource, opts: StackOptions, analysis: Analysis, *, bands: int, crop: bool,
                 frames: Sequence[int] | None, on_aligned: Callable[[int, np.ndarray], None] | None,
                 progress: Progress | None,
                 warped: Callable[[int], np.ndarray] | None = None, keep_volume: bool = True,
                 whole_above: float | None = None) -> tuple[tuple[int, int, int, int], np.ndarray, SweepDirection]:
    """Pass 2 over the output region of an analysis, in the sweep direction measured from its maps (or stated,
    ``opts.order``): (region, image, direction); ``keep_volume``, ``whole_above``: as :func:`fuse`'s."""
    h, w = analysis.size
    box = analysis.common_area() if crop else (0, 0, h, w)
    give_back_freed()  # what pass 1 freed, before pass 2's blend state is made
    stated = stated_direction(opts.order)  # (--order: nothing measured)
    read = _frame_reader(source) if stated is None else None
    own = dataclasses.replace(analysis.maps) if stated is None else None  # (its own reference to the volume)

    def measure() -> SweepDirection:
        nonlocal read, own
        try:
            return direction_of(own, analysis.guide, read=read, alignment=analysis.alignment)
        finally:
            read = own = None  # the frames held for it, and its volume, go now, not after pass 2

    measuring = None if stated is not None else in_background(
        measure, "postfocus-direction", inline=helper_threads(opts.threads) == 1)  # beside pass 2's start
    near_to_far = stated.near_to_far if stated is not None else (lambda: measuring.result().near_to_far)
    image = fuse(source, analysis.maps, alignment=analysis.alignment, flow=analysis.flow, method=opts.method,
                 frames=frames, region=box, bands=bands, on_aligned=on_aligned, progress=progress, warped=warped,
                 threads=opts.threads, near_to_far=near_to_far, keep_volume=keep_volume, whole_above=whole_above)
    return box, image, stated if stated is not None else measuring.result()


def _frame_reader(source: FrameSource) -> Callable[[int], np.ndarray] | None:
    """Frame pixels for the direction's full-resolution look, safe beside pass 2's reads: the frames pass 1
    kept (taken now, before pass 2 drops them), else image files (or arrays) read again; None for a video not
    kept (one decoder is not shared between threads: its direction is measured at the analysis size)."""
    while not isinstance(source, _DecodedOnce) and isinstance(getattr(source, "source", None), FrameSource):
        source = source.source  # (e.g. a video's HandOver)
    inner = source.source if isinstance(source, _DecodedOnce) else source
    kept = source.take_held() if isinstance(source, _DecodedOnce) else {}
    if inner.info.kind not in ("images", "raw", "arrays") and not (kept and len(kept) == len(source)):
        return None
    return lambda i: kept[i] if i in kept else inner.read_pixels(i)


def stack(inputs: Inputs, options: StackOptions | None = None, *, progress: Progress | None = None,
          **changes: Any) -> StackResult:
    """Merge a focus stack into one all-in-focus image.

    Parameters
    ----------
    inputs : str, os.PathLike, sequence or FrameSource
        Folder, image files in focus order, a video, a list of float RGB arrays, or a FrameSource.
    options : StackOptions, optional
        How to align and merge (default: :class:`StackOptions`).
    progress : callable, optional
        ``progress(stage, done, total)``.
    **changes
        Fields of :class:`StackOptions` to change, e.g. ``method="pyramid"``,
        ``frame_range="3:12"`` or ``(3, 12)``, ``align="none"``, ``crop=False``.

    Returns
    -------
    StackResult

    Raises
    ------
    OptionError
        An option the stack cannot use (names the field).
    PostfocusError
        Unreadable inputs, frames that cannot be aligned.

    Examples
    --------
    >>> result = stack("shared/data/ring")  # doctest: +SKIP
    >>> result.save("ring.jpg")  # doctest: +SKIP
    """
    messages: list[str] = []
    source, opts, bands, warn, release = _prepare(inputs, options, changes, messages, progress)
    try:
        analysis = analyse(source, opts, progress=progress, warn=warn)
        frames = merge_frames(analysis.used, opts.frame_range)
        box, image, direction = _both_passes(source, opts, analysis, bands=bands, crop=opts.crop, frames=frames,
                                             on_aligned=None, progress=progress)
    finally:
        release()
    info = source.info
    header = getattr(source, "header", None)  # image files: the result carries the reference frame's metadata
    if header is not None:
        info = dataclasses.replace(info, exif=header(analysis.reference).exif, icc=header(analysis.reference).icc)
    return StackResult(image=image, maps=analysis.output_maps(box), alignment=analysis.alignment, crop=box,
                       info=info, options=opts, reference=analysis.reference, merged=frames, warnings=messages,
                       direction=direction)


JPEG_QUALITY = 97
""":func:`process`'s default quality of the frames it keeps as JPEG; a folder made at another is keyed apart."""


def process(
    inputs: Inputs,
    options: StackOptions | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    refresh: bool = False,
    jpeg_quality: int = JPEG_QUALITY,
    progress: Progress | None = None,
    on_image: OnImage | None = None,
    **changes: Any,
) -> ProcessedStack:
    """Align and analyse a stack once and keep the work in a stack folder.

    The folder holds the aligned frames (cropped to the common area), the
    maps and the all-in-focus image of ``options.method``; it is reused while
    the inputs and the processing options (:meth:`StackOptions.processing`)
    are unchanged. ``frame_range`` and ``crop`` do not apply here: range
    merges are made from the folder (:meth:`ProcessedStack.merge`).

    Parameters
    ----------
    inputs : str, os.PathLike, sequence or FrameSource
        Folder, image files, video, arrays or FrameSource.
    options : StackOptions, optional
        How to align and merge.
    cache_dir : str or os.PathLike, optional
        Where stack folders live (see :func:`~postfocus.store.cache_root`).
    refresh : bool
        Redo the work even if a valid stack folder exists.
    jpeg_quality : int
        Quality (1-100) of the frames kept as JPEG (a video's); a folder made at another quality than
        :data:`JPEG_QUALITY` is another folder.
    progress : callable, optional
        ``progress(stage, done, total)``.
    on_image : callable, optional
        ``on_image(image, used, reference)``: when the folder is made (not reused), called once with the
        all-in-focus image as kept (what :meth:`ProcessedStack.all_in_focus` gives), the frames merged and
        the reference, on a thread of its own while the folder's image and manifest are written (the
        command line writes its output there); what it raises is raised once the folder is kept.
    **changes
        Fields of :class:`StackOptions` to change.

    Returns
    -------
    ProcessedStack

    Examples
    --------
    >>> ps = process("sweep.mp4")  # doctest: +SKIP
    >>> ps.size  # doctest: +SKIP
    (2100, 3780)
    """
    jpeg_quality = _check_process(refresh, jpeg_quality, on_image)
    messages: list[str] = []
    source, opts, bands, warn, release = _prepare(inputs, options, changes, messages, progress, again=True)
    try:
        root = cache_root(cache_dir)
        identity = source.identity()  # (arrays: a hash of every pixel, so made once)
        keyed = identity if jpeg_quality == JPEG_QUALITY else {"inputs": identity, "jpeg_quality": jpeg_quality}
        folder = root / opts.cache_key(keyed, FORMAT_VERSION)  # (a frame kept at another quality: another folder)
        check_cache(root)  # before any work: a cache that cannot be written is said at once
        with folder_lock(folder):  # a second process on the same stack waits here, then reuses the work
            if not refresh and (folder / "manifest.json").exists():
                ps = _reuse(folder, opts, progress, warn)
                if ps is not None:
                    return ps
            pixels, failed = _make_folder(source, opts, folder, identity, bands=bands, jpeg_quality=jpeg_quality,
                                          progress=progress, warn=warn, messages=messages, on_image=on_image)
    finally:
        release()
    ps = ProcessedStack.open(folder)
    ps.written(opts.method, pixels)  # (not read back from the folder by the caller)
    if failed is not None:
        raise failed
    return ps


def _check_process(refresh: object, jpeg_quality: object, on_image: object) -> int:
    """``jpeg_quality`` as an int, once :func:`process`'s own arguments are found usable, before any work (review20:
    ``"high"`` was a TypeError once frames were written, 500 taken, ``on_image=5`` failed after the folder was made).
    """
    if not isinstance(refresh, (bool, np.bool_)):
        raise OptionError("refresh", refresh, "must be True or False")
    if not (is_whole(jpeg_quality) and 1 <= jpeg_quality <= 100):
        raise OptionError("jpeg_quality", jpeg_quality, "must be a whole number from 1 to 100")
    if on_image is not None and not callable(on_image):
        raise OptionError("on_image", on_image, "must be a function on_image(image, used, reference), or None")
    return int(jpeg_quality)


def _reuse(folder: Path, opts: StackOptions, progress: Progress | None,
           warn: Callable[[str], None]) -> ProcessedStack | None:
    """The stack folder if it is whole (all files as written), with ``opts.method``'s image; else None, said."""
    try:
        ps = ProcessedStack.open(folder)
        ps.verify()
        if not ps.all_in_focus_path(opts.method).exists():  # (a file changed while it merged: made again too)
            ps.all_in_focus(opts.method, progress, opts.memory_mb, threads=opts.threads)
    except DamagedStackError as exc:
        warn(f"processed stack damaged ({exc}); making it again")
        return None
    except InputError:
        return None  # another format version: made again
    return ps


def _make_folder(source: FrameSource, opts: StackOptions, folder: Path, identity: object, *, bands: int,
                 jpeg_quality: int, progress: Progress | None, warn: Callable[[str], None],
                 messages: list[str], on_image: OnImage | None = None) -> tuple[np.ndarray, BaseException | None]:
    """Both passes, keeping the aligned frames, the maps and the manifest in ``folder``; the image as the
    folder holds it and what ``on_image`` raised (:func:`~postfocus.pipeline.finish.write_beside`)."""
    repeats = RepeatedFrames() if source.info.kind == "video" else None
    info = source.info
    deep = info.bit_depth > 8
    # Lossless sources (PNG, TIFF, RAW) keep lossless cached frames; JPEG and video sources are
    # already compressed, so a JPEG at quality 97 with full colour resolution loses nothing visible.
    lossless = deep or info.kind == "raw" or any(Path(p).suffix.lower() in (".png", ".tif", ".tiff") for p in info.paths)
    # A video's frames are kept as decoded (8-bit: JPEG with the video's own 4:2:0 colour) and warped
    # when asked for (store/unwarped.py): no whole-frame warps here, pass 2 warps only footprints.
    # (Not with a dense flow refinement, which is not kept.)
    # A photo stack's frames (JPEG, PNG, TIFF) are kept as copies of their files, unwarped too: no
    # encode, no second loss (RAW's decoded frames are no file: kept aligned as before).
    copies = info.kind == "images" and len(info.paths) == len(source) and not opts.refine_flow
    unwarped = (info.kind == "video" and not opts.refine_flow) or copies
    with PartialFolder(folder.parent) as part:
        try:
            (part.path / "frames").mkdir()
        except OSError as exc:
            raise CacheError(f"{folder.parent}: cannot write the processed stack ({exc.strerror or exc})") from None
        keep = (FileCopies(part.path, info.paths, identity=identity) if copies
                else FrameWriter(part.path, lossless, deep, jpeg_quality, chroma_420=unwarped,
                                 workers=helper_threads(opts.threads) if unwarped else 1))
        if unwarped and not copies:
            source = HandOver(source, keep)  # each frame handed to the writer as pass 2 decodes it
        from_files = _warped_from_files(source, opts, bands)  # (then not held: warped from the files decoded again)
        ahead = WarpAhead(source, keep, opts.method,
                          kept=lambda: from_files or isinstance(source, _DecodedOnce) and source.holds_all())
        written = None
        try:
            early = bands == 1 and not opts.refine_flow
            analysis = analyse(source, opts, progress=progress, warn=warn, on_frame=repeats.see if repeats else None,
                               leave_out=repeats.leave_out if repeats else None,
                               on_alignment=ahead.start if early else None,
                               on_measured=ahead.begin if early else None)
            box = analysis.common_area()
            maps = analysis.output_maps(box)
            if copies:  # copied beside pass 2 (no exposure-corrected copy), which warps a frame whole only where
                keep.hand_missing(analysis.maps.used)  # its footprint is most of it (WHOLE_SHARE), else its footprint
            # The maps are known now: written beside pass 2 (which keeps one core busy with the merge
            # and the other with warping and encoding frames only part of the time).
            written = in_background(lambda maps=maps: (write_maps(part.path, maps, info.icc), tap_floor(part.path)),
                                    "postfocus-write")
            # The volume's consumers (the writer, the direction, pass 2's start) hold their own references: it goes
            maps = dataclasses.replace(maps, volume=None)  # when the last is done, before pass 2's peak
            box, image, direction = _both_passes(source, opts, analysis, bands=bands, crop=True, frames=None,
                                                 on_aligned=None if ahead.started or unwarped else keep,
                                                 progress=progress, warped=ahead.frame if ahead.started else None,
                                                 keep_volume=False,
                                                 whole_above=WHOLE_SHARE if copies and not ahead.started else None)
            if unwarped and not copies:
                source.hand_missing(analysis.maps.used)
        finally:
            # Every thread is joined even when one of them failed (before the temporary folder goes).
            try:
                ahead.close()
            finally:
                try:
                    frame_files = keep.close()
                finally:
                    if written is not None:
                        wait([written])
        t, l, b, r = box
        manifest = {
            "kind": info.kind, "paths": [str(p) for p in info.paths], "inputs": identity,
            "options": opts.processing(), "names": source.names,
            "dropped": repeats.dropped if repeats else [],
            "near_to_far": direction.near_to_far,  # measured (focus/direction.py), near to far when unsure
            "direction": direction.as_dict(),
            "reference_size": list(analysis.size), "crop": [t, l, b, r], "reference": analysis.reference,
            "map_place": [list(p) for p in maps.place],  # (the maps' cut, maps.py: pass 2's upscale grid)
            "blur_slope": analysis.maps.blur_slope,  # (measured by pass 2 on the uncut maps; None: not measured)
            "alignment": [a.as_dict() for a in analysis.alignment],
            "frame_files": frame_files,
            **({UNWARPED_KEY: True} if unwarped else {}),
            "bit_depth": info.bit_depth, "grey": info.grey,
            "exif": info.exif.hex() if info.exif else None,
            "fps": info.fps,
            "warnings": messages,
        }
        files, floor = written.result()
        done = write_beside(lambda: write_stack_folder(part.path, image=image, maps=maps, manifest=manifest,
                                                       method=opts.method, deep=deep, icc=info.icc,
                                                       frames={**keep.checksums, **files}, floor=floor,
                                                       threads=helper_threads(opts.threads)),
                            image, bits=16 if deep else 8, on_image=on_image, used=maps.used,
                            reference=analysis.reference, inline=helper_threads(opts.threads) == 1,
                            overwrite=True)  # (the run's own image: no second float image beside it)
        part.install(folder)
    return done
