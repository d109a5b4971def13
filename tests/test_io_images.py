"""Decoding still images: every format, depth and layout becomes float32 (H, W, 3) in [0, 1]."""

from __future__ import annotations

import warnings

import cv2
import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from postfocus.errors import InputError
from postfocus.io.images import EXIF_ORIENTATION, apply_orientation, read_header, read_image

H, W = 40, 64


def gradient_rgb8() -> np.ndarray:
    """Smooth colour content (JPEG-friendly) with a distinct value per channel."""
    y, x = np.mgrid[0:H, 0:W]
    r = x * 255 // (W - 1)
    g = y * 255 // (H - 1)
    b = 255 - (x + y) * 255 // (W + H - 2)
    return np.dstack([r, g, b]).astype(np.uint8)


def ramp16(h: int = H, w: int = W) -> np.ndarray:
    """16-bit ramp with h*w distinct levels spread over the full range."""
    return (np.arange(h * w, dtype=np.float64).reshape(h, w) * 65535 / (h * w - 1)).round().astype(np.uint16)


def check_frame(frame: np.ndarray, h: int = H, w: int = W) -> None:
    assert frame.dtype == np.float32
    assert frame.shape == (h, w, 3)
    assert float(frame.min()) >= 0.0 and float(frame.max()) <= 1.0
    assert frame.flags.c_contiguous


# --- 8-bit ------------------------------------------------------------------------------------------


def test_jpeg_colour(tmp_path):
    px = gradient_rgb8()
    Image.fromarray(px).save(tmp_path / "a.jpg", quality=95)
    hd = read_header(tmp_path / "a.jpg")
    assert (hd.size, hd.bit_depth, hd.grey) == ((H, W), 8, False)
    frame = read_image(tmp_path / "a.jpg")
    check_frame(frame)
    assert np.abs(frame - px / 255).mean() < 0.01  # lossy, but the channels are in RGB order
    assert frame[0, -1, 0] > 0.9 and frame[0, -1, 2] < 0.6  # top right: red high, blue lower


def test_jpeg_grey(tmp_path):
    px = gradient_rgb8()[:, :, 0]
    Image.fromarray(px, "L").save(tmp_path / "g.jpeg", quality=95)
    hd = read_header(tmp_path / "g.jpeg")
    assert hd.grey and hd.bit_depth == 8
    frame = read_image(tmp_path / "g.jpeg")
    check_frame(frame)
    assert np.array_equal(frame[..., 0], frame[..., 1]) and np.array_equal(frame[..., 0], frame[..., 2])
    assert np.abs(frame[..., 0] - px / 255).mean() < 0.01


def _jpeg_variants(tmp_path) -> dict[str, tuple]:
    """JPEG files of every common kind, each with whether OpenCV may decode it (:func:`read_image`'s fast path)."""
    rng = np.random.default_rng(7)
    px = np.clip(gradient_rgb8().astype(np.int16) + rng.integers(-40, 40, (H, W, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(px)
    files = {"420": ({"quality": 95}, True), "444": ({"quality": 90, "subsampling": 0}, True),
             "422": ({"quality": 80, "subsampling": 1}, True), "progressive": ({"quality": 90, "progressive": True}, True),
             "restarts": ({"quality": 90, "restart_marker_blocks": 2}, True),
             "turned": ({"quality": 92, "exif": exif_with_orientation(6)}, True)}
    out = {}
    for name, (options, fast) in files.items():
        im.save(tmp_path / f"{name}.jpg", **options)
        out[name] = (tmp_path / f"{name}.jpg", fast)
    im.convert("L").save(tmp_path / "grey.jpg", quality=90)
    im.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=90)
    whole = (tmp_path / "420.jpg").read_bytes()
    (tmp_path / "trailing.jpg").write_bytes(whole + b"\0\0camera data")  # after the end-of-image marker
    out.update(grey=(tmp_path / "grey.jpg", True), cmyk=(tmp_path / "cmyk.jpg", False),
               trailing=(tmp_path / "trailing.jpg", False))
    return out


def test_jpeg_pixels_are_pillows_whichever_library_decodes_them(tmp_path, monkeypatch):
    # A whole 8-bit grey or colour JPEG is decoded by imagecodecs' libjpeg-turbo (faster), everything else by
    # Pillow; both give Pillow's own pixels to the bit, with the EXIF orientation applied once.
    decoded = []
    decode = imagecodecs.jpeg8_decode
    monkeypatch.setattr(imagecodecs, "jpeg8_decode", lambda *a: decoded.append(1) or decode(*a))
    for name, (path, fast) in _jpeg_variants(tmp_path).items():
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            reference = np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))
        if reference.ndim == 2:
            reference = np.repeat(reference[..., None], 3, axis=2)
        decoded.clear()
        pixels = read_image(path, stored=True)
        assert len(decoded) == int(fast), name
        assert pixels.dtype == np.uint8 and pixels.shape == reference.shape, name
        assert np.array_equal(pixels, reference), name


def test_jpeg_cut_short_is_still_refused(tmp_path):
    # libjpeg fills a cut scan with grey and only warns: such a file never reaches OpenCV, Pillow refuses it
    Image.fromarray(gradient_rgb8()).save(tmp_path / "a.jpg", quality=95)
    whole = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(InputError, match=r"cut\.jpg: corrupt or truncated image") as excinfo:
        read_image(tmp_path / "cut.jpg")
    assert "\n" not in str(excinfo.value)


def test_png_colour_and_grey_are_exact(tmp_path):
    px = gradient_rgb8()
    Image.fromarray(px).save(tmp_path / "c.png")
    Image.fromarray(px[:, :, 1], "L").save(tmp_path / "g.png")
    c = read_image(tmp_path / "c.png")
    g = read_image(tmp_path / "g.png")
    check_frame(c)
    check_frame(g)
    assert np.abs(c * 255 - px).max() < 1e-3
    assert np.abs(g * 255 - px[:, :, 1:2]).max() < 1e-3
    assert not read_header(tmp_path / "c.png").grey and read_header(tmp_path / "g.png").grey


def test_png_palette(tmp_path):
    px = gradient_rgb8()
    Image.fromarray(px).quantize(64).save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")) / 255
    frame = read_image(tmp_path / "p.png")
    check_frame(frame)
    assert np.abs(frame - expected).max() < 1e-3


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_rgba_alpha_is_dropped(tmp_path, suffix):
    px = gradient_rgb8()
    alpha = np.zeros((H, W), np.uint8)
    alpha[:, W // 2 :] = 255  # half transparent: colour must not be premultiplied or blended
    rgba = np.dstack([px, alpha])
    path = tmp_path / f"rgba{suffix}"
    if suffix == ".png":
        Image.fromarray(rgba, "RGBA").save(path)
    else:
        tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=["unassalpha"])
    hd = read_header(path)
    assert not hd.grey
    frame = read_image(path)
    check_frame(frame)
    assert np.abs(frame * 255 - px).max() < 1e-3


def test_grey_alpha_png(tmp_path):
    px = gradient_rgb8()[:, :, 0]
    la = np.dstack([px, np.full_like(px, 128)])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert read_header(tmp_path / "la.png").grey
    frame = read_image(tmp_path / "la.png")
    check_frame(frame)
    assert np.abs(frame[..., 2] * 255 - px).max() < 1e-3


# --- 16-bit -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["png-grey", "png-rgb", "tif-grey", "tif-rgb", "tif-planar"])
def test_16_bit_keeps_its_levels(tmp_path, kind):
    ramp = ramp16()
    if kind.endswith("grey"):
        pixels = ramp
    else:
        pixels = np.dstack([ramp, ramp[::-1, ::-1], np.full_like(ramp, 1000)])
    path = tmp_path / ("x.png" if kind.startswith("png") else "x.tif")
    if kind.startswith("png"):
        out = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(path), out)
    elif kind == "tif-planar":
        tifffile.imwrite(path, np.moveaxis(pixels, -1, 0), photometric="rgb", planarconfig="separate")
    else:
        tifffile.imwrite(path, pixels, photometric="minisblack" if pixels.ndim == 2 else "rgb")
    hd = read_header(path)
    assert hd.bit_depth == 16
    assert hd.grey == kind.endswith("grey")
    frame = read_image(path)
    check_frame(frame)
    assert len(np.unique(frame[..., 0])) > 256  # H*W = 2560 distinct levels survive
    expected = pixels if pixels.ndim == 3 else pixels[..., None]
    assert np.abs(frame * 65535 - expected).max() < 0.05
    if kind.endswith("rgb") or kind == "tif-planar":
        assert frame[0, 0, 0] == 0.0 and frame[0, 0, 1] == 1.0  # channel order kept


def test_8_bit_tiff_grey(tmp_path):
    px = gradient_rgb8()[:, :, 2]
    tifffile.imwrite(tmp_path / "g8.tiff", px, photometric="minisblack")
    hd = read_header(tmp_path / "g8.tiff")
    assert (hd.bit_depth, hd.grey) == (8, True)
    frame = read_image(tmp_path / "g8.tiff")
    check_frame(frame)
    assert np.abs(frame[..., 1] * 255 - px).max() < 1e-3


# --- EXIF orientation -------------------------------------------------------------------------------


def marked_image() -> np.ndarray:
    """Dark image, W > H, with a red block at the top-left and a green block at the top-right."""
    px = np.full((H, W, 3), 30, np.uint8)
    px[:10, :10] = (255, 0, 0)
    px[:10, -10:] = (0, 255, 0)
    return px


def exif_with_orientation(value: int) -> Image.Exif:
    ex = Image.Exif()
    ex[0x0112] = value
    ex[0x010F] = "TestMake"
    return ex


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpeg_orientation_applied(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(marked_image()).save(path, exif=exif_with_orientation(orientation), quality=95)
    hd = read_header(path)
    assert hd.orientation == orientation
    frame = read_image(path)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path))) / 255  # Pillow as the independent reference
    assert frame.shape == upright.shape
    assert hd.size == upright.shape[:2]
    assert np.abs(frame - upright).max() < 1e-6
    red = frame[..., 0] > 0.8
    green = frame[..., 1] > 0.8
    ry, rx = np.argwhere(red).mean(axis=0)
    gy, gx = np.argwhere(green).mean(axis=0)
    if orientation == 6:  # turned 90 degrees clockwise: top-left -> top-right, top-right -> bottom-right
        assert frame.shape[:2] == (W, H)
        assert ry < 10 and rx > H - 10 and gy > W - 10 and gx > H - 10
    elif orientation == 3:  # turned 180 degrees
        assert frame.shape[:2] == (H, W)
        assert ry > H - 10 and rx > W - 10 and gy > H - 10 and gx < 10
    else:  # 8: turned 90 degrees counter-clockwise: top-left -> bottom-left
        assert frame.shape[:2] == (W, H)
        assert ry > W - 10 and rx < 10 and gy < 10 and gx < 10


def test_png_orientation_applied_once(tmp_path):
    path = tmp_path / "o6.png"
    Image.fromarray(marked_image()).save(path, exif=exif_with_orientation(6))
    frame = read_image(path)
    assert frame.shape == (W, H, 3)
    assert frame[2, H - 3, 0] > 0.9  # red block at the top right


def test_tiff_orientation_applied_once(tmp_path):
    path = tmp_path / "o3.tif"
    tifffile.imwrite(path, marked_image(), photometric="rgb", extratags=[(274, "H", 1, 3, True)])
    assert read_header(path).orientation == 3
    frame = read_image(path)
    assert frame.shape == (H, W, 3)
    assert frame[H - 3, W - 3, 0] > 0.9 and frame[2, 2, 0] < 0.2  # red block moved to the bottom right


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation):
    px = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(px)
    ex = im.getexif()
    ex[0x0112] = orientation
    im.info["exif"] = ex.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(apply_orientation(px, orientation), expected)


# --- refusals ---------------------------------------------------------------------------------------


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("not a picture\n")
    with pytest.raises(InputError, match="notes.jpg: not an image"):
        read_header(p)


def test_truncated_png_is_refused(tmp_path):
    Image.fromarray(gradient_rgb8()).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(InputError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.jpg: no such file"):
        read_header(tmp_path / "nope.jpg")


# --- names that lie, sizes Pillow distrusts ---------------------------------------------------------


def test_content_decides_the_decoder_not_the_suffix(tmp_path):
    ramp = ramp16()
    assert cv2.imwrite(str(tmp_path / "sixteen.png"), np.dstack([ramp] * 3))
    (tmp_path / "sixteen.png").rename(tmp_path / "sixteen.jpg")  # a 16-bit PNG named .jpg
    Image.fromarray(gradient_rgb8()).save(tmp_path / "jpeg.tif", format="JPEG", quality=95)  # a JPEG named .tif
    frame = read_image(tmp_path / "sixteen.jpg")
    assert read_header(tmp_path / "sixteen.jpg").bit_depth == 16
    assert len(np.unique(frame[..., 0])) > 256
    frame = read_image(tmp_path / "jpeg.tif")
    check_frame(frame)
    assert np.abs(frame - gradient_rgb8() / 255).mean() < 0.01


def test_large_photo_is_read_without_warning(tmp_path, monkeypatch, recwarn):
    # Pillow calls anything above MAX_IMAGE_PIXELS (89 MP by default) a possible decompression
    # bomb; a 100 MP camera JPEG is an ordinary photo. Emulate with a tiny limit.
    Image.fromarray(gradient_rgb8()).save(tmp_path / "big.jpg", quality=95)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", H * W - 100)
    assert read_header(tmp_path / "big.jpg").size == (H, W)
    frame = read_image(tmp_path / "big.jpg")
    check_frame(frame)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# --- unusual but legitimate files -------------------------------------------------------------------


def test_float_tiff_is_read_and_cleaned(tmp_path):
    # 32-bit float RGB TIFF (HDR merges, scientific cameras): Pillow cannot open it, tifffile can
    px = np.dstack([np.linspace(0, 1, W, dtype=np.float32)[None, :].repeat(H, 0)] * 3)
    px[0, 0, 0], px[1, 1, 1], px[2, 2, 2] = np.nan, np.inf, -np.inf
    tifffile.imwrite(tmp_path / "f.tif", px, photometric="rgb", extratags=[(274, "H", 1, 3, True)])
    hd = read_header(tmp_path / "f.tif")
    assert (hd.size, hd.grey, hd.orientation, hd.format) == ((H, W), False, 3, "TIFF")
    frame = read_image(tmp_path / "f.tif")
    check_frame(frame)
    assert np.isfinite(frame).all()
    upright = px[::-1, ::-1]
    ok = np.isfinite(upright)
    assert np.abs(frame[ok] - upright[ok]).max() < 1e-6
    assert frame[H - 1, W - 1, 0] == 0.0 and frame[H - 2, W - 2, 1] == 1.0  # nan -> 0, inf -> 1


@pytest.mark.parametrize("value", [9, 0, (6, 1)])
def test_malformed_orientation_is_not_a_crash(tmp_path, value):
    ex = Image.Exif()
    ex[0x0112] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about the two-entry tag
        Image.fromarray(marked_image()).save(tmp_path / "o.jpg", exif=ex, quality=95)
        hd = read_header(tmp_path / "o.jpg")
        frame = read_image(tmp_path / "o.jpg")
    expected = 6 if value == (6, 1) else 1
    assert hd.orientation == expected
    assert frame.shape == ((W, H, 3) if expected == 6 else (H, W, 3))


def test_not_a_regular_file():
    with pytest.raises(InputError, match="/dev/null: not a regular file"):
        read_header("/dev/null")


def test_exif_bytes_are_made_when_asked_and_are_pillows(tmp_path):
    path = tmp_path / "a.jpg"
    exif = Image.Exif()
    exif[0x0110] = "postfocus test camera"  # Model
    exif[EXIF_ORIENTATION] = 6
    Image.new("RGB", (30, 20), (10, 20, 30)).save(path, exif=exif)
    header = read_header(path)
    assert header.orientation == 6 and header.size == (30, 20)
    assert isinstance(header.exif_block, tuple)  # not written back yet
    with Image.open(path) as im:
        expected = im.getexif().tobytes()
    assert header.exif == expected and header.exif is header.exif  # made once
    plain = tmp_path / "b.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert read_header(plain).exif is None


def _damaged_inside(path, whole: bytes) -> None:
    """``whole`` with 300 bytes of its entropy data lost, its end marker kept (libjpeg warns, fills, goes on)."""
    middle = len(whole) // 2
    path.write_bytes(whole[:middle] + whole[middle + 300:])


def test_a_jpeg_damaged_inside_decodes_as_pillow_does_and_libjpeg_says_nothing(tmp_path, cli):
    # libjpeg's own "Corrupt JPEG data: premature end of data segment" used to reach the terminal from OpenCV's
    # decoder (C, fd 2); the pixels are Pillow's, and stderr has no line the photographer cannot place.
    rng = np.random.default_rng(3)
    folder = tmp_path / "stack"
    folder.mkdir()
    scene = np.repeat(np.repeat(gradient_rgb8().astype(np.int16), 4, axis=0), 4, axis=1) + \
        rng.integers(-60, 60, (4 * H, 4 * W, 3))
    for k in range(3):
        px = np.clip(scene + rng.integers(-3, 3, scene.shape), 0, 255).astype(np.uint8)
        Image.fromarray(px).save(folder / f"f{k}.jpg", quality=95)
    _damaged_inside(folder / "f1.jpg", (folder / "f1.jpg").read_bytes())
    with Image.open(folder / "f1.jpg") as im:
        reference = np.asarray(im.convert("RGB"))
    assert np.array_equal(read_image(folder / "f1.jpg", stored=True), reference)
    run = cli("stack", folder, "-o", tmp_path / "out.jpg")
    assert run.returncode == 0, run.stderr
    assert "Corrupt JPEG data" not in run.stderr and "premature end" not in run.stderr, run.stderr
    assert (tmp_path / "out.jpg").is_file()


def test_an_empty_file_is_said_as_empty(tmp_path):
    # main: "not an image file (or a format postfocus cannot read)"; a video's says "empty file (0 bytes)"
    (tmp_path / "IMG_0001.jpg").write_bytes(b"")
    with pytest.raises(InputError) as info:
        read_header(tmp_path / "IMG_0001.jpg")
    assert str(info.value) == f"{tmp_path / 'IMG_0001.jpg'}: empty file (0 bytes), not an image"
