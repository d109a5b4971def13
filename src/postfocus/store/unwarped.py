"""A video's frames kept as decoded, not warped: each is warped into the output geometry when asked for.

Keeping a 4K video's aligned frames cost a whole-frame bicubic warp (74 ms of CPU a frame) and a
JPEG of 4:4:4 colour (31 ms) in every run, for frames that only some later requests read. A stack
folder made from a video keeps each frame as it was decoded instead, as a JPEG with the video's own
4:2:0 colour resolution (20 ms to write, 37 ms to read back), beside its alignment (already in the
manifest): :class:`UnwarpedFrames` warps a frame when it is shown, saved or exported, as pass 2
would have handed it to the writer (bicubic over the same rows, exposure-corrected, stored type),
and :func:`merge_unwarped` fuses a range with each frame warped only where it weighs (its
footprint), as pass 2 does. (Keeping the video itself and decoding it again was measured and
dropped: a range merge must decode every frame from the group's key frame, 2.6 times the CPU of
reading JPEGs; ``docs/performance.md``, "The 4K sweep, seventh session".) A photo stack's folder
(format 7) keeps each frame as a copy of its input file the same way, read with the decode pass 2 used
(:func:`decoded_reader`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from postfocus.align.report import FrameAlignment
from postfocus.io.base import FrameSource, SourceInfo
from postfocus.maps import StackMaps

__all__ = ["UNWARPED_KEY", "HandOver", "UnwarpedFrames", "decoded_reader", "merge_unwarped", "output_alignment"]

UNWARPED_KEY = "frames_unwarped"
"""Manifest key (true) of a stack folder whose frame files hold the frames as decoded, not aligned."""


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


class HandOver(FrameSource):
    """A source that hands every frame, as decoded, to ``keep(index, pixels)`` on its second read.

    :func:`~postfocus.pipeline.run.process` reads each frame once in pass 1 and again in pass 2;
    handing frames over in pass 2 puts their encoding where the cores have room (pass 1 keeps both
    busy). Each frame is handed over once.
    """

    def __init__(self, source: FrameSource, keep: Callable[[int, np.ndarray], None]):
        self.source, self.info, self.keep = source, source.info, keep
        self._reads: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.source)

    def read_pixels(self, index: int) -> np.ndarray:
        pixels = self.source.read_pixels(index)
        reads = self._reads[index] = self._reads.get(index, 0) + 1
        if reads == 2:
            self.keep(index, pixels)
        return pixels

    def read(self, index: int) -> np.ndarray:
        return self.source.read(index)

    def identity(self) -> list[tuple[str, int, int]]:
        return self.source.identity()

    def hand_missing(self, used: Sequence[int]) -> None:
        """Hand over the ``used`` frames that were not read twice (none, when pass 2 merged them all)."""
        for i in used:
            if self._reads.get(i, 0) < 2:
                self._reads[i] = 2
                self.keep(i, self.source.read_pixels(i))


class UnwarpedFrames(FrameSource):
    """The aligned frames of a stack folder that kept them unwarped, addressed by frame number.

    Parameters
    ----------
    read_decoded : callable
        ``read_decoded(index)``: frame ``index`` as kept (stored type, source geometry).
    alignment : sequence of FrameAlignment
        Per frame number, into the reference geometry.
    reference_size : tuple of int
        (H, W) of the reference geometry.
    crop : sequence of int
        (top, left, bottom, right) of the output geometry in the reference.
    method : str
        The fusion method the folder was made with (the warp covers the rows pass 2's would).
    info : SourceInfo
        What the stack says of its frames (output size).
    """

    def __init__(self, read_decoded: Callable[[int], np.ndarray], alignment: Sequence[FrameAlignment],
                 reference_size: Sequence[int], crop: Sequence[int], method: str, info: SourceInfo):
        self.read_decoded, self.alignment, self.info = read_decoded, list(alignment), info
        self.reference_size = (int(reference_size[0]), int(reference_size[1]))
        self.crop, self.method = tuple(int(c) for c in crop), method

    def __len__(self) -> int:
        return len(self.alignment)

    def read_pixels(self, index: int) -> np.ndarray:
        """Aligned frame ``index`` in output geometry, exposure-corrected, in the stored type."""
        from postfocus.pipeline.merge import aligned_region, apply_gain, warp_whole

        a = self.alignment[index]
        box = self.crop
        grown = aligned_region(box, self.reference_size, self.method)
        aligned = warp_whole(self.read_decoded(index), a.matrix, self.reference_size, grown)
        oy, ox = box[0] - grown[0], box[1] - grown[1]
        aligned = aligned[oy:oy + box[2] - box[0], ox:ox + box[3] - box[1]]
        return np.ascontiguousarray(apply_gain(aligned, np.asarray(a.gain, np.float32)))

    def read(self, index: int) -> np.ndarray:
        from postfocus.io.images import to_float

        return to_float(self.read_pixels(index))


class _Decoded(FrameSource):
    """The kept frames as decoded (source geometry), for :func:`merge_unwarped`."""

    def __init__(self, frames: UnwarpedFrames):
        self.frames = frames
        h, w = frames.reference_size
        self.info = dataclasses.replace(frames.info, height=h, width=w)

    def __len__(self) -> int:
        return len(self.frames)

    def read_pixels(self, index: int) -> np.ndarray:
        return self.frames.read_decoded(index)

    def read(self, index: int) -> np.ndarray:
        from postfocus.io.images import to_float

        return to_float(self.read_pixels(index))


def merge_unwarped(frames: UnwarpedFrames, maps: StackMaps, *, method: str, merge: Sequence[int] | None,
                   bands: int, progress, threads: int | None, near_to_far: bool = True) -> np.ndarray:  # noqa: ANN001
    """Fuse kept unwarped frames into the output geometry, each warped only where it weighs.

    Parameters
    ----------
    frames : UnwarpedFrames
        The stack folder's frames.
    maps : StackMaps
        The folder's maps (output geometry).
    method, merge, bands, progress, threads, near_to_far
        As for :func:`~postfocus.pipeline.merge.fuse` (``merge`` is its ``frames``).

    Returns
    -------
    numpy.ndarray
        float32 (h, w, 3).
    """
    from postfocus.pipeline.merge import fuse

    return fuse(_Decoded(frames), maps, alignment=output_alignment(frames.alignment, frames.crop), method=method,
                frames=merge, bands=bands, progress=progress, threads=threads, near_to_far=near_to_far)


def decoded_reader(folder: Path, files: dict[str, str], size: Sequence[int]) -> Callable[[int], np.ndarray]:
    """``read(index)``: a kept unwarped frame file read in its stored type, fitted to ``size`` (H, W).

    The decode is the one pass 2 used (:func:`~postfocus.io.images.read_image`: Exif orientation,
    16-bit kept, then fitted to the stack's size), so a photo kept as its file's bytes reads back
    as pass 2 saw it.
    """
    from postfocus.io.base import fit_size
    from postfocus.io.images import read_image

    h, w = int(size[0]), int(size[1])

    def read(index: int) -> np.ndarray:
        return fit_size(read_image(folder / files[str(index)], stored=True), h, w)

    return read
