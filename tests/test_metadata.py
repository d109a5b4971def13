"""Metadata and precision of results: EXIF, GPS, ICC, Software, description, orientation, 16 bits.

Every output format (JPEG, 8/16-bit PNG, 16-bit TIFF) is read back with Pillow
(and the TIFF with tifffile too) to check what a photo editor will see.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from PIL.TiffImagePlugin import IFDRational

from postfocus._version import __version__
from postfocus.io.open import open_source
from postfocus.io.metadata import embed_tiff_exif, srgb_icc_profile, tiff_exif_tags
from postfocus.io.raw_metadata import raw_exif
from postfocus.io.metadata import describe_stack
from postfocus.io.write import write_image
from postfocus.pipeline.run import stack

from test_io_raw import BLURS, CAMERA_EXIF, camera_exif, focus_frames, scene_linear, write_dng

OUTPUTS = ("out.jpg", "out.png", "out16.png", "out.tif")
SOFTWARE = f"postfocus {__version__}"


def read_back(path: Path) -> tuple[Image.Exif, bytes | None, str, tuple[int, int]]:
    """(EXIF, ICC profile, description text, (width, height)) as Pillow sees the file."""
    with Image.open(path) as im:
        ex = im.getexif()
        ex.get_ifd(0x8769), ex.get_ifd(0x8825)  # load the sub-IFDs while the file is open
        return ex, im.info.get("icc_profile"), ex.get(0x010E, ""), im.size


def save_all(result, folder: Path) -> dict[str, Path]:
    out = {}
    for name in OUTPUTS:
        bit_depth = 16 if name in ("out16.png", "out.tif") else 8
        out[name] = result.save(folder / name, bit_depth=bit_depth)
    return out


@pytest.fixture(scope="module")
def raw_outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw_meta")
    frames = focus_frames(scene_linear(), BLURS)
    paths = [write_dng(folder / f"DSC{k:05d}.dng", f) for k, f in enumerate(frames)]
    result = stack(paths)
    return result, save_all(result, folder)


@pytest.mark.parametrize("name", OUTPUTS)
def test_raw_exif_round_trip(raw_outputs, name):
    result, outputs = raw_outputs
    ex, icc, description, size = read_back(outputs[name])
    c = CAMERA_EXIF
    assert ex[0x010F] == c["make"] and ex[0x0110] == c["model"]
    assert ex[0x0132] == c["datetime"]
    assert ex[0x0112] == 1  # pixels are upright
    assert ex[0x0131] == SOFTWARE
    sub = ex.get_ifd(0x8769)
    assert float(sub[0x829A]) == pytest.approx(c["exposure"][0] / c["exposure"][1])
    assert sub[0x8827] == c["iso"]
    assert sub[0x9003] == c["datetime"]
    assert float(sub[0x829D]) == pytest.approx(5.6)
    assert sub[0xA434] == c["lens"]
    assert 0x927C not in sub  # no maker notes with stale offsets
    gps = ex.get_ifd(0x8825)
    assert gps[1] == "N" and gps[3] == "E"
    assert tuple(float(v) for v in gps[2]) == pytest.approx(c["gps_lat"])
    assert tuple(float(v) for v in gps[4]) == pytest.approx(c["gps_lon"])
    assert description == "postfocus: frames 0-3 of 4, method depthmap, reference 2"
    assert icc == srgb_icc_profile()  # RAW is developed to sRGB and says so
    h, w = result.image.shape[:2]
    assert size == (w, h)


def test_raw_tiff_metadata_with_tifffile(raw_outputs):
    _, outputs = raw_outputs
    with tifffile.TiffFile(outputs["out.tif"]) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.samplesperpixel == 3
        tags = page.tags
        assert tags["Software"].value == SOFTWARE
        assert tags["Make"].value == CAMERA_EXIF["make"]
        assert tags["ImageDescription"].value.startswith("postfocus: frames 0-3 of 4")
        assert tags["InterColorProfile"].value == srgb_icc_profile()
        exif = tags["ExifTag"].value
        assert exif["ISOSpeedRatings"] == CAMERA_EXIF["iso"]
        assert tuple(exif["ExposureTime"]) == CAMERA_EXIF["exposure"]
        gps = tags["GPSTag"].value
        assert gps["GPSLatitudeRef"] == "N"


def test_png_chunks_of_16bit_output(raw_outputs):
    _, outputs = raw_outputs
    data = outputs["out16.png"].read_bytes()
    chunks, at = [], 8
    while at < len(data):
        n = struct.unpack(">I", data[at : at + 4])[0]
        chunks.append(data[at + 4 : at + 8])
        at += 12 + n
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    first_idat = chunks.index(b"IDAT")
    for kind in (b"iCCP", b"eXIf", b"tEXt"):
        assert kind in chunks[:first_idat]
    assert data[24] == 16  # bit depth in IHDR
    with Image.open(outputs["out16.png"]) as im:
        assert im.info["Software"] == SOFTWARE
        assert im.info["Description"].startswith("postfocus: frames")


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_exiftool_reads_outputs(raw_outputs):
    """An independent reader (the one photo tools rely on) sees the same tags."""
    _, outputs = raw_outputs
    for path in outputs.values():
        text = subprocess.run(["exiftool", "-s", "-Make", "-ISO", "-GPSLatitudeRef", "-ProfileDescription",
                               "-Software", str(path)], capture_output=True, text=True, check=True).stdout
        assert f"Make                            : {CAMERA_EXIF['make']}" in text, (path, text)
        assert "ISO                             : 400" in text, (path, text)
        assert "GPSLatitudeRef                  : North" in text, (path, text)
        assert "sRGB" in text and SOFTWARE in text, (path, text)


def gradient_and_texture(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth 2-D gradient on the left third, texture on the rest (float64 RGB)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy = yy * np.sqrt(0.5)  # incommensurate x and y slopes: (almost) every pixel has its own value
    grad = np.stack([0.1 + 0.6 * xx / width + 0.2 * yy / height,
                     0.2 + 0.5 * xx / width + 0.1 * yy / height,
                     0.3 + 0.3 * xx / width + 0.25 * yy / height], axis=-1)
    rng = np.random.default_rng(1)
    tex = cv2.GaussianBlur(rng.random((height, width, 3)), (0, 0), 1.0)
    tex = 0.2 + 0.6 * (tex - tex.min()) / (tex.max() - tex.min())
    return grad, tex


def custom_profile() -> bytes:
    """A colour profile distinguishable from the default sRGB one (other device manufacturer)."""
    profile = bytearray(srgb_icc_profile())
    profile[48:52] = b"PFTS"
    return bytes(profile)


def write_tiff16(path: Path, rgb: np.ndarray, icc: bytes | None, exif: bytes | None) -> Path:
    pixels = (np.clip(rgb, 0, 1) * 65535 + 0.5).astype(np.uint16)
    tifffile.imwrite(path, pixels, photometric="rgb", iccprofile=icc, metadata=None,
                     extratags=tiff_exif_tags(exif))
    embed_tiff_exif(path, exif)
    return path


@pytest.fixture(scope="module")
def tiff16_stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiff16")
    h, w = 160, 240
    grad, tex = gradient_and_texture(h, w)
    split = w // 3
    paths = []
    for k, sigma in enumerate((0.0, 1.5, 3.0)):
        # Defocus blurs light, i.e. in linear values (as a lens does and as exposure matching assumes).
        textured = tex if sigma == 0 else cv2.GaussianBlur(tex ** 2.2, (0, 0), sigma) ** (1 / 2.2)
        frame = np.where(np.arange(w)[None, :, None] < split, grad, textured)
        exif = camera_exif(datetime=f"2024:05:17 10:11:{12 + k:02d}")
        paths.append(write_tiff16(folder / f"f{k}.tif", frame, custom_profile(), exif))
    return paths, split


def test_16bit_stack_keeps_precision_end_to_end(tiff16_stack, tmp_path):
    paths, split = tiff16_stack
    src = open_source(paths)
    assert src.info.bit_depth == 16
    result = stack(src)
    out = result.save(tmp_path / "grad.tif")
    pixels = tifffile.imread(out)
    assert pixels.dtype == np.uint16
    t, l, b, r = result.crop
    region = pixels[10 : b - t - 10, 10 : split - l - 10]
    levels = len(np.unique(region[..., 0]))
    assert levels > 1000, levels  # 8-bit processing anywhere would leave at most ~75 here
    # And the values are the gradient's, to 16-bit accuracy (not only many levels).
    grad, _ = gradient_and_texture(160, 240)
    truth = np.round(grad[t:b, l:r][10 : b - t - 10, 10 : split - l - 10] * 65535)
    assert np.abs(region.astype(np.float64) - truth).max() <= 64


def test_icc_and_exif_from_image_inputs_carried(tiff16_stack, tmp_path):
    paths, _ = tiff16_stack
    result = stack(paths, method="pyramid")
    for name in OUTPUTS:
        bit_depth = 16 if name in ("out16.png", "out.tif") else 8
        path = result.save(tmp_path / name, bit_depth=bit_depth)
        ex, icc, description, _ = read_back(path)
        assert icc == custom_profile(), name  # the inputs' profile, not the default
        assert ex[0x010F] == CAMERA_EXIF["make"]
        assert ex.get_ifd(0x8769)[0x8827] == CAMERA_EXIF["iso"]
        assert ex.get_ifd(0x8825)[1] == "N"
        assert ex[0x0131] == SOFTWARE
        assert "method pyramid" in description
        # TIFF structure tags of the input frames are not copied into the outputs' EXIF.
        assert 0x0111 not in ex or name == "out.tif"


def test_jpeg_without_input_profile_gets_srgb(tiny_stack, tmp_path):
    result = stack(tiny_stack.folder)
    assert result.info.icc is None
    path = result.save(tmp_path / "tiny.jpg")
    ex, icc, description, _ = read_back(path)
    assert icc == srgb_icc_profile()
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    assert "sRGB" in ImageCms.getProfileDescription(profile)
    assert ex[0x0131] == SOFTWARE and ex[0x0112] == 1
    assert description == "postfocus: frames 0-2 of 3, method depthmap, reference 1"


def test_orientation_applied_once(tmp_path):
    """A portrait JPEG stored sideways (orientation 6) gives an upright result tagged 1."""
    h, w = 120, 180
    _, tex = gradient_and_texture(h, w)
    tex[:20, :30] = 1.0  # white block at the stored top-left: shows at the top-right when upright
    paths = []
    for k, sigma in enumerate((0.0, 2.0)):
        frame = tex if sigma == 0 else cv2.GaussianBlur(tex, (0, 0), sigma)
        ex = Image.Exif()
        ex[0x0112] = 6
        ex[0x010F] = "Postfocus"
        path = tmp_path / f"p{k}.jpg"
        Image.fromarray((frame * 255 + 0.5).astype(np.uint8)).save(path, exif=ex.tobytes(), quality=95)
        paths.append(path)
    result = stack(paths, align="none", crop=False)
    assert result.image.shape[:2] == (w, h)
    out = result.save(tmp_path / "upright.jpg")
    ex, _, _, size = read_back(out)
    assert ex[0x0112] == 1 and size == (h, w)
    with Image.open(out) as im:
        pixels = np.asarray(im)
    assert pixels[:25, -15:].min() > 200  # the 20x30 block, now 30 rows x 20 columns


def test_grey_output_has_no_colour_profile(tmp_path):
    image = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    for name in ("g.png", "g.jpg", "g.tif"):
        path = write_image(tmp_path / name, image, grey=True, icc=srgb_icc_profile())
        with Image.open(path) as im:
            assert im.mode in ("L", "I;16", "I;16B", "I")
            assert not im.info.get("icc_profile")


def test_describe_stack_ranges():
    assert describe_stack([0, 1, 2, 3, 4, 5, 6, 7], 8, "depthmap") == "postfocus: frames 0-7 of 8, method depthmap"
    assert describe_stack([0, 2, 3, 7], 9, "pyramid", 3) == (
        "postfocus: frames 0,2-3,7 of 9, method pyramid, reference 3"
    )


def test_srgb_profile_is_stable():
    assert srgb_icc_profile() == srgb_icc_profile()
    assert srgb_icc_profile()[24:36] == struct.pack(">6H", 2024, 1, 1, 0, 0, 0)


# RAW metadata containers LibRaw would read but no test file exists for here.


def _tiff_blob(ifd0: dict, sub: dict | None = None) -> bytes:
    ex = Image.Exif()
    for tag, value in ifd0.items():
        ex[tag] = value
    if sub:
        ex[0x8769] = sub
    return ex.tobytes()[6:]  # plain TIFF bytes


def test_cr3_metadata_boxes(tmp_path):
    """CR3 keeps IFD0 in a CMT1 box and the EXIF IFD in CMT2 (as TIFF structures)."""
    cmt1 = _tiff_blob({0x010F: "Canon", 0x0110: "Canon EOS R5", 0x0132: "2024:06:01 08:00:00"})
    cmt2 = _tiff_blob({0x829A: IFDRational(1, 60), 0x8827: 800, 0xA434: "RF100mm F2.8 L MACRO IS USM"})

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    data = box(b"ftyp", b"crx \0\0\0\1crx isom") + box(b"moov", box(b"uuid", b"\0" * 16 + box(b"CMT1", cmt1)
                                                                     + box(b"CMT2", cmt2)))
    path = tmp_path / "IMG_0001.CR3"
    path.write_bytes(data + b"\0" * 256)
    ex = Image.Exif()
    ex.load(raw_exif(path))
    assert ex[0x010F] == "Canon" and ex[0x0110] == "Canon EOS R5"
    sub = ex.get_ifd(0x8769)
    assert sub[0x8827] == 800 and sub[0xA434].startswith("RF100mm")
    assert float(sub[0x829A]) == pytest.approx(1 / 60)


def test_raf_metadata_from_embedded_jpeg(tmp_path):
    ex = Image.Exif()
    ex[0x010F] = "FUJIFILM"
    ex[0x0110] = "X-T5"
    ex[0x8769] = {0x8827: 160}
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="JPEG", exif=ex.tobytes())
    jpeg = buf.getvalue()
    head = b"FUJIFILMCCD-RAW 0201FF383501".ljust(84, b"\0") + struct.pack(">II", 100, len(jpeg))
    path = tmp_path / "DSCF0001.RAF"
    path.write_bytes(head.ljust(100, b"\0") + jpeg)
    out = Image.Exif()
    out.load(raw_exif(path))
    assert out[0x010F] == "FUJIFILM" and out[0x0110] == "X-T5"
    assert out.get_ifd(0x8769)[0x8827] == 160


@pytest.mark.parametrize("tag", [0x8298, 0x013B, 0x010F], ids=["copyright", "artist", "make"])
def test_a_result_of_photos_whose_exif_fills_its_64_kb_gets_exif_a_jpeg_can_hold(tmp_path, tag):
    """A photo's EXIF holds up to 64 KB; one whose IFD0 text (a long copyright, artist or make) nearly fills it got
    postfocus's Software and description added, and every JPEG result of it was "internal error: ValueError: EXIF
    data is too long" (``postfocus stack``; in the web app the job failed as an internal error), as was
    ``save_image(..., description=...)`` with a long description (review20). The result keeps what fits: the
    camera's text tags go before the orientation, Software and the description, and a description too long is cut."""
    rng = np.random.default_rng(3)
    pixels = rng.random((40, 60, 3)).astype(np.float32)
    source = Image.Exif()
    source[0x0110] = "Model"
    source[tag] = "c" * 65300
    out = write_image(tmp_path / "a.jpg", pixels, exif=source.tobytes(), description="postfocus: all-in-focus")
    exif, *_ = read_back(out)
    assert exif[0x0112] == 1 and exif[0x0131].startswith("postfocus") and exif[0x010E] == "postfocus: all-in-focus"
    assert exif.get(0x0110) == "Model"  # (the short camera tags stay)
    out = write_image(tmp_path / "b.jpg", pixels, exif=None, description="d" * 100_000)
    exif, *_ = read_back(out)
    assert exif[0x010E].startswith("ddd") and len(exif[0x010E]) < 65000 and exif[0x0112] == 1
