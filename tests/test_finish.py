"""The end of a run that keeps the processed stack (pipeline/finish.py): the folder's last files written
while another thread rounds the image and hands it to the caller's output."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from postfocus.errors import OutputError
from postfocus.io.images import to_float
from postfocus.io.write import to_uint
from postfocus.pipeline.finish import write_beside


def _image() -> np.ndarray:
    return np.random.default_rng(3).random((40, 60, 3), dtype=np.float32)


def test_the_output_is_written_while_the_folder_is():
    """``write`` waits until ``on_image`` has started on another thread: they run at the same time."""
    image, started, seen = _image(), threading.Event(), {}

    def write():
        assert started.wait(10), "on_image did not run beside write"
        seen["write"] = threading.get_ident()

    def on_image(img, used, reference):
        seen["on_image"] = threading.get_ident()
        seen["args"] = (img, list(used), reference)
        started.set()

    pixels, failed = write_beside(write, image, bits=8, on_image=on_image, used=(0, 2, 3), reference=2)
    assert failed is None and seen["write"] == threading.get_ident() != seen["on_image"]
    assert seen["args"][1:] == ([0, 2, 3], 2)
    np.testing.assert_array_equal(pixels, to_uint(image, 8))
    np.testing.assert_array_equal(seen["args"][0], to_float(pixels))  # the image as the folder holds it


@pytest.mark.parametrize("bits", [8, 16])
def test_the_image_is_rounded_as_the_folder_holds_it(bits):
    image = _image()
    pixels, failed = write_beside(lambda: None, image, bits=bits, on_image=None, used=[0], reference=0)
    assert failed is None and pixels.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(pixels, to_uint(image, bits))


def test_what_on_image_raises_is_handed_back_once_the_folder_is_written():
    written = []

    def on_image(img, used, reference):
        raise OutputError("out.jpg: no room")

    pixels, failed = write_beside(lambda: written.append(True), _image(), bits=8, on_image=on_image, used=[0],
                                  reference=0)
    assert written == [True] and isinstance(failed, OutputError) and pixels.dtype == np.uint8


def test_what_write_raises_is_raised_after_the_output_is_done():
    finished = []

    def write():
        raise OSError("disk full")

    def on_image(img, used, reference):
        threading.Event().wait(0.2)
        finished.append(True)

    with pytest.raises(OSError, match="disk full"):
        write_beside(write, _image(), bits=8, on_image=on_image, used=[0], reference=0)
    assert finished == [True]  # joined, not left running


def test_a_budget_of_one_thread_runs_both_on_the_calling_thread():
    threads = set()

    def on_image(img, used, reference):
        threads.add(threading.get_ident())

    write_beside(lambda: threads.add(threading.get_ident()), _image(), bits=8, on_image=on_image, used=[0],
                 reference=0, inline=True)
    assert threads == {threading.get_ident()}


@pytest.mark.parametrize("bits", [8, 16])
def test_overwrite_hands_on_the_rounded_image_in_the_images_own_memory_and_writes_the_same(bits):
    """``overwrite``: ``on_image`` gets the rounded image as float made in ``image`` itself (no second float
    image made: without it, one), the same values as ``to_float(pixels)``;
    ``write``, reading the image while it is overwritten, rounds it to the same integers as the image before."""
    import tracemalloc

    def run(image: np.ndarray, overwrite: bool) -> tuple:
        seen, written = {}, []

        def write():  # (reads the image by rows while the other thread may be overwriting it)
            written.append(np.concatenate([to_uint(image[a:a + 50], bits) for a in range(0, image.shape[0], 50)]))

        def on_image(img, used, reference):
            seen["image"] = img

        tracemalloc.start()
        try:
            pixels, failed = write_beside(write, image, bits=bits, on_image=on_image, used=[0], reference=0,
                                          **({"overwrite": True} if overwrite else {}))
            largest = max(t.size for t in tracemalloc.take_snapshot().traces)  # (``seen`` holds the handed image)
        finally:
            tracemalloc.stop()
        assert failed is None
        return pixels, seen["image"], written[0], largest

    image = np.random.default_rng(5).random((2000, 1500, 3), dtype=np.float32)  # (well above to_uint's 4 MB bands)
    before = image.copy()
    pixels, handed, written, largest = run(image, True)
    assert handed is image
    np.testing.assert_array_equal(pixels, to_uint(before, bits))
    np.testing.assert_array_equal(image.view(np.uint32), to_float(pixels).view(np.uint32))
    np.testing.assert_array_equal(written, pixels)
    plain, handed, written, largest_plain = run(before.copy(), False)
    assert handed is not image and np.array_equal(handed, image) and np.array_equal(plain, pixels)
    assert largest <= image.nbytes // 2  # (the integers at most)
    assert largest_plain == image.nbytes  # (without it: a float image)
