"""An all-in-focus result in memory, and writing results with their source's metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from postfocus.align.report import FrameAlignment
from postfocus.focus.direction import SweepDirection
from postfocus.io.base import SourceInfo
from postfocus.errors import OptionError
from postfocus.io.encoding import Compression
from postfocus.io.images import to_float
from postfocus.io.metadata import describe_stack
from postfocus.io.write import check_output_path, write_image
from postfocus.maps import MapsView, StackMaps
from postfocus.options import StackOptions, is_whole

__all__ = ["StackResult", "save_image"]


@dataclass
class StackResult(MapsView):
    """An all-in-focus image and what it was made from (see :func:`postfocus.stack`).

    Everything is in the output geometry: ``image`` and ``maps`` cover the
    same rectangle ``crop`` of the reference frame, as a stack folder's do.

    Attributes
    ----------
    image : numpy.ndarray
        float32 (H, W, 3) fused image in [0, 1].
    maps : StackMaps
        Focus index, confidence, focus volume and motion of ``image``'s area.
    alignment : list of FrameAlignment
        One per input frame.
    crop : tuple of int
        (top, left, bottom, right) of ``image`` within the reference frame.
    info : SourceInfo
        What the source said about itself (size, bit depth, metadata).
    options : StackOptions
        What it was made with.
    reference : int
        The reference frame.
    merged : list of int
        Frames merged into ``image`` (all used frames, or those of a range).
    warnings : list of str
        Every warning raised during the run, as text.
    direction : SweepDirection or None
        Which way the focus swept, with its evidence (:func:`postfocus.focus.direction.sweep_direction`).
    """

    image: np.ndarray
    maps: StackMaps
    alignment: list[FrameAlignment]
    crop: tuple[int, int, int, int]
    info: SourceInfo
    options: StackOptions
    reference: int
    merged: list[int]
    warnings: list[str] = field(default_factory=list)
    direction: SweepDirection | None = None

    @property
    def method(self) -> str:
        """Fusion method used."""
        return self.options.method

    @property
    def used(self) -> list[int]:
        """Frames that could be aligned."""
        return self.maps.used

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of :attr:`image`, as a stack folder's ``size`` (``tap(result, x, y)`` reads it)."""
        return tuple(self.image.shape[:2])

    @property
    def motion_frames(self) -> dict[int, int]:
        """Frame each moving region was taken from, by region label."""
        return self.maps.motion_frames(self.merged)[1]

    def save(self, path: str | os.PathLike, *, quality: int = 95, bit_depth: int | None = None,
             compression: Compression = None) -> Path:
        """Write the image with the reference frame's metadata (atomically).

        Parameters
        ----------
        path : str or os.PathLike
            ``.jpg``, ``.png`` or ``.tif``.
        quality : int
            JPEG quality.
        bit_depth : int, optional
            8 or 16 (default: 16 for deep sources in PNG/TIFF).
        compression : str, int, optional
            TIFF: ``none``, ``deflate`` or ``lzw``; PNG: zlib level 0-9.

        Returns
        -------
        pathlib.Path
        """
        description = describe_stack(self.merged, len(self.alignment), self.method, self.reference)
        return save_image(path, self.image, self.info, quality=quality, bit_depth=bit_depth, compression=compression,
                          description=description)


def save_image(
    path: str | os.PathLike, image: np.ndarray, info: SourceInfo, *, quality: int = 95, bit_depth: int | None = None,
    description: str | None = None, compression: Compression = None,
) -> Path:
    """Write a result in the format its suffix names, with the source's metadata (atomically).

    16-bit sources give 16-bit PNG/TIFF by default; JPEG is always 8-bit.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; never one of the inputs.
    image : numpy.ndarray
        float32 (H, W, 3) in [0, 1].
    info : SourceInfo
        The source: its EXIF, ICC profile, bit depth and paths.
    quality : int
        JPEG quality.
    bit_depth : int, optional
        8 or 16.
    description : str, optional
        EXIF ImageDescription (e.g. which frames were merged).
    compression : str, int, optional
        TIFF: ``none``, ``deflate`` (default) or ``lzw``; PNG: zlib level 0-9.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(path, (str, os.PathLike)):
        raise OptionError("path", path, "must be a file name (str or pathlib.Path)")
    if not isinstance(info, SourceInfo):
        given = info if info is None else f"a {type(info).__name__}"  # (None read "info='NoneType'")
        raise OptionError("info", given, "must be the SourceInfo of the source (result.info, ps.info)")
    if not is_whole(quality) or not 1 <= quality <= 100:
        raise OptionError("quality", quality, "must be a whole number from 1 to 100")
    image = _picture(image)
    check_output_path(path, info.paths)
    if bit_depth is None and info.bit_depth > 8 and Path(path).suffix.lower() in (".tif", ".tiff", ".png"):
        bit_depth = 16
    return write_image(path, image, quality=quality, bit_depth=bit_depth, exif=info.exif, icc=info.icc, grey=info.grey,
                       description=description, compression=compression)


def _picture(image: object) -> np.ndarray:
    """``image`` as :func:`save_image` writes it: float (H, W, 3), (H, W, 4) or (H, W) in [0, 1]; integers are
    scaled by their type's range, as frames given as arrays are (a uint8 picture was written all white, each
    value clipped to 1); OptionError for what is not a picture (NaN was written black, 0 x W a ValueError).

    Examples
    --------
    >>> float(_picture(np.full((2, 2, 3), 255, np.uint8)).max())
    1.0
    >>> _picture(np.zeros((0, 4, 3), np.float32))
    Traceback (most recent call last):
    postfocus.errors.OptionError: image='shape (0, 4, 3)': must be (H, W, 3) RGB or (H, W) grey, and not empty
    """
    if not isinstance(image, np.ndarray):
        raise OptionError("image", type(image).__name__, "must be a NumPy array: (H, W, 3) RGB or (H, W) grey")
    if image.dtype == bool or image.dtype.kind not in "uif":
        raise OptionError("image", str(image.dtype), "values of this type cannot be pixels; use float in [0, 1], "
                                                     "uint8 or uint16")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))) or image.size == 0:
        raise OptionError("image", f"shape {image.shape}", "must be (H, W, 3) RGB or (H, W) grey, and not empty")
    if image.dtype in (np.uint8, np.uint16):
        return to_float(image)
    if image.dtype.kind in "ui":  # other integers: by their type's range, negatives black
        return np.clip(image / np.iinfo(image.dtype).max, 0.0, 1.0).astype(np.float32)
    if np.isnan(image.max()):  # (one pass, no image-sized mask; infinities are clipped as any value)
        raise OptionError("image", "NaN", "holds NaN values; replace them (e.g. numpy.nan_to_num) before saving")
    return image
