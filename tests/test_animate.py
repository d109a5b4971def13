"""Focus pulls: the files decode with the frames asked for, and the focus moves from near to far.

The stack is rendered by the project's generator (``steps``: photos on cards at
known depths), so "near" and "far" patches are known: over the pull the near
card's sharpness must fall and the far card's rise, crossing once, in the
decoded GIF, WebP and MP4 alike, and with the virtual aperture.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import make_stack  # noqa: E402

from postfocus.errors import OptionError, OutputError  # noqa: E402
from postfocus.io.animation import write_animation  # noqa: E402
from postfocus.products.animate import animate, plan_pull, pull_positions, render_pull  # noqa: E402


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    ps, _, truth = make_stack("steps", tmp_path_factory.mktemp("pull") / "steps", size=(160, 240), frames=8, seed=1)
    return ps, truth


def patches(truth: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Masks (at ``size``) well inside the nearest and the farthest card."""
    h, w = size
    small = cv2.resize(truth, (w, h), interpolation=cv2.INTER_NEAREST)
    kernel = np.ones((9, 9), np.uint8)
    near = cv2.erode((small <= small.min() + 0.5).astype(np.uint8), kernel) > 0
    far = cv2.erode((small >= small.max() - 0.5).astype(np.uint8), kernel) > 0
    assert near.sum() > 100 and far.sum() > 100
    return near, far


def sharpness(rgb: np.ndarray, mask: np.ndarray) -> float:
    grey = cv2.cvtColor(np.asarray(rgb, np.float32), cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    return float(lap[mask].var())


def rank_correlation(values) -> float:
    """Spearman's rank correlation of the values with time."""
    v = np.asarray(values, np.float64)
    ranks = np.argsort(np.argsort(v)).astype(np.float64)
    return float(np.corrcoef(np.arange(len(v)), ranks)[0, 1])


def check_focus_moves(frames: list[np.ndarray], truth: np.ndarray, keep: np.ndarray | None = None) -> None:
    near, far = patches(truth, frames[0].shape[:2])
    if keep is not None:
        near, far = near & keep, far & keep
        assert near.sum() > 100 and far.sum() > 100, (near.sum(), far.sum())
    s_near = [sharpness(f, near) for f in frames]
    s_far = [sharpness(f, far) for f in frames]
    assert rank_correlation(s_near) < -0.9, s_near
    assert rank_correlation(s_far) > 0.9, s_far
    assert s_near[0] > 3 * s_near[-1] and s_far[-1] > 3 * s_far[0]
    # Which is sharper changes once: near first, far at the end.
    lead = np.sign(np.log(np.asarray(s_near) / np.asarray(s_far)))
    assert lead[0] > 0 and lead[-1] < 0
    assert int((np.diff(lead) != 0).sum()) == 1, lead


def decode_pillow(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        out = []
        for k in range(im.n_frames):
            im.seek(k)
            out.append(np.asarray(im.convert("RGB"), np.float32) / 255)
    return out


def decode_mp4(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.float32) / 255 for f in container.decode(video=0)]


@pytest.mark.parametrize("suffix, decode", [(".gif", decode_pillow), (".webp", decode_pillow), (".mp4", decode_mp4)])
def test_pull_file_decodes_and_focus_moves(steps, tmp_path, suffix, decode):
    ps, truth = steps
    path, pull = animate(ps, tmp_path / f"pull{suffix}", duration=1.2, fps=10)
    frames = decode(path)
    assert len(frames) == pull.count == 12
    assert frames[0].shape[:2] == pull.size and all(v % 2 == 0 for v in pull.size)
    check_focus_moves(frames, truth)
    assert not list(tmp_path.glob(".*.part"))


def test_pull_with_the_aperture_moves_focus(steps):
    ps, truth = steps
    pull = plan_pull(ps, duration=1.0, fps=6, f_number=1.4, long_edge=None)
    frames = list(render_pull(ps, pull))
    # The aperture renders by the depth map, so this checks the pull, not the map: the cards' pixels are judged
    # where the map reads their true depth within a frame. (At this 160x240 size a zero-confidence corner of the
    # far card is filled with the near card's depth; since islands17 part of it reads right, and the ragged line
    # between the two parts, sharp beside blurred at near focus, outweighed the far card's blurred texture.)
    from postfocus.products.depth_cache import stack_depth

    depth = stack_depth(ps).depth
    h, w = frames[0].shape[:2]
    right = np.abs(depth - cv2.resize(truth, (depth.shape[1], depth.shape[0]), interpolation=cv2.INTER_NEAREST)) < 1.0
    right = cv2.erode(cv2.resize(right.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST), np.ones((5, 5), np.uint8)) > 0
    check_focus_moves(frames, truth, keep=right)


def test_pull_passes_between_frames(steps):
    """A slow pull mixes the two frames around its position: no step as large as one from frame to frame."""
    ps, _ = steps
    pull = plan_pull(ps, start=0, end=7, duration=3.0, fps=10, long_edge=None)
    frames = list(render_pull(ps, pull))
    steps_out = [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:])]
    recorded = [ps.read_frame(i) for i in ps.used]
    steps_in = [float(np.abs(b - a).mean()) for a, b in zip(recorded, recorded[1:])]
    assert max(steps_out) < 0.6 * min(steps_in), (max(steps_out), min(steps_in))
    # Halfway between frames 3 and 4 the picture is like neither.
    mid = frames[int(np.argmin(np.abs(pull.positions - 3.5)))]
    assert np.abs(mid - recorded[3]).mean() > 0.25 * steps_in[3]
    assert np.abs(mid - recorded[4]).mean() > 0.25 * steps_in[3]


def test_pull_ends(steps):
    ps, truth = steps
    pull = plan_pull(ps, start="near", end="far", duration=1, fps=4)
    assert abs(pull.start - truth.min()) < 0.6 and abs(pull.end - truth.max()) < 0.6
    h, w = ps.size
    ys, xs = np.nonzero(truth >= truth.max() - 0.5)
    point = (float(xs[len(xs) // 2]), float(ys[len(ys) // 2]))
    pull = plan_pull(ps, start=2, end=point, duration=1, fps=4)
    assert pull.start == 2.0 and abs(pull.end - truth.max()) < 0.6
    assert plan_pull(ps, start="50%", end="0%", duration=1, fps=4).start == 3.5
    with pytest.raises(OptionError) as err:
        plan_pull(ps, start="middle", duration=1, fps=4)
    assert err.value.param == "start"
    with pytest.raises(OptionError) as err:
        plan_pull(ps, end=42, duration=1, fps=4)
    assert err.value.param == "end"
    for bad in ({"duration": 0}, {"fps": -1}, {"duration": 0.05}):
        with pytest.raises(OptionError):
            plan_pull(ps, **{"duration": 1, "fps": 4, **bad})


def test_a_pull_whose_ends_are_at_one_depth_is_refused_naming_the_depths_it_could_use(steps, tmp_path, cli):
    """``animate beetle/ --from 40%,55% --to far`` (docs/living.md) wrote 60 frames of one picture, "depth 27.00 to
    27.00", without a word (user20): the tapped body is the far end. Two ends at one depth are refused."""
    ps, truth = steps
    with pytest.raises(OptionError) as err:
        plan_pull(ps, start="far", end="far", duration=1, fps=4)
    far = plan_pull(ps, start="near", end="far", duration=1, fps=4)
    assert err.value.param == "end"
    assert str(err.value) == (f"end='far': is at depth {far.end:.2f}, where the pull starts: it would not move; choose "
                              f"ends at two depths (the scene spans {far.start:.2f} to {far.end:.2f})")
    with pytest.raises(OptionError, match=r"end=3: is at depth 3.00, where the pull starts"):
        plan_pull(ps, start=3, end=3, duration=1, fps=4)
    assert plan_pull(ps, start=3, end=4, duration=1, fps=4).end == 4.0  # one frame apart is a pull
    frames = sorted((Path(ps.manifest["paths"][0]).parent).glob("frame_*.png"))
    out = tmp_path / "still.gif"
    run = cli("animate", *frames, "-o", out, "--from", "far", "--cache", ps.folder.parent)
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert run.err_lines[0].startswith("postfocus: error: --to 'far': is at depth 7.00, where the pull starts"), run.stderr
    assert not out.exists()


def test_positions_ease_and_bounce():
    p = pull_positions(0.0, 6.0, 9)
    assert p[0] == 0 and p[-1] == 6 and np.all(np.diff(p) > 0)
    assert np.diff(p)[0] < np.diff(p)[4]  # slow start, fast middle
    b = pull_positions(0.0, 6.0, 10, bounce=True)
    assert b[0] == 0 and b.max() == 6 and b[-1] < 2


def test_write_animation_refuses_other_formats(tmp_path):
    frames = [np.zeros((8, 8, 3), np.float32)] * 2
    with pytest.raises(OutputError):
        write_animation(tmp_path / "x.avi", frames, fps=5)
    assert not list(tmp_path.iterdir())


def test_animate_command(steps, tmp_path, cli):
    frames = sorted((Path(steps[0].manifest["paths"][0]).parent).glob("frame_*.png"))
    out = tmp_path / "pull.gif"
    cache = steps[0].folder.parent
    run = cli("-q", "animate", *frames, "-o", out, "--duration", "0.5", "--fps", "8", "--cache", cache)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    with Image.open(out) as im:
        assert im.n_frames == 4
    for args, flag in ((["-o", tmp_path / "p.avi"], "p.avi"), (["-o", tmp_path / "p.gif", "--from", "99"], "--from 99"),
                       (["-o", tmp_path / "p.gif", "--fps", "0"], "--fps 0")):
        run = cli("animate", *frames, *args, "--cache", cache)
        assert run.returncode != 0 and len(run.err_lines) == 1 and flag in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "p.gif").exists()


def test_a_frame_the_stack_left_out_is_named_with_the_kept_ones_as_ranges_counted_from_1():
    from types import SimpleNamespace

    from postfocus.cli.animate import pull_end
    from postfocus.errors import OptionError

    video = SimpleNamespace(used=[i for i in range(120) if i != 40], size=(1080, 1920))
    with pytest.raises(OptionError, match=r"no frame 41 among the frames kept \(1-40, 42-120; counted from 1\)"):
        pull_end("start", "41", video)
    assert pull_end("start", "42", video) == 41


@pytest.mark.parametrize("options, why", [
    ({"duration": 1e308, "fps": 120}, r"^duration=1e\+308: at 120 frames per second this makes more than 3000 frames"),
    ({"duration": 10**400, "fps": 24}, r"^duration=.*: must be more than 0 seconds"),
    ({"duration": "3", "fps": 24}, r"^duration='3': must be more than 0 seconds"),
    ({"duration": True, "fps": 24}, r"^duration=True: must be more than 0 seconds"),
    ({"duration": 3, "fps": 24, "long_edge": "720"}, r"^long_edge='720': a whole number of at least 16 pixels"),
    ({"duration": 3, "fps": 24, "long_edge": 10**400}, r"^long_edge=.*: a whole number of at least 16 pixels"),
    ({"duration": 3, "fps": 24, "f_number": True}, r"^f_number=True: must be a number above 0"),
])
def test_pull_options_no_pull_can_have_are_refused_by_name(options, why):
    """``--duration 1e308`` made an infinite frame count: "internal error: OverflowError: cannot convert float
    infinity to integer"; ``long_edge="720"`` was a TypeError; NumPy numbers are numbers."""
    from postfocus.products.animate import check_pull_options

    with pytest.raises(OptionError, match=why):
        check_pull_options(**options)
    assert check_pull_options(duration=np.float32(0.5), fps=np.int64(8), long_edge=np.int64(64)) == 4


def test_a_duration_or_aperture_past_any_pull_is_one_line_before_or_without_a_crash(steps, tmp_path, cli):
    """``animate --duration 1e308`` and ``--f-number 1e-300`` (a disc of 1e300 px) were internal errors."""
    frames = sorted((Path(steps[0].manifest["paths"][0]).parent).glob("frame_*.png"))
    cache = steps[0].folder.parent
    run = cli("animate", *frames, "-o", tmp_path / "p.gif", "--duration", "1e308", "--cache", cache)
    assert run.returncode == 2 and len(run.err_lines) == 1 and "--duration 1e+308" in run.stderr, run.stderr
    out = tmp_path / "a.gif"
    run = cli("-q", "animate", *frames, "-o", out, "--f-number", "1e-300", "--duration", "0.25", "--fps", "8",
              "--cache", cache)
    assert run.returncode == 0 and run.stdout.strip() == str(out), run.stderr


def test_a_frame_rate_too_slow_for_a_gif_is_refused_not_an_overflow(steps, tmp_path, cli):
    """``animate --fps 0.001 --duration 2000 -o x.gif`` planned two frames, then Pillow could not store a frame
    shown 1000 s (a GIF's delay is 16 bits of hundredths): "internal error: OverflowError: int too big to
    convert"; ``write_animation(fps=1e-9)`` was the same for WebP. 0.01 to 120 fps are taken."""
    from postfocus.errors import PostfocusError
    from postfocus.io.animation import write_gif

    frames = sorted((Path(steps[0].manifest["paths"][0]).parent).glob("frame_*.png"))
    run = cli("animate", *frames, "-o", tmp_path / "x.gif", "--fps", "0.001", "--duration", "2000",
              "--cache", steps[0].folder.parent)
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert run.err_lines[0] == "postfocus: error: --fps 0.001: use 0.01 to 120 frames per second"
    two = [np.full((16, 16, 3), v, np.float32) for v in (0.2, 0.8)]
    for suffix in (".gif", ".webp", ".mp4"):
        with pytest.raises(PostfocusError, match=r"frame rate 1e-09: use 0.01 to 120 frames per second"):
            write_animation(tmp_path / f"t{suffix}", two, fps=1e-9)
        assert write_animation(tmp_path / f"t{suffix}", two, fps=0.01).stat().st_size > 0
    for duration in (655_351, 1e300, -1, float("nan"), "80"):
        with pytest.raises(PostfocusError, match=r"^a GIF shows a frame from 0 to 655350 ms"):
            write_gif(tmp_path / "w.gif", two, duration_ms=duration)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.gif", "t.mp4", "t.webp"]


def test_the_library_never_writes_a_pull_over_its_input_video(tiny_stack, tmp_path):
    """``animate(process("sweep.mp4"), "sweep.mp4")`` replaced the video it was made from (the command line
    checked its -o against the inputs; the library did not)."""
    import warnings

    from postfocus import process
    from postfocus.errors import PostfocusWarning
    from postfocus.io.images import read_image

    frames = [read_image(p) for p in tiny_stack.paths] * 2
    video = write_animation(tmp_path / "sweep.mp4", frames, fps=10)
    before = video.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PostfocusWarning)
        ps = process(video, cache_dir=tmp_path / "cache")
    with pytest.raises(OutputError, match=r"sweep.mp4: is one of the input"):
        animate(ps, video, duration=0.5, fps=8)
    assert video.read_bytes() == before
    assert animate(ps, tmp_path / "pull.mp4", duration=0.5, fps=8)[0].stat().st_size > 0


def test_a_pull_prints_as_its_ends_not_its_arrays(steps):
    """``print(animate(...)[1])`` (docs/living.md's example) printed the positions and the depth map's arrays (user20)."""
    pull = plan_pull(steps[0], start="near", end="far", duration=1, fps=4)
    text = repr(pull)
    assert text.startswith("FocusPull(start=") and f"end={pull.end!r}" in text and "array" not in text, text
    assert len(text) < 200, text


def test_a_webp_or_gif_reports_the_frames_it_holds_when_alike_neighbours_are_stored_once(steps, tmp_path, cli):
    # libwebp (and Pillow's GIF writer) store a run of frames alike once, shown as long: `animate -o x.webp` said 60
    # frames where the file held 57. The command says what the file holds, as read back.
    from postfocus.io.animation import stored_frames

    frames = [np.full((16, 16, 3), v, np.float32) for v in (0.2, 0.2, 0.2, 0.5, 0.8, 0.8)]
    for suffix in (".webp", ".gif"):
        write_animation(tmp_path / f"alike{suffix}", frames, fps=10)
        with Image.open(tmp_path / f"alike{suffix}") as im:
            assert stored_frames(tmp_path / f"alike{suffix}") == im.n_frames == 3
    assert stored_frames(tmp_path / "no such.webp") is None

    pngs = sorted((Path(steps[0].manifest["paths"][0]).parent).glob("frame_*.png"))
    out = tmp_path / "pull.webp"
    run = cli("animate", *pngs, "-o", out, "--duration", "2", "--fps", "30", "--cache", steps[0].folder.parent,
              "--json")
    assert run.returncode == 0, run.stderr
    with Image.open(out) as im:
        held = im.n_frames
    animation = json.loads(run.stdout)["animation"]
    assert animation["frames"] == 60 and animation["stored_frames"] == held
    assert held < 60, "the pull's eased ends no longer give alike neighbours: this test no longer tests the merge"
    assert f"the WebP holds {held} of them" in run.stderr, run.stderr
