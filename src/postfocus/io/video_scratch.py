"""Decoded video frames kept in an unnamed scratch file, so that a second reading decodes nothing.

Both passes of the pipeline read every frame of a video (pass 1 to align and measure, pass 2 to
fuse), and a long-GOP video (one key frame in 30 or more) cannot be read again from the middle:
each frame would be decoded twice. At 4K, H.264 decoding costs about 48 ms of CPU a frame, while
holding the decoded frames in memory between the passes would take 12.4 MB a frame even as YUV
4:2:0 (373 MB for 30 frames, over the memory budget and not flat in frame count). A
:class:`DecodedScratch` writes each decoded frame's planes, as the decoder made them (before any
colour conversion), to a temporary file that has no name (removed when closed or when the process
ends, however it ends) and reads them back into a frame of the same format: converting that frame
to RGB gives the same pixels to the bit as converting the decoded one. Writing and reading a 4K
frame costs a few milliseconds of system time; the operating system's file cache holds the data
(it is not the process's memory, and the system writes it out to disk when it needs the room). The
scratch is used only on a disk (never on a file system held in memory, such as a tmpfs ``/tmp``,
where it would be memory all the same, only not counted as the process's), when the whole video
fits :data:`SCRATCH_MB` and a quarter of the free disk space, and when the first frame, rebuilt, converts to the same pixels as decoded (8-bit
4:2:0 does; FFmpeg converts 10-bit frames following their chroma siting, which PyAV cannot copy to a
new frame); otherwise, or when a write fails, frames are decoded again as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable

import av
import numpy as np

__all__ = ["FREE_SHARE", "SCRATCH_MB", "DecodedScratch"]

#: The most the scratch file of one video may hold, MB (4K 4:2:0: about 330 frames; 1080p: 1,300).
SCRATCH_MB = 4096
#: The largest share of the scratch folder's free disk space the file may take.
FREE_SHARE = 0.25


@dataclass(frozen=True)
class _Layout:
    """Where one frame's planes are in the file, and what the frame was."""

    offset: int
    format: str
    width: int
    height: int
    line_sizes: tuple[int, ...]
    sizes: tuple[int, ...]
    colorspace: int
    color_range: int


#: File systems whose files live in memory: a scratch file there would only hide memory, not save it.
_MEMORY_FS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs"})


def _in_memory(directory: str) -> bool:
    """Whether ``directory`` is on a file system held in memory (Linux ``/proc/self/mounts``; False elsewhere)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            entries = [line.split()[1:3] for line in mounts if len(line.split()) >= 3]
    except OSError:
        return False
    path = os.path.realpath(directory)
    best, fstype = "", ""
    for point, kind in entries:
        point = point.replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, kind
    return fstype in _MEMORY_FS


def _write_all(fd: int, views: list[memoryview], offset: int) -> None:
    for view in views:
        view = view.cast("B")
        while view.nbytes:
            done = os.pwrite(fd, view, offset)
            if done <= 0:
                raise OSError("short write")
            view, offset = view[done:], offset + done


def _read_all(fd: int, view: memoryview, offset: int) -> None:
    view = view.cast("B")
    while view.nbytes:
        done = os.preadv(fd, [view], offset)
        if done <= 0:
            raise OSError("short read")
        view, offset = view[done:], offset + done


class DecodedScratch:
    """Decoded frames of one video kept in an unnamed temporary file, by frame number.

    Parameters
    ----------
    frames : int
        How many frames the video has (the whole video must fit the limits, or nothing is kept).
    directory : str or os.PathLike, optional
        Where the file is made (default: the system's temporary folder).
    limit_mb : float
        The most the file may hold (default :data:`SCRATCH_MB`).

    Examples
    --------
    >>> scratch = DecodedScratch(30)  # doctest: +SKIP
    >>> scratch.put(0, frame); scratch.get(0).to_ndarray(format="rgb24")  # doctest: +SKIP
    """

    def __init__(self, frames: int, *, directory: str | os.PathLike | None = None, limit_mb: float = SCRATCH_MB):
        self.frames, self.limit_mb = int(frames), float(limit_mb)
        self.directory = str(directory) if directory is not None else tempfile.gettempdir()
        self._file = None
        self._where: dict[int, _Layout] = {}
        self._end = 0
        self._put: set[int] = set()  # frames kept so far (handed back or not)
        self.active = True  # False once it gave up (too large, or a failed write): frames are decoded again

    def __contains__(self, index: int) -> bool:
        return index in self._where

    def __len__(self) -> int:
        return len(self._where)

    @property
    def complete(self) -> bool:
        """Whether every frame of the video is kept and none was handed back yet."""
        return self.active and len(self._where) == self.frames

    def _fits(self, frame_bytes: int) -> bool:
        total = self.frames * frame_bytes
        if _in_memory(self.directory):  # a tmpfs /tmp: the file would be memory, only not the process's
            return False
        try:
            free = shutil.disk_usage(self.directory).free
        except OSError:
            return False
        return total <= self.limit_mb * 2**20 and total <= FREE_SHARE * free

    def put(self, index: int, frame: av.VideoFrame, *,
            convert: Callable[[av.VideoFrame], np.ndarray] | None = None) -> None:
        """Keep decoded ``frame`` as frame ``index`` (once; nothing when the scratch gave up).

        ``convert``: how the reader turns a frame into pixels; the first frame kept is rebuilt and
        converted at once, and nothing is kept unless it gives the same pixels as the decoded frame.
        """
        if not self.active or index in self._put:  # (once: a frame handed back and decoded again is not kept)
            return
        views = [memoryview(p) for p in frame.planes]
        size = sum(v.nbytes for v in views)
        try:
            if self._file is None:
                if not self._fits(size):
                    self.close()
                    return
                self._file = tempfile.TemporaryFile(dir=self.directory)  # no name: gone with its descriptor
            _write_all(self._file.fileno(), views, self._end)
        except OSError:  # a full disk, a folder that cannot be written: decode again instead
            self.close()
            return
        self._where[index] = _Layout(self._end, frame.format.name, frame.width, frame.height,
                                     tuple(p.line_size for p in frame.planes), tuple(v.nbytes for v in views),
                                     int(frame.colorspace), int(frame.color_range))
        self._end += size
        self._put.add(index)
        if len(self._put) == 1 and convert is not None:  # the first frame tells whether a rebuilt frame converts
            rebuilt = self._rebuild(self._where[index])  # to the same pixels (e.g. 10-bit conversions also
            if rebuilt is None or not np.array_equal(convert(rebuilt), convert(frame)):  # follow the
                self.close()  # chroma siting, which a new frame does not carry): if not, nothing is kept

    def get(self, index: int) -> av.VideoFrame | None:
        """Frame ``index`` rebuilt as decoded (same format, planes, colour space and range), or None.

        Each kept frame is handed back once (then read from the video again, if asked for): the file
        goes as soon as every frame of the video was put and handed back.
        """
        layout = self._where.pop(index, None)
        frame = self._rebuild(layout) if layout is not None else None
        if not self._where and len(self._put) == self.frames:
            self.close()  # every frame handed back: the file's room goes back to the system now
        return frame

    def drop(self, index: int) -> None:
        """Frame ``index`` is not wanted again (its reader has it): as :meth:`get`, without reading it."""
        self._where.pop(index, None)
        if not self._where and len(self._put) == self.frames:
            self.close()

    def _rebuild(self, layout: _Layout) -> av.VideoFrame | None:
        if self._file is None:
            return None
        # A new frame each time: one kept for the whole run (12 MB at 4K, from the heap) held the heap's top
        # above what pass 2 freed (peak RSS +50-200 MB over 3 runs; no more CPU without it, measured)
        frame = av.VideoFrame(layout.width, layout.height, layout.format)
        fd, offset = self._file.fileno(), layout.offset
        try:
            for plane, line, size in zip(frame.planes, layout.line_sizes, layout.sizes):
                if plane.line_size == line and plane.buffer_size == size:
                    _read_all(fd, memoryview(plane), offset)
                else:  # the new frame's rows are padded otherwise: copied row by row
                    rows = np.empty(size, np.uint8)
                    _read_all(fd, memoryview(rows), offset)
                    into = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
                    width = min(line, plane.line_size)
                    into[:, :width] = rows.reshape(-1, line)[: into.shape[0], :width]
                offset += size
        except OSError:
            self.close()
            return None
        frame.colorspace, frame.color_range = layout.colorspace, layout.color_range
        return frame

    def close(self) -> None:
        """Drop the file (and what it held); later frames are not kept."""
        self.active = False
        self._where.clear()
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
