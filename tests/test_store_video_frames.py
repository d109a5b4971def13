"""A video's stack folder keeps the video and warps its aligned frames when they are asked for."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_stack

from postfocus.errors import PostfocusWarning
from postfocus.io.images import read_image
from postfocus.io.video import VideoSource
from postfocus.io.video_write import write_video
from postfocus.io.write import to_uint, write_image
from postfocus.pipeline.run import process, stack
from postfocus.store import FORMAT_VERSION, DamagedStackError, ProcessedStack
from postfocus.store.video_frames import output_alignment


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A three-frame focus sweep (the tiny two-halves stack) as an H.264 MP4."""
    folder = tmp_path_factory.mktemp("video_frames")
    tiny = make_tiny_stack(folder / "png")
    return write_video([read_image(p) for p in tiny.paths], folder / "sweep.mp4", crf=18)


@pytest.fixture(scope="module")
def processed(sweep, tmp_path_factory) -> ProcessedStack:
    return process(sweep, cache_dir=tmp_path_factory.mktemp("cache"))


def test_the_folder_keeps_the_video_and_no_frame_files(sweep, processed):
    ps = processed
    assert ps.manifest["format"] == FORMAT_VERSION and ps.frames_from_video
    kept = ps.folder / ps.manifest["video"]["file"]
    assert kept.read_bytes() == sweep.read_bytes()
    assert not list((ps.folder / "frames").iterdir())
    assert kept.name in ps.manifest["files"]
    ps.verify()
    with pytest.raises(Exception, match="decoded from the kept video"):
        ps.frame_path(ps.used[0])


def test_frames_are_the_decoded_video_frames_warped_as_lossless_frames_would_be(sweep, processed, tmp_path):
    """The same decoded frames as PNG files keep lossless TIFF frames: the video's frames read back equal them."""
    folder = tmp_path / "decoded"
    folder.mkdir()
    with VideoSource(sweep) as video:
        for i in range(len(video)):
            write_image(folder / f"f{i}.png", read_image_pixels(video, i), bit_depth=8)
    as_images = process(folder, cache_dir=tmp_path / "cache")
    assert not as_images.frames_from_video and as_images.used == processed.used
    for i in processed.used:
        np.testing.assert_array_equal(processed.frames().read_pixels(i), as_images.frames().read_pixels(i))


def read_image_pixels(video: VideoSource, i: int) -> np.ndarray:
    return video.read_pixels(i).astype(np.float32) / 255


def test_merges_from_the_video_are_a_stack_of_it(sweep, processed):
    result = stack(sweep)
    np.testing.assert_array_equal(to_uint(processed.all_in_focus(), 8), to_uint(result.image, 8))
    # Warped from the video only where each frame weighs, with the folder's maps (the focus volume kept as
    # float16): stack()'s image within a level, nearly everywhere the same.
    merged = processed.merge()
    difference = np.abs(merged - result.image)
    assert difference.max() <= 1.5 / 255 and difference.mean() < 0.02 / 255
    part = processed.merge(frames=processed.used[:2])
    assert part.shape == merged.shape and not np.array_equal(part, merged)


def test_output_alignment_moves_the_matrices_into_the_crop():
    from postfocus.align.report import FrameAlignment

    matrix = np.array([[1.01, 0.0, 3.0], [0.0, 1.01, -2.0], [0.0, 0.0, 1.0]])
    a = FrameAlignment(index=0, name="f", matrix=matrix, gain=np.ones(3, np.float32))
    shifted = output_alignment([a], (7, 11, 100, 200))[0].matrix
    for x, y in ((0, 0), (40, 25)):  # output (x, y) is reference (x + 11, y + 7)
        np.testing.assert_allclose(shifted @ [x, y, 1], matrix @ [x + 11, y + 7, 1])


def test_frames_still_show_when_the_input_video_is_gone(tmp_path):
    tiny = make_tiny_stack(tmp_path / "png")
    video = write_video([read_image(p) for p in tiny.paths], tmp_path / "gone.mp4", crf=18)
    ps = process(video, cache_dir=tmp_path / "cache")
    before = ps.read_frame(ps.used[-1])
    video.unlink()
    again = ProcessedStack.open(ps.folder)
    again.verify()
    np.testing.assert_array_equal(again.read_frame(again.used[-1]), before)
    out = again.save_frame(again.used[0], tmp_path / "frame.jpg")
    assert read_image(out).shape == before.shape


def test_a_damaged_kept_video_is_found_and_the_folder_made_again(tmp_path):
    tiny = make_tiny_stack(tmp_path / "png")
    video = write_video([read_image(p) for p in tiny.paths], tmp_path / "v.mp4", crf=18)
    ps = process(video, cache_dir=tmp_path / "cache")
    kept = ps.folder / ps.manifest["video"]["file"]
    data = kept.read_bytes()
    kept.unlink()  # (a hard link: the input itself must not change)
    kept.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedStackError):
        ProcessedStack.open(ps.folder).verify()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        again = process(video, cache_dir=tmp_path / "cache")
    assert any("damaged" in str(w.message) for w in caught)
    again.verify()
    assert video.read_bytes() == data


def test_a_format_4_folder_still_opens(tiny_stack, tmp_path):
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = json.loads((ps.folder / "manifest.json").read_text())
    manifest["format"] = 4
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    old = ProcessedStack.open(ps.folder)
    assert not old.frames_from_video
    np.testing.assert_array_equal(old.read_frame(old.used[0]), ps.read_frame(ps.used[0]))
