"""What the decoders say, said by postfocus: damaged PNGs, unreadable EXIF, frames over Pillow's size limit."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from postfocus.errors import InputError, PostfocusWarning
from postfocus.io import decode
from postfocus.io.images import read_header, read_image

H, W = 40, 64


def _pixels() -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return np.dstack([x * 4, y * 6, 255 - x * 2 - y * 2]).astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _png(pixels: np.ndarray | None = None) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(_pixels() if pixels is None else pixels, cv2.COLOR_RGB2BGR))
    return buf.tobytes()


def _postfocus_warnings(caught) -> list[str]:  # noqa: ANN001
    return [str(w.message) for w in caught if issubclass(w.category, PostfocusWarning)]


# --- damaged PNGs: one line, nothing from libpng ----------------------------------------------------


def test_a_png_damaged_in_its_pixels_is_one_line_and_libpng_prints_nothing(tmp_path, capfd):
    # main: OpenCV's libpng printed "libpng error: IDAT: CRC error" on stderr beside postfocus's
    # "corrupt or truncated image (decoder failed)"
    data = bytearray(_png())
    at = data.index(b"IDAT") + 20
    data[at] ^= 0xFF  # a byte of the compressed pixels (the IDAT's CRC no longer matches either)
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        read_image(tmp_path / "bad.png")
    said = str(info.value)
    assert said.startswith(f"{tmp_path / 'bad.png'}: corrupt or truncated image (IDAT: "), said  # libpng's reason
    assert "\n" not in said
    assert capfd.readouterr().err == ""


def test_a_png_libpng_warns_about_is_read_with_one_postfocus_warning(tmp_path, capfd):
    # An iCCP chunk whose profile is garbage: Pillow reads the header, libpng warns "profile too long" and
    # decodes the pixels. main: "libpng warning: iCCP: ..." printed on stderr, no warning of postfocus's.
    data = _png()
    profile = bytes(range(256)) * 2
    bad = data[:33] + _chunk(b"iCCP", b"junk\x00\x00" + zlib.compress(profile)) + data[33:]
    (tmp_path / "iccp.png").write_bytes(bad)
    (tmp_path / "clean.png").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_image(tmp_path / "iccp.png", stored=True)
    said = _postfocus_warnings(caught)
    assert len(said) == 1 and said[0].startswith(f"{tmp_path / 'iccp.png'}: iCCP: ") and "libpng" in said[0], said
    assert np.array_equal(frame, read_image(tmp_path / "clean.png", stored=True))
    assert np.array_equal(frame, _pixels())
    assert capfd.readouterr().err == ""


LAYOUTS = {
    "rgb8": lambda px: cv2.imencode(".png", px)[1],
    "rgb16": lambda px: cv2.imencode(".png", px.astype(np.uint16) * 257 + 3)[1],
    "rgba16": lambda px: cv2.imencode(".png", np.dstack([px, px[..., :1]]).astype(np.uint16) * 250)[1],
    "grey16": lambda px: cv2.imencode(".png", px[..., 0].astype(np.uint16) * 251)[1],
    "grey8": lambda px: cv2.imencode(".png", px[..., 1])[1],
    "palette": lambda px: _pil(Image.fromarray(px).convert("P", palette=Image.ADAPTIVE, colors=16)),
    "palette_alpha": lambda px: _pil(Image.fromarray(px).convert("P", palette=Image.ADAPTIVE, colors=16),
                                     transparency=3),
    "one_bit": lambda px: _pil(Image.fromarray(px[..., 0] > 128)),
    "grey_alpha": lambda px: _pil(Image.fromarray(np.dstack([px[..., 0], px[..., 1]]), "LA")),
    "grey_trns": lambda px: _pil(Image.fromarray(px[..., 0]), transparency=5),
    "rgb_trns": lambda px: _pil(Image.fromarray(px), transparency=(1, 2, 3)),
}


def _pil(im: Image.Image, **options) -> bytes:  # noqa: ANN003
    out = io.BytesIO()
    im.save(out, "PNG", **options)
    return out.getvalue()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_png_pixels_are_opencvs_to_the_bit(tmp_path, layout):
    # the decoder changed from OpenCV's imread to imagecodecs' libpng: the same frame for every PNG layout
    rng = np.random.default_rng(3)
    path = tmp_path / f"{layout}.png"
    path.write_bytes(bytes(LAYOUTS[layout]((rng.random((H, W, 3)) * 255).astype(np.uint8))))
    expected = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if expected.ndim == 3:
        expected = cv2.cvtColor(expected, cv2.COLOR_BGRA2RGB if expected.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    else:
        expected = np.dstack([expected] * 3)
    frame = read_image(path, stored=True)
    assert frame.dtype == expected.dtype and np.array_equal(frame, expected)


# --- unreadable EXIF: the pixels are used, the metadata left out, said once -------------------------------------


def _jpeg_with_app1(payload: bytes) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(_pixels(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    data = buf.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


@pytest.mark.parametrize("where", ["png_before_pixels", "png_after_pixels", "jpeg"])
def test_unreadable_exif_is_left_out_with_one_warning_and_the_pixels_read(tmp_path, where):
    # main: the PNGs were refused ("cannot read image header (not a TIFF file ...)"); the JPEG was read with
    # nothing said
    garbage = b"garbage!not a TIFF structure"
    png = _png()
    if where == "png_before_pixels":
        data = png[:33] + _chunk(b"eXIf", garbage) + png[33:]
    elif where == "png_after_pixels":
        data = png[:-12] + _chunk(b"eXIf", garbage) + png[-12:]
    else:
        data = _jpeg_with_app1(b"Exif\x00\x00" + garbage)
    path = tmp_path / ("f.jpg" if where == "jpeg" else "f.png")
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = read_header(path)
        frame = read_image(path, header, stored=True)
    said = _postfocus_warnings(caught)
    assert len(said) == 1 and said[0].startswith(f"{path}: its EXIF metadata cannot be read ("), said
    assert header.orientation == 1 and header.exif is None
    if where == "jpeg":
        assert np.abs(frame.astype(int) - _pixels()).mean() < 2
    else:
        assert np.array_equal(frame, _pixels())


def test_readable_exif_says_nothing(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_pixels()).save(tmp_path / "ok.png", exif=exif)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = read_header(tmp_path / "ok.png")
    assert header.orientation == 6 and not _postfocus_warnings(caught)


# --- the project's size limit, not Pillow's ---------------------------------------------------------------------


def _flat_png(path, width: int, height: int) -> None:  # noqa: ANN001
    """A flat grey 8-bit RGB PNG of any size, written a row at a time (no array of its size is made)."""
    row = b"\x00" + b"\x80" * (3 * width)
    packer = zlib.compressobj(1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def test_a_200_megapixel_frame_opens_without_pillows_warning_or_refusal(tmp_path):
    # main: "image too large to decode (Image size (200000000 pixels) exceeds limit of 178956970 pixels, could be
    # decompression bomb DOS attack.)": Pillow's limit, not the project's (a medium-format frame)
    _flat_png(tmp_path / "medium_format.png", 16000, 12500)
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = read_header(tmp_path / "medium_format.png")
    assert header.size == (12500, 16000)
    assert not caught, [str(w.message) for w in caught]
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's setting put back


def test_a_frame_over_pillows_limit_is_decoded_without_its_warning(tmp_path, monkeypatch):
    # Pillow's limit made small enough that this frame is a "bomb" to it (a 200 MP frame's pixels are too many
    # to decode in a unit test); main: refused by read_header, and warned about by the decoder
    Image.fromarray(_pixels()).save(tmp_path / "a.jpg", quality=95)
    _flat_png(tmp_path / "b.png", W, H)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", H * W // 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("a.jpg", "b.png"):
            frame = read_image(tmp_path / name, stored=True)
            assert frame.shape == (H, W, 3)
    assert not caught, [str(w.message) for w in caught]
    assert Image.MAX_IMAGE_PIXELS == H * W // 3


def test_a_frame_over_the_projects_limit_is_refused_in_one_line_before_decoding(tmp_path, monkeypatch):
    _flat_png(tmp_path / "big.png", W, H)
    monkeypatch.setattr(decode, "MAX_FRAME_PIXELS", H * W - 1)
    with pytest.raises(InputError) as info:
        read_header(tmp_path / "big.png")
    assert str(info.value) == (f"{tmp_path / 'big.png'}: {W}x{H} (0.0 MP) is more than postfocus opens (0.0 MP); "
                               "make the frames smaller")


@pytest.mark.parametrize("shape", [(37, 29, 3), (1, 9, 3), (40, 64)])
def test_an_interlaced_png_is_read_whole_without_a_warning(tmp_path, shape):
    """An Adam7-interlaced PNG (a valid one) was read right but with "Interlace handling should be turned on when
    using png_read_image (libpng); the pixels are used": imagecodecs' own call, nothing wrong with the file.
    Fails on main."""
    pixels = np.random.default_rng(2).integers(0, 256, shape, np.uint8)
    h, w = shape[:2]
    raw = b""
    for y0, x0, dy, dx in [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
                           (1, 0, 2, 1)]:  # (Adam7's seven passes, each row unfiltered)
        part = pixels[y0::dy, x0::dx]
        raw += b"".join(b"\x00" + row.tobytes() for row in part) if part.size else b""
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if len(shape) == 3 else 0, 0, 0, 1)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    (tmp_path / "adam7.png").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_image(tmp_path / "adam7.png", stored=True)
    assert _postfocus_warnings(caught) == []
    assert np.array_equal(frame, pixels if len(shape) == 3 else np.dstack([pixels] * 3))
