"""Tests for postfocus.io.png: working PNG files, rows filtered Up, deflated by libdeflate (zlib without it)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from postfocus.io.png import encode_png_fast
from postfocus.io.write import write_image


def _pixels(shape: tuple[int, ...], dtype, seed: int = 0) -> np.ndarray:
    """A photo-like image (smooth, with fine noise and flat runs), full range of ``dtype``."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    smooth = cv2.GaussianBlur(rng.random(shape[:2] + (shape[2] if len(shape) == 3 else 1,), dtype=np.float32),
                              (0, 0), 8).reshape(shape)
    image = (smooth - smooth.min()) / max(float(np.ptp(smooth)), 1e-6) + 0.02 * rng.standard_normal(shape)
    image[: shape[0] // 8] = 0.5  # a flat band
    return np.clip(image * top, 0, top).astype(dtype)


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    out, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data, (crc,) = png[at + 4:at + 8], png[at + 8:at + 8 + length], struct.unpack(
            ">I", png[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(data, zlib.crc32(kind))
        out.append((kind, data))
        at += 12 + length
    return out


@pytest.mark.parametrize("shape", [(1500, 2000, 3), (1500, 2000), (7, 5, 3), (1, 1)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_any_reader_gets_the_pixels_back(shape, dtype):
    pixels = _pixels(shape, dtype)
    png = encode_png_fast(pixels)
    back = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back[..., ::-1] if pixels.ndim == 3 else back, pixels)
    if dtype == np.uint8:  # (Pillow reads 16-bit RGB as 8 bits)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)
    kinds = [k for k, _ in _chunks(png)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"}
    idat = b"".join(d for k, d in _chunks(png) if k == b"IDAT")
    rows = zlib.decompress(idat)  # one zlib stream over all the IDAT chunks, its Adler-32 checked
    assert len(rows) == shape[0] * (1 + pixels[0].size * pixels.itemsize)


def test_a_large_image_is_one_zlib_stream_in_idat_chunks_no_larger_than_opencvs():
    pixels = _pixels((2160, 3840, 3), np.uint8)
    png = encode_png_fast(pixels)
    idat = [d for k, d in _chunks(png) if k == b"IDAT"]
    assert len(idat) >= 2 and all(len(d) == 8 << 20 for d in idat[:-1])  # one stream cut into chunks of 8 MB
    assert zlib.decompress(b"".join(idat))[:1] == b"\x02"  # (its Adler-32 checked; every row filtered Up)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1], pixels)
    assert encode_png_fast(pixels) == png  # the same file every time
    # no larger than OpenCV's own file at level 1 with the same filter (libdeflate: smaller)
    ok, opencv = cv2.imencode(".png", pixels[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER,
                                                          cv2.IMWRITE_PNG_FILTER_UP])
    assert ok and len(png) < opencv.size


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_without_libdeflate_zlib_makes_the_same_pixels(monkeypatch, dtype):
    import imagecodecs

    pixels = _pixels((300, 500, 3), dtype)
    fast = encode_png_fast(pixels)
    monkeypatch.setattr(imagecodecs.DEFLATE, "available", False)
    plain = encode_png_fast(pixels)
    assert plain != fast
    for png in (fast, plain):
        back = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(back[..., ::-1], pixels)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4), np.float32),
                                 np.zeros((0, 4, 3), np.uint8)])
def test_other_arrays_are_refused(bad):
    with pytest.raises(ValueError, match="PNG"):
        encode_png_fast(bad)


@pytest.mark.parametrize("bits", [8, 16])
def test_working_files_keep_the_pixels_and_the_metadata(tmp_path, bits):
    image = _pixels((300, 400, 3), np.uint16).astype(np.float32) / 65535
    path = write_image(tmp_path / "w.png", image, bit_depth=bits, png_level=1, description="a test")
    reference = write_image(tmp_path / "r.png", image, bit_depth=bits, png_level=6)  # another encoder (Pillow
    read = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # or OpenCV at level 6), the same pixels
    np.testing.assert_array_equal(read, cv2.imread(str(reference), cv2.IMREAD_UNCHANGED))
    assert read.dtype == (np.uint8 if bits == 8 else np.uint16)
    with Image.open(path) as im:
        assert im.info.get("Description") == "a test" and im.info.get("icc_profile")


def _stream(png: bytes) -> bytes:
    return b"".join(d for k, d in _chunks(png) if k == b"IDAT")


@pytest.mark.parametrize("shape,dtype", [((2160, 3840, 3), np.uint8), ((1429, 1906, 3), np.uint8),
                                         ((900, 1200, 3), np.uint16)])
def test_two_threads_make_one_zlib_stream_of_the_same_rows(shape, dtype):
    pixels = _pixels(shape, dtype)
    one, two = encode_png_fast(pixels), encode_png_fast(pixels, threads=2)
    assert two != one  # (zlib's pieces, then libdeflate's last part: other bytes)
    assert zlib.decompress(_stream(two)) == zlib.decompress(_stream(one))  # the same filtered rows, Adler-32 checked
    back = cv2.imdecode(np.frombuffer(two, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(back, pixels)
    if dtype == np.uint8:
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(two))), pixels)
    assert encode_png_fast(pixels, threads=2) == two  # the same file every time, whichever thread made a piece
    assert len(two) < 1.05 * len(one)
    # zlib's pieces end with a sync flush each (an empty stored block), before libdeflate's part
    pieces = zlib.decompressobj(-15)
    assert pieces.decompress(_stream(two)[2:2 + 4096]) and b"\x00\x00\xff\xff" in _stream(two)


def test_a_small_image_on_two_threads_is_one_libdeflate_call():
    pixels = _pixels((300, 500, 3), np.uint8)  # (under a piece of zlib's share: nothing to share)
    assert encode_png_fast(pixels, threads=2) == encode_png_fast(pixels)


def test_a_piece_the_helper_failed_is_made_by_the_calling_thread(monkeypatch):
    import threading

    import postfocus.io.png as png_module

    pixels = _pixels((1500, 2000, 3), np.uint8)
    expected = encode_png_fast(pixels, threads=2)
    made = png_module._zlib_piece
    helpers, failed = [], threading.Event()

    def piece(data):
        if threading.current_thread().name == "postfocus-png":
            helpers.append(data.size)
            failed.set()
            raise MemoryError("the helper's piece")
        failed.wait(10)  # (the calling thread's pieces after the helper's failure: it claims one of three)
        return made(data)

    monkeypatch.setattr(png_module, "_zlib_piece", piece)
    assert encode_png_fast(pixels, threads=2) == expected
    assert len(helpers) == 1  # it stopped at its failure; the calling thread made every piece, its own too
