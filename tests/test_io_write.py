"""Writing results: atomic, with the reference frame's metadata, at full bit depth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from postfocus.errors import OutputError
from postfocus.io.images import read_image
from postfocus.io.write import atomic_write, check_output_path, to_uint, write_image
from postfocus.pipeline.run import stack


def smooth_image(h: int = 48, w: int = 64) -> np.ndarray:
    """Float RGB with thousands of distinct values per channel."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([x / (w - 1), y / (h - 1), (x + y * w) / (h * w - 1)]).astype(np.float32)


def camera_exif(orientation: int = 6) -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "TestCam"  # Make
    ex[0x0110] = "Model 7"  # Model
    ex[0x0132] = "2024:05:06 07:08:09"  # DateTime
    ex[0x0112] = orientation
    sub = ex.get_ifd(0x8769)
    sub[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal
    sub[0x829A] = IFDRational(1, 125)  # ExposureTime
    return ex.tobytes()


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# --- atomic writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_write_leaves_only_the_destination(tmp_path, suffix):
    out = write_image(tmp_path / f"result{suffix}", smooth_image())
    assert out == tmp_path / f"result{suffix}"
    assert leftovers(tmp_path, {out.name}) == []
    frame = read_image(out)
    assert frame.shape == (48, 64, 3)
    assert np.abs(frame - smooth_image()).mean() < 0.01
    assert (out.stat().st_mode & 0o777) == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "result.jpg"
    dest.write_bytes(b"previous result")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="result.jpg: cannot write") as excinfo:
        atomic_write(dest, half_then_fail)
    assert "\n" not in str(excinfo.value)
    assert dest.read_bytes() == b"previous result"
    assert leftovers(tmp_path, {"result.jpg"}) == []


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "result.png"
    dest.write_bytes(b"previous result")

    def interrupted(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(dest, interrupted)
    assert dest.read_bytes() == b"previous result"
    assert leftovers(tmp_path, {"result.png"}) == []


def test_encoder_failure_in_write_image(tmp_path, monkeypatch):
    dest = tmp_path / "result.jpg"
    dest.write_bytes(b"previous result")

    def disk_full(self, fp, *args, **kwargs):  # noqa: ANN001
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OutputError, match="No space left"):
        write_image(dest, smooth_image())
    assert dest.read_bytes() == b"previous result"
    assert leftovers(tmp_path, {"result.jpg"}) == []


def test_write_into_a_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="nowhere"):
        atomic_write(tmp_path / "nowhere" / "r.json", lambda p: p.write_text("{}"))
    assert leftovers(tmp_path, set()) == []


# --- metadata ---------------------------------------------------------------------------------------


def test_jpeg_carries_the_reference_exif(tmp_path):
    out = write_image(tmp_path / "r.jpg", smooth_image(), exif=camera_exif(orientation=6))
    with Image.open(out) as im:
        ex = im.getexif()
        sub = ex.get_ifd(0x8769)
    assert ex[0x010F] == "TestCam"
    assert ex[0x0110] == "Model 7"
    assert ex[0x0132] == "2024:05:06 07:08:09"
    assert ex[0x0112] == 1  # pixels are already upright
    assert str(ex[0x0131]).startswith("postfocus")
    assert sub.get(0x9003) == "2024:05:06 07:08:09"
    assert float(sub.get(0x829A)) == pytest.approx(1 / 125)
    # read back upright: the decoder must not turn the picture again
    assert read_image(out).shape == (48, 64, 3)


def test_jpeg_without_exif_has_upright_orientation(tmp_path):
    out = write_image(tmp_path / "r.jpg", smooth_image())
    with Image.open(out) as im:
        assert im.getexif().get(0x0112, 1) == 1


def test_quality_changes_the_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((64, 64, 3), dtype=np.float32)
    hi = write_image(tmp_path / "hi.jpg", img, quality=95)
    lo = write_image(tmp_path / "lo.jpg", img, quality=30)
    assert lo.stat().st_size < 0.6 * hi.stat().st_size
    assert np.abs(read_image(hi) - img).mean() < np.abs(read_image(lo) - img).mean()


@pytest.mark.parametrize("reference", [None, 0])
def test_stack_result_carries_the_reference_frame_exif(tmp_path, tiny_stack, reference):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, p in enumerate(tiny_stack.paths):
        ex = Image.Exif()
        ex[0x010F], ex[0x0110] = "TestCam", "Model 7"
        ex[0x0132] = f"2024:05:06 07:08:1{k}"  # every frame was taken at another time
        Image.open(p).save(folder / f"frame{k}.jpg", exif=ex, quality=95)
    res = stack(folder, reference=reference)
    out = res.save(tmp_path / "r.jpg")
    with Image.open(out) as im:
        ex = im.getexif()
    assert res.reference == (1 if reference is None else 0)
    assert ex[0x0132] == f"2024:05:06 07:08:1{res.reference}"
    assert (ex[0x010F], ex[0x0110], ex[0x0112]) == ("TestCam", "Model 7", 1)


# --- bit depth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_sixteen_bit_output_keeps_its_levels(tmp_path, suffix):
    img = smooth_image()
    out = write_image(tmp_path / f"r{suffix}", img, bit_depth=16)
    pixels = tifffile.imread(out) if suffix == ".tif" else np.asarray(read_image(out) * 65535 + 0.5, np.uint16)
    if suffix == ".tif":
        assert pixels.dtype == np.uint16
    assert len(np.unique(pixels[..., 2])) > 256
    assert np.abs(pixels / 65535 - img).max() < 1e-4


def _whole_array_levels(image: np.ndarray, bits: int) -> np.ndarray:
    """The rounding ``to_uint`` does a band of rows at a time, done on the whole array at once."""
    top = np.float32(255 if bits == 8 else 65535)
    return (np.clip(image, 0.0, 1.0).astype(np.float32) * top + np.float32(0.5)).astype(
        np.uint8 if bits == 8 else np.uint16)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [3, 0])
def test_conversion_in_bands_of_rows_equals_the_whole_array(bits, channels):
    """``to_uint`` converts about 1 MB of float rows at a time (87 rows of 4000x3): heights of one band,
    one row short of it and over it, several bands and a ragged last band give the whole array's levels,
    values outside [0, 1] clipped, float64 input included."""
    rng = np.random.default_rng(bits + channels)
    w = 4000
    step = (1 << 20) // (w * max(channels, 1))
    for h in (1, step - 1, step, step + 1, 2 * step + 5, 3 * step):
        shape = (h, w, channels) if channels else (h, w)
        image = rng.uniform(-0.1, 1.1, shape).astype(np.float32)
        for x in (image, image.astype(np.float64)):
            got = to_uint(x, bits)
            assert got.dtype == (np.uint8 if bits == 8 else np.uint16)
            np.testing.assert_array_equal(got, _whole_array_levels(x, bits))


def test_written_files_carry_the_whole_array_levels(tmp_path):
    """A 16-bit TIFF of an odd height over several bands holds the whole array's levels; a JPEG's pixels
    are those Pillow encodes from them (same quality, 4:4:4)."""
    image = smooth_image(2 * 87 + 13, 4000)
    tif = write_image(tmp_path / "r.tif", image)
    np.testing.assert_array_equal(tifffile.imread(tif), _whole_array_levels(image, 16))
    jpg = write_image(tmp_path / "r.jpg", image, quality=95)
    Image.fromarray(_whole_array_levels(image, 8)).save(tmp_path / "whole.jpg", quality=95, subsampling=0)
    with Image.open(jpg) as a, Image.open(tmp_path / "whole.jpg") as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_tiff_defaults_to_16_bit_and_jpeg_is_8_bit(tmp_path):
    tif = write_image(tmp_path / "r.tiff", smooth_image())
    assert tifffile.imread(tif).dtype == np.uint16
    with Image.open(write_image(tmp_path / "r.jpeg", smooth_image(), bit_depth=16)) as im:
        assert im.mode == "RGB"


def test_grey_output_is_single_channel(tmp_path):
    img = np.repeat(smooth_image()[..., :1], 3, axis=2)
    out = write_image(tmp_path / "g.png", img, grey=True)
    with Image.open(out) as im:
        assert im.mode == "L"


def test_sixteen_bit_stack_gives_a_sixteen_bit_tiff(tmp_path, tiny_stack):
    # 16-bit frames: the tiny stack with a slow 16-bit ramp added, so fine levels exist in every frame
    folder = tmp_path / "in16"
    folder.mkdir()
    ramp = np.linspace(0, 0.02, 300, dtype=np.float32)[None, :, None]
    for p in tiny_stack.paths:
        frame = np.clip(read_image(p) * 0.97 + ramp, 0, 1)
        tifffile.imwrite(folder / (p.stem + ".tif"), (frame * 65535 + 0.5).astype(np.uint16), photometric="rgb")
    res = stack(folder)
    assert res.info.bit_depth == 16
    out = res.save(tmp_path / "result.tif")
    pixels = tifffile.imread(out)
    assert pixels.dtype == np.uint16 and pixels.shape == res.image.shape
    assert len(np.unique(pixels[..., 1])) > 256
    assert np.mean(pixels % 257 != 0) > 0.5  # not 8-bit values stretched to 16 bit
    png = tifffile.imread(res.save(tmp_path / "result.tif2.tif"))
    assert np.array_equal(png, pixels)


# --- output path checks -------------------------------------------------------------------------------


def test_check_output_path(tmp_path):
    frame = tmp_path / "frame.jpg"
    frame.write_bytes(b"x")
    assert check_output_path(tmp_path / "ok.JPG") == tmp_path / "ok.JPG"
    with pytest.raises(OutputError, match=r"out\.gif: unknown output format"):
        check_output_path(tmp_path / "out.gif")
    with pytest.raises(OutputError, match=r"out: unknown output format"):
        check_output_path(tmp_path / "out")
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.jpg")
    with pytest.raises(OutputError, match="frame.jpg"):
        check_output_path(frame / "out.jpg")  # parent is a regular file
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_output_path(tmp_path / "dir.jpg")
    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputError, match="is one of the input frames"):
        check_output_path(tmp_path / "sub" / ".." / "frame.jpg", [frame])
    os.symlink(frame, tmp_path / "link.jpg")
    with pytest.raises(OutputError, match="is one of the input frames"):
        check_output_path(tmp_path / "link.jpg", [frame])


def test_jpeg_of_a_very_detailed_picture(tmp_path):
    """Pure noise compresses badly; the JPEG writer must still manage (found by the batch tests)."""
    import numpy as np

    from postfocus.io.images import read_image
    from postfocus.io.write import write_image

    noise = np.random.default_rng(0).random((600, 800, 3), dtype=np.float32)
    path = write_image(tmp_path / "noise.jpg", noise, quality=95)
    assert read_image(path).shape == (600, 800, 3)


def test_bytes_text_and_json_helpers_write_atomically(tmp_path):
    import json

    from postfocus.io.write import atomic_write_bytes, atomic_write_json, atomic_write_text

    assert atomic_write_bytes(tmp_path / "a.bin", b"\0\1").read_bytes() == b"\0\1"
    assert atomic_write_text(tmp_path / "b.txt", "é").read_bytes() == "é".encode("utf-8")
    path = atomic_write_json(tmp_path / "c.json", {"state": "done", "n": [1, 2]})
    assert path.read_text(encoding="utf-8") == json.dumps({"state": "done", "n": [1, 2]}, indent=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json"]


@pytest.mark.parametrize("bits,grey", [(8, False), (16, False), (8, True)])
def test_working_png_at_level_one_keeps_pixels_and_metadata(tmp_path, bits, grey):
    """Level 1 (the stack folder's images) is encoded by OpenCV with the Up filter: same pixels, same chunks."""
    img = smooth_image()
    if grey:
        img = np.repeat(img[..., :1], 3, axis=2)
    out = write_image(tmp_path / "w.png", img, bit_depth=bits, png_level=1, grey=grey, description="working copy")
    fast = read_image(out, stored=True)
    slow = read_image(write_image(tmp_path / "s.png", img, bit_depth=bits, png_level=6, grey=grey), stored=True)
    assert fast.dtype == (np.uint16 if bits == 16 else np.uint8) and np.array_equal(fast, slow)
    with Image.open(out) as im:
        assert im.info.get("Software", "").startswith("postfocus") and im.info.get("Description") == "working copy"
        assert ("icc_profile" in im.info) == (not grey)
