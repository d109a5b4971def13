"""RAW frames are merged as light: blended in linear values, encoded once (issue 9)."""

from __future__ import annotations

import numpy as np

from postfocus.maps import StackMaps
from postfocus.colour import srgb_decode, srgb_encode
from postfocus.io.base import FrameSource, SourceInfo
from postfocus.pipeline.merge import fuse


class TwoFrames(FrameSource):
    def __init__(self, linear: bool):
        self.frames = [np.full((8, 8, 3), 0.2, np.float32), np.full((8, 8, 3), 0.8, np.float32)]
        self.info = SourceInfo("raw" if linear else "images", ["a", "b"], 8, 8, linear=linear)

    def __len__(self) -> int:
        return 2

    def read(self, index: int) -> np.ndarray:
        return self.frames[index]


def halfway_maps() -> StackMaps:
    """Every pixel focused exactly between frame 0 and frame 1: equal weights."""
    return StackMaps(focus_index=np.full((8, 8), 0.5, np.float32), confidence=np.ones((8, 8), np.float32),
                     volume=np.ones((2, 8, 8), np.float32), used=[0, 1], size=(8, 8))


def test_raw_frames_blend_in_linear_light():
    out = fuse(TwoFrames(linear=True), halfway_maps())
    light = srgb_encode(np.float32(0.5) * (srgb_decode(np.float32(0.2)) + srgb_decode(np.float32(0.8))))
    assert np.allclose(out, light, atol=1e-4)
    assert not np.allclose(out, 0.5, atol=1e-2)  # the encoded-value average would be 0.5


def test_other_frames_blend_encoded_values():
    out = fuse(TwoFrames(linear=False), halfway_maps())
    assert np.allclose(out, 0.5, atol=1e-4)


def test_srgb_round_trip():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(srgb_encode(srgb_decode(x)) - x).max() < 1e-5


def test_cached_frames_of_a_raw_stack_still_merge_in_linear_light():
    from types import SimpleNamespace

    from postfocus.store import CachedFrames

    for kind, linear in (("raw", True), ("images", False), ("video", False)):
        info = SourceInfo(kind, ["a", "b"], 8, 8, linear=linear)
        stack = SimpleNamespace(size=(8, 8), info=info, manifest={"kind": kind}, names=["a", "b"], used=[0, 1])
        assert CachedFrames(stack).info.linear is linear
