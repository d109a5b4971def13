"""What every frame source shares: the source model and the rules about input files.

:class:`FrameSource` and :class:`SourceInfo` are the one model of a stack's
input, whatever it is read from. Beside them: which file names count as frames
(:func:`is_frame_file`, :func:`list_folder`), how frame sizes may differ
(:func:`check_sizes`, :func:`fit_size`), the frame order of names
(:func:`natural_key`) and how an MP4/MOV file is told by its first bytes
(:func:`looks_like_mp4`). This module imports no other ``postfocus.io`` module.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from postfocus.errors import InputError, PostfocusWarning

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIN_FRAME_SIDE",
    "MP4_BOXES",
    "RAW_EXTENSIONS",
    "SIZE_TOLERANCE_FRACTION",
    "SIZE_TOLERANCE_PX",
    "VIDEO_EXTENSIONS",
    "FrameSource",
    "SourceInfo",
    "check_sizes",
    "fit_size",
    "is_frame_file",
    "list_folder",
    "looks_like_mp4",
    "natural_key",
]

MIN_FRAME_SIDE = 16
"""Smallest frame side a stack is made of, in pixels (OpenCV's optical flow needs 12; alignment far more)."""

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff"}
RAW_EXTENSIONS = {".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw", ".nrw"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".mts", ".m2ts"}

# Frames whose size differs from the first frame's by at most this many pixels
# (and this fraction) are cropped or padded to fit; larger differences are refused.
SIZE_TOLERANCE_PX = 16
SIZE_TOLERANCE_FRACTION = 0.01

# ISO-BMFF (MP4, MOV) top-level boxes a file may start with.
MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")

# Files a folder of frames may hold beside them without a warning.
_QUIET_FILES = {"license", "license.txt", "readme", "readme.md", "readme.txt", "notice", "thumbs.db"}


@dataclass
class SourceInfo:
    """What is known about a source before its pixels are decoded.

    ``linear`` is True when the frames are merged in linear light (RAW stacks:
    their values are sRGB-encoded from linear development, so the merge
    decodes them, adds light, and encodes the result once).

    ``camera`` summarises what a video file says about the camera (make, model,
    lens, mode such as "Post Focus", resolution "4K"/"6K", date, location; see
    :mod:`postfocus.io.video_metadata`); None for other sources and videos
    that carry nothing.
    """

    kind: str  # "images", "raw", "video" (or "processed": cached aligned frames)
    names: list[str]
    height: int
    width: int
    bit_depth: int = 8
    grey: bool = False
    exif: bytes | None = None
    icc: bytes | None = None
    paths: list[Path] = field(default_factory=list)
    fps: float | None = None
    linear: bool = False
    camera: dict | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of every frame."""
        return self.height, self.width


class FrameSource:
    """A sequence of frames, decoded on demand.

    Subclasses implement ``__len__`` and ``read``; iterating yields the frames in
    order as float32 RGB arrays in [0, 1], all of size ``info.size``.
    """

    info: SourceInfo

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as float32 RGB in [0, 1], of size ``info.size``.

        Parameters
        ----------
        index : int
            Frame number, 0 to ``len(self) - 1``.

        Returns
        -------
        np.ndarray
            float32 (H, W, 3).
        """
        raise NotImplementedError

    def read_pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored: uint8 or uint16 RGB where the source holds integers, else float32.

        The same picture as :meth:`read` (``to_float(read_pixels(i)) == read(i)``),
        a quarter of the memory for 8-bit sources and cheaper to resample;
        the streaming passes resample these and convert only what they keep.

        Parameters
        ----------
        index : int
            As for :meth:`read`.

        Returns
        -------
        np.ndarray
            (H, W, 3) uint8, uint16 or float32.
        """
        return self.read(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read(i)

    @property
    def names(self) -> list[str]:
        """The frames' names (file names, or ``frame 0000`` ... for a video)."""
        return self.info.names

    def identity(self) -> list[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every input file, to tell when a cache is stale.

        Returns
        -------
        list[tuple[str, int, int]]
            One (resolved path, size in bytes, modification time in ns) per file.
        """
        out = []
        for p in self.info.paths:
            st = os.stat(p)
            out.append((str(Path(p).resolve()), st.st_size, st.st_mtime_ns))
        return out


def fit_size(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop or edge-pad ``frame`` to ``height`` x ``width``.

    Parameters
    ----------
    frame : np.ndarray
        (H, W, C) or (H, W) pixels of any dtype.
    height, width : int
        Size wanted.

    Returns
    -------
    np.ndarray
        ``frame`` itself when it has that size already, else a cropped or padded copy.

    Examples
    --------
    >>> fit_size(np.zeros((10, 12, 3), np.float32), 8, 14).shape
    (8, 14, 3)
    """
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    top = max(0, (h - height) // 2)
    left = max(0, (w - width) // 2)
    frame = frame[top : top + min(h, height), left : left + min(w, width)]
    h, w = frame.shape[:2]
    pad_t = (height - h) // 2
    pad_l = (width - w) // 2
    return cv2.copyMakeBorder(
        frame, pad_t, height - h - pad_t, pad_l, width - w - pad_l, cv2.BORDER_REPLICATE
    )


def natural_key(name: str) -> list:
    """Sort key that puts frame2 before frame10.

    Parameters
    ----------
    name : str
        A file name.

    Returns
    -------
    list
        Lower-cased text parts and integer digit runs, alternating.

    Examples
    --------
    >>> sorted(["f10.jpg", "f2.jpg"], key=natural_key)
    ['f2.jpg', 'f10.jpg']
    """
    # Odd positions are the digit runs; str.isdigit() would also accept "²", which int() refuses.
    return [int(part) if k % 2 else part.lower() for k, part in enumerate(re.split(r"(\d+)", name))]


def is_frame_file(path: Path) -> bool:
    """True for a file name a folder of frames is read from: a photo or RAW suffix, not hidden.

    Only the name is looked at; the file is not opened.

    Parameters
    ----------
    path : Path
        A file in a folder.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_frame_file(Path("IMG_0001.CR2")), is_frame_file(Path(".f1.jpg")), is_frame_file(Path("a.mp4"))
    (True, False, False)
    """
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS | RAW_EXTENSIONS


def list_folder(folder: Path) -> list[Path]:
    """The frame files of a folder, in frame order (natural order of their names).

    Hidden files are skipped; other files that are not frames are ignored with
    a warning (except licence and readme files).

    Parameters
    ----------
    folder : Path
        A folder of frames.

    Returns
    -------
    list[Path]
        The frames, sorted by :func:`natural_key` (the name breaks ties: f1 / f01).

    Raises
    ------
    InputError
        When the folder cannot be listed, holds only videos, or holds no frames.

    Examples
    --------
    >>> list_folder(Path("shared/data/ring"))[:2]  # doctest: +SKIP
    [PosixPath('shared/data/ring/step0.jpg'), PosixPath('shared/data/ring/step1.jpg')]
    """
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        files = [p for p in entries if p.is_file()]
        # Named as a frame but not a file (a FIFO, a socket, a device, a link to nothing): not read (a FIFO's
        # reading would wait for a writer), and said, as the files that are not images are.
        odd = sorted(p.name for p in entries if is_frame_file(p) and not p.is_file() and not p.is_dir())
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    frames = [p for p in files if is_frame_file(p)]
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    ignored = sorted({p.name for p in files} - {p.name for p in frames})
    if not frames and videos:
        raise InputError(f"{folder}: holds videos but no photos; give the video file itself as input")
    not_files = (f"{len(odd)} name(s) of frames that are not files (a FIFO, a device or a link to nothing): "
                 + ", ".join(odd[:5]) + (" ..." if len(odd) > 5 else ""))
    if not frames and odd:
        raise InputError(f"{folder}: no image files found, only {not_files}")
    if not frames:
        raise InputError(f"{folder}: no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} and RAW)")
    if odd:
        warnings.warn(f"{folder}: skipped {not_files}", PostfocusWarning, stacklevel=3)
    shown = [n for n in ignored if n.lower() not in _QUIET_FILES]
    if shown:
        warnings.warn(
            f"{folder}: ignored {len(shown)} file(s) that are not images: {', '.join(shown[:5])}"
            + (" ..." if len(shown) > 5 else ""),
            PostfocusWarning,
            stacklevel=3,
        )
    return sorted(frames, key=lambda p: (natural_key(p.name), p.name))  # name breaks ties (f1 / f01)


def check_sizes(paths: Sequence[Path], sizes: Sequence[tuple[int, int]], bit_depths: Sequence[int] | None = None) -> None:
    """Refuse frames whose size (or bit depth) differs from the first frame's.

    Sizes within :data:`SIZE_TOLERANCE_PX` pixels and :data:`SIZE_TOLERANCE_FRACTION`
    of the first frame's are accepted with a warning (those frames are cropped or
    padded to fit, see :func:`fit_size`).

    Parameters
    ----------
    paths : Sequence[Path]
        The frame files, in order (named in the messages).
    sizes : Sequence[tuple[int, int]]
        ``(height, width)`` of each frame, upright.
    bit_depths : Sequence[int] or None
        Bits per sample of each frame; None when all frames have the same.

    Raises
    ------
    InputError
        Naming the first frame that differs too much, or whose bit depth differs.

    Examples
    --------
    >>> check_sizes([Path("a.png"), Path("b.png")], [(100, 200), (100, 200)], [8, 8])
    """
    h0, w0 = sizes[0]
    odd = []
    for path, (h, w) in zip(paths[1:], sizes[1:]):
        if (h, w) == (h0, w0):
            continue
        dh, dw = abs(h - h0), abs(w - w0)
        if max(dh, dw) > SIZE_TOLERANCE_PX or dh > SIZE_TOLERANCE_FRACTION * h0 or dw > SIZE_TOLERANCE_FRACTION * w0:
            raise InputError(
                f"{path}: frame size {w}x{h} differs too much from {paths[0].name} ({w0}x{h0}); "
                "all frames of a stack must have the same size"
            )
        odd.append(path.name)
    if odd:
        warnings.warn(
            f"{len(odd)} frame(s) differ from {w0}x{h0} by a few pixels and were cropped or padded to fit: "
            + ", ".join(odd[:5]),
            PostfocusWarning,
            stacklevel=3,
        )
    if bit_depths is not None and len(set(bit_depths)) > 1:
        d0 = bit_depths[0]
        other, depth = next((p, d) for p, d in zip(paths, bit_depths) if d != d0)
        raise InputError(
            f"{other}: is {depth}-bit but {paths[0].name} is {d0}-bit; "
            "mixed bit depths cannot be stacked together"
        )


def looks_like_mp4(head: bytes | str | os.PathLike) -> bool:
    """True when bytes (or a file's first bytes) start with an ISO-BMFF box: an MP4 or MOV file.

    Parameters
    ----------
    head : bytes or path-like
        The first bytes of a file (at least 8), or the file itself.

    Returns
    -------
    bool
        True when bytes 4-8 name one of :data:`MP4_BOXES`; False for a file that
        cannot be read.

    Examples
    --------
    >>> looks_like_mp4(b"\\0\\0\\0\\x18ftypmp42"), looks_like_mp4(b"\\xff\\xd8\\xff\\xe0" + bytes(8))
    (True, False)
    """
    if not isinstance(head, (bytes, bytearray)):
        try:
            with open(head, "rb") as fh:
                head = fh.read(12)
        except OSError:
            return False
    return head[4:8] in MP4_BOXES
