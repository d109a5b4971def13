"""What the decoders postfocus uses may say, said by postfocus: its own size limit, libpng's warnings, bad EXIF.

Three libraries speak for themselves when left alone. Pillow calls a frame of more than ``Image.MAX_IMAGE_PIXELS``
(89 megapixels) a possible decompression bomb and warns, and refuses one of twice that (a 16000x12500 medium-format
frame of 200 megapixels) with a ``DecompressionBombError``; libpng, inside OpenCV, prints ``libpng error: IDAT:
CRC error`` on stderr beside postfocus's own line for a damaged PNG (and ``libpng warning: ...`` for a damaged
ancillary chunk of a PNG whose pixels are whole); Pillow refuses a PNG whose eXIf chunk is not a TIFF structure
though its pixels decode, and reads a JPEG with the same EXIF as if it had none. Here:

- :func:`pillow_opening` lifts Pillow's limit for postfocus's own reads and applies the project's,
  :data:`MAX_FRAME_PIXELS`, with a one-line :class:`~postfocus.errors.InputError`;
- :func:`decode_png` decodes a PNG with libpng through imagecodecs, which raises its errors (one line) and logs its
  warnings, caught here and said as one :class:`~postfocus.errors.PostfocusWarning` (the pixels are the same as
  OpenCV's, to the bit, for every PNG colour type and depth);
- :func:`exif_read` reads a header's EXIF and, when it cannot be read, warns once and goes on without it.

References
----------
.. [1] PNG (Portable Network Graphics) Specification, Third Edition, W3C, 2025: critical and ancillary chunks,
   CRC errors (an ancillary chunk's may be ignored, a critical chunk's may not).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from postfocus.errors import InputError, PostfocusWarning

__all__ = ["MAX_FRAME_PIXELS", "check_frame_size", "decode_png", "exif_read", "pillow_opening"]

#: Pixels of the largest frame postfocus opens: OpenCV's own image readers' limit (``CV_IO_MAX_IMAGE_PIXELS``,
#: 2**30), 12 GiB as the float32 RGB frame the pipeline makes of it. Pillow's (179 megapixels) is not the
#: project's: a 200-megapixel medium-format or pixel-shift frame is a photo, not an attack.
MAX_FRAME_PIXELS = 1 << 30

_lock = threading.Lock()
_opening = [0, None]  # postfocus's reads under way, and Pillow's limit before the first of them
_caught: dict[int, list[str]] = {}  # thread -> what imagecodecs logged while that thread decoded a PNG


@contextmanager
def pillow_opening(path: str | os.PathLike) -> Iterator[None]:
    """Let Pillow open and decode ``path`` without its own size limit (nor its warning) for as long as this lasts.

    Pillow's limit is a module setting: it is lifted while any of postfocus's reads is under way, in any thread,
    and put back as it was after the last (another library's read meanwhile takes the limit it would set itself).

    Raises
    ------
    InputError
        Only for a limit another thread set on Pillow meanwhile (the project's own is :func:`check_frame_size`).
    """
    from PIL import Image

    with _lock:
        if _opening[0] == 0:
            _opening[1] = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _opening[0] += 1
    try:
        yield
    except Image.DecompressionBombError as exc:  # (a limit someone set while this read was under way)
        raise InputError(f"{path}: image too large to decode ({exc})") from None
    finally:
        with _lock:
            _opening[0] -= 1
            if _opening[0] == 0:
                Image.MAX_IMAGE_PIXELS = _opening[1]


def check_frame_size(path: str | os.PathLike, width: int, height: int) -> None:
    """An :class:`~postfocus.errors.InputError` for a frame of more than :data:`MAX_FRAME_PIXELS`, before decoding.

    Examples
    --------
    >>> check_frame_size("a.png", 16000, 12500)  # 200 megapixels: taken
    >>> check_frame_size("a.png", 40000, 30000)
    Traceback (most recent call last):
    postfocus.errors.InputError: a.png: 40000x30000 (1200.0 MP) is more than postfocus opens (1073.7 MP); make the frames smaller
    """
    if width * height > MAX_FRAME_PIXELS:
        raise InputError(f"{path}: {width}x{height} ({width * height / 1e6:.1f} MP) is more than postfocus opens "
                         f"({MAX_FRAME_PIXELS / 1e6:.1f} MP); make the frames smaller")


class _Catch(logging.Filter):
    """Keeps the records of a thread decoding in :func:`decode_png` for it, out of the log (so off stderr)."""

    def filter(self, record: logging.LogRecord) -> bool:
        said = _caught.get(record.thread)
        if said is None:
            return True
        said.append(record.getMessage())
        return False


logging.getLogger("imagecodecs").addFilter(_Catch())


def decode_png(path: str | os.PathLike) -> np.ndarray:
    """A PNG's pixels as libpng gives them: uint8 or uint16, (H, W), (H, W, 2), (H, W, 3) or (H, W, 4), RGB order.

    A palette is expanded (with its transparency as alpha); 1, 2 and 4 bits to 8; an animated PNG's default image.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    np.ndarray

    Raises
    ------
    InputError
        For a PNG libpng refuses (a CRC error in its pixels, cut short ...), in one line with libpng's reason.

    Warns
    -----
    PostfocusWarning
        Once for a PNG libpng reads with warnings (a damaged ancillary chunk): its pixels are used.
    """
    from imagecodecs import PngError, png_decode  # (a dependency; imported with the first PNG)

    data = Path(path).read_bytes()
    me = threading.get_ident()
    _caught[me] = said = []
    try:
        pixels = png_decode(data)
    except PngError as exc:
        raise InputError(f"{path}: corrupt or truncated image ({exc})") from None
    finally:
        del _caught[me]
    said = [s.removeprefix("PNG warning: ") for s in said]
    said = [s for s in said if not s.startswith("eXIf")  # (the header's EXIF is read, or said, by exif_read)
            and not s.startswith("Interlace handling should be turned on")]  # (imagecodecs' call, the pixels whole)
    if said:
        told = "; ".join(dict.fromkeys(said))
        warnings.warn(f"{path}: {told} (libpng); the pixels are used", PostfocusWarning,
                      stacklevel=3)
    return pixels


def exif_read(im, path: str | os.PathLike):  # noqa: ANN001, ANN201
    """``im``'s EXIF (a Pillow ``Image.Exif``), empty when it cannot be read, which is said once as a warning.

    A PNG's is read from its eXIf chunk as a plain image's (``PngImageFile.getexif`` would decode the pixels to
    look for one after them: :mod:`postfocus.io.png_chunks` has done that). Pillow's JPEG reader swallows its own
    failure (an empty EXIF from a block it holds); that is found by reading the block again.

    Parameters
    ----------
    im : PIL.Image.Image
        An image Pillow opened.
    path : str or os.PathLike
        Its file, named in the warning.

    Returns
    -------
    PIL.Image.Exif
    """
    from PIL import Image

    stored = im.info.get("exif")
    try:
        exif = Image.Image.getexif(im) if im.format == "PNG" else im.getexif()
        if stored and not len(exif):
            Image.Exif().load(stored)  # (raises what the reader swallowed, if it did)
        return exif
    except Exception as exc:  # noqa: BLE001 (Pillow's EXIF parser raises SyntaxError, struct.error, ValueError ...)
        im.info.pop("exif", None)  # (nothing of it is kept, nor written to a result)
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        warnings.warn(f"{path}: its EXIF metadata cannot be read ({reason}); the pixels are used, without it",
                      PostfocusWarning, stacklevel=3)
        return Image.Exif()
