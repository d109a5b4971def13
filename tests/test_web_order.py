"""The depth order a job's results took, as the app says it (:mod:`postfocus.web.order`)."""

from __future__ import annotations

import warnings

import pytest

from postfocus.options import StackOptions
from postfocus.pipeline.run import process
from postfocus.web.order import depth_order


@pytest.mark.parametrize("order", ["near-to-far", "far-to-near"])
def test_the_default_order_is_said_as_assumed_with_the_way_to_change_it(tiny_stack, tmp_path, order):
    """As ``postfocus depth`` says on stderr (and ``--json`` as ``order``) when ``--order`` is its default."""
    ps = process(tiny_stack.folder, StackOptions(order=order), cache_dir=tmp_path)
    names = ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"]
    said = depth_order(ps, names)
    near_to_far = order == "near-to-far"
    nearest, farthest = ("IMG_1.jpg", "IMG_3.jpg") if near_to_far else ("IMG_3.jpg", "IMG_1.jpg")
    assert said == {"near_to_far": near_to_far, "assumed": True, "nearest": nearest, "farthest": farthest,
                    "said": f"Depth order assumed: {nearest} is the nearest; if {farthest} is, near and far are "
                            f"swapped here (postfocus depth --order {'far-to-near' if near_to_far else 'near-to-far'})."}


def test_an_order_measured_is_said_as_measured_and_one_too_weak_to_decide_as_assumed(tiny_stack, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(tiny_stack.folder, StackOptions(order="auto"), cache_dir=tmp_path)
    said = depth_order(ps, ["a.png", "b.png", "c.png"])
    weak = ps.manifest["direction"]["source"] == "assumed"
    assert said["assumed"] is weak and said["near_to_far"] is ps.near_to_far
    assert said["said"].startswith("Depth order assumed:" if weak else "Depth order measured:")


def test_a_videos_frames_are_named_by_number_and_time(tiny_stack, tmp_path):
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    ps.info.fps = 25.0  # (as a video's stack says it)
    said = depth_order(ps, ["frame 0000", "frame 0001", "frame 0002"])
    assert (said["nearest"], said["farthest"]) == ("frame 1 (0.00 s)", "frame 3 (0.08 s)")
