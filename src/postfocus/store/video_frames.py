"""Aligned frames of a video kept as the video itself: decoded and warped when they are asked for.

A video is already compressed with a codec made for its frames; encoding every aligned frame again
(a 4K frame: a whole-frame bicubic warp and a 28 ms JPEG) only costs time and loses a little more.
So a stack folder made from a video keeps the video (a hard link to the input where the file system
allows it, else a copy: ``source.mp4``) and each frame's alignment (already in the manifest), and
:class:`VideoFrames` warps a frame into the output geometry when it is shown, saved or merged, as
pass 2 would have handed it to the writer (bicubic, exposure-corrected, in the stored type).

A range merge does not need whole warped frames: :func:`merge_from_video` fuses the decoded
frames with the alignment shifted into the output geometry, so each frame is warped only where
it weighs (its footprint), as in pass 2.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from postfocus.align.report import FrameAlignment
from postfocus.io.base import FrameSource, SourceInfo
from postfocus.maps import StackMaps

__all__ = ["VIDEO_KEY", "VideoFrames", "keep_video", "merge_from_video", "output_alignment"]

VIDEO_KEY = "video"
"""Manifest key of a stack folder whose frames are decoded from its kept video: ``{"file": name}``."""


def keep_video(folder: Path, video: str | os.PathLike) -> tuple[str, list[int]]:
    """Put ``video`` into the stack folder being written: (file name, ``[size, crc32]``).

    A hard link where the file system allows it (no bytes copied; the input itself is never
    changed, and a later change to it is seen by the manifest's checksum), else a copy.

    Parameters
    ----------
    folder : pathlib.Path
        The (temporary) stack folder.
    video : str or os.PathLike
        The input video.

    Returns
    -------
    tuple of (str, list of int)

    Raises
    ------
    OSError
        When neither a link nor a copy can be made.
    """
    src = Path(video)
    name = "source" + src.suffix.lower()
    target = folder / name
    try:
        os.link(src, target)
    except OSError:
        shutil.copyfile(src, target)
    crc, size = 0, 0
    with open(target, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
    return name, [size, crc]


def output_alignment(alignment: Sequence[FrameAlignment], crop: Sequence[int]) -> list[FrameAlignment]:
    """The alignment with each matrix taking output pixels (the reference cropped at ``crop``) to the frame.

    Examples
    --------
    >>> a = FrameAlignment(index=0, name="f", matrix=np.eye(3), gain=np.ones(3, np.float32))
    >>> output_alignment([a], (10, 20, 50, 80))[0].matrix[:2, 2].tolist()
    [20.0, 10.0]
    """
    top, left = int(crop[0]), int(crop[1])
    shift = np.array([[1.0, 0.0, left], [0.0, 1.0, top], [0.0, 0.0, 1.0]])
    return [dataclasses.replace(a, matrix=np.asarray(a.matrix, np.float64) @ shift) for a in alignment]


class VideoFrames(FrameSource):
    """The aligned frames of a stack folder that kept its video, addressed by frame number.

    ``read_pixels(i)`` decodes frame ``i`` of the kept video and warps it into the output
    geometry (the whole frame; :func:`merge_from_video` warps only footprints). Reading frames in
    order decodes each once; one decoder is shared, under a lock, by every caller.

    Parameters
    ----------
    path : pathlib.Path
        The kept video.
    alignment : sequence of FrameAlignment
        Per frame number, into the reference geometry.
    reference_size : tuple of int
        (H, W) of the reference geometry.
    crop : sequence of int
        (top, left, bottom, right) of the output geometry in the reference.
    method : str
        The fusion method the folder was made with (the warp covers the same rows as pass 2's).
    info : SourceInfo
        What the stack says of its frames (output size).
    threads : int, optional
        Decoder threads.
    """

    def __init__(self, path: Path, alignment: Sequence[FrameAlignment], reference_size: Sequence[int],
                 crop: Sequence[int], method: str, info: SourceInfo, *, threads: int | None = None):
        self.path, self.alignment, self.info = Path(path), list(alignment), info
        self.reference_size = (int(reference_size[0]), int(reference_size[1]))
        self.crop, self.method, self.threads = tuple(int(c) for c in crop), method, threads
        self._video = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.alignment)

    def decoded(self, index: int) -> np.ndarray:
        """Frame ``index`` of the video as decoded (stored type, source geometry)."""
        from postfocus.io.video import VideoSource  # PyAV only when a frame is asked for

        with self._lock:
            if self._video is None:
                self._video = VideoSource(self.path, threads=self.threads)
            return self._video.read_pixels(index)

    def read_pixels(self, index: int) -> np.ndarray:
        """Aligned frame ``index`` in output geometry, exposure-corrected, in the stored type."""
        from postfocus.pipeline.merge import aligned_region, apply_gain, warp_whole

        a = self.alignment[index]
        box = self.crop
        grown = aligned_region(box, self.reference_size, self.method)
        aligned = warp_whole(self.decoded(index), a.matrix, self.reference_size, grown)
        oy, ox = box[0] - grown[0], box[1] - grown[1]
        aligned = aligned[oy:oy + box[2] - box[0], ox:ox + box[3] - box[1]]
        return np.ascontiguousarray(apply_gain(aligned, np.asarray(a.gain, np.float32)))

    def read(self, index: int) -> np.ndarray:
        from postfocus.io.images import to_float

        return to_float(self.read_pixels(index))

    def close(self) -> None:
        """Release the decoder."""
        with self._lock:
            if self._video is not None:
                self._video.close()
                self._video = None


class _Decoded(FrameSource):
    """The kept video's frames as decoded (for :func:`merge_from_video`), through a :class:`VideoFrames`."""

    def __init__(self, frames: VideoFrames):
        self.frames = frames
        h, w = frames.reference_size
        self.info = dataclasses.replace(frames.info, height=h, width=w)

    def __len__(self) -> int:
        return len(self.frames)

    def read_pixels(self, index: int) -> np.ndarray:
        return self.frames.decoded(index)

    def read(self, index: int) -> np.ndarray:
        from postfocus.io.images import to_float

        return to_float(self.read_pixels(index))


def merge_from_video(frames: VideoFrames, maps: StackMaps, *, method: str, merge: Sequence[int] | None,
                     bands: int, progress, threads: int | None) -> np.ndarray:
    """Fuse the kept video's frames into the output geometry, each warped only where it weighs.

    Parameters
    ----------
    frames : VideoFrames
        The stack folder's frames.
    maps : StackMaps
        The folder's maps (output geometry).
    method, merge, bands, progress, threads
        As for :func:`~postfocus.pipeline.merge.fuse` (``merge`` is its ``frames``).

    Returns
    -------
    numpy.ndarray
        float32 (h, w, 3).
    """
    from postfocus.pipeline.merge import fuse

    return fuse(_Decoded(frames), maps, alignment=output_alignment(frames.alignment, frames.crop), method=method,
                frames=merge, bands=bands, progress=progress, threads=threads)
