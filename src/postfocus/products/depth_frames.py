"""The aligned frames at the depth's grid: what a pixel beside a depth step looks like in each frame.

:func:`~postfocus.focus.frame_sides.frame_sides` judges the pixels beside a
depth step by their own appearance and fine detail in the two sides' frames,
which the stored focus volume (a 5 px window's energy) does not keep. It needs
a few of a stack's aligned frames at the focus volume's size (the analysis
grid, a quarter of the output's side or less on a real stack), read only when
a depth step asks for them. Reading an aligned frame at the output size
(:meth:`~postfocus.store.ProcessedStack.read_frame`) warps the whole frame
with a bicubic kernel, several times the cost of decoding it; here a frame kept
unwarped is decoded, shrunk by area averaging to about the grid's scale and
warped once, bilinearly, straight into the grid's geometry (the alignment's
matrix composed with the crop and the two scalings). A frame kept aligned is
read and shrunk. Every frame is read at most once.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from postfocus.colour import LUMA, to_grey
from postfocus.io.decode import pillow_opening
from postfocus.io.images import EXIF_ORIENTATION, apply_orientation, to_float
from postfocus.pipeline.merge import apply_gain
from postfocus.store import DamagedStackError, ProcessedStack
from postfocus.store.unwarped import decoded_reader

__all__ = ["frames_kept", "grid_frames"]


def grid_frames(stack: ProcessedStack, size: tuple[int, int]) -> Callable[[int], np.ndarray] | None:
    """``read(frame)``: aligned frame number ``frame`` of ``stack``, grey float32 at ``size`` = (h, w) of the grid.

    A folder that does not hold its frames' files (a copy made without them) has none to read: None (the depth is
    then made without them, as before this step; :func:`frames_kept`, part of the kept depth's key). A frame file
    changed since the manifest was written (another size, another CRC-32: the store's ``"changed"`` check) is not
    read: DamagedStackError, as the folder's other readers say.

    Parameters
    ----------
    stack : :class:`postfocus.store.ProcessedStack`.
    size : (h, w) of the grid (the focus volume's), the output geometry scaled.

    Returns
    -------
    callable: frame number -> float32 (h, w) grey in [0, 1] (read once, then kept); None without the frames.

    Raises
    ------
    DamagedStackError
        (from the callable) The frame's file does not match the manifest.
    """
    if not frames_kept(stack):
        return None
    h, w = int(size[0]), int(size[1])
    out_h, out_w = stack.size
    kept: dict[int, np.ndarray] = {}
    if stack.frames_unwarped:
        m = stack.manifest
        decoded = decoded_reader(stack.folder, m["frame_files"], m["reference_size"])
        top, left = int(m["crop"][0]), int(m["crop"][1])
        sx, sy = out_w / w, out_h / h  # output pixels per grid pixel
        to_reference = np.array([[sx, 0.0, left + 0.5 * sx - 0.5], [0.0, sy, top + 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        factor = max(1, int(min(sx, sy)))  # shrink first by area (no aliasing), at most to the grid's scale
        reduced = 1 << min(3, factor.bit_length() - 1)  # a JPEG decoded at 1/2, 1/4 or 1/8 (its DCT scaled)
        ref_h, ref_w = (int(v) for v in m["reference_size"])

        def read(index: int) -> np.ndarray:
            a = stack.alignment[index]
            gain = np.asarray(a.gain, np.float32)
            small = _reduced_grey(stack.folder / m["frame_files"][str(index)], reduced, (ref_h, ref_w))
            f = reduced
            if small is None:  # not a JPEG (or not the reference's size): decoded whole, shrunk by area
                pixels = decoded(index)
                f = factor
                small = pixels if f == 1 else cv2.resize(pixels, (max(1, round(ref_w / f)), max(1, round(ref_h / f))),
                                                         interpolation=cv2.INTER_AREA)
                small = to_grey(to_float(apply_gain(small, gain)))
            else:  # (its luma: the grey of the gained colours, to within the gains' spread)
                small = small.astype(np.float32) * np.float32(float(np.dot(LUMA, np.resize(gain, 3))) / 255.0)
            fx, fy = (1.0 / f, 1.0 / f) if f == reduced else (small.shape[1] / ref_w, small.shape[0] / ref_h)
            to_small = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
            matrix = to_small @ np.asarray(a.matrix, np.float64) @ to_reference  # grid -> shrunk frame
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            if abs(matrix[2, 0]) + abs(matrix[2, 1]) > 1e-12:
                return cv2.warpPerspective(small, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
            return cv2.warpAffine(small, matrix[:2], (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
    else:

        def read(index: int) -> np.ndarray:
            frame = stack.read_frame(index)
            return to_grey(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA) if frame.shape[:2] != (h, w)
                           else frame)

    def cached(index: int) -> np.ndarray:
        if index not in kept:
            name = stack.manifest["frame_files"][str(index)]  # (a replaced frame was read as it was, its depth kept)
            if stack.changed_since_written(name):
                raise DamagedStackError(f"{stack.folder}: {name} does not match the manifest; process the stack again")
            kept[index] = np.ascontiguousarray(read(index), np.float32)
        return kept[index]

    return cached


def frames_kept(stack: ProcessedStack) -> bool:
    """Whether ``stack``'s folder holds a file for each of its used frames (what :func:`grid_frames` reads).

    A depth made without them differs from one made with them: the kept depth's key holds this (review19: one kept
    from a folder copied without its frames was served once they were copied back). DamagedStackError when one is
    there but is no regular file.
    """
    files = stack.manifest["frame_files"]  # (a used frame it names no file for: none to read, not an InputError)
    return all(str(i) in files and _regular(stack.folder, files[str(i)]) for i in stack.used)


def _regular(folder: Path, name: str) -> bool:
    """Whether the frame file ``name`` is a regular file (after links); False when ``stat`` fails in any way
    (``Path.is_file`` raised the errors other than ENOENT-like ones: a name too long, a folder without search
    permission). Something there that is no regular file (a FIFO, a device, a folder) is a damaged folder, as
    :meth:`~postfocus.store.ProcessedStack.verify` and :func:`~postfocus.io.regular.open_regular` say (it was "no
    frame kept": the depth made without the frames and kept under that key; fixes23).

    Raises
    ------
    DamagedStackError
        For a FIFO, a device or a folder under the name.
    """
    try:
        mode = os.stat(folder / name).st_mode
    except (OSError, ValueError):
        return False
    if not stat.S_ISREG(mode):
        raise DamagedStackError(f"{folder}: {name} is not a file; process the stack again to make it again")
    return True


def _reduced_grey(path: Path, reduced: int, size: tuple[int, int]) -> np.ndarray | None:
    """A JPEG's luma decoded at 1 / ``reduced`` of its size (``reduced`` 2, 4 or 8), if it is the reference's size
    ``size`` (H, W) so scaled; else None."""
    if reduced < 2 or path.suffix.lower() not in (".jpg", ".jpeg"):
        return None
    # libjpeg's DCT scaling through Pillow's draft mode (the same pixels as OpenCV's IMREAD_REDUCED_GRAYSCALE_*,
    # whose libjpeg printed "Corrupt JPEG data: ..." on stderr for a damaged frame); upright by its EXIF as
    # OpenCV's. What Pillow refuses is decoded whole by the caller (io.images: one line).
    try:
        with pillow_opening(path), Image.open(path) as im:
            if im.format != "JPEG":
                return None
            try:
                orientation = int(im.getexif().get(EXIF_ORIENTATION, 1))
            except Exception:  # noqa: BLE001 (unreadable EXIF: said by the stack's reading, upright as there)
                orientation = 1
            im.draft("L", (max(1, im.width // reduced), max(1, im.height // reduced)))
            grey = np.asarray(im.convert("L"))
    except Exception:  # noqa: BLE001 (damaged, cut short ...)
        return None
    grey = np.ascontiguousarray(apply_orientation(grey, orientation if 1 <= orientation <= 8 else 1))
    want = (-(-size[0] // reduced), -(-size[1] // reduced))
    return grey if grey.dtype == np.uint8 and grey.shape == want else None
