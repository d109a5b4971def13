"""A stack folder opened for reading: :class:`ProcessedStack`, its aligned frames, range merges.

The folder's layout and format version are described in :mod:`postfocus.store`.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from postfocus.align.report import FrameAlignment
from postfocus.errors import InputError, OptionError, OutputError, PostfocusError, PostfocusWarning, frame_runs
from postfocus.io.base import FrameSource, SourceInfo
from postfocus.io.encoding import Compression, jpeg_with_metadata
from postfocus.io.images import read_header, read_image, to_float
from postfocus.io.metadata import output_exif, srgb_icc_profile
from postfocus.io.write import atomic_write_bytes, atomic_write_json, check_output_path, to_uint, write_image
from postfocus.maps import MapPlace, MapsView, StackMaps, known_slope
from postfocus.options import DEFAULT_METHOD, StackOptions, check_memory_mb, check_threads
from postfocus.pipeline.analyse import Progress
from postfocus.pipeline.merge import fuse, plan_bands
from postfocus.pipeline.plan import pick_frames
from postfocus.result import save_image
from postfocus.store.records import (DamagedStackError, check_fields, file_record, mismatch, read_manifest,
                                     read_recorded, verify_files, written_since)
from postfocus.store.unwarped import UNWARPED_KEY, UnwarpedFrames, decoded_reader, merge_unwarped

__all__ = ["FORMAT_VERSION", "CachedFrames", "DamagedStackError", "ProcessedStack", "file_record", "merge"]

FORMAT_VERSION = 8
"""Version of the stack folder layout; 2: maps in output geometry, key from StackOptions, checksums;
3: motion masks from the displacement-aware detector (slow movers), retouching edits beside the stack;
4: lossless aligned frames as Zstandard-compressed TIFF (``frames/0003.tif``) instead of PNG;
5: the sweep's direction measured (``near_to_far`` and its evidence, ``direction``), not assumed near to far;
6: a video's frames are kept as decoded (JPEG, the video's 4:2:0 colour), not warped, and each is
warped when asked for (:mod:`postfocus.store.unwarped`);
7: a photo stack's frames (JPEG, PNG, TIFF) are kept as copies of the input files, unwarped too;
8: the focus volume's noise floor for a tap's window (``tap_floor``, :mod:`postfocus.focus.floor`)."""

#: Versions :meth:`ProcessedStack.open` reads: format 7 lacks only the tap's noise floor (:attr:`tap_floor` measures
#: it), 6 also keeps a photo stack's frames aligned, 5 also never keeps unwarped frames, 4 also has no measured
#: direction (frame 0 the nearest, as the default order states), so one opened by its path (a web job's) loads.
READABLE_FORMATS = (4, 5, 6, 7, FORMAT_VERSION)

@dataclass
class ProcessedStack(MapsView):
    """A stack folder opened for reading. Arrays load lazily (memory-mapped).

    Attributes
    ----------
    folder : pathlib.Path
    manifest : dict
    """

    folder: Path
    manifest: dict
    # All-in-focus images just written by process(), each handed out once instead of read back.
    _written: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, folder: str | os.PathLike) -> "ProcessedStack":
        """Open a stack folder; InputError if it is not one of this format version, DamagedStackError if its manifest is unreadable."""
        if not isinstance(folder, (str, os.PathLike)):  # (None was a TypeError from pathlib)
            raise InputError(f"folder={folder!r:.60}: not a postfocus stack folder (give its path)")
        folder = Path(folder)
        data = read_manifest(folder)  # (a FIFO under its name hung every run, /dev/zero was read whole: review20)
        try:
            manifest = json.loads(data)  # (bytes: UTF-8 with or without BOM; a bad byte is a ValueError too)
        except ValueError as exc:  # a manifest there but cut short or garbled: a damaged folder, made again
            raise DamagedStackError(f"{folder}: manifest.json cannot be read ({exc})") from None
        except RecursionError:  # garbled into thousands of nested brackets
            raise DamagedStackError(f"{folder}: manifest.json cannot be read (it nests too deep)") from None
        if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
            version = manifest.get("format") if isinstance(manifest, dict) else None
            raise InputError(f"{folder}: stack folder format {version} is not {FORMAT_VERSION}")
        check_fields(folder, manifest)
        return cls(folder, manifest)

    # What it was made from -----------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every output (the cropped reference geometry)."""
        return tuple(self.manifest["size"])  # type: ignore[return-value]

    @property
    def names(self) -> list[str]:
        """Names of all input frames (also those left out)."""
        return self.manifest["names"]

    @property
    def used(self) -> list[int]:
        """Frames that could be aligned (and are kept)."""
        return self.manifest["used"]

    @property
    def reference(self) -> int:
        """The reference frame."""
        return self.manifest["reference"]

    @property
    def near_to_far(self) -> bool:
        """True when frame 0 is focused nearest (measured, :mod:`postfocus.focus.direction`; the manifest's
        ``direction`` holds the evidence)."""
        return self.manifest.get("near_to_far", True)

    @cached_property
    def options(self) -> StackOptions:
        """The processing options the folder was made with."""
        return StackOptions(**self.manifest["options"])

    @cached_property
    def alignment(self) -> list[FrameAlignment]:
        """The alignment report, one per input frame."""
        return [FrameAlignment.from_dict(a) for a in self.manifest["alignment"]]

    @cached_property
    def info(self) -> SourceInfo:
        """What the source said about itself, with the output size."""
        m = self.manifest
        exif = bytes.fromhex(m["exif"]) if m.get("exif") else None
        icc = read_recorded(self.folder, m, "profile.icc")  # (only when recorded: a stray one was read: fixes23)
        h, w = self.size
        return SourceInfo(kind=m["kind"], names=m["names"], height=h, width=w, bit_depth=m["bit_depth"],
                          grey=m["grey"], exif=exif, icc=icc, paths=[Path(p) for p in m["paths"]], fps=m.get("fps"))

    # Maps ------------------------------------------------------------------
    @cached_property
    def maps(self) -> StackMaps:
        """Focus index, confidence, focus volume and motion, in output geometry (memory-mapped).

        Raises
        ------
        DamagedStackError
            When a map cannot be read: the folder deleted, or a map cut short or replaced, since the stack was
            opened (``process`` checks a folder before it hands it out; :meth:`open` reads the manifest only).
        """
        motion = self.folder / "motion.npy"
        return StackMaps(
            focus_index=self._map("focus_index.npy"),
            confidence=self._map("confidence.npy"),
            volume=self._map("volume.npy"),
            used=list(self.used),
            size=self.size,
            motion=self._map("motion.npy") if motion.exists() else None,
            motion_share=float(self.manifest.get("motion_share", 0.0)),
            place=MapPlace.from_list(self.manifest.get("map_place")),  # (None before the fifteenth session)
            blur_slope=known_slope(self.manifest.get("blur_slope")),
        )

    def _map(self, name: str) -> np.ndarray:
        """The folder's map ``name``, memory-mapped; DamagedStackError naming it when it cannot be read (it was a
        FileNotFoundError, an IsADirectoryError or "ValueError: mmap length is greater than file size")."""
        try:
            return np.load(self.folder / name, mmap_mode="r")
        except FileNotFoundError:
            problem = "is missing" if self.folder.is_dir() else "is missing (the stack folder is gone)"
        except (OSError, ValueError, EOFError) as exc:
            problem = f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
        raise DamagedStackError(f"{self.folder}: {name} {problem}; process the stack again to make it again")

    @cached_property
    def tap_floor(self) -> float:
        """The focus volume's noise floor for a tap's window (:func:`~postfocus.focus.floor.window_floor`): the
        manifest's (format 8), else measured from the volume once and kept beside it (:func:`.kept.kept_floor`)."""
        from postfocus.store.kept import kept_floor  # (kept reads the cache's lock, which reads this module)
        return kept_floor(self.folder, self.manifest, lambda: self.maps.volume)

    def to_map(self, x: float, y: float) -> tuple[float, float]:
        """Output pixel coordinates -> focus-map coordinates."""
        return self.maps.to_map(x, y)

    # Frames ------------------------------------------------------------------
    @property
    def frames_unwarped(self) -> bool:
        """Whether the frame files hold the frames as decoded, warped when asked for (a video's, a photo stack's)."""
        return bool(self.manifest.get(UNWARPED_KEY))

    @cached_property
    def _unwarped(self) -> UnwarpedFrames:
        m = self.manifest
        return UnwarpedFrames(decoded_reader(self.folder, m["frame_files"], m["reference_size"]), self.alignment, m["reference_size"],
                              m["crop"], self.options.method, self.frames().info)

    def frame_path(self, index: int) -> Path:
        """File of aligned frame ``index`` (a frame number); of a stack that keeps its frames unwarped
        (:attr:`frames_unwarped`), the frame as decoded (:meth:`save_frame` writes the aligned one)."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):  # ("1" found the file, then failed)
            raise InputError(f"frame {index!r}: not a frame number (frames kept: {frame_runs(self.used)})")
        try:
            return self.folder / self.manifest["frame_files"][str(index)]
        except KeyError:
            raise InputError(f"frame {index} is not in this stack (frames kept: {frame_runs(self.used)})") from None

    def read_frame(self, index: int) -> np.ndarray:
        """Aligned frame ``index`` in output geometry, float32 RGB."""
        if self.frames_unwarped:
            return to_float(self.frames().read_pixels(index))
        return read_image(self.frame_path(index))

    def frames(self) -> "CachedFrames":
        """The aligned frames as a source, addressed by frame number."""
        return CachedFrames(self)

    def frame_exif(self, index: int) -> bytes | None:
        """EXIF of frame ``index``: its own file's for photos (its exposure, its time), else the source's.

        A stack that keeps its photos as copies (format 7) reads the copy, the file that was processed;
        an older folder reads the input file, if it is still there."""
        paths = self.info.paths
        if self.info.kind == "images" and len(paths) == len(self.names):
            own = self.frame_path(index) if self.frames_unwarped else Path(paths[index])
            try:
                return read_header(own).exif or self.info.exif
            except (PostfocusError, OSError):
                pass  # moved or changed since: the source's EXIF
        return self.info.exif

    def save_frame(self, index: int, path: str | os.PathLike, *, quality: int = 95, bit_depth: int | None = None,
                   compression: Compression = None, description: str | None = None) -> Path:
        """Write aligned frame ``index`` as a result, with the frame's EXIF and the inputs' colour profile.

        A JPEG written from a JPEG-cached frame is that file with the metadata
        put in, not encoded again (fast, and no second loss; ``quality`` does
        not apply); other formats are encoded from the frame's pixels.

        Parameters
        ----------
        index : int
            Frame number (one of :attr:`used`).
        path : str or os.PathLike
            ``.jpg``, ``.png`` or ``.tif``; never one of the inputs.
        quality, bit_depth, compression
            As for :func:`~postfocus.result.save_image`.
        description : str, optional
            EXIF ImageDescription, e.g. which frame this is.

        Returns
        -------
        pathlib.Path
        """
        check_output_path(path, self.info.paths)
        cached = None if self.frames_unwarped else self.frame_path(index)
        exif = self.frame_exif(index)
        if cached is not None and cached.suffix.lower() == ".jpg" and Path(path).suffix.lower() in (".jpg", ".jpeg"):
            h, w = self.size
            meta = output_exif(exif, description, (h, w))
            data = jpeg_with_metadata(cached.read_bytes(), meta, self.info.icc or srgb_icc_profile())
            return atomic_write_bytes(path, data)
        return save_image(path, self.read_frame(index), dataclasses.replace(self.info, exif=exif), quality=quality,
                          bit_depth=bit_depth, description=description, compression=compression)

    # Results -----------------------------------------------------------------
    def all_in_focus_path(self, method: str = DEFAULT_METHOD) -> Path:
        """Where the all-in-focus image of ``method`` is kept."""
        return self.folder / f"all_in_focus_{method}.png"

    def all_in_focus(self, method: str = DEFAULT_METHOD, progress: Progress | None = None,
                     memory_mb: float | None = None, *, threads: int | None = None) -> np.ndarray:
        """The all-in-focus image (made from the cached frames and kept, if this method has not run yet;
        ``threads`` is the thread budget of that fusion, None: all cores).

        An image the folder has no room for (a full disk, a cache made read-only since) is handed out with a
        warning and not kept: it is merged again next time (it was an OutputError after the merge, and
        ``postfocus stack --method pyramid`` wrote nothing where it carries on without the cache otherwise).
        """
        path = self.all_in_focus_path(method)
        threads, memory_mb = check_threads(threads), check_memory_mb(memory_mb)
        if not path.exists():
            image = self.merge(method=method, memory_mb=memory_mb, progress=progress, threads=threads)
            try:
                write_image(path, image, bit_depth=16 if self.info.bit_depth > 8 else 8, png_level=1)
            except OutputError as exc:
                return self._not_kept(image, method, exc)
            try:  # the new manifest vouches for every file again: none changed since the old one (or in the merge)
                self.verify(checksums="changed")
            except DamagedStackError:
                path.unlink(missing_ok=True)  # (made from a changed frame)
                raise
            files = {**self.manifest.get("files", {}), path.name: file_record(path.read_bytes())}
            manifest = {**self.manifest, "files": files, "written_ns": time.time_ns()}
            try:
                atomic_write_json(self.folder / "manifest.json", manifest)
            except OutputError as exc:  # (an image the manifest does not vouch for is not left to be read)
                path.unlink(missing_ok=True)
                return self._not_kept(image, method, exc)
            self.manifest = manifest
            return image
        written = self._written.pop(method, None)
        return read_image(path) if written is None else to_float(written)

    def _not_kept(self, image: np.ndarray, method: str, exc: OutputError) -> np.ndarray:
        """``image`` of ``method``, with a warning that the folder could not keep it (``exc``)."""
        import warnings

        warnings.warn(f"{exc}; the {method} image is not kept in the processed stack (merged again next time)",
                      PostfocusWarning, stacklevel=3)
        return image

    def written(self, method: str, image: np.ndarray) -> None:
        """The all-in-focus image of ``method`` just written into the folder: the next :meth:`all_in_focus`
        hands it out as the file holds it (rounded to the file's bit depth) instead of reading it back.

        It is held as the file's integers (a quarter or half of the float image; ``image`` may be those
        integers already) and let go by any :meth:`merge`, so a range merge does not run beside it.
        """
        bits = 16 if self.info.bit_depth > 8 else 8
        self._written[method] = image if image.dtype == (np.uint16 if bits == 16 else np.uint8) else to_uint(image, bits)

    def merge(self, *, method: str = DEFAULT_METHOD, frames: Sequence[int] | None = None,
              memory_mb: float | None = None, progress: Progress | None = None,
              threads: int | None = None) -> np.ndarray:
        """Fuse the cached aligned frames (all used, or ``frames``) without re-aligning.

        Parameters
        ----------
        method : str
            Fusion method.
        frames : sequence of int, optional
            Frame numbers to merge, in any order (merged in the stack's order, each once; frames left out as not
            aligned are skipped; a number that is no frame of the stack is refused).
        memory_mb : float, optional
            Fuse in bands of rows to stay under it.
        progress : callable, optional
            ``progress(stage, done, total)``.
        threads : int, optional
            Thread budget of the fusion (1: no helper thread); None: all cores.

        Returns
        -------
        numpy.ndarray
            float32 (H, W, 3) in output geometry.

        Raises
        ------
        OptionError
            For ``frames`` that is not a sequence, a frame number the stack does not have, or when none of them is kept; for ``threads`` or ``memory_mb`` that
            :class:`StackOptions` refuses.
        """
        # one rule for the budgets (threads=0 was taken here, refused by StackOptions; memory_mb="x" a TypeError)
        threads, memory_mb = check_threads(threads), check_memory_mb(memory_mb)
        if progress is not None and not callable(progress):  # (was a TypeError once the merge had begun)
            raise OptionError("progress", progress, "must be a function progress(stage, done, total), or None")
        if frames is not None:
            if not isinstance(frames, Iterable) or isinstance(frames, (str, bytes)):  # (frames=5 was a TypeError)
                raise OptionError("frames", frames, "give a sequence of frame numbers, e.g. range(3, 9)")
            frames = pick_frames(self.used, len(self.names), list(frames))
        self._written.clear()
        bands = plan_bands(self.size, len(self.used), method, memory_mb, lambda message: None)
        if self.frames_unwarped:
            return merge_unwarped(self._unwarped, self.maps, method=method, merge=frames, bands=bands,
                                  progress=progress, threads=threads, near_to_far=self.near_to_far)
        return fuse(self.frames(), self.maps, method=method, frames=frames, bands=bands, progress=progress,
                    threads=threads, near_to_far=self.near_to_far)

    def verify(self, *, checksums: bool | str = True) -> None:
        """Check every file against the manifest: present, of the size written, and (``checksums``) unchanged.

        Parameters
        ----------
        checksums : bool or "changed"
            True: the CRC-32 of every file; False: sizes only (one ``stat`` per file); ``"changed"``: the
            CRC-32 of the files whose status changed since the manifest was written (their ``st_ctime``,
            which copying or touching a file cannot set back, is later than the earlier of the manifest's
            and the time it records): a file overwritten by other bytes of the same size is found at the
            cost of a ``stat`` per file.

        Raises
        ------
        DamagedStackError
            Naming the first file that does not match.
        """
        verify_files(self.folder, self.manifest, checksums=checksums, seen=self.__dict__.setdefault("_crc_matched", {}))

    def changed_since_written(self, name: str) -> bool:
        """Whether the folder's file ``name`` (as the manifest names it) fails :meth:`verify`'s ``"changed"``
        check: missing, of another size, or changed since the manifest was written and of another CRC-32
        (False for a file the manifest does not list)."""
        record, since = self.manifest.get("files", {}).get(name), written_since(self.folder, self.manifest)
        seen = self.__dict__.setdefault("_crc_matched", {})
        return since is None or (record is not None and mismatch(self.folder / name, record, since, crc=True,
                                                                 seen=seen, folder=self.folder) is not None)

    def describe(self) -> dict:
        """A summary for people and JSON (``postfocus info``); ``size`` is ``{"width": W, "height": H}``."""
        m = self.manifest
        return {
            "folder": str(self.folder),
            "frames": len(m["names"]),
            "used": len(m["used"]),
            "dropped": m.get("dropped", []),
            "size": {"width": m["size"][1], "height": m["size"][0]},
            "reference": m["reference"],
            "options": m["options"],
            "near_to_far": self.near_to_far,
            "direction": m.get("direction"),
            "motion_share": self.motion_share,
            "methods_cached": sorted(p.stem.replace("all_in_focus_", "") for p in self.folder.glob("all_in_focus_*.png")),
            "created": m.get("created"),
        }


class CachedFrames(FrameSource):
    """The aligned frames of a processed stack (output geometry), addressed by their frame numbers."""

    def __init__(self, stack: ProcessedStack):
        self.stack = stack
        h, w = stack.size
        info = stack.info
        self.info = SourceInfo(  # RAW stacks merge in linear light
            kind="processed", linear=stack.manifest.get("kind") == "raw",
            names=list(stack.names), height=h, width=w,
            bit_depth=info.bit_depth, grey=info.grey, exif=info.exif, icc=info.icc, paths=info.paths,
        )

    def __len__(self) -> int:
        return len(self.stack.names)

    def read(self, index: int) -> np.ndarray:
        return self.stack.read_frame(index)

    def read_pixels(self, index: int) -> np.ndarray:
        if self.stack.frames_unwarped:
            self.stack.frame_path(index)  # (a frame not kept: the error naming those that are)
            return self.stack._unwarped.read_pixels(index)
        return read_image(self.stack.frame_path(index), stored=True)

def merge(stack: ProcessedStack, *, method: str = DEFAULT_METHOD, frames: Sequence[int] | None = None,
          memory_mb: float | None = None, progress: Progress | None = None, threads: int | None = None) -> np.ndarray:
    """Range merge on a processed stack: :meth:`ProcessedStack.merge` as a function.

    Examples
    --------
    >>> image = merge(process("sweep.mp4"), frames=range(3, 9))  # doctest: +SKIP
    """
    if not isinstance(stack, ProcessedStack):  # (a folder's path was "'str' object has no attribute 'merge'")
        raise OptionError("stack", stack, "not a processed stack; open one with postfocus.process(...) first")
    return stack.merge(method=method, frames=frames, memory_mb=memory_mb, progress=progress, threads=threads)
