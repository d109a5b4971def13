"""How result files are encoded: bit depth and compression of TIFF and PNG, metadata in a JPEG as is.

:func:`check_encoding` settles a ``bit_depth`` and ``compression`` against an
output's format before any work (errors name the parameter, as
:class:`~postfocus.errors.OptionError`); :func:`tiff_compression` and
:func:`png_level` turn the accepted values into what the encoders take.
:func:`jpeg_with_metadata` puts EXIF and a colour profile into JPEG bytes
without decoding them (a cached frame written out as a result).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from postfocus.errors import OptionError

__all__ = ["COMPRESSIONS", "Compression", "check_encoding", "jpeg_with_metadata", "png_level", "tiff_compression"]

COMPRESSIONS = ("none", "deflate", "lzw")
"""Named compressions: TIFF takes all three; PNG is always deflate (``none`` is zlib level 0)."""

Compression = str | int | None
"""A compression as given: one of :data:`COMPRESSIONS`, a zlib level 0-9 (PNG), or None (the default)."""

_TIFF_CODECS = {"none": None, "deflate": "zlib", "lzw": "lzw"}
_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}


def _level(compression: Compression) -> int | None:
    """The zlib level a compression names (``"6"`` or 6), or None for a name."""
    if isinstance(compression, bool):
        return None
    if isinstance(compression, int):
        return compression
    if isinstance(compression, str) and compression.strip().isdigit():
        return int(compression)
    return None


def check_encoding(path: str | os.PathLike, bit_depth: int | None = None, compression: Compression = None) -> None:
    """Refuse a bit depth or compression the format of ``path`` cannot take.

    Parameters
    ----------
    path : str or os.PathLike
        The output; its suffix names the format.
    bit_depth : int or None
        8 or 16 (JPEG: 8 only).
    compression : str, int or None
        TIFF: ``none``, ``deflate`` or ``lzw``; PNG: a zlib level 0-9
        (``none`` = 0, ``deflate`` = the default 6); JPEG: none (its size is
        set by the quality).

    Raises
    ------
    OptionError
        For ``bit_depth`` or ``compression``.

    Examples
    --------
    >>> check_encoding("a.png", 16, 9)
    >>> check_encoding("a.jpg", 16)
    Traceback (most recent call last):
    ...
    postfocus.errors.OptionError: bit_depth=16: JPEG is 8-bit; write a .png or .tif for 16 bits
    """
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if bit_depth is not None and bit_depth not in (8, 16):
        raise OptionError("bit_depth", bit_depth, "choose 8 or 16")
    if fmt == "jpeg" and bit_depth == 16:
        raise OptionError("bit_depth", bit_depth, "JPEG is 8-bit; write a .png or .tif for 16 bits")
    if compression is None:
        return
    level = _level(compression)
    if fmt == "jpeg":
        raise OptionError("compression", compression, "applies to .tif and .png; a JPEG's size is set by its quality")
    if fmt == "tiff" and compression not in COMPRESSIONS:
        raise OptionError("compression", compression, f"TIFF takes {', '.join(COMPRESSIONS)}")
    if fmt == "png" and compression not in ("none", "deflate") and (level is None or not 0 <= level <= 9):
        raise OptionError("compression", compression, "PNG takes a zlib level from 0 (none) to 9 (smallest)")


def tiff_compression(compression: Compression) -> str | None:
    """The tifffile codec of a compression (default ``deflate``).

    Examples
    --------
    >>> tiff_compression(None), tiff_compression("lzw"), tiff_compression("none")
    ('zlib', 'lzw', None)
    """
    return _TIFF_CODECS[compression if isinstance(compression, str) and compression in _TIFF_CODECS else "deflate"]


def png_level(compression: Compression, default: int = 6) -> int:
    """The zlib level of a PNG for a compression (``default`` for None or ``deflate``).

    Examples
    --------
    >>> png_level(None), png_level("none"), png_level("9"), png_level("deflate", 1)
    (6, 0, 9, 1)
    """
    if compression == "none":
        return 0
    level = _level(compression)
    return default if level is None else level


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_with_metadata(jpeg: bytes, exif: bytes | None, icc: bytes | None = None) -> bytes:
    """JPEG bytes with an EXIF (APP1) and ICC profile (APP2) segment, the compressed image untouched.

    Segments of those kinds already in ``jpeg`` are replaced; the others
    (JFIF, quantisation and Huffman tables, the scan) are kept as they are.

    Parameters
    ----------
    jpeg : bytes
        A baseline or progressive JPEG file.
    exif : bytes or None
        TIFF-structured EXIF (as :func:`~postfocus.io.write.output_exif` makes), with or
        without the ``Exif\\0\\0`` header.
    icc : bytes or None
        A colour profile (split over several segments when large).

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        When ``jpeg`` is not a JPEG file.
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    pos, kept = 2, []
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker == 0xDA or not 0xE0 <= marker <= 0xEF:  # the tables and the scan: the rest, as it is
            break
        length = struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        payload = jpeg[pos + 4 : pos + 2 + length]
        old_exif = marker == 0xE1 and payload.startswith(b"Exif\0\0")
        old_icc = marker == 0xE2 and payload.startswith(b"ICC_PROFILE\0")
        if not (old_exif or old_icc):
            kept.append(jpeg[pos : pos + 2 + length])
        pos += 2 + length
    extra = b""
    if exif:
        extra += _segment(0xE1, exif if exif.startswith(b"Exif\0\0") else b"Exif\0\0" + exif)
    if icc:
        chunk = 65519
        parts = [icc[i : i + chunk] for i in range(0, len(icc), chunk)]
        for k, part in enumerate(parts, 1):
            extra += _segment(0xE2, b"ICC_PROFILE\0" + bytes([k, len(parts)]) + part)
    # JFIF (APP0) must stay first; EXIF and ICC follow it.
    app0 = [s for s in kept if s[1] == 0xE0]
    rest = [s for s in kept if s[1] != 0xE0]
    return b"\xff\xd8" + b"".join(app0) + extra + b"".join(rest) + jpeg[pos:]
