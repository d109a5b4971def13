"""Encoding results: bit depth and compression checked per format, metadata put into a JPEG without encoding it again."""

from __future__ import annotations

import doctest
import io

import numpy as np
import pytest
from PIL import Image

from postfocus.errors import OptionError
from postfocus.io.encoding import check_encoding, jpeg_with_metadata, png_level, tiff_compression
from postfocus.io.write import output_exif, srgb_icc_profile, write_image


@pytest.mark.parametrize("module", ["postfocus.io.encoding", "postfocus.cli.output", "postfocus.products.aligned"])
def test_doctests(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("path, bits, compression, param", [
    ("a.jpg", 16, None, "bit_depth"),
    ("a.tif", 12, None, "bit_depth"),
    ("a.jpg", None, "lzw", "compression"),
    ("a.png", None, "lzw", "compression"),
    ("a.png", None, 10, "compression"),
    ("a.tif", None, "6", "compression"),
    ("a.tif", None, "zip", "compression"),
])
def test_check_encoding_names_the_parameter(path, bits, compression, param):
    with pytest.raises(OptionError) as err:
        check_encoding(path, bits, compression)
    assert err.value.param == param


@pytest.mark.parametrize("path, bits, compression", [
    ("a.jpg", 8, None), ("a.png", 16, 0), ("a.png", 8, "9"), ("a.png", None, "none"), ("a.tif", 16, "lzw"),
    ("a.tiff", 8, "none"), ("a.tif", None, "deflate"),
])
def test_check_encoding_accepts(path, bits, compression):
    check_encoding(path, bits, compression)


def test_codecs():
    assert [tiff_compression(c) for c in (None, "deflate", "lzw", "none")] == ["zlib", "zlib", "lzw", None]
    assert [png_level(c) for c in (None, "none", "deflate", 3, "9")] == [6, 0, 6, 3, 9]


def _jpeg(exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    pixels = (np.random.default_rng(1).random((16, 24, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90, **({"exif": exif} if exif else {}))
    return buf.getvalue()


def test_jpeg_with_metadata_keeps_the_picture_and_replaces_old_metadata():
    old = Image.Exif()
    old[0x0110] = "Old camera"
    jpeg = _jpeg(old.tobytes())
    new = Image.Exif()
    new[0x0110] = "New camera"
    out = jpeg_with_metadata(jpeg, output_exif(new.tobytes(), "frame 3", (16, 24)), srgb_icc_profile())
    with Image.open(io.BytesIO(out)) as im, Image.open(io.BytesIO(jpeg)) as before:
        ex = im.getexif()
        assert ex[0x0110] == "New camera" and ex[0x010E] == "frame 3"
        assert out.count(b"Exif\0\0") == 1 and im.info["icc_profile"] == srgb_icc_profile()
        assert np.array_equal(np.asarray(im), np.asarray(before))  # not encoded again
    assert out.endswith(jpeg[jpeg.index(b"\xff\xdb"):])


def test_jpeg_with_metadata_splits_a_large_profile():
    icc = bytes(range(256)) * 300  # 76.8 kB: two APP2 segments
    out = jpeg_with_metadata(_jpeg(), None, icc)
    assert out.count(b"ICC_PROFILE\0") == 2
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["icc_profile"] == icc


def test_jpeg_with_metadata_refuses_other_files():
    with pytest.raises(ValueError):
        jpeg_with_metadata(b"\x89PNG\r\n", None)


def test_write_image_compression(tmp_path):
    import tifffile

    image = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
    write_image(tmp_path / "a.tif", image, compression="lzw", bit_depth=8)
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.pages[0].compression == 5 and tif.pages[0].dtype == np.uint8
    with pytest.raises(OptionError):
        write_image(tmp_path / "b.png", image, compression="lzw")
    assert not (tmp_path / "b.png").exists()
