"""Both passes end to end (pipeline/run.py): small stacks are decoded once, with the same result."""

from __future__ import annotations

from collections import Counter

import numpy as np

from postfocus.io.images import ImageFilesSource
from postfocus.pipeline import run


def test_a_small_stack_is_decoded_once_and_merges_the_same(tiny_stack, tmp_path, monkeypatch):
    reads: Counter = Counter()
    read_pixels = ImageFilesSource.read_pixels

    def counting(self, index):
        reads[index] += 1
        return read_pixels(self, index)

    monkeypatch.setattr(ImageFilesSource, "read_pixels", counting)
    once = run.stack(tiny_stack.folder)
    assert sorted(reads.values()) == [1, 1, 1]
    reads.clear()
    monkeypatch.setattr(run, "DECODED_ONCE_MB", 0)  # too big to keep: decoded in each pass
    twice = run.stack(tiny_stack.folder)
    assert sorted(reads.values()) == [2, 2, 2]
    assert np.array_equal(once.image, twice.image)


def test_a_kept_small_stack_warps_its_files_again_instead_of_holding_pass_1s_frames(tiny_stack, tmp_path,
                                                                                     monkeypatch):
    """``process()`` on a small stack of image files (the order stated, frames above ``AGAIN_PIXELS``): pass 1
    holds no decoded frame, the warping ahead decodes each file again (mem9: pass 1's peak on pcb held 7 x 9 MB
    beside its matches); every file of the stack folder and the image are those of the frames held, as before
    (and still are for frames of at most a megapixel)."""
    import weakref

    from conftest import tree_digest

    reads: Counter = Counter()
    read_pixels = ImageFilesSource.read_pixels
    decoded: list = []  # weak references to every frame decoded before the warping ahead begins
    alive_at_begin: list[int] = []

    def counting(self, index):
        reads[index] += 1
        pixels = read_pixels(self, index)
        if not alive_at_begin:
            decoded.append(weakref.ref(pixels))
        return pixels

    begin = run.WarpAhead.begin

    def noting(self):
        alive_at_begin.append(sum(ref() is not None for ref in decoded))
        begin(self)

    monkeypatch.setattr(ImageFilesSource, "read_pixels", counting)
    monkeypatch.setattr(run.WarpAhead, "begin", noting)
    monkeypatch.setattr(run, "AGAIN_PIXELS", 0)  # (200x300 frames: as if above a megapixel)
    again = run.process(tiny_stack.folder, cache_dir=tmp_path / "again")
    assert len(decoded) == 3 and alive_at_begin == [0]  # pass 1's frames all gone when the warping begins
    assert sorted(reads.values()) == [2, 2, 2]  # pass 1, then the warping ahead
    reads.clear()
    decoded.clear()
    alive_at_begin.clear()
    monkeypatch.setattr(run, "AGAIN_PIXELS", 10**6)  # frames of at most a megapixel: held by pass 1, as before
    held = run.process(tiny_stack.folder, cache_dir=tmp_path / "held")
    assert alive_at_begin == [3] and sorted(reads.values()) == [1, 1, 1]
    digests = [tree_digest(ps.folder) for ps in (again, held)]
    for d in digests:
        d.pop("manifest.json")
    assert digests[0] == digests[1] and len(digests[0]) >= 3 + 3
    assert np.array_equal(again.all_in_focus(), held.all_in_focus())
    measured = run.process(tiny_stack.folder, cache_dir=tmp_path / "auto", order="auto")  # held for its look
    assert np.array_equal(measured.all_in_focus(), held.all_in_focus())


def test_the_stack_folder_is_the_same_whenever_the_kept_frames_are_warped(tiny_stack, tmp_path, monkeypatch):
    """The kept frames are warped beside the focus map (``on_measured``); warped as soon as the alignment is
    known, or only when pass 2 asks for the first, every file of the stack folder is the same."""
    from conftest import tree_digest

    started: list[str] = []
    begin = run.WarpAhead.begin

    def noting(self):
        started.append("begin" if self._work else "again")
        begin(self)

    monkeypatch.setattr(run.WarpAhead, "begin", noting)
    beside_map = run.process(tiny_stack.folder, cache_dir=tmp_path / "map")
    assert started == ["begin"]  # once, from analyse's on_measured: pass 2's first ask found the work handed

    analyse = run.analyse
    monkeypatch.setattr(run, "analyse", lambda *a, on_measured=None, **k: analyse(*a, **k))
    on_ask = run.process(tiny_stack.folder, cache_dir=tmp_path / "ask")

    def early(*a, on_alignment=None, on_measured=None, **k):
        def start(report, used):
            on_alignment(report, used)
            on_measured()
        return analyse(*a, on_alignment=start, **k)

    monkeypatch.setattr(run, "analyse", early)
    at_alignment = run.process(tiny_stack.folder, cache_dir=tmp_path / "early")
    digests = [tree_digest(ps.folder) for ps in (beside_map, on_ask, at_alignment)]
    for d in digests:
        d.pop("manifest.json")
    assert digests[0] == digests[1] == digests[2]
    assert len(digests[0]) >= 3 + 3  # the three frames and the maps, not an empty folder


def test_a_thread_budget_holds_for_the_run_and_leaves_opencv_as_it_was(tiny_stack, tmp_path):
    """OpenCV's thread count is the process's: ``stack(..., threads=1)`` used it for the run and left it at 1
    for the caller's own OpenCV work afterwards (also after a run that failed)."""
    import cv2
    import pytest

    from postfocus.errors import PostfocusError, PostfocusWarning

    before = cv2.getNumThreads()
    assert before != 1, "a machine of one core cannot tell"
    during: list[int] = []
    result = run.stack(tiny_stack.folder, threads=1, progress=lambda *a: during.append(cv2.getNumThreads()))
    assert result.image.size and set(during) == {1}
    assert cv2.getNumThreads() == before
    run.process(tiny_stack.folder, threads=1, cache_dir=tmp_path)
    run.process(tiny_stack.folder, threads=1, cache_dir=tmp_path)  # (a kept folder, reused)
    assert cv2.getNumThreads() == before
    with pytest.raises(PostfocusError):
        run.stack(tiny_stack.folder, threads=1, frame_range=(0, 99))
    with pytest.raises(PostfocusError), pytest.warns(PostfocusWarning, match="cannot be aligned"):
        run.stack([np.zeros((64, 64), np.float32)] * 2, threads=1, align="affine")  # nothing to align on
    assert cv2.getNumThreads() == before


def test_frames_given_by_a_generator_are_stacked_as_a_list_of_them():
    """``stack(frame for frame in ...)`` took the arrays for paths: "TypeError: expected str, bytes or
    os.PathLike object, not ndarray"."""
    rng = np.random.default_rng(1)
    frames = [rng.random((48, 64, 3), dtype=np.float32) for _ in range(3)]
    listed = run.stack(frames, align="none")
    generated = run.stack((f for f in frames), align="none")
    assert np.array_equal(listed.image, generated.image)


def test_options_the_run_cannot_use_are_refused_before_any_work():
    """Each was a TypeError or AttributeError: a ``progress`` that is not callable only once the work had begun."""
    import pytest

    from postfocus.errors import OptionError

    frames = [np.zeros((32, 32, 3), np.float32)] * 2
    for kwargs, said in (({"progress": 5}, "progress=5: must be a function"),
                         ({"options": {"align": "none"}}, "options='dict': must be a StackOptions"),
                         ({"colour": "red"}, "colour='red': not an option")):
        with pytest.raises(OptionError) as refused:
            run.stack(frames, **kwargs)
        assert str(refused.value).startswith(said)


def test_on_image_gets_the_image_while_the_folder_is_written_and_not_when_reused(tiny_stack, tmp_path):
    """``process(on_image=)`` is called once, on another thread, with the fused image, the frames merged and
    the reference; a folder reused calls nothing."""
    import threading

    calls = []

    def on_image(image, used, reference):
        calls.append((image, list(used), reference, threading.get_ident()))

    ps = run.process(tiny_stack.folder, cache_dir=tmp_path, on_image=on_image)
    assert len(calls) == 1
    image, used, reference, thread = calls[0]
    assert thread != threading.get_ident() and image.dtype == np.float32
    assert used == list(ps.used) and reference == ps.reference
    np.testing.assert_array_equal(image, ps.all_in_focus())  # the image as the folder holds it
    again = run.process(tiny_stack.folder, cache_dir=tmp_path, on_image=on_image)
    assert len(calls) == 1 and again.folder == ps.folder


def test_what_on_image_raises_comes_after_the_folder_is_kept(tiny_stack, tmp_path):
    import pytest

    from postfocus.errors import OutputError

    def on_image(image, used, reference):
        raise OutputError("out.jpg: cannot write it")

    with pytest.raises(OutputError, match="cannot write it"):
        run.process(tiny_stack.folder, cache_dir=tmp_path, on_image=on_image)
    ps = run.process(tiny_stack.folder, cache_dir=tmp_path, on_image=on_image)  # reused whole: not called
    ps.verify()
    assert ps.all_in_focus().shape[:2] == ps.size


def _tiny_video(tiny_stack, tmp_path):
    from postfocus.io.images import read_image
    from postfocus.io.video_write import write_video

    frames = [read_image(p).astype(np.float32) / 255 for p in tiny_stack.paths]
    return write_video(frames + frames[::-1], tmp_path / "sweep.mp4", fps=10)


def test_a_stack_folder_kept_at_another_jpeg_quality_is_not_reused(tiny_stack, tmp_path):
    """``process(video, jpeg_quality=10)`` kept a video's frames as JPEG at quality 10 under the same key as the
    default 97: the next ``process(video)`` (every command) reused those frames without a word (review20). The
    quality is part of the key when it is not the default, so folders made at 97 keep their keys."""
    video = _tiny_video(tiny_stack, tmp_path)
    low = run.process(video, cache_dir=tmp_path / "cache", jpeg_quality=10)
    default = run.process(video, cache_dir=tmp_path / "cache")
    assert default.folder != low.folder
    assert default.folder.name == run.process(video, cache_dir=tmp_path / "other").folder.name  # (a 97 key as before)
    sizes = [sum(f.stat().st_size for f in (ps.folder / "frames").iterdir()) for ps in (low, default)]
    assert sizes[0] < sizes[1] * 0.7


def test_process_arguments_it_cannot_use_are_refused_by_name_before_any_work(tiny_stack, tmp_path):
    """``jpeg_quality="high"`` was a TypeError and NaN a ValueError once frames were written, 0, 500 and None were
    taken; ``refresh="no"`` refreshed; ``on_image=5`` was "'int' object is not callable" after the whole folder was
    made (review20)."""
    import pytest

    from postfocus.errors import OptionError

    for kwargs, said in (({"jpeg_quality": "high"}, "jpeg_quality='high'"), ({"jpeg_quality": float("nan")},
                         "jpeg_quality=nan"), ({"jpeg_quality": 0}, "jpeg_quality=0"),
                         ({"jpeg_quality": 500}, "jpeg_quality=500"), ({"jpeg_quality": None}, "jpeg_quality=None"),
                         ({"refresh": "no"}, "refresh='no'"), ({"on_image": 5}, "on_image=5")):
        with pytest.raises(OptionError) as refused:
            run.process(tiny_stack.folder, cache_dir=tmp_path, **kwargs)
        assert str(refused.value).startswith(said)
    assert not any(tmp_path.iterdir())  # before any work: nothing kept
    assert run.process(tiny_stack.folder, cache_dir=tmp_path, jpeg_quality=np.int64(90), refresh=np.True_).used


def test_a_set_of_paths_is_refused_by_stack_and_process_as_by_open_source(tiny_stack, tmp_path):
    """review17 made ``open_source`` refuse a set of paths (its order, the focus order, is its hash's: another in each
    process), but ``stack()`` and ``process()`` first listed any iterable that is not a list (for generators of
    frames), so a set was stacked in its hash order, and keyed in it (review20)."""
    import pytest

    from postfocus.errors import InputError

    paths = {str(p) for p in tiny_stack.paths}
    for call in (lambda: run.stack(paths), lambda: run.process(frozenset(paths), cache_dir=tmp_path)):
        with pytest.raises(InputError, match="a set has no order"):
            call()


def test_a_photo_stack_kept_as_copies_makes_no_exposure_corrected_frame_in_pass_2(tiny_stack, tmp_path, monkeypatch):
    """A photo stack's stack folder keeps copies of its files (no pixels handed to it): pass 2 makes no
    exposure-corrected copy of a frame for a keeper that ignores it (mem11: 60 MB a frame on algae's 20 MP,
    at pass 2's peak)."""
    from postfocus.pipeline import merge
    from postfocus.store.write import FileCopies

    corrected: list[int] = []
    handed: list[bool] = []
    apply_gain, call = merge.apply_gain, FileCopies.__call__

    def counting(pixels, gain):
        corrected.append(pixels.size)
        return apply_gain(pixels, gain)

    def noting(self, index, frame=None):
        handed.append(frame is not None)
        call(self, index, frame)

    monkeypatch.setattr(merge, "apply_gain", counting)
    monkeypatch.setattr(FileCopies, "__call__", noting)
    monkeypatch.setattr(run, "DECODED_ONCE_MB", 0)  # nothing held, nothing warped ahead: pass 2 decodes and warps
    ps = run.process(tiny_stack.folder, cache_dir=tmp_path / "c")
    assert corrected == [] and handed and not any(handed)  # every copy handed by number only


def test_a_photo_stack_kept_as_copies_warps_small_footprints_alone_in_pass_2(tiny_stack, tmp_path, monkeypatch):
    """A photo stack kept as copies of its files, nothing held or warped ahead: pass 2 warped every frame whole
    (the bits as before the copies: +70 % CPU at 100 x 24 MP, row24); now a frame whose footprint is under
    ``WHOLE_SHARE`` of the picture has only its footprint warped (the first frame is warped whole: its footprint
    is not known yet), as ``--no-cache`` does, and the folder holds the image handed out."""
    from postfocus.io.write import to_uint
    from postfocus.pipeline import merge

    whole: list[tuple[int, ...]] = []
    warp_whole = merge.warp_whole

    def counting(stored, matrix, size, region, flow=None):
        whole.append(stored.shape)
        return warp_whole(stored, matrix, size, region, flow)

    monkeypatch.setattr(merge, "warp_whole", counting)
    monkeypatch.setattr(run, "DECODED_ONCE_MB", 0)  # nothing held, nothing warped ahead: pass 2 decodes and warps
    images: list[np.ndarray] = []
    for share, warps in ((1.01, 1), (0.0, 3)):  # footprints never / always that large: main warps 3 in both
        monkeypatch.setattr(run, "WHOLE_SHARE", share, raising=False)
        whole.clear()
        ps = run.process(tiny_stack.folder, cache_dir=tmp_path / f"c{share}",
                         on_image=lambda image, *_: images.append(image))
        assert len(ps.used) == 3 and len(whole) == warps
        np.testing.assert_array_equal(images[-1], ps.all_in_focus())  # the image as the folder holds it
    no_cache = run.stack(tiny_stack.folder)  # as --no-cache, to the written 8 bits
    for image in images:
        np.testing.assert_array_equal(to_uint(image, 8), to_uint(no_cache.image, 8))
