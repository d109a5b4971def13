"""The metadata a PNG keeps after its pixels, read without decoding them.

A PNG may put its ``eXIf`` and text chunks (tEXt, zTXt, iTXt: XMP, ImageMagick's "Raw profile type exif")
after the image data [1]_. Pillow reads the chunks before the first IDAT when it opens a file, and the ones
after only when it decodes the pixels: so ``Image.getexif()`` on a PNG without an ``eXIf`` chunk before its
IDAT decodes the whole image (0.5-0.9 s of CPU and 140 MB more memory for a 36-megapixel frame,
docs/performance.md, "PNG headers, fifteenth session").

:func:`info_after_pixels` walks the chunk headers instead, seeking over the IDAT data, and lets Pillow's own
PNG reader parse the metadata chunks found after it (in a small PNG made of the file's IHDR, those chunks and
IEND), so the header's values are the ones Pillow gives after decoding. The walk is bounded: it reads 8 bytes
a chunk, never a chunk's data past the file's end, at most ``_MAX_CHUNK`` bytes of one metadata chunk and
``_MAX_CHUNKS`` chunk headers, and stops at IEND, at the end of the file, at a chunk type that is not four
letters, or at the next frame of an animated PNG (as Pillow does).

References
----------
.. [1] PNG (Portable Network Graphics) Specification, Third Edition, W3C, 2025: chunk layout, chunk
   ordering (eXIf, tEXt, zTXt, iTXt may follow IDAT).
"""

from __future__ import annotations

import io
import os
import struct
import zlib

__all__ = ["info_after_pixels"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_METADATA = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"iCCP"}  # what Pillow turns into EXIF, XMP, text, ICC
_MAX_CHUNK = 64 << 20  # bytes of one metadata chunk read (a larger one is skipped; Pillow's text limit is 64 MB)
_MAX_CHUNKS = 1 << 20  # chunk headers read (a 400 MB PNG written by libpng has about 50 000)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _trailing_chunks(fh, size: int, *, animated: bool) -> tuple[bytes, list[tuple[bytes, bytes]]]:  # noqa: ANN001
    """The file's IHDR data and the metadata chunks after the image data, as ``(type, data)``; ``fh`` unbuffered."""

    def read_at(count: int, at: int) -> bytes:
        fh.seek(at)
        return fh.read(count)

    if read_at(8, 0) != _SIGNATURE:
        raise OSError("not a PNG file")
    found: list[tuple[bytes, bytes]] = []
    ihdr = b""
    pos, seen_idat, taken = 8, False, 0
    for _ in range(_MAX_CHUNKS):
        head = read_at(8, pos)
        if len(head) < 8:
            break  # no IEND: what came before stands (as in Pillow)
        length, kind = struct.unpack(">I4s", head)
        if not kind.isalpha():
            break  # not a chunk (Pillow stops reading metadata there too)
        if pos + 8 + length > size:
            raise OSError(f"truncated PNG file (chunk {kind.decode('latin-1')} at byte {pos} runs past the end)")
        if kind == b"IEND" or (animated and seen_idat and kind == b"fcTL"):
            break
        if kind == b"IHDR" and not ihdr:
            ihdr = read_at(min(length, 13), pos + 8)
        elif kind == b"IDAT":
            seen_idat = True
        elif seen_idat and kind in _METADATA and length <= _MAX_CHUNK and taken + length <= _MAX_CHUNK:
            found.append((kind, read_at(length, pos + 8)))
            taken += length
        pos += 12 + length
    return ihdr, found


def info_after_pixels(path: str | os.PathLike, *, animated: bool = False) -> dict:
    """What Pillow adds to a PNG's ``info`` when it decodes the pixels, read without decoding them.

    Parameters
    ----------
    path : str or os.PathLike
        A PNG file (Pillow opened it: its signature and IHDR are sound).
    animated : bool
        An animated PNG: only the chunks before the second frame count, as in Pillow.

    Returns
    -------
    dict
        The ``info`` entries of the metadata chunks after the image data (``"exif"``, ``"icc_profile"``,
        text keys such as ``"XML:com.adobe.xmp"``); empty without any.

    Raises
    ------
    OSError
        If a chunk runs past the end of the file (a file cut short), as Pillow's decoding does.
    SyntaxError, ValueError
        If Pillow refuses a metadata chunk (an unknown compression, a text chunk inflating past its limit).

    Examples
    --------
    >>> info_after_pixels("frame.png").get("exif")  # doctest: +SKIP
    b'Exif\\x00\\x00MM\\x00*...'
    """
    with open(path, "rb", buffering=0) as fh:  # (unbuffered: 8 bytes read a chunk, not a buffer's worth)
        ihdr, found = _trailing_chunks(fh, os.fstat(fh.fileno()).st_size, animated=animated)
    if not found or len(ihdr) != 13:
        return {}
    # Checksums made anew: Pillow checks them on opening, not in the chunks it reads after the pixels.
    small = b"".join([_SIGNATURE, _chunk(b"IHDR", ihdr), *(_chunk(k, d) for k, d in found), _chunk(b"IEND", b"")])
    from PIL import PngImagePlugin  # (imported by Pillow's first Image.open anyway; not at this module's import)

    with PngImagePlugin.PngImageFile(io.BytesIO(small)) as im:  # (not Image.open: its errors say what is wrong)
        return dict(im.info)
