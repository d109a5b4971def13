"""Fast PNG files for working images: every row filtered "Up", deflated in pieces on several threads.

The stack folder keeps its all-in-focus image as a PNG at zlib level 1 (:func:`~postfocus.io.write.write_image`
with ``png_level=1``). It is written after the fusion, when nothing else is left to run, so its encoding
was a serial stretch at the end of every run: about 0.37 s of CPU for a 4K image with OpenCV's encoder,
one core idle (docs/performance.md, ninth session). Here the rows are filtered by NumPy and the filtered
bytes are cut into pieces that zlib deflates on as many threads as there are cores (zlib lets the GIL go
while it works). Each piece but the last ends on a byte boundary with an empty stored block (a sync flush),
so the pieces joined are one deflate stream, which the zlib header and the Adler-32 of all the filtered
bytes make the one zlib stream of the IDAT chunks, as the PNG format asks (the same construction as
parallel gzip tools: independent deflate streams joined by sync flushes).

The number of pieces follows the image's size only, so the file is the same on any machine. Any PNG
reader gives the same pixels as from OpenCV's file; the file is not the same bytes (8-bit: zlib's
run-length strategy, about 2 % larger, a fifth less CPU).

References
----------
.. [1] PNG (Portable Network Graphics) Specification, Third Edition, W3C, 2025: filter type 2 (Up),
   IHDR, IDAT, IEND.
.. [2] P. Deutsch and J-L. Gailly, "ZLIB Compressed Data Format Specification version 3.3", RFC 1950, 1996;
   P. Deutsch, "DEFLATE Compressed Data Format Specification version 1.3", RFC 1951, 1996.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["encode_png_fast"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PIECE_BYTES = 4 << 20  # filtered bytes per piece (at least; at most _MAX_PIECES pieces)
_MAX_PIECES = 8


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _filtered_up(pixels: np.ndarray) -> np.ndarray:
    """The image's rows as PNG stores them: big-endian samples, each row the byte-wise difference to the
    row above (filter type 2; the first row is its own, as the row above it counts as zeros), a filter
    byte before each."""
    h = pixels.shape[0]
    rows = pixels.astype(">u2", copy=False) if pixels.dtype == np.uint16 else pixels
    rows = np.ascontiguousarray(rows).view(np.uint8).reshape(h, -1)
    out = np.empty((h, 1 + rows.shape[1]), np.uint8)
    out[:, 0] = 2
    out[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps modulo 256, as the filter asks
    return out


def _deflate(piece: np.ndarray, last: bool, strategy: int) -> bytes:
    z = zlib.compressobj(1, zlib.DEFLATED, -15, 8, strategy)
    return z.compress(piece) + z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def encode_png_fast(pixels: np.ndarray, *, threads: int | None = None) -> bytes:
    """A whole PNG file of ``pixels`` (no metadata chunks: see :func:`~postfocus.io.metadata.png_with_metadata`).

    Parameters
    ----------
    pixels : numpy.ndarray
        (H, W) grey or (H, W, 3) RGB, uint8 or uint16.
    threads : int, optional
        Threads that deflate the pieces (default: the machine's cores). The file does not depend on it.

    Returns
    -------
    bytes
        The PNG file: IHDR, the IDAT chunks (one per piece), IEND.

    Raises
    ------
    ValueError
        For another shape or type.

    Examples
    --------
    >>> png = encode_png_fast(np.zeros((4, 6, 3), np.uint8))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    if pixels.dtype not in (np.uint8, np.uint16) or not (
            pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)) or 0 in pixels.shape:
        raise ValueError(f"a PNG is made of (H, W) or (H, W, 3) uint8 or uint16 pixels, not {pixels.dtype} "
                         f"{pixels.shape}")
    h, w = pixels.shape[:2]
    filtered = _filtered_up(pixels)
    pieces = np.array_split(filtered.reshape(-1), max(1, min(_MAX_PIECES, filtered.size // _PIECE_BYTES)))
    workers = max(1, min(len(pieces), threads or os.cpu_count() or 1))
    lasts = [i == len(pieces) - 1 for i in range(len(pieces))]
    # Runs of equal bytes: 8-bit rows filtered by Up are mostly runs and small values (a fifth less CPU
    # than zlib's default, 2 % larger); 16-bit rows' noisy low bytes are not (a third larger): default.
    strategies = [zlib.Z_RLE if pixels.dtype == np.uint8 else zlib.Z_DEFAULT_STRATEGY] * len(pieces)
    if workers == 1:
        deflated = list(map(_deflate, pieces, lasts, strategies))
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="postfocus-png") as pool:
            deflated = list(pool.map(_deflate, pieces, lasts, strategies))
    deflated[0] = b"\x78\x01" + deflated[0]  # zlib header: deflate, 32 KB window, fastest level
    deflated[-1] += struct.pack(">I", zlib.adler32(filtered))
    colour_type = 0 if pixels.ndim == 2 else 2
    header = struct.pack(">IIBBBBB", w, h, 8 * pixels.dtype.itemsize, colour_type, 0, 0, 0)
    return b"".join([_SIGNATURE, _chunk(b"IHDR", header), *(_chunk(b"IDAT", d) for d in deflated),
                     _chunk(b"IEND", b"")])
