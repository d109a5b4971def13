"""A processed stack: the work of the first run, kept for every later tap.

The first command on an input aligns and analyses it once and saves a *stack
folder*: aligned frames cropped to the output geometry, the focus-index map,
its confidence, the focus volume and a manifest. Taps, range merges, colour
pop, depth and aperture then read that folder instead of aligning again.

Layout of a stack folder (format version :data:`FORMAT_VERSION`)::

    manifest.json        inputs (path, size, mtime), options, alignment report,
                         output geometry, frames kept/dropped, focus direction
    focus_index.npy      float32 (h, w) frame number per pixel, analysis size
    confidence.npy       float32 (h, w) in [0, 1]
    volume.npy           float16 (N_used, h, w) focus measure per used frame
    motion.npy           float32 (h, w) motion mask in [0, 1] (moving subjects; see
                         postfocus.motion); absent when made with motion="off"
    frames/0003.jpg      aligned frame 3, output geometry (16-bit PNG for deep inputs)
    all_in_focus_<method>.png

Stack folders live in the cache folder (``$POSTFOCUS_CACHE``, else
``$XDG_CACHE_HOME/postfocus``, else ``~/.cache/postfocus``) under a key made
from the inputs' paths, sizes and modification times and the options that
change alignment; a changed input gets a new key, so a stale stack is never
used. ``--cache DIR`` chooses another cache folder.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from postfocus._version import __version__
from postfocus.align import FrameAlignment
from postfocus.errors import InputError, PostfocusError
from postfocus.focusmap import check_prefer
from postfocus.io.base import FrameSource, SourceInfo
from postfocus.io.images import read_image, to_float
from postfocus.io.write import to_uint, write_image
from postfocus.motion import check_mode
from postfocus.pipeline import (
    DEFAULT_METHOD,
    Analysis,
    Progress,
    analyse,
    collect_warnings,
    fuse,
    open_quietly,
    plan_bands,
)

FORMAT_VERSION = 1


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds stack folders."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("POSTFOCUS_CACHE"):
        return Path(os.environ["POSTFOCUS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "postfocus"


def stack_key(source: FrameSource, options: dict) -> str:
    """Key of a source's stack folder: changes when an input or an option changes."""
    blob = json.dumps({"format": FORMAT_VERSION, "inputs": source.identity(), "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class CachedFramesSource(FrameSource):
    """The aligned frames of a processed stack, already in output geometry."""

    def __init__(self, stack: "ProcessedStack"):
        self.stack = stack
        h, w = stack.size
        info = stack.info
        self.info = SourceInfo(  # RAW stacks merge in linear light
            kind="processed", linear=stack.manifest.get("kind") == "raw",
            names=[stack.names[i] for i in stack.used], height=h, width=w,
            bit_depth=info.bit_depth, grey=info.grey, exif=info.exif, icc=info.icc, paths=info.paths,
        )

    def __len__(self) -> int:
        return len(self.stack.used)

    def read(self, index: int) -> np.ndarray:
        return self.stack.read_frame(self.stack.used[index])

    def read_pixels(self, index: int) -> np.ndarray:
        return read_image(self.stack.frame_path(self.stack.used[index]), stored=True)


@dataclass
class ProcessedStack:
    """A stack folder opened for reading. Arrays load lazily (memory-mapped)."""

    folder: Path
    manifest: dict

    @classmethod
    def open(cls, folder: str | os.PathLike) -> "ProcessedStack":
        folder = Path(folder)
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{folder}: not a postfocus stack folder ({exc})") from None
        if manifest.get("format") != FORMAT_VERSION:
            raise InputError(f"{folder}: stack folder format {manifest.get('format')} is not {FORMAT_VERSION}")
        return cls(folder, manifest)

    # Geometry -----------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every output (the cropped reference geometry)."""
        return tuple(self.manifest["size"])  # type: ignore[return-value]

    @property
    def names(self) -> list[str]:
        return self.manifest["names"]

    @property
    def used(self) -> list[int]:
        return self.manifest["used"]

    @property
    def reference(self) -> int:
        return self.manifest["reference"]

    @property
    def near_to_far(self) -> bool:
        """True when frame 0 is focused nearest (the usual order)."""
        return self.manifest.get("near_to_far", True)

    @cached_property
    def info(self) -> SourceInfo:
        m = self.manifest
        exif = bytes.fromhex(m["exif"]) if m.get("exif") else None
        icc = (self.folder / "profile.icc").read_bytes() if (self.folder / "profile.icc").exists() else None
        h, w = self.size
        return SourceInfo(kind=m["kind"], names=m["names"], height=h, width=w, bit_depth=m["bit_depth"],
                          grey=m["grey"], exif=exif, icc=icc, paths=[Path(p) for p in m["paths"]])

    @cached_property
    def focus_index(self) -> np.ndarray:
        return np.load(self.folder / "focus_index.npy", mmap_mode="r")

    @cached_property
    def confidence(self) -> np.ndarray:
        return np.load(self.folder / "confidence.npy", mmap_mode="r")

    @cached_property
    def volume(self) -> np.ndarray:
        """float16 (len(used), h, w) focus measure of each used frame."""
        return np.load(self.folder / "volume.npy", mmap_mode="r")

    @cached_property
    def motion(self) -> np.ndarray | None:
        """float32 (h, w) motion mask in [0, 1] at focus-map size, or None (made with motion="off")."""
        path = self.folder / "motion.npy"
        return np.load(path, mmap_mode="r") if path.exists() else None

    @property
    def motion_share(self) -> float:
        """Fraction of the image whose content moved during the sweep."""
        return float(self.manifest.get("motion_share", 0.0))

    @property
    def alignment(self) -> list[dict]:
        return self.manifest["alignment"]

    def to_map(self, x: float, y: float) -> tuple[float, float]:
        """Output pixel coordinates -> focus-map coordinates."""
        h, w = self.size
        mh, mw = self.focus_index.shape
        return x * mw / w, y * mh / h

    # Frames -------------------------------------------------------------
    def frame_path(self, index: int) -> Path:
        try:
            return self.folder / self.manifest["frame_files"][str(index)]
        except KeyError:
            raise InputError(f"frame {index} is not in this stack (frames kept: {self.used})") from None

    def read_frame(self, index: int) -> np.ndarray:
        """Aligned frame ``index`` in output geometry, float32 RGB."""
        return read_image(self.frame_path(index))

    def frames_source(self) -> CachedFramesSource:
        return CachedFramesSource(self)

    def all_in_focus_path(self, method: str = DEFAULT_METHOD) -> Path:
        return self.folder / f"all_in_focus_{method}.png"

    def all_in_focus(self, method: str = DEFAULT_METHOD, progress: Progress | None = None,
                     memory_mb: float | None = None) -> np.ndarray:
        """The all-in-focus image (made from the cached frames if this method has not run yet)."""
        path = self.all_in_focus_path(method)
        if not path.exists():
            image = merge(self, method=method, memory_mb=memory_mb, progress=progress)
            write_image(path, image, bit_depth=16 if self.info.bit_depth > 8 else 8, png_level=1)
            return image
        return read_image(path)

    def analysis(self) -> Analysis:
        """An :class:`Analysis` over the cached, already aligned frames (no re-alignment)."""
        n = len(self.names)
        report = [FrameAlignment(i, self.names[i], used=i in self.used, method="cached") for i in range(n)]
        mh, mw = self.focus_index.shape
        volume = np.zeros((n, mh, mw), np.float32)
        for k, i in enumerate(self.used):
            volume[i] = self.volume[k]
        return Analysis(
            alignment=report, reference=self.reference, used=list(self.used), volume=volume,
            guide=np.zeros((0,), np.float32), scale=mw / self.size[1],
            focus_index=np.asarray(self.focus_index, np.float32), confidence=np.asarray(self.confidence, np.float32),
            size=self.size, motion=None if self.motion is None else np.asarray(self.motion, np.float32),
            motion_share=self.motion_share,
        )

    def describe(self) -> dict:
        m = self.manifest
        return {
            "folder": str(self.folder),
            "frames": len(m["names"]),
            "used": len(m["used"]),
            "dropped": m.get("dropped", []),
            "size": m["size"],
            "reference": m["reference"],
            "near_to_far": self.near_to_far,
            "motion_share": self.motion_share,
            "methods_cached": sorted(p.stem.replace("all_in_focus_", "") for p in self.folder.glob("all_in_focus_*.png")),
            "created": m.get("created"),
        }


def merge(
    stack: ProcessedStack,
    *,
    method: str = DEFAULT_METHOD,
    frames: Sequence[int] | None = None,
    memory_mb: float | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Fuse cached aligned frames (all used, or ``frames``) without re-aligning.

    ``memory_mb``: fuse in bands of rows to stay under it (see :func:`postfocus.stack`).

    Returns float32 (H, W, 3) in output geometry.
    """
    source = _FrameNumberSource(stack)
    if frames is not None:
        frames = [i for i in frames if i in stack.used]
        if not frames:
            raise PostfocusError(f"none of those frames is in this stack (frames kept: {stack.used})")
    bands = plan_bands(stack.size, len(stack.used), method, memory_mb, collect_warnings([]))
    analysis = stack.analysis()
    return fuse(source, analysis, method=method, frames=frames, bands=bands, progress=progress)


class _FrameNumberSource(FrameSource):
    """Cached frames addressed by their original frame numbers."""

    def __init__(self, stack: ProcessedStack):
        self.stack = stack
        self.info = stack.frames_source().info

    def __len__(self) -> int:
        return len(self.stack.names)

    def read(self, index: int) -> np.ndarray:
        return self.stack.read_frame(index)

    def read_pixels(self, index: int) -> np.ndarray:
        return read_image(self.stack.frame_path(index), stored=True)


class FrameWriter:
    """``writer(index, aligned)`` writes a cached aligned frame in a background thread.

    Encoding (JPEG q97 4:4:4, or PNG at zlib level 1 for lossless sources)
    overlaps with the merge; at most two frames wait to be written. :meth:`close`
    waits for them, raises the first failure, and returns ``{index: name}``.
    """

    def __init__(self, folder: Path, lossless: bool, deep: bool, jpeg_quality: int = 97):
        from concurrent.futures import ThreadPoolExecutor

        self.folder, self.lossless, self.deep = folder, lossless, deep
        if lossless:
            self.params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        else:
            self.params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality,
                           cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        self.files: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-write")
        self._pending: list = []

    def __call__(self, index: int, aligned: np.ndarray) -> None:
        stored = np.uint16 if self.deep else np.uint8  # aligned comes in the source's stored type
        pixels = aligned if aligned.dtype == stored else to_uint(to_float(aligned), 16 if self.deep else 8)
        name = f"frames/{index:04d}" + (".png" if self.lossless else ".jpg")
        self._pending.append(self._pool.submit(self._write, name, pixels))
        self.files[str(index)] = name
        while len(self._pending) > 2:
            self._pending.pop(0).result()

    def _write(self, name: str, pixels: np.ndarray) -> None:
        if not cv2.imwrite(str(self.folder / name), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), self.params):
            raise PostfocusError(f"{self.folder / name}: cannot write cached frame")

    def close(self) -> dict[str, str]:
        try:
            for job in self._pending:
                job.result()
        finally:
            self._pending = []
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self.files


class RepeatedFrames:
    """Spot frames that repeat the previous one (the lens held still), during pass 1.

    Videos only: the recording order is taken as near to far (cameras sweep
    from the nearest subject outwards); defocus alone cannot tell near from
    far, so the order is not guessed from the pictures.
    """

    def __init__(self) -> None:
        self.dropped: list[int] = []
        self._last = None

    def see(self, index: int, frame: np.ndarray) -> None:
        from postfocus.sweep import REPEAT_FOCUS, REPEAT_MAD, frame_difference, summarize

        summary = summarize(frame)
        if self._last is not None:
            mad, change = frame_difference(self._last, summary)
            if mad < REPEAT_MAD and change < REPEAT_FOCUS:
                self.dropped.append(index)
                return
        self._last = summary

    def leave_out(self) -> dict[int, str]:
        return {i: "repeats the frame before it (the lens held still)" for i in self.dropped}


def process(
    inputs: str | os.PathLike | Sequence[str | os.PathLike] | FrameSource,
    *,
    method: str = DEFAULT_METHOD,
    align: str = "similarity",
    reference: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    refresh: bool = False,
    jpeg_quality: int = 97,
    motion: str = "auto",
    refine_flow: bool = False,
    prefer: str = "none",
    memory_mb: float | None = None,
    progress: Progress | None = None,
) -> ProcessedStack:
    """Align and analyse a stack once and keep the work in a stack folder.

    Parameters
    ----------
    inputs : folder, image files, video, or FrameSource.
    method : fusion made for the cached all-in-focus image.
    align, reference : as for :func:`postfocus.stack`.
    cache_dir : where stack folders live (see :func:`cache_root`).
    refresh : redo the work even if a valid stack folder exists.
    motion : "auto" finds moving subjects and keeps their mask (``motion.npy``);
        "off" treats the scene as still.
    refine_flow : register frames densely as well (local parallax; see
        :func:`postfocus.pipeline.analyse`); the cached frames keep it.
    memory_mb : fuse in bands of rows to stay under it (see :func:`postfocus.stack`).
    prefer : "none", "front" or "back": which of two clear focus peaks a pixel
        takes (see :func:`postfocus.stack`); part of the stack folder's key.

    Returns
    -------
    ProcessedStack (reused when the inputs and options are unchanged).

    Examples
    --------
    >>> ps = process("sweep.mp4")  # doctest: +SKIP
    >>> ps.size  # doctest: +SKIP
    (2100, 3780)
    """
    messages: list[str] = []
    warn = collect_warnings(messages)
    source = open_quietly(inputs, warn)
    check_mode(motion)
    options = {"align": align, "reference": reference}
    if motion != "auto":  # the default keeps the keys of existing stack folders
        options["motion"] = motion
    if refine_flow:
        options["refine_flow"] = True
    if check_prefer(prefer) != "none":  # the default keeps the keys of existing stack folders
        options["prefer"] = prefer
    bands = plan_bands(source.info.size, len(source), method, memory_mb, warn)
    root = cache_root(cache_dir)
    folder = root / stack_key(source, options)
    # A folder from before motion detection has no motion.npy: redo it.
    stale = motion == "auto" and not (folder / "motion.npy").exists()
    if not refresh and not stale and (folder / "manifest.json").exists():
        try:
            ps = ProcessedStack.open(folder)
            if not ps.all_in_focus_path(method).exists():
                ps.all_in_focus(method, progress, memory_mb)
            return ps
        except (InputError, OSError, ValueError):
            pass  # damaged: redo below
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PostfocusError(f"{root}: cannot create cache folder ({exc.strerror}); use --cache DIR") from None
    view, near_to_far = source, True  # recording order is near to far (see RepeatedFrames)
    repeats = RepeatedFrames() if source.info.kind == "video" else None
    analysis = analyse(view, reference=reference, align=align, motion=motion, refine_flow=refine_flow,
                       prefer=prefer, progress=progress, warn=warn,
                       on_frame=repeats.see if repeats else None, leave_out=repeats.leave_out if repeats else None)
    dropped = repeats.dropped if repeats else []
    t, l, b, r = analysis.common_area()
    s = analysis.scale
    mt, ml = int(round(t * s)), int(round(l * s))
    mb, mr = max(mt + 1, int(round(b * s))), max(ml + 1, int(round(r * s)))
    deep = source.info.bit_depth > 8
    # Lossless sources (PNG, TIFF, RAW) keep lossless cached frames; JPEG and video sources are
    # already compressed, so a JPEG at quality 97 with full colour resolution loses nothing visible.
    lossless = deep or source.info.kind == "raw" or any(
        Path(p).suffix.lower() in (".png", ".tif", ".tiff") for p in source.info.paths
    )
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
    try:
        (tmp / "frames").mkdir()
        keep = FrameWriter(tmp, lossless, deep, jpeg_quality)
        try:
            image = fuse(view, analysis, method=method, region=(t, l, b, r), bands=bands, on_aligned=keep,
                         progress=progress)
        finally:
            frame_files = keep.close()
        write_image(tmp / f"all_in_focus_{method}.png", image, bit_depth=16 if deep else 8, png_level=1)
        np.save(tmp / "focus_index.npy", np.ascontiguousarray(analysis.focus_index[mt:mb, ml:mr]))
        np.save(tmp / "confidence.npy", np.ascontiguousarray(analysis.confidence[mt:mb, ml:mr]))
        vol = analysis.volume[analysis.used][:, mt:mb, ml:mr]
        np.save(tmp / "volume.npy", (vol / max(float(vol.max()), 1e-12)).astype(np.float16))
        if analysis.motion is not None:
            np.save(tmp / "motion.npy", np.ascontiguousarray(analysis.motion[mt:mb, ml:mr], np.float32))
        if view.info.icc:
            (tmp / "profile.icc").write_bytes(view.info.icc)
        manifest = {
            "format": FORMAT_VERSION,
            "postfocus": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "kind": view.info.kind,
            "paths": [str(p) for p in view.info.paths],
            "inputs": source.identity(),
            "options": options,
            "names": view.names,
            "source_frames": getattr(view, "indices", list(range(len(view)))),
            "dropped": dropped,
            "near_to_far": near_to_far,
            "size": [b - t, r - l],
            "reference_size": list(analysis.size),
            "crop": [t, l, b, r],
            "reference": analysis.reference,
            "used": analysis.used,
            "alignment": [a.as_dict() for a in analysis.alignment],
            "frame_files": frame_files,
            "bit_depth": view.info.bit_depth,
            "grey": view.info.grey,
            "exif": view.info.exif.hex() if view.info.exif else None,
            "fps": view.info.fps,
            "motion_share": analysis.motion_share,
            "warnings": messages,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ProcessedStack.open(folder)
