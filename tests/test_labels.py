"""Frames named to people one way: the command line's messages, the app's and the saved page's."""

from __future__ import annotations

import json

from postfocus.labels import frame_label, frame_labels


def test_a_photo_is_its_files_name_and_numbered_only_when_two_share_it():
    names = ["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0001.jpg"]  # (two folders' photos of the same name)
    assert frame_label(names, 1) == "IMG_0002.jpg"
    assert frame_labels(names, [0, 2]) == "IMG_0001.jpg (frame 1), IMG_0001.jpg (frame 3)"
    assert frame_label(["a.jpg", "b.jpg"], 0) == "a.jpg"


def test_a_videos_frame_is_its_number_and_time():
    names = [f"frame {i:04d}" for i in range(41)]
    assert frame_label(names, 15, fps=30.0) == "frame 16 (0.50 s)"
    assert frame_label(names, 0) == "frame 1"  # (no frame rate known)
    assert frame_label(names, 41) == "frame 42"  # (past the names: no name to give)


def test_the_command_line_names_the_nearest_frame_as_the_page_and_the_app_do(tiny_stack, tmp_path, cli):
    """The saved page and the app said "step0.jpg is the nearest" (products.order.depth_order) where the command line
    said "frame 1 (step0.jpg) is the nearest" (fifteenth session). Fails on main."""
    from postfocus import process
    from postfocus.products.order import depth_order

    frames = [str(p) for p in tiny_stack.paths]
    run = cli("depth", *frames, "-o", tmp_path / "d.png", "--json", "--cache", tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    page = depth_order(process(frames, cache_dir=tmp_path / "cache"), [p.name for p in tiny_stack.paths])
    assert page["nearest"] == tiny_stack.paths[0].name and page["assumed"]
    said = [line for line in run.err_lines if line.startswith("depth order assumed: ")]
    assert said == [f"depth order assumed: {page['nearest']} is the nearest (--order near-to-far, the default); "
                    f"if {page['farthest']} is, give --order far-to-near (--order auto measures it)"], run.stderr
    assert json.loads(run.stdout)["order"] == {"near_to_far": True, "assumed": True}


def test_the_pipelines_warnings_name_a_frame_as_the_rest_do(tmp_path):
    """A video's frame (no file's name) was left out as "frame 0003: left out (cannot be
    aligned with frame 0002 ...)", the library's names, where every other message says "frame 4" (fixes24's
    leftover). Fails on main."""
    import warnings

    import cv2
    import numpy as np

    from postfocus.pipeline import run
    from postfocus.errors import PostfocusWarning

    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((160, 200, 3), dtype=np.float32), (0, 0), 2)
    frames = [np.roll(base, k, axis=1) for k in range(4)]
    frames[3] = rng.random((160, 200, 3), dtype=np.float32)  # (nothing in common with the others)
    from postfocus.io.video_write import write_video

    video = write_video(frames, tmp_path / "sweep.mp4", fps=10, crf=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.stack(video, align="similarity", threads=1)
    said = [str(w.message) for w in caught if issubclass(w.category, PostfocusWarning)]
    left = [m for m in said if "left out" in m]
    assert left and left[0].startswith("frame 4 (0.30 s): left out (cannot be aligned with frame 3 (0.20 s) ("), said
    assert not any("frame 000" in m for m in said), said
