"""Pass 2's hand-over of aligned frames: every used frame, in order, from the decoding thread."""

import threading

import numpy as np
import pytest

from postfocus.io.open import open_source
from postfocus.pipeline.analyse import analyse
from postfocus.pipeline.merge import aligned_region, apply_gain, fuse, warp_whole


def test_aligned_frames_are_handed_over_in_order_from_the_decoding_thread(tiny_stack):
    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    seen = []

    def keep(i, aligned):
        seen.append((i, threading.current_thread().name, aligned))

    image = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, on_aligned=keep)
    assert [i for i, _, _ in seen] == analysis.used
    assert all(name.startswith("postfocus-decode") for _, name, _ in seen)
    grown = aligned_region(box, analysis.size)  # (warped with the fusion's margin, then cut to the region)
    cut = (slice(box[0] - grown[0], box[2] - grown[0]), slice(box[1] - grown[1], box[3] - grown[1]))
    for i, _, aligned in seen:  # the frame warped over the region, exposure-corrected, in its stored type
        a = analysis.alignment[i]
        whole = warp_whole(source.read_pixels(i), a.matrix, analysis.size, grown)
        expected = apply_gain(whole, np.asarray(a.gain, np.float32))[cut]
        assert aligned.dtype == expected.dtype and np.array_equal(aligned, expected)
    assert np.array_equal(image, fuse(source, analysis.maps, alignment=analysis.alignment, region=box))


def test_rectangles_folded_a_band_of_rows_at_a_time_give_the_same_image(tiny_stack, monkeypatch):
    """The depth-map blend is pixel by pixel: float temporaries of a few rows give the same bits as whole rectangles."""
    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    images = []
    for rows in (10**6, 5):
        monkeypatch.setattr(merge, "FOLD_ROWS", rows)
        images.append(fuse(source, analysis.maps, alignment=analysis.alignment, region=box, threads=1))
        images.append(fuse(source, analysis.maps, alignment=analysis.alignment, region=box, threads=2))
    assert all(np.array_equal(images[0], image) for image in images[1:])
    assert images[0].flags.c_contiguous and images[0].shape[:2] == (box[2] - box[0], box[3] - box[1])


def test_the_focus_volume_goes_before_the_fold_when_its_owner_keeps_it_elsewhere(tiny_stack):
    """``keep_volume=False``: the volume's last consumer in pass 2 is the blend state (occlusion-safe index): it is
    freed before the first frame is folded, and the image is the same to the bit."""
    import weakref

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    kept = fuse(source, analysis.maps, alignment=analysis.alignment, region=box)
    assert analysis.maps.volume is not None  # (kept by default: a result hands it on)
    volume = analysis.maps.volume
    refs = [weakref.ref(volume)] + ([weakref.ref(volume.base)] if volume.base is not None else [])
    del volume
    alive_at_fold = []

    def progress(stage, done, total):
        if stage == "fuse":
            alive_at_fold.append(any(ref() is not None for ref in refs))

    image = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, keep_volume=False, progress=progress)
    assert alive_at_fold and not any(alive_at_fold)
    assert analysis.maps.volume is None
    assert np.array_equal(image, kept)


def test_the_focus_volume_goes_before_the_blend_state_is_made(tiny_stack, monkeypatch):
    """mem10: with ``keep_volume=False`` the volume goes as soon as the occlusion-safe index (its last consumer)
    is made, not after the blend state beside it (main: alive while the depth-map fusion is made)."""
    import weakref

    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    kept = fuse(source, analysis.maps, alignment=analysis.alignment, region=box)
    volume = analysis.maps.volume
    refs = [weakref.ref(volume)] + ([weakref.ref(volume.base)] if volume.base is not None else [])
    del volume
    alive = []

    class Fusion(merge.DepthmapFusion):
        def __init__(self, *args, **kwargs):
            alive.append(any(ref() is not None for ref in refs))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(merge, "DepthmapFusion", Fusion)
    image = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, keep_volume=False)
    assert alive == [False]
    assert np.array_equal(image, kept)


def test_a_thread_budget_that_is_no_whole_number_from_one_is_refused_by_name(tiny_stack, monkeypatch):
    """``fuse(..., threads="2")`` was a TypeError from a comparison deep in pass 2 (and 0 or 10**6 were taken
    silently): the budget is checked as every other entry point checks it (review15)."""
    import pytest

    from postfocus.errors import OptionError
    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    monkeypatch.setattr(merge, "_Merge", lambda *a, **k: pytest.fail("work started"))
    for bad in ("2", 0, -1, 10**6, True, 2.5):
        with pytest.raises(OptionError, match="threads"):
            fuse(source, analysis.maps, alignment=analysis.alignment, threads=bad)


def test_fuse_frames_in_another_order_or_twice_fuse_as_the_stacks_frames(tiny_stack):
    """``fuse(..., frames=[2, 1, 0])`` blurred half the tiny stack (max difference 0.52) and ``[0, 0, 1, 2]``
    changed it by 0.20: the fusion ranks the frames given. review13 mended ``merge`` (``pick_frames``), not the
    public ``fuse``; it now takes them as a set, in the stack's order."""
    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    whole = fuse(source, analysis.maps, alignment=analysis.alignment)
    for frames in ([2, 1, 0], [0, 0, 1, 2], (2, 0, 1), np.array([1, 2, 0]), range(3)):
        assert np.array_equal(fuse(source, analysis.maps, alignment=analysis.alignment, frames=frames), whole)


def test_fuse_arguments_it_cannot_use_are_refused_by_name_before_any_work(tiny_stack, monkeypatch):
    """Each was an error from inside pass 2: frames as a list for ``source`` ("'list' object has no attribute
    'info'"), ``maps=None`` ("no attribute 'used'"), ``frames="01"`` (NumPy's UFuncTypeError), ``bands="2"`` (a
    TypeError; 0 was taken), ``region="x"`` ("not enough values to unpack"), ``alignment=[]`` (an IndexError)."""
    import pytest

    from postfocus.errors import OptionError
    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    monkeypatch.setattr(merge, "_Merge", lambda *a, **k: pytest.fail("work started"))
    maps, alignment = analysis.maps, analysis.alignment
    h, w = maps.size
    for args, kwargs, why in (
        (([source.read(0)], maps), {}, r"^source='list': not opened frames; open them with postfocus.io.open_source"),
        ((source, None), {}, r"^maps=None: must be a StackMaps"),
        ((source, {}), {}, r"^maps=\{\}: must be a StackMaps"),
        ((source, maps), {"frames": "01"}, r"^frames='01': give a sequence of frame numbers"),
        ((source, maps), {"frames": 5}, r"^frames=5: give a sequence"),
        ((source, maps), {"frames": [0, 3]}, r"^frames=\[0, 3\]: frame 3 is not in this stack \(frames 0 to 2\)"),
        ((source, maps), {"frames": [0, "1"]}, r"^frames=\[0, '1'\]: frame '1' is not in this stack"),
        ((source, maps), {"frames": []}, r"^frames=\[\]: give at least one frame number"),
        ((source, maps), {"bands": "2"}, r"^bands='2': must be a whole number of at least 1"),
        ((source, maps), {"bands": 0}, r"^bands=0: must be a whole number"),
        ((source, maps), {"region": "x"}, r"^region='x': give \(top, left, bottom, right\) within the maps' "
                                          rf"{h}x{w} rows"),
        ((source, maps), {"region": (0, 0, h + 1, w)}, r"^region=\(0, 0, 201, 300\): give"),
        ((source, maps), {"region": (5, 0, 5, w)}, r"^region=\(5, 0, 5, 300\): give"),
        ((source, maps), {"alignment": []}, r"^alignment='list': needs a transform for every frame to merge"),
        ((source, maps), {"alignment": alignment[:2]}, r"^alignment='list': needs .* \(frame 2 too\)"),
    ):
        with pytest.raises(OptionError, match=why):
            fuse(*args, **{"alignment": alignment, **kwargs})
    with pytest.raises(OptionError, match=r"^source='generator': not opened frames"):
        analyse(x for x in [source.read(0), source.read(1)])


def test_bytes_made_float_from_a_table_fold_the_same_bits_as_converted(tiny_stack, monkeypatch):
    """Pass 2 looks RGB bytes' float values (and their exposure gain) up in a table of to_float's own values:
    the fused image is the one converting each band gives, to the bit, with and without gains."""
    import cv2

    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    for k, i in enumerate(analysis.used):  # gains of every kind: none, one for all channels, one per channel
        analysis.alignment[i].gain = [np.ones(3), np.full(3, 0.9), np.array([1.07, 0.96, 1.02])][k % 3]
    looked_up = fuse(source, analysis.maps, alignment=analysis.alignment, region=box)
    tables: list = []

    class Converting:  # cv2 with its LUT of a float table replaced by the conversion it stands for
        def __getattr__(self, name):
            return getattr(cv2, name)

        @staticmethod
        def LUT(src, lut, *args, **kwargs):  # (OpenCV's name)
            if lut.dtype != np.float32:
                return cv2.LUT(src, lut, *args, **kwargs)
            tables.append(lut)  # (the value of byte 1 is the factor itself: to_float's multiply)
            return np.multiply(src, lut[0, 1], dtype=np.float32)

    monkeypatch.setattr(merge, "cv2", Converting())
    converted = fuse(source, analysis.maps, alignment=analysis.alignment, region=box)
    factors = {np.broadcast_to(np.float32(1 / 255), 3).tobytes()} | {  # to_float's factors
        (np.asarray(g, np.float32) / np.float32(255)).tobytes() for g in ([0.9] * 3, [1.07, 0.96, 1.02])}
    assert tables and {lut[0, 1].tobytes() for lut in tables} == factors  # the table was used, for every gain
    assert np.array_equal(looked_up, converted)


def test_the_blend_state_is_made_without_a_whole_region_grid_or_a_second_width_map(tiny_stack, monkeypatch):
    """mem10: pass 2 upscales its maps a band of rows at a time (no whole-region source coordinates, 8 bytes a
    pixel) and the depth-map blend takes the widths as its factor in place: while the blend state is made, at
    most its index, factor, sums and weight (24 bytes a region pixel) and a band's temporaries are alive (main:
    36 bytes a pixel, the grid and a width map beside the factor). The maps are small against the region
    (analysis size 64), as at full size (800 px against 2000-5000); the frames are warped before (``warped``),
    so that no frame read ahead is counted."""
    import tracemalloc

    from postfocus.fuse import base
    from postfocus.options import StackOptions
    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source, StackOptions(analysis_size=64))
    box = analysis.common_area()
    grown = aligned_region(box, analysis.size, occlusion=False)
    warped = {i: warp_whole(source.read_pixels(i), analysis.alignment[i].matrix, analysis.size, grown)
              for i in analysis.used}
    before = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, threads=1, occlusion=False,
                  warped=warped.get)
    monkeypatch.setattr(base, "UPSCALE_ROWS", 16, raising=False)  # (main has none)
    made, peaks = merge._Merge.fusion, []

    def measured(self, region):
        tracemalloc.start()
        try:
            fusion = made(self, region)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        return fusion

    monkeypatch.setattr(merge._Merge, "fusion", measured)
    image = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, threads=1, occlusion=False,
                 warped=warped.get)
    pixels = (box[2] - box[0]) * (box[3] - box[1])
    assert len(peaks) == 1 and peaks[0] < 27 * pixels, peaks[0] / pixels
    assert np.array_equal(image.view(np.uint32), before.view(np.uint32))


def test_frames_warped_whole_without_a_keeper_fuse_as_with_one(tiny_stack):
    """``whole_warps``: the frames warped whole and the rectangles cut from them, as when ``on_aligned`` takes
    them (a photo stack kept as file copies: the same image as before, no frame handed on or corrected)."""
    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    handed: list[int] = []
    kept = fuse(source, analysis.maps, alignment=analysis.alignment, region=box,
                on_aligned=lambda i, frame: handed.append(i))
    whole = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, whole_warps=True)
    assert handed and np.array_equal(kept, whole)
    banded = [fuse(source, analysis.maps, alignment=analysis.alignment, region=box, bands=2, **k)
              for k in ({"on_aligned": lambda i, frame: None}, {"whole_warps": True})]
    assert np.array_equal(*banded)  # (the first band's frames warped whole, as those handed on)


def test_frames_are_warped_whole_where_their_footprint_is_large(tiny_stack, monkeypatch):
    """``whole_above``: a frame whose footprint covers at least that share of the region is warped whole (the
    rectangles cut from it: ``whole_warps``' image), the others only where they weigh (plain ``fuse``'s image);
    the first frame is warped whole (its footprint is known only once the blend state is made)."""
    from postfocus.pipeline import merge

    warps: list[int] = []
    warp_whole = merge.warp_whole
    monkeypatch.setattr(merge, "warp_whole", lambda stored, *a: warps.append(1) or warp_whole(stored, *a))
    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    args = (source, analysis.maps)
    kw = {"alignment": analysis.alignment, "region": box}
    whole, plain = fuse(*args, **kw, whole_warps=True), fuse(*args, **kw)
    warps.clear()
    assert np.array_equal(fuse(*args, **kw, whole_above=0.0), whole) and len(warps) == 3
    warps.clear()
    above = fuse(*args, **kw, whole_above=1.01)  # no footprint that large: the first frame alone warped whole
    assert len(warps) == 1 and np.abs(above - plain).max() < 1e-3


def test_a_frame_is_warped_whole_only_once_the_one_before_is_folded_and_dropped(tiny_stack, monkeypatch):
    """Whole warps (a photo stack kept as copies, ``whole_warps``): when a frame is warped, no earlier frame's
    warp is alive (the decoded frame and its warp beside the blend, not a third frame: 60 MB less at algae's 20 MP),
    with the fold slowed down so that the decoding thread is always ahead; the same image."""
    import time
    import weakref

    from postfocus.fuse.depthmap import DepthmapFusion
    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    before = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, whole_warps=True)
    warps: list = []
    alive_at_warp: list[int] = []
    adds = DepthmapFusion.add

    def warp(*args, **kwargs):
        alive_at_warp.append(sum(w() is not None for w in warps))
        out = warp_whole(*args, **kwargs)
        warps.append(weakref.ref(out))
        return out

    def slow_add(self, *args, **kwargs):
        time.sleep(0.01)  # (the fold outlasts the next frame's decoding)
        return adds(self, *args, **kwargs)

    monkeypatch.setattr(merge, "warp_whole", warp)
    monkeypatch.setattr(DepthmapFusion, "add", slow_add)
    for threads in (1, 2):
        warps.clear()
        alive_at_warp.clear()
        image = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, whole_warps=True, threads=threads)
        assert len(alive_at_warp) == len(analysis.maps.used) >= 3
        assert alive_at_warp == [0] * len(alive_at_warp)
        assert np.array_equal(image, before)


def test_a_failed_fold_lets_the_waiting_warp_go_and_joins_its_thread(tiny_stack, monkeypatch):
    """A fold that fails while the next frame waits for its turn to be warped: the error comes out, the
    decoding thread is joined (no hang), and no frame is warped after the failure."""
    from postfocus.fuse.depthmap import DepthmapFusion
    from postfocus.pipeline import merge

    source = open_source(tiny_stack.folder)
    analysis = analyse(source)
    box = analysis.common_area()
    warped: list[int] = []

    def warp(*args, **kwargs):
        warped.append(1)
        return warp_whole(*args, **kwargs)

    def failing_add(self, *args, **kwargs):
        raise RuntimeError("fold failed")

    monkeypatch.setattr(merge, "warp_whole", warp)
    monkeypatch.setattr(DepthmapFusion, "add", failing_add)
    names = {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="fold failed"):
        fuse(source, analysis.maps, alignment=analysis.alignment, region=box, whole_warps=True)
    assert warped == [1]  # (the first frame only: the second never had its turn)
    assert not [t for t in threading.enumerate() if t.name.startswith("postfocus-decode") and t.name not in names]
