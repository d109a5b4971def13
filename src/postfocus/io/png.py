"""Fast PNG files for working images: every row filtered "Up", deflated by libdeflate in one call.

The stack folder keeps its all-in-focus image as a PNG at zlib level 1 (:func:`~postfocus.io.write.write_image`
with ``png_level=1``). It is written after the fusion, at the end of every run, so its encoding is on the
run's critical path: about 0.37 s of CPU for a 4K image with OpenCV's encoder (docs/performance.md, ninth
session), 0.26 s with zlib at level 1 on rows filtered by NumPy, **0.14 s with libdeflate at level 1**
(imagecodecs, a dependency already), whose file is also 6 % smaller (twelfth session). libdeflate lets the
GIL go while it works, so the caller can run other work (the command line's own output) beside it.

The rows are filtered by Up in NumPy; the filtered bytes are one zlib stream (header, deflate, Adler-32 of
all the filtered bytes) cut into IDAT chunks, as the PNG format asks. Any PNG reader gives the same pixels
as from OpenCV's or Pillow's file; the bytes are libdeflate's. Where imagecodecs was built without
libdeflate, zlib at level 1 makes the stream (the same pixels, a larger file, more CPU).

With a helper thread (``threads=2``, fifteenth session) the stream is made on two cores: libdeflate deflates
the last rows on the calling thread in one call (its last block is the stream's final one), while the helper
deflates the first rows with zlib in pieces of 1 MB, each ended by a sync flush (blocks that are not final,
ending on a byte) [2]_; the calling thread takes the pieces still waiting once libdeflate is done. The pieces
and the last part make one deflate stream; the Adler-32 is taken over all the filtered bytes. zlib at level 1
takes about 2.4x libdeflate's time a byte, so 30 % of the bytes go to its pieces: a 4K image's stream in
about 0.07-0.08 s of wall instead of 0.105 s (0.04 s more CPU, a file about 2 % larger; other bytes, the same
pixels). The bytes do not depend on which thread made which piece.

References
----------
.. [1] PNG (Portable Network Graphics) Specification, Third Edition, W3C, 2025: filter type 2 (Up),
   IHDR, IDAT, IEND.
.. [2] P. Deutsch and J-L. Gailly, "ZLIB Compressed Data Format Specification version 3.3", RFC 1950, 1996;
   P. Deutsch, "DEFLATE Compressed Data Format Specification version 1.3", RFC 1951, 1996.
.. [3] E. Biggers, libdeflate (https://github.com/ebiggers/libdeflate), level 1.
"""

from __future__ import annotations

import struct
import threading
import zlib

import numpy as np

__all__ = ["encode_png_fast"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IDAT_BYTES = 8 << 20  # compressed bytes per IDAT chunk (any split gives the same stream)
_PIECE_BYTES = 1 << 20  # filtered bytes of one zlib piece (threads=2)
_ZLIB_SHARE = 0.3  # share of the filtered bytes deflated in zlib pieces (threads=2); libdeflate takes the rest
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 kB window, "fastest" (libdeflate's own header at level 1)


def _chunk(kind: bytes, data: bytes | memoryview) -> bytes:
    return b"".join((struct.pack(">I", len(data)), kind, data, struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))))


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


def _zlib_stream(filtered: np.ndarray) -> bytes:
    """The filtered bytes as one zlib stream at level 1: libdeflate's (the GIL let go), else zlib's."""
    data = filtered.reshape(-1)
    try:
        from imagecodecs import DEFLATE, deflate_encode
    except ImportError:  # pragma: no cover - imagecodecs is a dependency
        DEFLATE = None
    if DEFLATE is not None and DEFLATE.available:
        return deflate_encode(data, level=1)
    return zlib.compress(data, 1)


def _zlib_piece(data: np.ndarray) -> bytes:
    """Raw deflate blocks of ``data`` at zlib's level 1, none final, ending on a byte (a sync flush)."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    return deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)


def _two_thread_stream(data: np.ndarray) -> bytes | None:
    """The filtered bytes as one zlib stream made on the calling thread and a helper; None where libdeflate is
    missing or the bytes are too few to share (then :func:`_zlib_stream` makes it)."""
    try:
        from imagecodecs import DEFLATE, deflate_adler32, deflate_encode
    except ImportError:  # pragma: no cover - imagecodecs is a dependency
        return None
    split = int(data.size * _ZLIB_SHARE)
    if not DEFLATE.available or split < _PIECE_BYTES:
        return None
    bounds = [*range(0, split, _PIECE_BYTES), split]
    pieces: list[bytes | None] = [None] * (len(bounds) - 1)
    claimed = iter(range(len(pieces)))  # (each piece taken once, by whichever thread asks first)
    lock = threading.Lock()

    def take_pieces(helping: bool) -> None:
        try:
            while True:
                with lock:
                    i = next(claimed, None)
                if i is None:
                    return
                pieces[i] = _zlib_piece(data[bounds[i]:bounds[i + 1]])
        except BaseException:  # (a helper that failed leaves its piece to the calling thread, which says why)
            if not helping:
                raise

    helper = threading.Thread(target=take_pieces, args=(True,), name="postfocus-png", daemon=True)
    helper.start()
    try:
        last = deflate_encode(data[split:], level=1, raw=True)
        take_pieces(False)
    finally:
        helper.join()
    pieces = [_zlib_piece(data[bounds[i]:bounds[i + 1]]) if p is None else p for i, p in enumerate(pieces)]
    return b"".join([_ZLIB_HEADER, *pieces, last, struct.pack(">I", deflate_adler32(data))])


def encode_png_fast(pixels: np.ndarray, *, threads: int = 1) -> bytes:
    """A whole PNG file of ``pixels`` (no metadata chunks: see :func:`~postfocus.io.metadata.png_with_metadata`).

    Parameters
    ----------
    pixels : numpy.ndarray
        (H, W) grey or (H, W, 3) RGB, uint8 or uint16.
    threads : int
        1: one libdeflate call on the calling thread; 2 (or more): the stream made on the calling thread and one
        helper thread (other bytes, the same pixels; an image under ~4 MB of rows is made as with 1).

    Returns
    -------
    bytes
        The PNG file: IHDR, the IDAT chunks (8 MB of the zlib stream each), IEND.

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
    stream = memoryview((threads > 1 and _two_thread_stream(filtered.reshape(-1))) or _zlib_stream(filtered))
    colour_type = 0 if pixels.ndim == 2 else 2
    header = struct.pack(">IIBBBBB", w, h, 8 * pixels.dtype.itemsize, colour_type, 0, 0, 0)
    idat = [_chunk(b"IDAT", stream[at:at + _IDAT_BYTES]) for at in range(0, max(1, len(stream)), _IDAT_BYTES)]
    return b"".join([_SIGNATURE, _chunk(b"IHDR", header), *idat, _chunk(b"IEND", b"")])
