"""Still images (JPEG, PNG, TIFF): headers, decoding, and a source of image files.

Pixels of PNG and TIFF files keep their full bit depth; EXIF orientation is
applied once here, so every later stage sees the picture upright.
:class:`ImageFilesSource` reads a stack of such files one frame at a time.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from postfocus.errors import InputError
from postfocus.io.base import FrameSource, SourceInfo, fit_size
from postfocus.io.decode import check_frame_size, decode_png, exif_read, pillow_opening
from postfocus.io.png_chunks import info_after_pixels

__all__ = [
    "EXIF_ORIENTATION",
    "ImageFilesSource",
    "ImageHeader",
    "apply_orientation",
    "read_header",
    "read_image",
    "to_float",
]

EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding the pixels."""

    path: Path
    width: int
    height: int
    bit_depth: int
    grey: bool
    orientation: int
    # The EXIF block as bytes, or as Pillow read it from the file's EXIF segment (``(Image.Exif, the
    # segment)``), made bytes on first use (:attr:`exif`): that costs about 1 ms a file, and a stack
    # needs one frame's.
    exif_block: bytes | tuple | None = field(repr=False, compare=False)
    icc: bytes | None
    format: str | None = None  # what the content is ("JPEG", "PNG", "TIFF", ...), whatever the suffix says

    @property
    def exif(self) -> bytes | None:
        """The EXIF block as bytes (None without one)."""
        block = self.exif_block
        if not isinstance(block, tuple):
            return block
        if "_exif_bytes" not in self.__dict__:
            object.__setattr__(self, "_exif_bytes", _exif_bytes(*block))
        return self.__dict__["_exif_bytes"]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` after the EXIF orientation is applied."""
        if self.orientation in (5, 6, 7, 8):
            return self.width, self.height
        return self.height, self.width


def read_header(path: str | os.PathLike) -> ImageHeader:
    """Read size, bit depth and metadata of an image file.

    Parameters
    ----------
    path : str or os.PathLike
        A JPEG, PNG or TIFF file.

    Returns
    -------
    ImageHeader

    Raises
    ------
    InputError
        If the file is missing or is not an image.

    Examples
    --------
    >>> read_header("step0.jpg").size  # doctest: +SKIP
    (1141, 1521)
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise InputError(f"{path}: not a regular file")
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:  # (as a video's: was "not an image file (or a format postfocus cannot read)")
        raise InputError(f"{path}: empty file (0 bytes), not an image")
    try:
        with pillow_opening(path), Image.open(path) as im:
            width, height = im.size
            check_frame_size(path, width, height)
            mode = im.mode
            if im.format == "PNG" and "exif" not in im.info:  # (else Pillow decodes it all to look further)
                im.info.update(info_after_pixels(path, animated=getattr(im, "is_animated", False)))
            exif = exif_read(im, path)  # (empty, said once, when it cannot be read)
            orientation = _orientation(exif.get(EXIF_ORIENTATION))
            stored = im.info.get("exif")
            # Read from the segment's bytes, the Exif needs the file no more; read from a TIFF's
            # directories, it does: written now.
            exif_block = (exif, stored) if stored is not None else _exif_bytes(exif, stored)
            icc = im.info.get("icc_profile")
            fmt = im.format
    except UnidentifiedImageError:
        header = _tiff_header(path)  # float or other TIFF layouts Pillow does not open
        if header is not None:
            return header
        raise InputError(f"{path}: not an image file (or a format postfocus cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read image header ({exc})") from None
    bit_depth = 8
    grey = mode in ("L", "I;16", "I;16B", "I;16L", "I", "F", "1", "LA")
    if mode.startswith("I;16") or mode in ("I", "F"):
        bit_depth = 16
    if fmt == "TIFF":
        try:
            import tifffile  # TIFF only (not loaded for other formats)
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                bit_depth = 16 if page.dtype.itemsize >= 2 else 8
                grey = page.samplesperpixel - (1 if page.extrasamples else 0) < 3
        except Exception as exc:  # tifffile raises many types on bad files
            raise InputError(f"{path}: cannot read TIFF ({exc})") from None
    elif fmt == "PNG":
        with open(path, "rb") as fh:
            head = fh.read(33)
        if len(head) >= 26:
            bit_depth = 16 if head[24] == 16 else 8
            grey = head[25] in (0, 4)
    return ImageHeader(path, width, height, bit_depth, grey, orientation, exif_block, icc, fmt)


def _exif_bytes(exif: Image.Exif, stored: bytes | None) -> bytes | None:
    """The EXIF block Pillow read, as bytes to write (as stored when Pillow cannot write it back)."""
    try:
        return exif.tobytes() if len(exif) else None
    except Exception:  # an EXIF block Pillow reads but cannot write back: keep it as stored
        return stored


def _orientation(value: object) -> int:
    """EXIF orientation 1-8; anything else (missing, malformed) means upright."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    try:
        value = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _tiff_header(path: Path) -> ImageHeader | None:
    """Header of a TIFF read with tifffile (e.g. 32-bit float RGB, which Pillow cannot open)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
                return None
        import tifffile  # TIFF only (not loaded for other formats)
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            extra = len(page.extrasamples) if page.extrasamples else 0
            grey = page.samplesperpixel - extra < 3
            bit_depth = 16 if page.dtype is not None and page.dtype.itemsize >= 2 else 8
            tag = page.tags.get(274)
            orientation = _orientation(tag.value if tag is not None else 1)
            tag = page.tags.get(34675)
            icc = bytes(tag.value) if tag is not None else None
    except Exception:
        return None
    return ImageHeader(path, width, height, bit_depth, grey, orientation, None, icc, "TIFF")


def _to_rgb(pixels: np.ndarray, path: Path) -> np.ndarray:
    """Drop alpha and spread grey to three channels; uint8/uint16 stay integers, the rest become float32 in [0, 1]."""
    if pixels.dtype in (np.uint8, np.uint16):
        out = pixels
    elif pixels.dtype.kind == "f":
        out = np.clip(np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0, 1)
    elif pixels.dtype == bool:
        out = pixels.astype(np.float32)
    else:
        raise InputError(f"{path}: unsupported pixel type {pixels.dtype}")
    if out.ndim == 2:
        out = out[:, :, None]
    channels = out.shape[2]
    if channels in (2, 4):  # grey+alpha or RGBA: alpha is dropped
        out = out[:, :, : channels - 1]
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] > 3:
        out = out[:, :, :3]
    return np.ascontiguousarray(out)


def to_float(pixels: np.ndarray, gain: np.ndarray | float | None = None) -> np.ndarray:
    """Stored pixels (uint8, uint16 or float32) as float32 in [0, 1], times an optional per-channel ``gain``.

    One pass over the pixels: the scale to [0, 1] and the gain are a single multiply.

    Parameters
    ----------
    pixels : np.ndarray
        (H, W, 3) uint8, uint16 or float array.
    gain : np.ndarray, float or None
        Scalar or (3,) factors (an exposure correction), or None.

    Returns
    -------
    np.ndarray
        float32, shaped like ``pixels``.

    Examples
    --------
    >>> [round(float(v), 4) for v in to_float(np.array([[[255, 0, 51]]], np.uint8), gain=[1.0, 1.0, 2.0])[0, 0]]
    [1.0, 0.0, 0.4]
    """
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype, 1.0)
    factor = np.float32(1.0 / top) if gain is None else (np.asarray(gain, np.float32) / np.float32(top))
    if top == 1.0 and gain is None:
        return np.asarray(pixels, np.float32)
    return np.multiply(pixels, factor, dtype=np.float32)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate or mirror ``image`` as EXIF orientation 1-8 asks.

    Parameters
    ----------
    image : np.ndarray
        (H, W) or (H, W, C) pixels as stored.
    orientation : int
        EXIF orientation 1-8 (anything else leaves the image as it is).

    Returns
    -------
    np.ndarray
        A view of ``image``, upright.

    Examples
    --------
    >>> apply_orientation(np.zeros((2, 3, 3)), 6).shape
    (3, 2, 3)
    """
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:
        return np.swapaxes(image, 0, 1)
    if orientation == 6:
        return np.swapaxes(image, 0, 1)[:, ::-1]
    if orientation == 7:
        return np.swapaxes(image, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.swapaxes(image, 0, 1)[::-1]
    return image


def read_image(path: str | os.PathLike, header: ImageHeader | None = None, *, stored: bool = False) -> np.ndarray:
    """Decode an image file into an upright float32 RGB frame in [0, 1].

    Parameters
    ----------
    path : str or os.PathLike
        JPEG, PNG or TIFF file (8 or 16 bit, grey or colour; alpha is dropped).
    header : ImageHeader or None
        The file's header if already read.
    stored : bool
        Keep 8- and 16-bit pixels as uint8/uint16 (see :func:`to_float`);
        a quarter (8-bit) of the memory, and cheaper to resample.

    Returns
    -------
    np.ndarray
        float32 array of shape (H, W, 3) (or uint8/uint16 with ``stored``).

    Examples
    --------
    >>> read_image("step0.jpg").dtype  # doctest: +SKIP
    dtype('float32')
    """
    path = Path(path)
    header = header or read_header(path)
    suffix = path.suffix.lower()
    # Decode by what the file holds, not by its name (a PNG saved as .jpg, a JPEG as .tif).
    fmt = header.format or {".tif": "TIFF", ".tiff": "TIFF", ".png": "PNG"}.get(suffix, "JPEG")
    try:
        if fmt == "TIFF":
            import tifffile  # TIFF only (not loaded for other formats)
            pixels = tifffile.imread(path, key=0)
            if pixels.ndim == 3 and pixels.shape[0] in (3, 4) and pixels.shape[2] not in (3, 4):
                pixels = np.moveaxis(pixels, 0, -1)  # planar configuration
        elif fmt == "PNG":
            pixels = decode_png(path)  # (libpng's complaints as postfocus's, not on stderr)
        else:
            with pillow_opening(path):
                pixels = _decode_pillow_format(path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: corrupt or truncated image ({exc})") from None
    frame = _to_rgb(pixels, path)
    if not stored:
        frame = to_float(frame)
    return np.ascontiguousarray(apply_orientation(frame, header.orientation))


def _decode_pillow_format(path: Path) -> np.ndarray:
    """A file Pillow reads (JPEG, and the rarer formats) as uint8/uint16 pixels, grey or RGB.

    A whole 8-bit grey or YCbCr JPEG is decoded by imagecodecs' libjpeg-turbo instead: the same
    decoding, the same pixels to the bit, for less CPU in a ``stack`` run and fewer page faults (no
    4-byte pixels to copy from; docs/performance.md, "Small stacks, thirteenth session"). Its error
    manager is silent, as Pillow's is: OpenCV's (used before) let libjpeg print its warnings on
    damaged entropy data ("Corrupt JPEG data: ...") from C on stderr (docs/reliability.md, fixes22).
    Pillow still reads the header (its size limit, the colour mode) and decodes everything else:
    CMYK, a file that does not end with the end-of-image marker (cut short, Pillow refuses it where
    libjpeg would fill the rest with grey; or with bytes after it), or one libjpeg-turbo refuses.
    """
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG" and im.mode in ("L", "RGB") and data.endswith(b"\xff\xd9"):
            # (EXIF orientation left to the caller, as with Pillow; RGB straight from the decoder)
            from imagecodecs import jpeg8_decode  # (a dependency; imported with the first JPEG)
            try:
                pixels = jpeg8_decode(data)
            except Exception:  # refused (Jpeg8Error, or a layout it cannot give): Pillow's turn
                pixels = None
            if pixels is not None and pixels.dtype == np.uint8 and pixels.shape[:2] == (im.height, im.width) \
                    and pixels.ndim == (2 if im.mode == "L" else 3) and (pixels.ndim == 2 or pixels.shape[2] == 3):
                return pixels
        im.load()
        if im.mode not in ("L", "RGB", "I;16"):
            im = im.convert("RGB")
        return np.asarray(im)


class ImageFilesSource(FrameSource):
    """Frames stored as still image files (JPEG, PNG, TIFF).

    Parameters
    ----------
    headers : Sequence[ImageHeader]
        The files' headers (see :func:`read_header`), in focus order, sizes
        already checked (:func:`postfocus.io.base.check_sizes`).

    Examples
    --------
    >>> src = ImageFilesSource([read_header(p) for p in ("a.jpg", "b.jpg")])  # doctest: +SKIP
    >>> src.info.kind  # doctest: +SKIP
    'images'
    """

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
        """Frame ``index`` as float32 RGB in [0, 1], fitted to the first frame's size (see :meth:`FrameSource.read`)."""
        return to_float(self.read_pixels(index))

    def read_pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored (uint8, uint16 or float32 RGB), fitted to the first frame's size.

        See :meth:`FrameSource.read_pixels`.
        """
        header = self._headers[index]
        frame = read_image(header.path, header, stored=True)
        return fit_size(frame, self.info.height, self.info.width)

    def header(self, index: int) -> ImageHeader:
        """The header of frame ``index``'s file.

        Parameters
        ----------
        index : int
            Frame number.

        Returns
        -------
        ImageHeader
            What was read from the file before its pixels.
        """
        return self._headers[index]
