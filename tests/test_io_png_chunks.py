"""A PNG's header without decoding its pixels: metadata after the IDAT chunks, and damaged chunk layouts."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from postfocus.errors import InputError
from postfocus.io.images import read_header, read_image
from postfocus.io.write import write_image

H, W = 60, 80


def _chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind)) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _exif(orientation: int = 6) -> Image.Exif:
    ex = Image.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = "Cam"
    return ex


def _png(before: bytes = b"", after: bytes = b"", *, cut: int = 0) -> bytes:
    """An 8-bit RGB PNG (OpenCV's IDAT) with chunks put before and after its image data, less ``cut`` end bytes."""
    y, x = np.mgrid[0:H, 0:W]
    px = np.dstack([x * 3, y * 4, (x * y) % 251]).astype(np.uint8)
    data = cv2.imencode(".png", px)[1].tobytes()
    idat = data.find(b"IDAT") - 4
    iend = data.rfind(b"IEND") - 4
    out = data[:idat] + before + data[idat:iend] + after + data[iend:]
    return out[: len(out) - cut]


def _write(tmp_path, data: bytes, name: str = "f.png"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail any pixel decoding by Pillow (``ImageFile.load``)."""
    def refuse(self):
        raise AssertionError("pixels decoded to read a header")
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_first_exif_chunk_counts(tmp_path, no_decoding):
    # (passes on main too: Pillow reads no further than the first IDAT when an eXIf chunk came before it)
    later = _chunk(b"eXIf", _exif(3).tobytes()[6:])
    assert read_header(_write(tmp_path, _png(before=_chunk(b"eXIf", _exif(6).tobytes()[6:]), after=later))).orientation == 6


def test_exif_after_pixels_read_without_decoding(tmp_path, no_decoding):
    # fails on main: Pillow's getexif() decodes the whole image to find an eXIf chunk after IDAT
    path = _write(tmp_path, _png(after=_chunk(b"eXIf", _exif(6).tobytes()[6:])))
    header = read_header(path)
    assert header.orientation == 6 and header.size == (W, H)
    ex = Image.Exif()
    ex.load(header.exif)
    assert ex[0x010F] == "Cam"


def test_png_without_exif_read_without_decoding(tmp_path, no_decoding):
    # fails on main (the whole image decoded to look for an eXIf chunk that is not there)
    header = read_header(_write(tmp_path, _png()))
    assert (header.width, header.height, header.bit_depth, header.grey, header.orientation, header.exif) == (
        W, H, 8, False, 1, None)


def test_corrupt_pixels_still_give_the_header(tmp_path):
    # fails on main: the header was refused there ("broken data stream"); the pixels are refused when read
    data = bytearray(_png(after=_chunk(b"eXIf", _exif(8).tobytes()[6:])))
    at = data.find(b"IDAT") + 30
    data[at:at + 40] = b"\xff" * 40
    path = _write(tmp_path, bytes(data))
    assert read_header(path).orientation == 8
    with pytest.raises(InputError, match="f.png: corrupt or truncated image"):
        read_image(path)


def _variants() -> dict[str, bytes]:
    exif = _chunk(b"eXIf", _exif(6).tobytes()[6:])
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>'
    raw = _exif(3).tobytes()
    raw_text = ("\nexif\n%8d\n" % len(raw) + raw.hex() + "\n").encode()
    return {
        "plain": _png(),
        "exif before": _png(before=exif),
        "exif after": _png(after=exif),
        "exif after, bad checksum": _png(after=exif[:-4] + b"\0\0\0\0"),
        "XMP after": _png(after=_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)),
        "raw profile after": _png(after=_chunk(b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(raw_text))),
        "text after": _png(after=_chunk(b"tEXt", b"Comment\0hello")),
        "no IEND": _png(after=exif, cut=12),
        "not a chunk after": _png(after=b"\0\0\0\0\x01\x02\x03\x04" + exif),
    }


@pytest.mark.parametrize("name", list(_variants()))
def test_same_header_as_after_decoding(tmp_path, name):
    # (passes on main too: the values Pillow gives after decoding, now read without it)
    path = _write(tmp_path, _variants()[name])
    with Image.open(path) as im:
        im.load()
        exif = im.getexif()
        expected = (exif.get(0x0112, 1), exif.tobytes() if len(exif) else None, im.info.get("icc_profile"))
    header = read_header(path)
    assert (header.orientation, header.exif, header.icc) == expected


def test_project_pngs_keep_their_header(tmp_path, no_decoding):
    # what io/write.py writes (its eXIf before IDAT), at both bit depths and both PNG encoders
    # (passes on main too)
    img = np.random.default_rng(0).random((30, 50, 3), dtype=np.float32)
    for level in (1, 6):
        for depth in (8, 16):
            path = write_image(tmp_path / f"p{level}{depth}.png", img, bit_depth=depth, exif=_exif(3).tobytes(),
                               description="test", png_level=level)
            header = read_header(path)
            assert (header.width, header.height, header.bit_depth, header.orientation) == (50, 30, depth, 1)
            assert b"Cam" in header.exif  # (upright now: orientation 1; the camera's fields kept)


@pytest.mark.parametrize("case", ["cut in the pixels", "cut in a chunk after", "IDAT of 2**31 bytes",
                                  "chunk after of 2**31 bytes", "chunk after Pillow refuses"])
def test_damaged_layouts_refused_in_one_line(tmp_path, case):
    # (passes on main too, but for the IDAT of 2**31 bytes: main's header decoded the pixels, all in the part
    # present, and took it; reading the pixels refused it)
    exif = _chunk(b"eXIf", _exif(6).tobytes()[6:])
    whole = _png(after=exif)
    data = {
        "cut in the pixels": whole[: len(whole) // 2],
        "cut in a chunk after": whole[: len(whole) - 12 - 10],
        "IDAT of 2**31 bytes": (lambda i: whole[:i] + struct.pack(">I", 2**31) + whole[i + 4:])(whole.find(b"IDAT") - 4),
        "chunk after of 2**31 bytes": _png(after=struct.pack(">I", 2**31) + b"tEXt" + b"abc"),
        "chunk after Pillow refuses": _png(after=_chunk(b"iCCP", b"icc\0\x01" + zlib.compress(b"x"))),
    }[case]
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=r"^.*f\.png: cannot read image header \(.*\)$") as err:
        read_header(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == data


def test_animated_png_stops_at_the_next_frame(tmp_path):
    # as Pillow: metadata after the second frame's control chunk is not the first frame's
    from postfocus.io.png_chunks import info_after_pixels  # (here: the module is new)

    y, x = np.mgrid[0:H, 0:W]
    frames = [Image.fromarray(np.dstack([x * 3, y * 4, x * 0]).astype(np.uint8)) for _ in range(2)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], exif=_exif(6))
    data = (tmp_path / "a.png").read_bytes()
    at = data.find(b"eXIf") - 4
    size = struct.unpack(">I", data[at:at + 4])[0] + 12
    chunk, rest = data[at:at + size], data[:at] + data[at + size:]
    path = _write(tmp_path, rest[:-12] + chunk + rest[-12:])
    assert info_after_pixels(path, animated=True) == {}
    assert "exif" in info_after_pixels(path, animated=False)
    assert read_header(path).orientation == 1
