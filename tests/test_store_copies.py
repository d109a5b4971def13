"""A photo stack's frames kept as copies of their files (store/write.py FileCopies), warped when read."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from postfocus.io.images import read_image
from postfocus.io.write import to_uint
from postfocus.pipeline.run import process


def test_frames_are_the_input_files_and_a_full_merge_gives_the_image_again(tiny_stack_factory, tmp_path):
    stack = tiny_stack_factory(tmp_path / "jpeg", ".jpg")
    ps = process(stack.folder, cache_dir=tmp_path / "cache")
    assert ps.frames_unwarped
    for i in ps.used:
        assert ps.frame_path(i).read_bytes() == stack.paths[i].read_bytes()  # no decode, no second loss
    image = ps.all_in_focus()
    # The frames read back as pass 2 decoded them: merging them all again gives the written image
    # (to within a float rounding at a few pixels: pass 2 warped whole frames ahead, a merge warps footprints).
    diff = np.abs(to_uint(ps.merge(), 8).astype(int) - to_uint(image, 8))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.002
    ps.verify()


def test_exif_orientation_and_16_bit_read_back_as_pass_2_saw_them(tiny_stack_factory, tmp_path):
    upright = tiny_stack_factory(tmp_path / "upright", ".png")
    turned = tmp_path / "turned"
    turned.mkdir()
    for path in upright.paths:  # stored on its side, Exif orientation 6 (rotate 90 clockwise to view)
        im = Image.open(path).rotate(90, expand=True)
        exif = Image.Exif()
        exif[0x0112] = 6
        im.save(turned / (path.stem + ".jpg"), quality=98, exif=exif.tobytes())
    ps = process(turned, cache_dir=tmp_path / "cache")
    ref = process(upright.folder, cache_dir=tmp_path / "cache")
    assert ps.size == ref.size
    frame = ps.read_frame(ps.used[0])
    assert frame.shape[:2] == ps.size
    assert np.abs(frame - ref.read_frame(ref.used[0])).mean() < 0.02  # upright, like the PNG's (JPEG loss only)

    deep = tmp_path / "deep"
    deep.mkdir()
    for path in upright.paths:
        pixels = read_image(path)
        Image.fromarray((pixels[..., 1] * 65535).astype(np.uint16)).save(deep / path.name)  # 16-bit grey PNG
    ps16 = process(deep, cache_dir=tmp_path / "cache")
    assert ps16.frames_unwarped and ps16.frames().read_pixels(ps16.used[0]).dtype == np.uint16


@pytest.mark.parametrize("kind", ["missing", "changed"])
def test_a_damaged_copy_is_made_again(tiny_stack_factory, tmp_path, kind):
    stack = tiny_stack_factory(tmp_path / "jpeg", ".jpg")
    ps = process(stack.folder, cache_dir=tmp_path / "cache")
    path = ps.frame_path(ps.used[1])
    if kind == "missing":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.warns(Warning):
        again = process(stack.folder, cache_dir=tmp_path / "cache")
    assert again.frame_path(again.used[1]).read_bytes() == stack.paths[1].read_bytes()


@pytest.mark.parametrize("when", ["after pass 1", "in pass 2"])
def test_a_photo_rewritten_while_processed_leaves_no_folder(tiny_stack_factory, tmp_path, when):
    """A copy must be the file the folder's key names: a photo rewritten during the run (after pass 1 read
    it, or after its copy while pass 2 reads) is refused, so that putting it back as it was (same bytes,
    same time: a restore) cannot find a folder whose copy is the other photo."""
    import os

    from postfocus.errors import InputError

    stack = tiny_stack_factory(tmp_path / "jpeg", ".jpg")
    other = tiny_stack_factory(tmp_path / "other", ".png")
    victim = stack.paths[0]
    data, st = victim.read_bytes(), victim.stat()
    changed = []

    def progress(stage, done, total):
        first = stage == "align and measure"
        if not changed and done == total and (first if when == "after pass 1" else not first):
            Image.open(other.paths[2]).save(victim, quality=90)
            changed.append(stage)

    with pytest.raises(InputError, match="changed while it was being processed"):
        process(stack.folder, cache_dir=tmp_path / "cache", progress=progress)
    assert changed
    assert not list((tmp_path / "cache").rglob("manifest.json"))  # no folder kept under the old key
    victim.write_bytes(data)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # put back as it was
    ps = process(stack.folder, cache_dir=tmp_path / "cache")
    assert ps.frame_path(ps.used[0]).read_bytes() == data


def test_a_saved_frame_carries_its_kept_copys_exif_not_what_is_at_the_input_path_now(tiny_stack_factory, tmp_path):
    upright = tiny_stack_factory(tmp_path / "upright", ".png")
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, path in enumerate(upright.paths):
        exif = Image.Exif()
        exif[0x0132] = f"2026:01:01 10:00:0{k}"  # DateTime: each frame's own
        Image.open(path).save(folder / (path.stem + ".jpg"), quality=95, exif=exif.tobytes())
    ps = process(folder, cache_dir=tmp_path / "cache")
    exif = Image.Exif()
    exif[0x0132] = "2030:12:31 23:59:59"
    Image.open(upright.paths[2]).save(folder / "frame0.jpg", quality=80, exif=exif.tobytes())  # another photo there
    out = ps.save_frame(0, tmp_path / "frame0_aligned.jpg")
    with Image.open(out) as im:
        assert im.getexif().get(0x0132) == "2026:01:01 10:00:00"  # the photo that was processed (its copy)


def test_a_photo_gone_before_its_copy_is_an_input_error_not_a_cache_one(tiny_stack_factory, tmp_path):
    """The CLI answers a CacheError with "choose another folder with --cache DIR" (and `stack` merges again
    without the cache): a photo that cannot be read is the input's problem."""
    from postfocus.errors import InputError
    from postfocus.store import CacheError

    stack = tiny_stack_factory(tmp_path / "jpeg", ".jpg")

    def progress(stage, done, total):
        if stage == "align and measure" and done == total:
            stack.paths[1].unlink(missing_ok=True)  # moved away after pass 1 read it

    with pytest.raises(InputError, match="frame1.jpg: cannot read the photo to keep") as caught:
        process(stack.folder, cache_dir=tmp_path / "cache", progress=progress)
    assert not isinstance(caught.value, CacheError)
    assert not list((tmp_path / "cache").rglob("manifest.json"))
