"""Writing a result (``postfocus.save_image``, ``StackResult.save``) from pictures a caller made."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from postfocus.errors import OptionError
from postfocus.io.base import SourceInfo
from postfocus.result import save_image

INFO = SourceInfo("images", ["a", "b"], 16, 24, bit_depth=8)
INFO16 = SourceInfo("images", ["a", "b"], 16, 24, bit_depth=16)


def test_an_integer_picture_is_written_by_its_types_range(tmp_path):
    """A uint8 picture was written all white: each value was taken as a [0, 1] level and clipped to 1."""
    pixels = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    written = cv2.imread(str(save_image(tmp_path / "u8.png", pixels, INFO)), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written[:, :, ::-1], pixels)
    deep = np.random.default_rng(1).integers(0, 65536, (16, 24, 3), dtype=np.uint16)
    written = cv2.imread(str(save_image(tmp_path / "u16.png", deep, INFO16)), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and np.array_equal(written[:, :, ::-1], deep)
    wide = np.full((16, 24), 2**30, np.int32)  # other integers: by their type's range (2**30 of 2**31 - 1: half)
    grey = cv2.imread(str(save_image(tmp_path / "i32.png", wide, INFO)), cv2.IMREAD_UNCHANGED)
    assert grey.ndim == 2 and int(grey.max()) == int(grey.min()) == 128


@pytest.mark.parametrize("image,options,named", [
    (np.full((16, 24, 3), np.nan, np.float32), {}, "image='NaN'"),  # was written black
    (np.zeros((16, 24, 3), np.complex64), {}, "image='complex64'"),  # was written from the real part
    (np.zeros((16, 24, 3), bool), {}, "image='bool'"),
    (np.zeros((0, 24, 3), np.float32), {}, "image='shape (0, 24, 3)'"),  # a ValueError from Pillow
    (np.zeros((2, 16, 24, 3), np.float32), {}, "image='shape (2, 16, 24, 3)'"),  # a TypeError from Pillow
    ([[0.5] * 24] * 16, {}, "image='list'"),  # an AttributeError
    (np.zeros((16, 24, 3), np.float32), {"quality": 0}, "quality=0"),  # was written at quality 0
    (np.zeros((16, 24, 3), np.float32), {"quality": 500}, "quality=500"),
    (np.zeros((16, 24, 3), np.float32), {"quality": float("nan")}, "quality=nan"),  # a ValueError
    (np.zeros((16, 24, 3), np.float32), {"info": None}, "info=None"),  # an AttributeError
    (np.zeros((16, 24, 3), np.float32), {"path": None}, "path=None"),  # a TypeError from pathlib
])
def test_what_is_not_a_picture_or_an_option_is_refused_by_name(tmp_path, image, options, named):
    kwargs = {"path": tmp_path / "out.jpg", "image": image, "info": INFO, **options}
    with pytest.raises(OptionError) as refused:
        save_image(kwargs.pop("path"), kwargs.pop("image"), kwargs.pop("info"), **kwargs)
    assert str(refused.value).startswith(named + ":") and "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []
