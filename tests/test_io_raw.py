"""Camera RAW input: DNG files made here with tifffile, developed by LibRaw (rawpy).

The DNGs carry a Bayer (RGGB) mosaic of a synthetic scene in linear light, with
the tags LibRaw needs (DNGVersion, CFA layout, black and white level,
AsShotNeutral, ColorMatrix1) and EXIF/GPS metadata in real sub-IFDs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from postfocus.colour import srgb_encode
from postfocus.errors import InputError, PostfocusWarning
from postfocus.io.open import open_source
from postfocus.io.raw import RawFilesSource, open_raw_files, read_raw_header
from postfocus.io.metadata import embed_tiff_exif, tiff_exif_tags
from postfocus.pipeline.run import stack

rawpy = pytest.importorskip("rawpy")

H, W = 160, 240
BLACK, WHITE = 256, 16383
# Camera response: the green-normalised inverse of this is the camera white balance.
NEUTRAL = (0.5, 1.0, 0.7)
# sRGB (linear, D65) -> XYZ
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])

CAMERA_EXIF = {
    "make": "Postfocus",
    "model": "Synthetic DNG",
    "datetime": "2024:05:17 10:11:12",
    "exposure": (1, 125),
    "iso": 400,
    "fnumber": (56, 10),
    "focal": (100, 1),
    "lens": "Macro 100mm F2.8",
    "gps_lat": (48, 51, 30),
    "gps_lon": (2, 21, 5),
}


def camera_exif(datetime: str = CAMERA_EXIF["datetime"], orientation: int = 1) -> bytes:
    """EXIF of the synthetic camera: IFD0, an EXIF IFD and a GPS IFD."""
    c = CAMERA_EXIF
    ex = Image.Exif()
    ex[0x010F] = c["make"]
    ex[0x0110] = c["model"]
    ex[0x0132] = datetime
    ex[0x0112] = orientation
    ex[0x8769] = {
        0x829A: IFDRational(*c["exposure"]),
        0x829D: IFDRational(*c["fnumber"]),
        0x8827: c["iso"],
        0x9003: datetime,
        0x920A: IFDRational(*c["focal"]),
        0xA434: c["lens"],
    }
    ex[0x8825] = {
        0: b"\x02\x03\x00\x00",
        1: "N",
        2: tuple(IFDRational(v, 1) for v in c["gps_lat"]),
        3: "E",
        4: tuple(IFDRational(v, 1) for v in c["gps_lon"]),
    }
    return ex.tobytes()


def _srational(values, den: int = 10000) -> list[int]:
    out: list[int] = []
    for v in values:
        out += [int(round(v * den)), den]
    return out


def mosaic(rgb_linear: np.ndarray, neutral=NEUTRAL, exposure: float = 1.0) -> np.ndarray:
    """RGGB Bayer raw counts of a linear-light sRGB scene as a camera with response ``neutral`` sees it."""
    cam = rgb_linear * exposure
    cfa = np.empty(cam.shape[:2], np.float64)
    cfa[0::2, 0::2] = cam[0::2, 0::2, 0] * neutral[0]
    cfa[0::2, 1::2] = cam[0::2, 1::2, 1] * neutral[1]
    cfa[1::2, 0::2] = cam[1::2, 0::2, 1] * neutral[1]
    cfa[1::2, 1::2] = cam[1::2, 1::2, 2] * neutral[2]
    return np.clip(np.round(BLACK + cfa * (WHITE - BLACK)), 0, WHITE).astype(np.uint16)


def write_dng(
    path: Path,
    rgb_linear: np.ndarray,
    *,
    neutral=NEUTRAL,
    as_shot=None,
    exif: bytes | None = None,
    orientation: int = 1,
    cfa_pattern=(0, 1, 1, 2),
    compression: int = 1,
) -> Path:
    """Write a minimal uncompressed DNG (CFA in IFD0) of a linear-light sRGB scene.

    ``neutral`` is the camera's response to white; ``as_shot`` the AsShotNeutral
    recorded (the camera's white balance choice), by default ``neutral``.
    """
    raw = mosaic(rgb_linear, neutral)
    as_shot = neutral if as_shot is None else as_shot
    # ColorMatrix1 maps XYZ to camera: camera = diag(neutral) * XYZ->sRGB.
    cm = np.diag(neutral) @ np.linalg.inv(SRGB_TO_XYZ)
    cm = cm / cm.sum(axis=1).max()
    exif = camera_exif(orientation=orientation) if exif is None else exif
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(cfa_pattern), True),  # CFAPattern
        (50708, "s", 0, "Postfocus Synthetic DNG", True),  # UniqueCameraModel
        (50714, "H", 1, BLACK, True),  # BlackLevel
        (50717, "H", 1, WHITE, True),  # WhiteLevel
        (50721, 10, 9, _srational(cm.ravel()), True),  # ColorMatrix1 (SRATIONAL)
        (50728, 5, 3, _srational(as_shot), True),  # AsShotNeutral (RATIONAL)
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1 = D65
        *tiff_exif_tags(exif),  # Make, Model, DateTime, Orientation, EXIF and GPS IFD slots
    ]
    tifffile.imwrite(path, raw, photometric=32803, extratags=tags, metadata=None, software=False)
    assert embed_tiff_exif(path, exif)
    if compression != 1:
        patch_tag(path, 259, compression)
    return path


def patch_tag(path: Path, code: int, value: int) -> None:
    """Overwrite the (inline SHORT) value of tag ``code`` in IFD0."""
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].tags[code].valueoffset
    data = bytearray(path.read_bytes())
    data[offset : offset + 2] = int(value).to_bytes(2, "little")
    path.write_bytes(bytes(data))


def scene_linear(height: int = H, width: int = W, seed: int = 3) -> np.ndarray:
    """Linear-light sRGB scene with detail everywhere, deep shadows and clipped highlights."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 1.2)
    base = (base - base.min()) / (base.max() - base.min())
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (0.15 + 0.85 * xx / width)[..., None]
    scene = (base**2.2) * ramp * 0.8
    for cy, cx, r in ((40, 60, 9), (110, 180, 12), (120, 50, 7)):
        spot = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
        scene[spot] = 1.5  # specular highlights: clip at the white level
    return scene.astype(np.float32)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return image if sigma <= 0 else cv2.GaussianBlur(image, (0, 0), sigma)


def focus_frames(scene: np.ndarray, blurs) -> list[np.ndarray]:
    """Left half sharp in the first frames, right half in the last ones."""
    seam = scene.shape[1] // 2
    out = []
    for s_left, s_right in blurs:
        left, right = _blur(scene, s_left), _blur(scene, s_right)
        out.append(np.where(np.arange(scene.shape[1])[None, :, None] < seam, left, right))
    return out


BLURS = ((0.0, 3.0), (0.8, 2.0), (2.0, 0.8), (3.0, 0.0))


@pytest.fixture(scope="module")
def dng_stack(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("dng_stack")
    scene = scene_linear()
    return [write_dng(folder / f"IMG_{k:04d}.dng", f) for k, f in enumerate(focus_frames(scene, BLURS))]


def test_rawpy_decodes_the_synthetic_dng(tmp_path):
    scene = scene_linear()
    path = write_dng(tmp_path / "one.dng", scene)
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_pattern.tolist() == [[0, 1], [3, 2]]
        assert raw.white_level == WHITE
        wb = np.asarray(raw.camera_whitebalance[:3])
        assert np.allclose(wb / wb[1], [1 / n for n in NEUTRAL], rtol=1e-3)
    header = read_raw_header(path)
    assert header.size == (H, W)
    src = open_raw_files([path, path])
    rgb = src.develop(0)
    assert rgb.dtype == np.uint16 and rgb.shape == (H, W, 3)
    # Colour: developed linear values match the scene (white balance and colour matrix undone).
    inner = (slice(4, H - 4), slice(4, W - 4))
    lin = rgb[inner].astype(np.float64) / 65535
    truth = np.clip(scene[inner], 0, 1)
    unclipped = truth.max(axis=2) < 0.9
    err = np.abs(cv2.GaussianBlur(lin, (0, 0), 2) - cv2.GaussianBlur(truth.astype(np.float64), (0, 0), 2))
    assert np.median(err[unclipped]) < 0.02
    frame = src.read(0)
    assert frame.dtype == np.float32 and frame.shape == (H, W, 3)
    assert np.allclose(frame, srgb_encode(rgb))
    assert src.info.kind == "raw" and src.info.linear and src.info.bit_depth == 16 and src.info.icc


def test_orientation_applied_once(tmp_path):
    scene = scene_linear()
    scene[:20, :30] = 1.5  # a white block at the top-left of the sensor
    path = write_dng(tmp_path / "rot.dng", scene, orientation=6)
    src = open_raw_files([path, path])
    assert src.info.size == (W, H)
    frame = src.read(0)
    assert frame.shape == (W, H, 3)
    # Orientation 6: the sensor's top-left is shown at the top-right.
    assert frame[:18, -18:].min() > 0.95


def test_stack_of_dngs_gives_full_range_16bit_tiff(dng_stack, tmp_path):
    result = stack(dng_stack)
    out = result.save(tmp_path / "out.tif")
    pixels = tifffile.imread(out)
    assert pixels.dtype == np.uint16 and pixels.ndim == 3
    assert pixels.max() > 60000  # highlights reach white
    assert len(np.unique(pixels)) > 256  # more than 8-bit precision
    assert len(np.unique(pixels[..., 1])) > 4096
    # Tones are right: linear development encoded once with the sRGB curve.
    t, l, b, r = result.crop
    truth = srgb_encode(np.clip(scene_linear(), 0, 1))[t:b, l:r]
    assert abs(float(pixels.mean()) / 65535 - float(truth.mean())) < 0.02
    assert result.merged == [0, 1, 2, 3]


def test_stack_of_dngs_is_sharp_on_both_sides(dng_stack):
    result = stack(dng_stack, align="none", crop=False)
    truth = srgb_encode(np.clip(scene_linear(), 0, 1))
    src = open_source(dng_stack)
    first, last = src.read(0), src.read(len(src) - 1)
    left, right = (slice(8, H - 8), slice(8, W // 2 - 10)), (slice(8, H - 8), slice(W // 2 + 10, W - 8))

    def err(a, region):
        return float(np.mean(np.abs(a[region] - truth[region])))

    # The stack is as close to the truth as the sharp frame on each side, far closer than the blurred one.
    assert err(result.image, left) < 0.5 * err(last, left)
    assert err(result.image, right) < 0.5 * err(first, right)


def test_open_source_dispatches_dng_folder(dng_stack):
    src = open_source(dng_stack[0].parent)
    assert isinstance(src, RawFilesSource)
    assert src.names == [p.name for p in dng_stack]


def test_one_white_balance_for_all_frames(tmp_path):
    scene = scene_linear()
    paths = [
        write_dng(tmp_path / "a.dng", scene),
        write_dng(tmp_path / "b.dng", scene),  # the middle frame: its white balance is used
        write_dng(tmp_path / "c.dng", scene, as_shot=(0.4, 1.0, 0.9)),  # camera chose another balance
    ]
    with pytest.warns(PostfocusWarning, match="white balance of b.dng"):
        src = open_raw_files(paths)
    a, c = src.develop(0).astype(np.float64), src.develop(2).astype(np.float64)
    assert np.abs(a - c).max() <= 1  # same development despite the different as-shot balance


def test_mixed_raw_and_jpeg_refused(dng_stack, tmp_path):
    jpg = tmp_path / "frame.jpg"
    cv2.imwrite(str(jpg), np.full((H, W, 3), 128, np.uint8))
    with pytest.raises(InputError, match=r"frame\.jpg: .*RAW and other images cannot be stacked together") as err:
        open_source([dng_stack[0], jpg, dng_stack[1]])
    assert "\n" not in str(err.value)


def _one_line_naming(exc: pytest.ExceptionInfo, path: Path) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(str(path))
    return text


def test_unsupported_compression_refused(dng_stack, tmp_path):
    bad = tmp_path / "unsupported.dng"
    write_dng(bad, scene_linear(), compression=99)
    with pytest.raises(InputError) as exc:
        open_source([dng_stack[0], bad])
    assert "not a RAW file LibRaw" in _one_line_naming(exc, bad)


def test_broken_cfa_pattern_refused(dng_stack, tmp_path):
    bad = tmp_path / "badcfa.dng"
    write_dng(bad, scene_linear(), cfa_pattern=(7, 7, 7, 7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PostfocusWarning)  # its white balance reads differently too
        src = open_raw_files([dng_stack[0], bad])  # LibRaw accepts the header ...
    with pytest.raises(InputError) as exc:  # ... but cannot develop colour from it
        src.read(1)
    assert "colour filter pattern" in _one_line_naming(exc, bad)


def test_truncated_raw_refused(dng_stack, tmp_path):
    bad = tmp_path / "truncated.dng"
    data = dng_stack[0].read_bytes()
    bad.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(InputError) as exc:
        open_source([dng_stack[0], bad])
    assert "truncated or corrupt" in _one_line_naming(exc, bad)


def test_text_file_named_dng_refused(dng_stack, tmp_path):
    bad = tmp_path / "notes.dng"
    bad.write_text("shot list: ring, pcb, beetle\n" * 20)
    with pytest.raises(InputError) as exc:
        open_source([dng_stack[0], bad])
    assert "text file" in _one_line_naming(exc, bad)


def test_empty_and_missing_raw_refused(dng_stack, tmp_path):
    empty = tmp_path / "empty.nef"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as exc:
        open_raw_files([dng_stack[0], empty])
    assert "empty" in _one_line_naming(exc, empty)
    with pytest.raises(InputError, match="no such file"):
        open_raw_files([dng_stack[0], tmp_path / "gone.cr2"])


def test_single_raw_refused(dng_stack):
    with pytest.raises(InputError, match="at least two frames"):
        open_raw_files(dng_stack[:1])


def test_cli_bad_raw_exits_without_traceback(dng_stack, tmp_path, cli):
    bad = tmp_path / "broken.dng"
    data = dng_stack[0].read_bytes()
    bad.write_bytes(data[: int(len(data) * 0.3)])
    out = tmp_path / "out.tif"
    run = cli("-q", "stack", dng_stack[0], bad, dng_stack[1], "-o", out, "--no-cache")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert any(str(bad) in line and "truncated or corrupt" in line for line in run.err_lines)
    assert not out.exists()


def test_cli_stacks_dngs(dng_stack, tmp_path, cli):
    out = tmp_path / "cli.tif"
    run = cli("-q", "stack", *dng_stack, "-o", out, "--cache", tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    pixels = tifffile.imread(out)
    assert pixels.dtype == np.uint16 and pixels.max() > 60000
