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
