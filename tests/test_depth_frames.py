"""The aligned frames at the depth's grid (:mod:`postfocus.products.depth_frames`): the same geometry as the aligned
frames shrunk, for a fraction of their cost."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import PROFILES  # noqa: E402

from postfocus.colour import to_grey  # noqa: E402
from postfocus.options import StackOptions  # noqa: E402
from postfocus.pipeline.run import process  # noqa: E402
from postfocus.products.depth_frames import grid_frames  # noqa: E402
from postfocus.synth import render_stack, scene, write_stack  # noqa: E402


@pytest.fixture(scope="module")
def handheld(tmp_path_factory):
    """The hand-held motorcycle (shake, rotation, breathing: every frame's matrix far from the identity), analysed at
    half its size (the grid is a shrunk output)."""
    folder = tmp_path_factory.mktemp("handheld")
    _, camera, fmt = PROFILES["handheld"]
    image, depth01 = scene("motorcycle", (160, 216), seed=1)
    stack = render_stack(image, depth01, 6, seed=1, **camera)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return process(write_stack(stack, folder, fmt=fmt), StackOptions(analysis_size=108), cache_dir=folder / "c")


def test_a_frame_kept_unwarped_reads_in_the_aligned_frames_geometry(handheld):
    ps = handheld
    n, h, w = np.asarray(ps.volume).shape
    assert ps.frames_unwarped and (h, w) != tuple(ps.size)
    read = grid_frames(ps, (h, w))
    for i in ps.used:
        ours = read(i)
        theirs = to_grey(cv2.resize(ps.read_frame(i), (w, h), interpolation=cv2.INTER_AREA))
        assert ours.shape == (h, w) and ours.dtype == np.float32
        (dx, dy), _ = cv2.phaseCorrelate(ours.astype(np.float64), theirs.astype(np.float64))
        assert abs(dx) < 0.05 and abs(dy) < 0.05, (i, dx, dy)
        inner = (slice(4, -4), slice(4, -4))  # (the borders are reflected differently)
        assert np.abs(ours - theirs)[inner].mean() < 0.01


def test_each_frame_is_read_once(handheld):
    read = grid_frames(handheld, np.asarray(handheld.volume).shape[1:])
    first = read(handheld.used[0])
    assert read(handheld.used[0]) is first


def test_a_folder_without_its_frames_files_has_none_to_read(handheld, tmp_path):
    """A copy of a stack folder made without its ``frames`` folder (as a read-only copy may be): no reader, and the
    depth map is made as without this step, not refused."""
    import shutil

    from postfocus.products.depth import depth_map
    from postfocus.store import ProcessedStack

    shutil.copytree(handheld.folder, tmp_path / "copy", ignore=shutil.ignore_patterns("frames"))
    copy = ProcessedStack.open(tmp_path / "copy")
    assert grid_frames(copy, np.asarray(copy.volume).shape[1:]) is None
    image = handheld.all_in_focus()
    without = depth_map(handheld, image=image, frames=None).depth
    assert np.array_equal(depth_map(copy, image=image).depth, without)


def test_a_depth_kept_without_the_frames_is_not_served_once_they_are_back(handheld, tmp_path):
    """A depth kept from a folder whose frames' files were not there (made without the frames' step) was kept under
    the same key as one made with them: once the files were back, the old depth was served as the new (review19)."""
    import shutil

    from postfocus.products.depth import depth_map
    from postfocus.products.depth_cache import depth_key, stack_depth
    from postfocus.store import ProcessedStack

    shutil.copytree(handheld.folder, tmp_path / "copy", ignore=shutil.ignore_patterns("frames", "depth_*.npz"))
    copy = ProcessedStack.open(tmp_path / "copy")
    without = stack_depth(copy).depth
    key_without = depth_key(copy)
    shutil.copytree(handheld.folder / "frames", tmp_path / "copy" / "frames")
    copy = ProcessedStack.open(tmp_path / "copy")
    fresh = depth_map(copy, image=copy.all_in_focus()).depth
    assert not np.array_equal(fresh, without)  # (the frames' step changes this stack's depth)
    assert depth_key(copy) != key_without
    assert np.array_equal(stack_depth(copy).depth, fresh)


@pytest.mark.parametrize("damage", ["overwritten", "truncated"])
def test_a_frame_file_changed_since_written_is_a_damaged_folder(handheld, tmp_path, damage):
    """A frame file overwritten since the manifest was written (the same size, another CRC-32) was read as it was,
    and its depth kept under the folder's key for good; it is a damaged folder, as the store's check says."""
    import shutil

    from postfocus.products.depth_cache import depth_path, stack_depth
    from postfocus.store import DamagedStackError, ProcessedStack

    shutil.copytree(handheld.folder, tmp_path / "copy", ignore=shutil.ignore_patterns("depth_*.npz"))
    copy = ProcessedStack.open(tmp_path / "copy")
    path = copy.frame_path(copy.used[2])
    data = bytearray(path.read_bytes())
    if damage == "overwritten":
        data[len(data) // 2: len(data) // 2 + 64] = bytes(64)  # (inside the entropy-coded data: it still decodes)
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedStackError, match="0002"):
        stack_depth(copy)
    assert not depth_path(copy).exists()


def test_a_frame_file_that_cannot_be_looked_at_is_not_there(handheld, tmp_path):
    """Whether the frames are there is part of the kept depth's key (a tap asks for it each time): a frame file that
    ``stat`` cannot look at (a name too long for the file system; a folder without search permission, as not root)
    is not there, not an OSError out of ``depth_key`` (``Path.is_file`` passes on only ENOENT-like errors)."""
    import json
    import shutil

    from postfocus.products.depth_cache import depth_key
    from postfocus.products.depth_frames import frames_kept
    from postfocus.store import ProcessedStack
    from postfocus.store.records import DamagedStackError

    shutil.copytree(handheld.folder, tmp_path / "copy", ignore=shutil.ignore_patterns("depth_*.npz"))
    manifest = json.loads((tmp_path / "copy" / "manifest.json").read_text())
    first = str(handheld.used[0])
    old = manifest["frame_files"][first]
    manifest["frame_files"][first] = long = "frames/" + "x" * 300 + ".jpg"
    manifest["files"][long] = manifest["files"].pop(old)
    (tmp_path / "copy" / "manifest.json").write_text(json.dumps(manifest))
    copy = ProcessedStack.open(tmp_path / "copy")
    assert frames_kept(copy) is False
    assert depth_key(copy) is not None
    del manifest["frame_files"][first]  # a used frame the manifest names no file for: a damaged folder (review20)
    (tmp_path / "copy" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedStackError, match="names no file for a used frame"):
        ProcessedStack.open(tmp_path / "copy")


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_frame_file_that_is_no_file_is_a_damaged_folder_as_verify_says(handheld, tmp_path, kind):
    """A FIFO (or a folder) under a frame file's name counted as "no frame kept" (the depth made without the frames'
    step and kept under that key), while ``verify`` called the folder damaged: both say damaged (fixes23)."""
    import os
    import shutil

    from postfocus.products.depth_cache import stack_depth
    from postfocus.products.depth_frames import frames_kept
    from postfocus.store import DamagedStackError, ProcessedStack

    shutil.copytree(handheld.folder, tmp_path / "copy", ignore=shutil.ignore_patterns("depth_*.npz"))
    copy = ProcessedStack.open(tmp_path / "copy")
    path = copy.frame_path(copy.used[1])
    path.unlink()
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(DamagedStackError, match="is not a file"):
        copy.verify(checksums=False)
    with pytest.raises(DamagedStackError, match=f"{path.name} is not a file"):
        frames_kept(copy)
    with pytest.raises(DamagedStackError, match=f"{path.name} is not a file"):
        stack_depth(copy)


def test_a_reduced_jpeg_is_opencvs_pixels_and_a_damaged_one_prints_nothing(tmp_path, capfd):
    """The depth map's JPEGs decoded at 1/2-1/8 by libjpeg's DCT scaling through Pillow, not OpenCV: the same
    pixels (odd sizes, an EXIF rotation), and a frame damaged in its scan is left to the whole decode (io.images)
    instead of libjpeg printing "Corrupt JPEG data: premature end of data segment" on stderr. The second part
    fails on main."""
    from PIL import Image

    from postfocus.products.depth_frames import _reduced_grey

    data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    img = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (241, 321, 3), np.uint8), (0, 0), 2)
    exif = Image.Exif()
    exif[0x0112] = 6  # (stored on its side: upright is 241 wide, 321 high)
    Image.fromarray(img).save(tmp_path / "turned.jpg", exif=exif, quality=90)
    files = [(tmp_path / "turned.jpg", (321, 241))]
    files += [(p, cv2.imread(str(p)).shape[:2]) for p in (data / "ring" / "step0.jpg", data / "pcb" / "pcb_001.jpg")
              if p.is_file()]
    flags = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
    for path, size in files:
        for reduced, flag in flags.items():
            mine = _reduced_grey(path, reduced, size)
            assert mine is not None and np.array_equal(mine, cv2.imread(str(path), flag)), (path, reduced)
    damaged = bytearray(cv2.imencode(".jpg", img[:240, :320])[1])
    scan = damaged.index(b"\xff\xda")
    for k in range(scan + 200, scan + 260):
        damaged[k] = 0xFF if k % 7 == 0 else damaged[k] ^ 0x55
    (tmp_path / "damaged.jpg").write_bytes(bytes(damaged))
    capfd.readouterr()
    assert _reduced_grey(tmp_path / "damaged.jpg", 2, (240, 320)) is None
    assert capfd.readouterr().err == ""
