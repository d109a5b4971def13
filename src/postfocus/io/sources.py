"""Turn what the user named (a folder, image files, a video) into a FrameSource.

A source is read lazily: headers are checked when it is opened (so a bad file
is reported before any work starts), pixels are decoded one frame at a time.
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
from postfocus.io.images import (
    IMAGE_EXTENSIONS,
    RAW_EXTENSIONS,
    VIDEO_EXTENSIONS,
    ImageHeader,
    read_header,
    read_image,
    to_float,
)

# Frames whose size differs from the first frame's by at most this many pixels
# (and this fraction) are cropped or padded to fit; larger differences are refused.
SIZE_TOLERANCE_PX = 16
SIZE_TOLERANCE_FRACTION = 0.01


@dataclass
class SourceInfo:
    """What is known about a source before its pixels are decoded."""

    kind: str  # "images", "raw" or "video"
    names: list[str]
    height: int
    width: int
    bit_depth: int = 8
    grey: bool = False
    exif: bytes | None = None
    icc: bytes | None = None
    paths: list[Path] = field(default_factory=list)
    fps: float | None = None

    @property
    def size(self) -> tuple[int, int]:
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
        raise NotImplementedError

    def read_pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored: uint8 or uint16 RGB where the source holds integers, else float32.

        The same picture as :meth:`read` (``to_float(read_pixels(i)) == read(i)``),
        a quarter of the memory for 8-bit sources and cheaper to resample;
        the streaming passes resample these and convert only what they keep.
        """
        return self.read(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read(i)

    @property
    def names(self) -> list[str]:
        return self.info.names

    def identity(self) -> list[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every input file, to tell when a cache is stale."""
        out = []
        for p in self.info.paths:
            st = os.stat(p)
            out.append((str(Path(p).resolve()), st.st_size, st.st_mtime_ns))
        return out


def fit_size(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop or edge-pad ``frame`` to ``height`` x ``width``.

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


class ImageFilesSource(FrameSource):
    """Frames stored as still image files (JPEG, PNG, TIFF)."""

    def __init__(self, headers: Sequence[ImageHeader]):
        first = headers[0]
        # Metadata of the default reference frame (the middle one): the result takes its
        # geometry, so it carries its capture time and settings, not the first frame's.
        middle = headers[len(headers) // 2]
        h, w = first.size
        self._headers = list(headers)
        self.info = SourceInfo(
            kind="images",
            names=[hd.path.name for hd in headers],
            height=h,
            width=w,
            bit_depth=first.bit_depth,
            grey=all(hd.grey for hd in headers),
            exif=middle.exif,
            icc=middle.icc,
            paths=[hd.path for hd in headers],
        )

    def __len__(self) -> int:
        return len(self._headers)

    def read(self, index: int) -> np.ndarray:
        return to_float(self.read_pixels(index))

    def read_pixels(self, index: int) -> np.ndarray:
        header = self._headers[index]
        frame = read_image(header.path, header, stored=True)
        return fit_size(frame, self.info.height, self.info.width)

    def header(self, index: int) -> ImageHeader:
        return self._headers[index]


class ArraySource(FrameSource):
    """Frames already in memory (float RGB arrays in [0, 1]) as a source.

    Examples
    --------
    >>> src = ArraySource([np.zeros((4, 6, 3), np.float32)] * 2)
    >>> len(src), src.info.size
    (2, (4, 6))
    """

    def __init__(self, frames: Sequence[np.ndarray], names: Sequence[str] | None = None):
        if len(frames) < 2:
            raise InputError("a stack needs at least two frames")
        h, w = frames[0].shape[:2]
        for k, f in enumerate(frames):
            if f.shape[:2] != (h, w) or f.ndim != 3 or f.shape[2] != 3:
                raise InputError(f"frame {k}: shape {f.shape} differs from ({h}, {w}, 3)")
        self.frames = list(frames)
        self.info = SourceInfo("images", list(names or [f"frame{i}" for i in range(len(frames))]), h, w)

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, index: int) -> np.ndarray:
        return np.asarray(self.frames[index], np.float32)

    def identity(self) -> list[tuple[str, int, int]]:
        """Content hash: arrays have no file to date, so their pixels key the cache."""
        import hashlib

        digest = hashlib.sha256()
        for f in self.frames:
            digest.update(np.ascontiguousarray(f, np.float32).tobytes())
        return [(f"array:{digest.hexdigest()}", len(self.frames), 0)]


def natural_key(name: str) -> list:
    """Sort key that puts frame2 before frame10.

    Examples
    --------
    >>> sorted(["f10.jpg", "f2.jpg"], key=natural_key)
    ['f2.jpg', 'f10.jpg']
    """
    # Odd positions are the digit runs; str.isdigit() would also accept "²", which int() refuses.
    return [int(part) if k % 2 else part.lower() for k, part in enumerate(re.split(r"(\d+)", name))]


def _list_folder(folder: Path) -> list[Path]:
    try:
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    frames = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS | RAW_EXTENSIONS]
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    ignored = sorted({p.name for p in files} - {p.name for p in frames})
    if not frames and videos:
        raise InputError(f"{folder}: holds videos but no photos; give the video file itself as input")
    if not frames:
        raise InputError(f"{folder}: no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} and RAW)")
    quiet = {"license", "license.txt", "readme", "readme.md", "readme.txt", "notice", "thumbs.db"}
    shown = [n for n in ignored if n.lower() not in quiet]
    if shown:
        warnings.warn(
            f"{folder}: ignored {len(shown)} file(s) that are not images: {', '.join(shown[:5])}"
            + (" ..." if len(shown) > 5 else ""),
            PostfocusWarning,
            stacklevel=3,
        )
    return sorted(frames, key=lambda p: (natural_key(p.name), p.name))  # name breaks ties (f1 / f01)


def _check_sizes(headers: Sequence[ImageHeader]) -> None:
    h0, w0 = headers[0].size
    odd = []
    for hd in headers[1:]:
        h, w = hd.size
        if (h, w) == (h0, w0):
            continue
        dh, dw = abs(h - h0), abs(w - w0)
        if max(dh, dw) > SIZE_TOLERANCE_PX or dh > SIZE_TOLERANCE_FRACTION * h0 or dw > SIZE_TOLERANCE_FRACTION * w0:
            raise InputError(
                f"{hd.path}: frame size {w}x{h} differs too much from {headers[0].path.name} ({w0}x{h0}); "
                "all frames of a stack must have the same size"
            )
        odd.append(hd.path.name)
    if odd:
        warnings.warn(
            f"{len(odd)} frame(s) differ from {w0}x{h0} by a few pixels and were cropped or padded to fit: "
            + ", ".join(odd[:5]),
            PostfocusWarning,
            stacklevel=3,
        )
    depths = {hd.bit_depth for hd in headers}
    if len(depths) > 1:
        d0 = headers[0].bit_depth
        other = next(hd for hd in headers if hd.bit_depth != d0)
        raise InputError(
            f"{other.path}: is {other.bit_depth}-bit but {headers[0].path.name} is {d0}-bit; "
            "mixed bit depths cannot be stacked together"
        )


def open_source(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> FrameSource:
    """Open a folder, a list of image files, or a video as a frame source.

    Parameters
    ----------
    inputs : a folder of frames, a video file, or image files in focus order.

    Returns
    -------
    FrameSource, with every header already checked.

    Raises
    ------
    InputError naming the first path that cannot be used.

    Examples
    --------
    >>> src = open_source("shared/data/ring")  # doctest: +SKIP
    >>> len(src), src.info.size  # doctest: +SKIP
    (6, (1141, 1521))
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InputError("no input given: name a folder of frames, image files or a video")
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        files = _list_folder(paths[0])
    else:
        for p in paths:
            if p.is_dir():
                raise InputError(f"{p}: is a folder; give either one folder or a list of files")
        files = paths
    if len(files) == 1 and (files[0].suffix.lower() in VIDEO_EXTENSIONS or _looks_like_video(files[0])):
        from postfocus.io.video import VideoSource

        return VideoSource(files[0])
    if any(p.suffix.lower() in RAW_EXTENSIONS for p in files):
        from postfocus.io.raw import open_raw_files

        return open_raw_files(files)
    headers = [read_header(p) for p in files]
    if len(headers) < 2:
        raise InputError(f"{files[0]}: a stack needs at least two frames, got one")
    _check_sizes(headers)
    return ImageFilesSource(headers)


def _looks_like_video(path: Path) -> bool:
    """True when a file without a video suffix carries an MP4/MOV header."""
    if path.suffix.lower() in IMAGE_EXTENSIONS | RAW_EXTENSIONS:
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
