"""A video's stack folder keeps its frames as decoded and warps them when they are asked for."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_stack

from postfocus.errors import InputError, PostfocusWarning
from postfocus.io.images import read_image
from postfocus.io.video import VideoSource
from postfocus.io.video_write import write_video
from postfocus.io.write import to_uint, write_image
from postfocus.pipeline.run import process, stack
from postfocus.store import FORMAT_VERSION, DamagedStackError, ProcessedStack
from postfocus.store.unwarped import output_alignment


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A three-frame focus sweep (the tiny two-halves stack) as an H.264 MP4."""
    folder = tmp_path_factory.mktemp("video_frames")
    tiny = make_tiny_stack(folder / "png")
    return write_video([read_image(p) for p in tiny.paths], folder / "sweep.mp4", crf=18)


@pytest.fixture(scope="module")
def processed(sweep, tmp_path_factory) -> ProcessedStack:
    return process(sweep, cache_dir=tmp_path_factory.mktemp("cache"))


def test_the_folder_keeps_the_frames_as_decoded(sweep, processed):
    ps = processed
    assert ps.manifest["format"] == FORMAT_VERSION and ps.frames_unwarped
    with VideoSource(sweep) as video:
        for i in ps.used:  # a JPEG of the decoded frame (4:2:0, as the video's colour), source geometry
            kept = read_image(ps.frame_path(i), stored=True)
            decoded = video.read_pixels(i)
            assert kept.shape == decoded.shape
            assert np.abs(kept.astype(int) - decoded).mean() < 1.5
    ps.verify()


def test_frames_read_back_as_a_lossless_stack_of_the_same_decoded_frames_keeps_them(sweep, processed, tmp_path):
    """The decoded frames as PNG files (kept as copies, unwarped): the video's stack reads back the
    same frames, to within its JPEG's loss, in the same geometry."""
    folder = tmp_path / "decoded"
    folder.mkdir()
    with VideoSource(sweep) as video:
        for i in range(len(video)):
            write_image(folder / f"f{i}.png", read_image_pixels(video, i), bit_depth=8)
    as_images = process(folder, cache_dir=tmp_path / "cache")
    assert as_images.frames_unwarped and as_images.used == processed.used
    for i in processed.used:
        ours, theirs = processed.frames().read_pixels(i), as_images.frames().read_pixels(i)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        assert psnr(ours / 255, theirs / 255) > 38  # (a JPEG of pixel-sized noise in colour: its hardest case)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def read_image_pixels(video: VideoSource, i: int) -> np.ndarray:
    return video.read_pixels(i).astype(np.float32) / 255


def test_merges_of_the_kept_frames_are_a_stack_of_the_video(sweep, processed):
    result = stack(sweep)
    np.testing.assert_array_equal(to_uint(processed.all_in_focus(), 8), to_uint(result.image, 8))
    # Warped from the kept JPEGs only where each frame weighs, with the folder's maps: stack()'s image
    # within the JPEG's loss.
    merged = processed.merge()
    assert psnr(merged, result.image) > 38
    part = processed.merge(frames=processed.used[:2])
    assert part.shape == merged.shape and not np.array_equal(part, merged)


def test_output_alignment_moves_the_matrices_into_the_crop():
    from postfocus.align.report import FrameAlignment

    matrix = np.array([[1.01, 0.0, 3.0], [0.0, 1.01, -2.0], [0.0, 0.0, 1.0]])
    a = FrameAlignment(index=0, name="f", matrix=matrix, gain=np.ones(3, np.float32))
    shifted = output_alignment([a], (7, 11, 100, 200))[0].matrix
    for x, y in ((0, 0), (40, 25)):  # output (x, y) is reference (x + 11, y + 7)
        np.testing.assert_allclose(shifted @ [x, y, 1], matrix @ [x + 11, y + 7, 1])


def test_frames_show_and_save_when_the_input_video_is_gone(tmp_path):
    tiny = make_tiny_stack(tmp_path / "png")
    video = write_video([read_image(p) for p in tiny.paths], tmp_path / "gone.mp4", crf=18)
    ps = process(video, cache_dir=tmp_path / "cache")
    before = ps.read_frame(ps.used[-1])
    video.unlink()
    again = ProcessedStack.open(ps.folder)
    again.verify()
    np.testing.assert_array_equal(again.read_frame(again.used[-1]), before)
    out = again.save_frame(again.used[-1], tmp_path / "frame.jpg")  # the aligned frame, not the kept file
    assert np.abs(read_image(out) - before).mean() < 2 / 255
    assert again.merge(frames=again.used[:2]).shape == before.shape


def test_a_damaged_kept_frame_is_found_and_the_folder_made_again(tmp_path):
    tiny = make_tiny_stack(tmp_path / "png")
    video = write_video([read_image(p) for p in tiny.paths], tmp_path / "v.mp4", crf=18)
    ps = process(video, cache_dir=tmp_path / "cache")
    kept = ps.frame_path(ps.used[0])
    kept.write_bytes(kept.read_bytes()[:100])
    with pytest.raises(DamagedStackError):
        ProcessedStack.open(ps.folder).verify()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        again = process(video, cache_dir=tmp_path / "cache")
    assert any("damaged" in str(w.message) for w in caught)
    again.verify()


def test_every_used_frame_is_handed_over_once_even_if_pass_2_skipped_it():
    from postfocus.io.arrays import ArraySource
    from postfocus.store.unwarped import HandOver

    frames = [np.full((8, 8, 3), k / 4, np.float32) for k in range(4)]
    handed: list[int] = []
    source = HandOver(ArraySource(frames), lambda i, pixels: handed.append(i))
    for i in range(4):
        source.read_pixels(i)  # pass 1
    for i in (0, 2):
        source.read_pixels(i)  # pass 2, twice over frame 0 (bands)
    source.read_pixels(0)
    assert handed == [0, 2]
    source.hand_missing([0, 1, 2, 3])
    assert handed == [0, 2, 1, 3]


def test_format_4_and_5_folders_still_open_and_a_format_3_one_does_not(tiny_stack, tmp_path):
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = json.loads((ps.folder / "manifest.json").read_text())
    manifest["format"] = 3  # (PNG frames of lossless sources: made again)
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError):
        ProcessedStack.open(ps.folder)
    for version in (6, 5, 4):  # a web job opened by its path, made before this format
        manifest["format"] = version
        if version == 4:  # no measured direction then: frame 0 the nearest, as the default order states
            manifest.pop("direction", None)
        (ps.folder / "manifest.json").write_text(json.dumps(manifest))
        old = ProcessedStack.open(ps.folder)
        assert old.near_to_far
        np.testing.assert_array_equal(old.read_frame(old.used[0]), ps.read_frame(ps.used[0]))


def test_retouching_a_video_stack_paints_the_aligned_frame(processed):
    import postfocus

    aif, frame = processed.all_in_focus(), processed.read_frame(processed.used[0])
    mask = np.zeros(processed.size, bool)
    mask[40:90, 30:120] = True
    out = postfocus.retouch(processed, mask, source=processed.used[0])
    assert np.array_equal(out[mask], frame[mask]) and np.array_equal(out[~mask], aif[~mask])
