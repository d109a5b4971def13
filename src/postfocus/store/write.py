"""Writing a stack folder: aligned frames encoded in a background thread, the maps (as soon as they are
known, beside the merge: :func:`write_maps`), then the all-in-focus image and the manifest.

Every file's size and CRC-32 go into the manifest (``files``), so a reader can
tell a whole folder from one that a crash, a full disk or a stray edit left
damaged (:meth:`~postfocus.store.folder.ProcessedStack.verify`). They are
taken from the bytes as they are written, not read back.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from postfocus._version import __version__
from postfocus.errors import InputError, OutputError
from postfocus.focus.floor import window_floor
from postfocus.io.images import to_float
from postfocus.io.write import to_uint, write_image
from postfocus.maps import StackMaps
from postfocus.numeric import to_float16
from postfocus.store.cache import CacheError
from postfocus.store.folder import FORMAT_VERSION, file_record

__all__ = ["FileCopies", "FrameWriter", "tap_floor", "write_maps", "write_stack_folder"]


class FrameWriter:
    """``writer(index, aligned)`` writes a cached aligned frame in a background thread.

    Encoding (JPEG q97 4:4:4, or for lossless sources a TIFF compressed with
    Zstandard at level 1 after horizontal differencing) overlaps with the merge; at most two frames wait to be written, so memory
    stays flat. :meth:`close` waits for them, raises the first failure, and
    returns ``{index: name}``.

    Parameters
    ----------
    folder : pathlib.Path
        The stack folder being written (``frames/`` must exist).
    lossless : bool
        Lossless TIFF instead of JPEG (at 20 MP: 81 ms a frame against 500 ms for a PNG
        at zlib level 1, and 8 % smaller; read back in 53 ms against 324 ms).
    deep : bool
        16-bit frames.
    jpeg_quality : int
        JPEG quality of the cached frames.
    chroma_420 : bool
        JPEG colour at half resolution (4:2:0; for frames of a video, whose colour has no more),
        else full (4:4:4).
    workers : int
        Threads encoding frames (each frame on one; the same bytes in any order). Two let the frames
        waiting when the merge outruns the writer be encoded on both cores (the 4K sweep's pass 2,
        docs/performance.md, thirteenth session); the frames held stay at most three.
    """

    def __init__(self, folder: Path, lossless: bool, deep: bool, jpeg_quality: int = 97, *, chroma_420: bool = False,
                 workers: int = 1):
        self.folder, self.lossless, self.deep = folder, lossless, deep
        self.jpeg_quality, self.subsampling = jpeg_quality, "420" if chroma_420 else "444"
        self.files: dict[str, str] = {}
        self.checksums: dict[str, list[int]] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="postfocus-write")
        self._pending: list = []

    def __call__(self, index: int, aligned: np.ndarray) -> None:
        stored = np.uint16 if self.deep else np.uint8  # aligned comes in the source's stored type
        pixels = aligned if aligned.dtype == stored else to_uint(to_float(aligned), 16 if self.deep else 8)
        name = f"frames/{index:04d}" + (".tif" if self.lossless else ".jpg")
        self._pending.append(self._pool.submit(self._write, name, pixels))
        self.files[str(index)] = name
        while len(self._pending) > 2:
            self._pending.pop(0).result()

    def _write(self, name: str, pixels: np.ndarray) -> None:
        data = _lossless(pixels) if self.lossless else _jpeg(pixels, self.jpeg_quality, self.subsampling)
        if data is None:
            raise CacheError(f"{self.folder / name}: cannot encode cached frame")
        try:
            (self.folder / name).write_bytes(data)
        except OSError as exc:
            raise CacheError(f"{self.folder.parent}: cannot write the processed stack ({exc.strerror or exc})") from None
        self.checksums[name] = file_record(data)

    def close(self) -> dict[str, str]:
        """Wait for the frames still being written; ``{frame number: file name}`` (checksums in :attr:`checksums`)."""
        try:
            for job in self._pending:
                job.result()
        finally:
            self._pending = []
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self.files


class FileCopies:
    """``copies(index, frame)`` keeps frame ``index`` of a photo stack as its file's bytes, in a background thread.

    The stack folder then keeps its photos unwarped (:mod:`postfocus.store.unwarped`): a plain copy
    of each input file (no decode, no encode, no second loss), read back with the decode pass 2
    used and warped when asked for. ``frame`` is not used (the writer's signature). Each frame is
    copied once; :meth:`hand_missing` copies the ``used`` frames not handed yet, :meth:`close` waits
    for them and returns ``{index: name}`` (checksums in :attr:`checksums`).

    A copy must be the file the stack folder's key names (its size and modification time when the run
    began, ``identity``): a photo rewritten while it was being processed would leave a folder whose copy
    is not what pass 1 measured, found again under the old key once the photo is put back as it was.
    So each file is checked as it is copied (on the descriptor read) and again by :meth:`close` (pass 2
    may read it again after the copy); a changed one is an InputError, and no folder is kept.

    Parameters
    ----------
    folder : pathlib.Path
        The stack folder being written (``frames/`` must exist).
    paths : sequence of pathlib.Path
        The input file of each frame number.
    identity : sequence of tuple, optional
        ``(path, size, mtime_ns)`` of each input file when the run began
        (:meth:`~postfocus.io.base.FrameSource.identity`); None: not checked.
    """

    def __init__(self, folder: Path, paths: Sequence[Path], *, identity: Sequence[Sequence] | None = None):
        self.folder, self.paths = folder, [Path(p) for p in paths]
        self._expected = None if identity is None else [(int(rec[1]), int(rec[2])) for rec in identity]
        self.files: dict[str, str] = {}
        self.checksums: dict[str, list[int]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-write")
        self._pending: list = []

    def __call__(self, index: int, frame: np.ndarray | None = None) -> None:
        if str(index) in self.files:
            return
        name = f"frames/{index:04d}{self.paths[index].suffix.lower()}"
        self.files[str(index)] = name
        self._pending.append(self._pool.submit(self._copy, index, name))

    def hand_missing(self, used: Sequence[int]) -> None:
        """Copy the ``used`` frames not copied yet (in the background)."""
        for i in used:
            self(i)

    def _copy(self, index: int, name: str) -> None:
        try:
            with open(self.paths[index], "rb") as fh:
                data = fh.read()
                self._check(index, os.fstat(fh.fileno()))  # (the file read, even if renamed over since)
        except OSError as exc:  # the input's fault, not the cache folder's (no "choose another --cache" advice)
            raise InputError(f"{self.paths[index]}: cannot read the photo to keep ({exc.strerror or exc})") from None
        try:
            (self.folder / name).write_bytes(data)
        except OSError as exc:
            raise CacheError(f"{self.folder.parent}: cannot write the processed stack ({exc.strerror or exc})") from None
        self.checksums[name] = file_record(data)

    def _check(self, index: int, st: os.stat_result) -> None:
        """InputError if input file ``index`` (``st``: its status) is not the one the run began with."""
        if self._expected is not None and (st.st_size, st.st_mtime_ns) != self._expected[index]:
            raise InputError(f"{self.paths[index]}: the photo changed while it was being processed; run again")

    def close(self) -> dict[str, str]:
        """Wait for the copies; ``{frame number: file name}`` (checksums in :attr:`checksums`).

        InputError if an input file changed since the run began (pass 2 may have read it after its copy).
        """
        FrameWriter.close(self)
        for key in self.files:
            try:
                st = os.stat(self.paths[int(key)])
            except OSError:  # deleted since its copy (checked then): nothing to compare with
                continue
            self._check(int(key), st)
        return self.files


def _jpeg(pixels: np.ndarray, quality: int, subsampling: str) -> bytes | None:
    """An RGB frame as a baseline JPEG file's bytes (libjpeg-turbo's defaults; None if it cannot be encoded).

    imagecodecs' libjpeg-turbo takes the RGB rows as they are; OpenCV's (the fallback) needs them in BGR
    order, a copy of the frame first (~2 ms of a 4K frame's ~24). Both write the same bytes (the same
    encoder, settings and header: ``tests/test_store.py``).
    """
    try:
        from imagecodecs import JPEG8, jpeg8_encode
    except ImportError:  # pragma: no cover - imagecodecs is a dependency
        JPEG8 = None
    if JPEG8 is not None and JPEG8.available:
        return jpeg8_encode(pixels, level=quality, subsampling=subsampling, optimize=False)
    factor = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420 if subsampling == "420" else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor])
    return encoded.tobytes() if ok else None


def _lossless(pixels: np.ndarray) -> bytes:
    """A frame as a TIFF file's bytes: Zstandard level 1 after horizontal differencing, one thread.

    The differencing (TIFF predictor 2) makes neighbouring pixels' small differences what is
    compressed, so a fast level compresses about as well as PNG's filters with zlib, in a sixth
    of the time (``docs/performance.md``, "Writing the processed stack, sixth session").
    """
    import tifffile  # lossless stacks only (not loaded for JPEG stacks)

    out = io.BytesIO()
    tifffile.imwrite(out, pixels, photometric="rgb" if pixels.ndim == 3 else "minisblack", compression="zstd",
                     compressionargs={"level": 1}, predictor=True, maxworkers=1, metadata=None)
    return out.getvalue()


def write_maps(folder: Path, maps: StackMaps, icc: bytes | None) -> dict[str, list[int]]:
    """Write the maps (and the colour profile) of a stack folder; ``{file name: [size, crc32]}``.

    They are known before the merge, so :func:`~postfocus.pipeline.run.process` writes them
    beside it. The focus volume goes to float16 (divided by its maximum) one slice at a time,
    so writing it never holds more than one float32 slice beyond the maps themselves.

    Parameters
    ----------
    folder : pathlib.Path
        The folder being written.
    maps : StackMaps
        In output geometry.
    icc : bytes or None
        Colour profile of the inputs.

    Raises
    ------
    CacheError
        When the folder cannot take the files (no space, no permission).
    """
    try:
        return _write_maps(folder, maps, icc)
    except OSError as exc:
        raise CacheError(f"{folder.parent}: cannot write the processed stack ({exc.strerror or exc})") from None


def tap_floor(folder: Path) -> float:
    """The noise floor of a tap's window (:func:`~postfocus.focus.floor.window_floor`), measured on the
    focus volume's float16 slices as kept (read back from ``volume.npy``, which :func:`write_maps` wrote).

    :func:`~postfocus.pipeline.run.process` measures it beside pass 2, on the thread that wrote the maps,
    instead of after the fusion (~40 ms of CPU at 4K taken off the end of the run).
    """
    return window_floor(np.load(folder / "volume.npy", mmap_mode="r"))


def write_stack_folder(folder: Path, *, image: np.ndarray, maps: StackMaps, manifest: dict, method: str,
                       deep: bool, icc: bytes | None, frames: dict[str, list[int]],
                       floor: float | None = None, threads: int = 1) -> None:
    """Write the all-in-focus image, the maps (unless :func:`write_maps` did) and the manifest into a
    (temporary) stack folder.

    The aligned frames are already there (:class:`FrameWriter`); the caller
    renames the folder into place.

    Parameters
    ----------
    folder : pathlib.Path
        The folder being written.
    image : numpy.ndarray
        The all-in-focus image of ``method``.
    maps : StackMaps
        In output geometry.
    manifest : dict
        Everything else (see the module docs); ``format`` and ``postfocus`` are added.
    method : str
        Fusion method of ``image``.
    deep : bool
        16-bit source: the image is kept as 16-bit PNG.
    icc : bytes or None
        Colour profile of the inputs.
    frames : dict
        ``{file name: [size, crc32]}`` of the files already written: the aligned frames
        (:attr:`FrameWriter.checksums`) and, if written, the maps (:func:`write_maps`).
    floor : float, optional
        The volume's noise floor for a tap, if measured already (:func:`tap_floor`); None: measured here.
    threads : int
        2: the image's PNG deflated on the calling thread and a helper (other bytes, the same pixels).

    Raises
    ------
    CacheError
        When the folder cannot take the files (no space, no permission).
    """
    try:
        files = dict(frames)
        if "focus_index.npy" not in files:
            files.update(_write_maps(folder, maps, icc))
        _write_image_and_manifest(folder, image=image, maps=maps, manifest=manifest, method=method, deep=deep,
                                  files=files, floor=tap_floor(folder) if floor is None else floor, threads=threads)
    except OSError as exc:  # (OutputError is an OSError's message from write_image)
        raise CacheError(f"{folder.parent}: cannot write the processed stack ({exc.strerror or exc})") from None
    except OutputError as exc:
        raise CacheError(f"{folder.parent}: cannot write the processed stack ({exc})") from None


class _Checksummed:
    """A file being written that adds up its size and CRC-32 on the way."""

    def __init__(self, path: Path):
        self._fh = open(path, "wb")
        self.size, self.crc = 0, 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        self.size += view.nbytes
        self.crc = zlib.crc32(view, self.crc)
        return self._fh.write(view)

    def close(self) -> list[int]:
        self._fh.close()
        return [self.size, self.crc]


def _save_npy(folder: Path, name: str, descr: np.dtype, shape: tuple[int, ...], parts: Iterable[np.ndarray],
              files: dict[str, list[int]]) -> None:
    """An ``.npy`` file of ``shape`` written from C-ordered ``parts`` (the bytes ``np.save`` writes)."""
    out = _Checksummed(folder / name)
    try:
        np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(np.dtype(descr)),
                                                   "fortran_order": False, "shape": tuple(shape)})
        for part in parts:
            out.write(np.ascontiguousarray(part, descr).data)
    finally:
        files[name] = out.close()


def _write_maps(folder: Path, maps: StackMaps, icc: bytes | None) -> dict[str, list[int]]:
    files: dict[str, list[int]] = {}
    for name, values in (("focus_index.npy", maps.focus_index), ("confidence.npy", maps.confidence),
                         ("motion.npy", maps.motion)):
        if values is not None:
            _save_npy(folder, name, np.float32, values.shape, [values], files)
    volume = maps.volume
    top = max(float(volume.max()), 1e-12) if volume.size else 1e-12
    _save_npy(folder, "volume.npy", np.float16, volume.shape, (to_float16(v / top) for v in volume), files)
    if icc:
        (folder / "profile.icc").write_bytes(icc)
        files["profile.icc"] = file_record(icc)
    return files


def _write_image_and_manifest(folder: Path, *, image: np.ndarray, maps: StackMaps, manifest: dict, method: str,
                              deep: bool, files: dict[str, list[int]], floor: float, threads: int) -> None:
    write_image(folder / f"all_in_focus_{method}.png", image, bit_depth=16 if deep else 8, png_level=1,
                png_threads=threads)
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name not in files:  # not the lock file
            files[path.name] = file_record(path.read_bytes())
    data = {"format": FORMAT_VERSION, "postfocus": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **manifest, "tap_floor": floor, "used": list(maps.used), "size": list(maps.size), "motion_share": maps.motion_share,
            "files": dict(sorted(files.items(), key=lambda kv: _file_order(kv[0]))),
            "written_ns": time.time_ns()}  # every file is older (for verify's "changed", whatever touches it later)
    (folder / "manifest.json").write_text(json.dumps(data, indent=1))


def _file_order(name: str) -> tuple[int, str]:
    """The order of the manifest's files as before: the aligned frames first, then the folder's files by name."""
    return (0 if name.startswith("frames/") else 1, name)
