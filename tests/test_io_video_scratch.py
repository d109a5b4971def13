"""A video's decoded frames kept in a scratch file: read again, the same pixels, and nothing decoded."""

from __future__ import annotations

import os

import numpy as np
import pytest

from postfocus.io import video_scratch
from postfocus.io.video import VideoSource
from postfocus.io.video_scratch import DecodedScratch
from postfocus.io.video_write import encoder_available, write_video
from test_io_video import frames_sequence, texture

N = 8


def _no_more_decoding(source: VideoSource) -> None:
    """Make any further decoding fail: what is read now must come from the scratch."""

    def refuse(*args, **kwargs):
        raise AssertionError("decoded again")

    source._restart = refuse
    source._frames_iter = iter(())  # (and the decoder in use has nothing more to give)


def _read_twice(path, order) -> tuple[list[np.ndarray], list[np.ndarray], VideoSource]:
    plain = VideoSource(path)
    expected = [plain.read_pixels(i) for i in range(len(plain))]
    plain.close()
    source = VideoSource(path)
    source.keep_decoded()
    first = [source.read_pixels(i) for i in range(len(source))]
    _no_more_decoding(source)
    return expected, first, source


@pytest.mark.parametrize("options", [None, {"x264-params": "colormatrix=bt709"}], ids=["untagged", "bt709"])
def test_frames_read_again_come_from_the_scratch_to_the_bit(tmp_path, options):
    # 240 px wide: the decoder pads its rows to 256 bytes, a new frame to 240 (the rows are copied one by one)
    path = write_video(frames_sequence(N), tmp_path / "sweep.mp4", options=options)
    expected, first, source = _read_twice(path, range(N))
    for i in (5, 0, 7, 3, 1, 2, 6, 4):  # any order, no decoding
        np.testing.assert_array_equal(source.read_pixels(i), expected[i])
    for a, b in zip(first, expected):
        np.testing.assert_array_equal(a, b)
    assert source._scratch is not None and not source._scratch.active  # all handed back: the file is gone
    source.close()


def test_a_rotated_video_is_turned_upright_from_the_scratch(tmp_path):
    frame = texture(1)
    path = write_video([frame, frame * 0.9, frame * 0.8], tmp_path / "rot.mp4", rotation=90)
    expected, _, source = _read_twice(path, range(3))
    got = source.read_pixels(2)
    assert got.shape == expected[2].shape == (240, 160, 3)
    np.testing.assert_array_equal(got, expected[2])


@pytest.mark.skipif(not encoder_available("libx265"), reason="this FFmpeg build has no libx265 encoder")
def test_ten_bit_frames_that_would_not_convert_the_same_are_decoded_again(tmp_path):
    # FFmpeg converts a 10-bit frame following its chroma siting, which a rebuilt frame does not carry:
    # the first frame shows it, and nothing is kept
    path = write_video(frames_sequence(3), tmp_path / "ten.mp4", codec="hevc", bit_depth=10)
    plain = VideoSource(path)
    expected = [plain.read_pixels(i) for i in range(3)]
    source = VideoSource(path)
    source.keep_decoded()
    first = [source.read_pixels(i) for i in range(3)]
    assert not source._scratch.active and len(source._scratch) == 0
    for i in (1, 0, 2):
        got = source.read_pixels(i)
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, expected[i])
        np.testing.assert_array_equal(first[i], expected[i])


def test_a_frame_is_handed_back_once_then_decoded_again(tmp_path):
    path = write_video(frames_sequence(4), tmp_path / "sweep.mp4")
    source = VideoSource(path)
    source.keep_decoded()
    first = [source.read_pixels(i) for i in range(4)]
    np.testing.assert_array_equal(source.read_pixels(1), first[1])  # from the scratch
    assert 1 not in source._scratch and 2 in source._scratch
    np.testing.assert_array_equal(source.read_pixels(1), first[1])  # decoded again
    assert 1 not in source._scratch and len(source._scratch) == 3  # and not kept a second time
    source.close()
    assert source._scratch is None


def test_a_video_over_the_limit_is_decoded_again(tmp_path):
    path = write_video(frames_sequence(4), tmp_path / "sweep.mp4")
    scratch = DecodedScratch(4, directory=tmp_path, limit_mb=0.1)  # 4 frames of 160x240 4:2:0 take 0.25 MB
    source = VideoSource(path)
    source._scratch = scratch
    first = [source.read_pixels(i) for i in range(4)]
    assert not scratch.active and len(scratch) == 0 and scratch._file is None
    np.testing.assert_array_equal(source.read_pixels(0), first[0])


def test_a_scratch_on_a_file_system_in_memory_is_not_used(tmp_path, monkeypatch):
    """On a tmpfs /tmp the file would be memory all the same, only not counted as the process's: decode again."""
    monkeypatch.setattr(video_scratch, "_in_memory", lambda directory: True)
    path = write_video(frames_sequence(4), tmp_path / "sweep.mp4")
    scratch = DecodedScratch(4, directory=tmp_path)
    source = VideoSource(path)
    source._scratch = scratch
    first = [source.read_pixels(i) for i in range(4)]
    assert not scratch.active and len(scratch) == 0 and scratch._file is None
    np.testing.assert_array_equal(source.read_pixels(0), first[0])


@pytest.mark.skipif(not os.path.exists("/proc/self/mounts"), reason="Linux mount table")
def test_file_systems_in_memory_are_recognised_from_the_mount_table():
    with open("/proc/self/mounts") as mounts:
        table = [line.split()[1:3] for line in mounts]
    memory = [point for point, kind in table if kind == "tmpfs" and os.path.isdir(point)]
    kinds = {}
    for point, kind in table:
        kinds[point] = kind  # the last mount at a point is the one in effect
    disks = [point for point, kind in kinds.items() if kind in ("ext4", "xfs", "btrfs") and os.path.isdir(point)]
    if not memory and not disks:
        pytest.skip("no tmpfs and no plain disk mounted")
    for point in memory:
        assert video_scratch._in_memory(os.path.join(point, "no-such-folder"))
    for point in disks:
        assert not video_scratch._in_memory(point)


def test_a_failed_write_gives_up_and_frames_are_decoded_again(tmp_path, monkeypatch):
    path = write_video(frames_sequence(4), tmp_path / "sweep.mp4")
    source = VideoSource(path)
    source.keep_decoded(directory=tmp_path)
    source.read_pixels(0)
    assert 0 in source._scratch

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(video_scratch.os, "pwrite", full)
    first = [source.read_pixels(i) for i in range(1, 4)]
    assert not source._scratch.active and len(source._scratch) == 0
    np.testing.assert_array_equal(source.read_pixels(1), first[0])


def test_the_scratch_file_has_no_name(tmp_path):
    path = write_video(frames_sequence(3), tmp_path / "sweep.mp4")
    folder = tmp_path / "scratch"
    folder.mkdir()
    source = VideoSource(path)
    source.keep_decoded(directory=folder)
    source.read_pixels(2)
    assert len(source._scratch) == 3 and os.listdir(folder) == []  # kept, in no file anyone can see
    source.close()


def test_both_passes_of_a_video_decode_each_frame_once_with_the_same_result(tmp_path, monkeypatch):
    from postfocus.pipeline import run

    monkeypatch.setattr(run, "DECODED_ONCE_MB", 0)  # (this small video would be held in memory instead)
    path = write_video(frames_sequence(N), tmp_path / "sweep.mp4")
    decoded = []
    next_frame = VideoSource._next_frame

    def counted(self):
        got = next_frame(self)
        decoded.append(got[0])
        return got

    monkeypatch.setattr(VideoSource, "_next_frame", counted)
    kept = run.stack(path, motion="off", threads=2).image
    assert sorted(decoded) == list(range(N))  # pass 2 read every frame from the scratch
    decoded.clear()
    monkeypatch.setattr(VideoSource, "keep_decoded", lambda self, **kw: None)
    again = run.stack(path, motion="off", threads=2).image
    assert len(decoded) == 2 * N
    np.testing.assert_array_equal(kept, again)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="open files listed by Linux's /proc")
def test_the_scratch_file_goes_when_the_passes_are_over_even_if_the_callers_source_lives_on(tmp_path, monkeypatch):
    """A caller's own source outlives stack(): the scratch the pipeline started for it, with the frames a merged
    range left out (a 4K video's could be gigabytes), must go with the passes, not stay until the source does."""
    import tempfile

    from postfocus.pipeline import run

    monkeypatch.setattr(run, "DECODED_ONCE_MB", 0)  # (this small video would be held in memory instead)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    path = write_video(frames_sequence(N), tmp_path / "sweep.mp4")

    def scratch_files() -> int:
        where = str(tmp_path / "scratch")
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                found += os.readlink(f"/proc/self/fd/{fd}").startswith(where)
            except OSError:
                continue
        return found

    with VideoSource(path) as source:
        source.read_pixels(0)  # (the source in use: its decoder open)
        run.stack(source, motion="off", threads=2, frame_range=(0, 3))
        assert scratch_files() == 0
        plain = VideoSource(path)
        np.testing.assert_array_equal(source.read_pixels(6), plain.read_pixels(6))  # the source still reads
        plain.close()
        assert source.keep_decoded()  # (a caller may keep frames itself; the pipeline leaves that one alone)
        source.read_pixels(7)
        run.stack(source, motion="off", threads=2, frame_range=(0, 3))
        assert scratch_files() == 1
