"""What every command does the same way (issue 18): outputs, --json, default names, frame numbers, sizes, messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import numpy as np
import pytest
from PIL import Image

from conftest import run_postfocus

CAMERA = "Lumix Test"


def _jpeg_with_exif(src: Path, dst: Path, k: int) -> Path:
    """``src`` saved as a JPEG whose EXIF names a camera and the second it was taken (frame ``k``)."""
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "Panasonic", CAMERA
    ex[0x0132] = f"2024:05:06 07:08:0{k}"
    with Image.open(src) as im:
        im.convert("RGB").save(dst, quality=95, exif=ex.tobytes())
    return dst


@pytest.fixture(scope="module")
def shots(tmp_path_factory, tiny_stack):
    """The tiny stack as camera JPEGs with EXIF, in ``<tmp>/shots``, and a cache for this module's runs."""
    root = tmp_path_factory.mktemp("conventions")
    folder = root / "shots"
    folder.mkdir()
    for k, path in enumerate(tiny_stack.paths):
        _jpeg_with_exif(path, folder / f"shot_{k + 1:03d}.jpg", k)
    return folder, root / "cache"


@pytest.fixture
def pf(shots):
    """``pf(*args, **kw)`` runs postfocus with this module's cache."""
    _, cache = shots

    def run(*args, **kwargs):
        kwargs.setdefault("cache", cache)
        return run_postfocus(*args, **kwargs)

    return run


def one_json(run) -> dict:
    """stdout is exactly one JSON object."""
    assert run.stdout.lstrip().startswith("{"), run.stdout
    return json.loads(run.stdout)


# --- refocus carries the EXIF --------------------------------------------------------------------------------


def test_refocus_jpeg_carries_the_frames_exif_without_encoding_again(pf, shots, tmp_path):
    folder, _ = shots
    out = tmp_path / "tap.jpg"
    run = pf("refocus", folder, "--at", "20%,50%", "-o", out, "--json")
    assert run.returncode == 0, run.stderr
    data = one_json(run)
    frame = data["tap"]["frame"]  # the left half is sharp in the first frame
    name = f"shot_{frame + 1:03d}.jpg"
    with Image.open(out) as im:
        ex = im.getexif()
        assert ex[0x0110] == CAMERA and ex[0x0132] == f"2024:05:06 07:08:0{frame}"  # that frame's own EXIF
        assert name in ex[0x010E] and "sharpest" in ex[0x010E]
        assert ex[0x0112] == 1 and im.info.get("icc_profile")
    # The picture is the frame aligned from its input file (kept as a copy, format 7): one encoding.
    from postfocus.pipeline.run import process

    ps = process(folder, cache_dir=shots[1])
    assert ps.frame_path(frame).read_bytes() == (folder / name).read_bytes()
    with Image.open(out) as im:
        shown = np.asarray(im.convert("RGB"), np.float32) / 255
    assert np.abs(shown - ps.read_frame(frame)).mean() < 0.01
    assert f"{name} is sharpest" in run.stderr


def test_refocus_png_is_encoded_with_the_same_metadata(pf, shots, tmp_path):
    out = tmp_path / "tap.png"
    run = pf("-q", "refocus", shots[0], "--at", "80%,50%", "-o", out, "--bits", "16")
    assert run.returncode == 0, run.stderr
    with Image.open(out) as im:
        ex = im.getexif()
        assert ex[0x0110] == CAMERA and "sharpest" in ex[0x010E]
    import cv2

    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16


# --- pop says how much kept its colour ----------------------------------------------------------------------


def test_pop_reports_the_share_kept_and_suggests_a_smaller_tolerance(pf, shots, tmp_path):
    folder, _ = shots
    wide = pf("pop", folder, "--at", "20%,50%", "-o", tmp_path / "wide.jpg", "--tolerance", "5", "--json")
    assert wide.returncode == 0, wide.stderr
    share = one_json(wide)["kept_colour"]
    assert share > 0.6  # three frames: five on either side is all of them
    line = next(line for line in wide.err_lines if line.startswith("kept colour on"))
    assert f"kept colour on {100 * share:.0f} % of the picture" in line and "smaller --tolerance" in line
    narrow = pf("pop", folder, "--at", "20%,50%", "-o", tmp_path / "narrow.jpg", "--tolerance", "0.2")
    assert narrow.returncode == 0, narrow.stderr
    line = next(line for line in narrow.err_lines if line.startswith("kept colour on"))
    assert "--tolerance" not in line
    assert "within 5 frames of that depth" in next(line for line in wide.err_lines if line.startswith("kept colour"))
    # the default tolerance said "within 1 frames" (ninth session walkthrough: 77 % of the keyboard sweep)
    from postfocus.cli.pop import kept_colour_text

    assert kept_colour_text(0.77, 1.0).endswith("within 1 frame of that depth; a smaller --tolerance (e.g. 0.5) "
                                                "keeps the colour to the subject")
    assert "within 2.5 frames" in kept_colour_text(0.9, 2.5)


def test_pop_library_function(shots):
    from postfocus import process
    from postfocus.products import pop

    ps = process(shots[0], cache_dir=shots[1])
    result = pop(ps, 40, 100, tolerance=0.3)
    assert result.image.shape == (*ps.size, 3) and result.mask.shape == ps.size
    assert result.share == pytest.approx(float(result.mask.mean())) and 0.2 < result.share < 0.8


# --- aperture shows progress --------------------------------------------------------------------------------


def test_aperture_reports_progress_to_the_library_callback(shots):
    from postfocus import process
    from postfocus.products import aperture

    calls = []
    aperture(process(shots[0], cache_dir=shots[1]), focus_depth=0.0, f_number=1.4,
             progress=lambda stage, done, total: calls.append((stage, done, total)))
    stages = {c[0] for c in calls}
    assert {"depth map", "aperture"} <= stages
    last = [c for c in calls if c[0] == "aperture"][-1]
    assert last[1] == last[2] > 1


def test_aperture_draws_a_progress_bar_on_a_terminal(pf, shots, tmp_path):
    run = pf("aperture", shots[0], "--focus-depth", "0", "--f-number", "1.4", "-o", tmp_path / "a.jpg",
             env={"TTY_INTERACTIVE": "1", "TTY_COMPATIBLE": "1"})
    assert run.returncode == 0, run.stderr
    assert "aperture" in run.stderr and "100%" in run.stderr


def test_no_bars_and_no_blank_line_on_a_pipe(pf, shots, tmp_path):
    """stderr that is not a terminal gets the messages only: no empty first line, no bars."""
    pf("-q", "stack", shots[0], "-o", tmp_path / "first.jpg")  # everything cached from here on
    for args in (("refocus", shots[0], "--at", "10,10", "-o", tmp_path / "r.jpg"),
                 ("stack", shots[0], "-o", tmp_path / "s.jpg")):
        run = pf(*args)
        assert run.returncode == 0, run.stderr
        assert run.stderr.splitlines()[0].strip(), repr(run.stderr)
        assert "━" not in run.stderr and "eta" not in run.stderr


# --- mesh names each file once ------------------------------------------------------------------------------


def test_mesh_prints_every_file_it_wrote_once(pf, shots, tmp_path):
    out, preview, rock = tmp_path / "m.obj", tmp_path / "view.png", tmp_path / "rock.gif"
    run = pf("-q", "mesh", shots[0], "-o", out, "--preview", preview, "--rock", rock, "--max-faces", "2000")
    assert run.returncode == 0, run.stderr
    written = run.stdout.splitlines()
    expected = [out, out.with_suffix(".mtl"), tmp_path / "m_texture.png", preview, rock]
    assert written == [str(p) for p in expected]
    assert all(p.exists() for p in expected)
    assert str(tmp_path) not in run.stderr  # the summary on stderr does not repeat them


# --- batch: plural, normal paths ----------------------------------------------------------------------------


def test_batch_says_one_stack_and_writes_normal_paths(tiny_stack, tmp_path):
    import csv

    stacks = tmp_path / "collection"
    (stacks / "ring").mkdir(parents=True)
    for p in tiny_stack.paths:
        (stacks / "ring" / p.name).write_bytes(p.read_bytes())
    (tmp_path / "main").mkdir()
    run = run_postfocus("-q", "batch", "../collection", "--out", "../out", "--workers", "1",
                        cwd=tmp_path / "main", timeout=240)
    assert run.returncode == 0, run.stderr
    assert "batch: 1 stack; 1 to run" in run.stderr and "1 stack: 1 ok" in run.stderr
    assert not re.search(r"(?<![\d.])1 stacks", run.stderr)  # (not "45.1 stacks/min")
    with open(tmp_path / "out" / "results.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["input"] == str(stacks / "ring") and row["output"] == str(tmp_path / "out" / "ring.jpg")
    assert ".." not in (tmp_path / "out" / "results.jsonl").read_text()


# --- sizes: one convention ----------------------------------------------------------------------------------


def test_sizes_are_width_and_height_in_json_and_w_x_h_in_messages(pf, shots, tmp_path):
    out, report = tmp_path / "s.jpg", tmp_path / "report.json"
    run = pf("stack", shots[0], "-o", out, "--report", report, "--json")
    assert run.returncode == 0, run.stderr
    with Image.open(out) as im:
        w, h = im.size
    assert w > h  # the tiny stack is landscape: a swapped size would show
    assert one_json(run)["size"] == {"width": w, "height": h}
    assert json.loads(report.read_text())["size"] == {"width": w, "height": h}
    assert f"{w}x{h}" in run.stderr
    info = pf("info", shots[0], "--json")
    data = one_json(info)
    assert data["size"] == {"width": 300, "height": 200}
    assert data["processed_stacks"][0]["size"] == {"width": w, "height": h}
    human = pf("info", shots[0])
    assert f"output {w}x{h}" in human.stdout and "300x200" in human.stdout
    from postfocus import process

    assert process(shots[0], cache_dir=shots[1]).size == (h, w)  # Python: (H, W), like numpy's shape


# --- frame numbers for people --------------------------------------------------------------------------------


def test_frames_are_named_by_their_file(pf, shots, tmp_path):
    run = pf("-q", "stack", shots[0], "-o", tmp_path / "s.jpg", "--reference", "0", "--report", tmp_path / "r.json")
    assert run.returncode == 0, run.stderr
    assert "reference shot_001.jpg" in run.stderr  # --reference stays 0-based, as documented
    assert json.loads((tmp_path / "r.json").read_text())["reference"] == 0  # so do JSON and Python
    info = pf("info", shots[0])
    assert "frames 1-3: shot_001.jpg, shot_002.jpg, shot_003.jpg" in info.stdout
    assert "reference shot_002.jpg" in info.stdout


def test_frame_labels():
    from postfocus.cli.output import FrameLabels

    label = FrameLabels(["pcb_001.jpg", "pcb_002.jpg", "pcb_003.jpg"])
    assert label(2) == "pcb_003.jpg"
    assert FrameLabels([f"frame {i:04d}" for i in range(30)], fps=30)(15) == "frame 16 (0.50 s)"
    assert FrameLabels(["a/IMG_1.jpg", "IMG_2.jpg", "IMG_1.jpg"]).many([1, 2]) == "IMG_2.jpg, IMG_1.jpg"
    assert FrameLabels(["IMG_1.jpg", "IMG_2.jpg", "IMG_1.jpg"]).many([0, 2]) == "IMG_1.jpg (frame 1), IMG_1.jpg (frame 3)"


# --- frames: --overwrite named ------------------------------------------------------------------------------


def test_frames_refusal_names_the_overwrite_option(tmp_path, tiny_stack):
    from postfocus.io.images import read_image
    from postfocus.io.video_write import write_video

    video = write_video([read_image(p) for p in tiny_stack.paths], tmp_path / "clip.mp4", fps=10, crf=12)
    first = run_postfocus("-q", "frames", video)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "clip-frames"  # the default: next to the video
    assert first.stdout.strip() == str(folder) and len(list(folder.glob("frame_*.png"))) == 3
    again = run_postfocus("-q", "frames", video, "-o", folder)
    assert again.returncode == 2 and len(again.err_lines) == 1
    assert "--overwrite" in again.stderr and "allow overwriting" not in again.stderr
    assert run_postfocus("-q", "frames", video, "-o", folder, "--overwrite").returncode == 0


def test_frames_writes_out_a_one_frame_video_that_a_stack_refuses(tmp_path, tiny_stack):
    """``frames`` only writes frames out: a one-frame video is one frame, not "a stack needs two"."""
    from postfocus.io.images import read_image
    from postfocus.io.video_write import write_video

    image = read_image(tiny_stack.paths[0])
    video = write_video([image], tmp_path / "one.mp4", fps=10, crf=12)
    run = run_postfocus("frames", video, "-o", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert "wrote 1 frame (" in run.stderr, run.stderr
    written = sorted((tmp_path / "out").glob("frame_*.png"))
    assert [p.name for p in written] == ["frame_0000.png"]
    assert np.abs(read_image(written[0]) - image).mean() < 0.02  # the frame, as the video holds it
    refused = run_postfocus("-q", "stack", video, "-o", tmp_path / "s.jpg")
    assert refused.returncode == 2 and len(refused.err_lines) == 1
    assert "at least two frames" in refused.stderr


# --- align ----------------------------------------------------------------------------------------------------


def test_align_writes_sixteen_bit_tiffs_in_output_geometry_named_after_the_inputs(pf, shots, tmp_path):
    import tifffile

    folder, _ = shots
    stacked = tmp_path / "s.png"
    assert pf("-q", "stack", folder, "-o", stacked).returncode == 0
    out = tmp_path / "aligned"
    run = pf("align", folder, "-o", out, "--json")
    assert run.returncode == 0, run.stderr
    data = one_json(run)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["shot_001.tif", "shot_002.tif", "shot_003.tif"]
    assert data["outputs"] == [str(out)] and [Path(f).name for f in data["files"]] == names
    with Image.open(stacked) as im:
        w, h = im.size
    for name in names:
        with tifffile.TiffFile(out / name) as tif:
            page = tif.pages[0]
            assert page.dtype == np.uint16 and page.shape == (h, w, 3)
    with Image.open(out / "shot_002.tif") as im:
        assert im.getexif()[0x0110] == CAMERA
    # The frames line up: on the left, frame 1 (sharp) blurred as frame 2 is (sigma 1.2) is frame 2.
    import cv2

    a = cv2.GaussianBlur(tifffile.imread(out / "shot_001.tif").astype(np.float32) / 65535, (0, 0), 1.2)
    b = tifffile.imread(out / "shot_002.tif").astype(np.float32) / 65535
    left = (slice(10, -10), slice(10, 130))
    aligned = float(np.abs(a - b)[left].mean())
    shifted = float(np.abs(np.roll(a, 2, axis=1) - b)[left].mean())
    assert aligned < 0.4 * shifted, (aligned, shifted)
    again = pf("-q", "align", folder, "-o", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    eight = pf("-q", "align", folder, "--bits", "8", "--compression", "lzw")
    assert eight.returncode == 0, eight.stderr
    default = Path(eight.stdout.strip())
    assert default == folder.parent / "shots-aligned"
    with tifffile.TiffFile(default / "shot_001.tif") as tif:
        assert tif.pages[0].dtype == np.uint8 and tif.pages[0].compression == 5  # LZW


def test_align_never_writes_into_the_folder_of_the_inputs(tiny_stack, tmp_path):
    import shutil

    folder = tmp_path / "shots"
    shutil.copytree(tiny_stack.folder, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for extra in ([], ["--overwrite"], ["--format", "png", "--bits", "8", "--overwrite"]):
        run = run_postfocus("-q", "align", folder, "-o", folder, *extra, cache=tmp_path / "cache")
        assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
        assert "holds the input frames" in run.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # inputs untouched, nothing added
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_align_frames_library(shots, tmp_path):
    import postfocus

    ps = postfocus.process(shots[0], cache_dir=shots[1])
    paths = postfocus.align_frames(ps, tmp_path / "a", suffix=".png", bit_depth=8)
    assert [p.name for p in paths] == ["shot_001.png", "shot_002.png", "shot_003.png"]
    with pytest.raises(postfocus.PostfocusError, match="allow overwriting"):
        postfocus.align_frames(ps, tmp_path / "a", suffix=".png")


# --- --json on every command --------------------------------------------------------------------------------


def test_every_command_takes_json():
    from postfocus.cli import main

    missing = [name for name, command in main.commands.items()
               if "--json" not in {o for p in command.params for o in getattr(p, "opts", [])}]
    assert missing == []


def test_options_that_take_frame_numbers_say_they_count_from_zero(pf, shots, tmp_path):
    """``info`` says ``frames 1-7: pcb_001.jpg ...``; ``--reference 4`` is pcb_005.jpg. A help that does not
    say so lets a photographer pick the wrong frame without any error (ninth session walkthrough)."""
    from postfocus.cli import main

    seen = []
    for name, command in main.commands.items():
        for param in command.params:
            if {"--range", "--reference"} & set(getattr(param, "opts", [])):
                seen.append((name, param.opts[0]))
                assert "counted from 0" in param.help, (name, param.opts, param.help)
    assert ("stack", "--range") in seen and ("check", "--range") in seen and ("refocus", "--reference") in seen

    # and what the help says holds: --reference 1 is the second file
    folder, _ = shots
    done = pf("stack", str(folder), "--reference", "1", "-o", str(tmp_path / "ref1.jpg"))
    assert done.returncode == 0, done.stderr
    assert "reference shot_002.jpg" in done.stderr


def test_every_option_has_a_help_and_json_says_what_a_command_prints():
    """``serve --port`` had no help; ``info --json`` and ``serve --json`` promised "the paths written", though neither
    writes a file (ninth session walkthrough)."""
    from postfocus.cli import main

    bare = [(name, p.opts[0]) for name, command in main.commands.items() for p in command.params
            if isinstance(p, click.Option) and not p.help]
    assert bare == []
    for name in ("info", "serve"):
        [flag] = [p for p in main.commands[name].params if "--json" in p.opts]
        assert "paths written" not in flag.help, (name, flag.help)
    [flag] = [p for p in main.commands["stack"].params if "--json" in p.opts]
    assert "paths written" in flag.help


def test_info_json_holds_what_its_help_says(pf, shots):
    from postfocus.cli import main

    [flag] = [p for p in main.commands["info"].params if "--json" in p.opts]
    data = json.loads(pf("info", shots[0], "--json").stdout)
    for key, words in (("kind", "kind"), ("frames", "frames"), ("size", "size"), ("bit_depth", "bit depth"),
                       ("processed_stacks", "processed stacks")):
        assert key in data and words in flag.help, key
    assert "fps" not in data and "camera" not in data  # a video's (rate, what its file says of the camera): left out
    assert "a video's fps and camera" in flag.help


def test_json_is_one_object_on_stdout_and_people_read_stderr(pf, shots, tmp_path):
    run = pf("stack", shots[0], "-o", tmp_path / "s.jpg", "--json", cache=tmp_path / "fresh")
    assert run.returncode == 0, run.stderr
    data = one_json(run)
    assert data["ok"] is True and data["command"] == "stack" and data["outputs"] == [str(tmp_path / "s.jpg")]
    assert data["frames"]["names"] == ["shot_001.jpg", "shot_002.jpg", "shot_003.jpg"]
    assert data["frames"]["merged"] == [0, 1, 2] and data["frames"]["reference"] == 1
    assert data["warnings"] == [] and data["timings"]["total"] > 0
    assert {"align and measure", "fuse"} <= set(data["timings"]["stages"])
    assert "merged 3 of 3 frames" in run.stderr


def test_json_errors_are_json_too(pf, shots, tmp_path):
    run = pf("stack", shots[0], "-o", tmp_path / "s.jpg", "--range", "5:9", "--json")
    assert run.returncode == 2 and len(run.err_lines) == 1 and "--range" in run.stderr
    data = one_json(run)
    assert data["ok"] is False and "--range" in data["error"] and data["command"] == "stack"


@pytest.mark.parametrize("command", ["depth", "mesh"])
def test_an_option_given_no_file_says_what_to_give_and_where_to_look(tmp_path, tiny_stack, command):
    """``depth --preview`` as a flag (user20): click's "Option '--preview' requires an argument." named no command help,
    and ``depth --preview sweep.mp4`` said only "Missing argument 'INPUTS...'": the input had become the preview's file."""
    bare = run_postfocus(command, "--preview", cache=tmp_path / "cache")
    assert bare.returncode == 2 and len(bare.err_lines) == 1, bare.stderr
    assert (f"Option '--preview' requires an argument: give it as --preview PATH "
            f"(see 'postfocus {command} --help')") in bare.stderr, bare.stderr
    stack = str(tiny_stack.paths[0])  # a file, as a video would be
    eaten = run_postfocus(command, "--preview", stack, cache=tmp_path / "cache")
    assert eaten.returncode == 2 and len(eaten.err_lines) == 1, eaten.stderr
    assert (f"Missing argument 'INPUTS...': --preview took {stack} as its PATH; "
            f"give the option a value of its own: postfocus {command} {stack} --preview PATH") in eaten.stderr, eaten.stderr
    assert not list(tmp_path.glob("cache/*")) and Path(stack).is_file()
    (tmp_path / "cache").mkdir()  # a cache folder given before a forgotten input is no input taken
    forgot = run_postfocus(command, "--cache", tmp_path / "cache", cache=tmp_path / "cache")
    assert forgot.returncode == 2 and forgot.err_lines == [
        f"postfocus: error: Missing argument 'INPUTS...'. (see 'postfocus {command} --help')"], forgot.stderr


def test_json_warnings_are_listed(pf, tiny_stack, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for p in tiny_stack.paths:
        with Image.open(p) as im:  # the last frame 2 px narrower: it is padded, with a warning
            (im.crop((0, 0, 298, 200)) if p == tiny_stack.paths[-1] else im).save(folder / p.name)
    run = pf("-q", "stack", folder, "-o", tmp_path / "s.jpg", "--json")
    assert run.returncode == 0, run.stderr
    warnings = one_json(run)["warnings"]
    assert len(warnings) == 1 and "frame2.png" in warnings[0], warnings
    assert f"warning: {warnings[0]}" in run.stderr


# --- default output names -----------------------------------------------------------------------------------


def test_a_left_out_output_goes_next_to_the_input_and_never_over_a_file(pf, shots):
    folder, _ = shots
    first = pf("-q", "stack", folder)
    second = pf("-q", "stack", folder)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() == str(folder.parent / "shots-stacked.jpg")
    assert second.stdout.strip() == str(folder.parent / "shots-stacked-1.jpg")
    assert not list(folder.glob("*stacked*"))  # beside the folder, not in it
    tif = pf("-q", "stack", folder, "--bits", "16")
    assert Path(tif.stdout.strip()).suffix == ".tif"
    files = pf("-q", "refocus", *sorted(folder.glob("shot_*.jpg")), "--at", "10,20")
    assert files.returncode == 0, files.stderr
    assert files.stdout.strip() == str(folder / "shot_001-refocus-10-20.jpg")
    for path in [first, second, tif, files]:
        Path(path.stdout.strip()).unlink()


def test_unique_path(tmp_path):
    from postfocus.cli.output import default_output, unique_path

    (tmp_path / "a.jpg").touch()
    (tmp_path / "a-1.jpg").touch()
    assert unique_path(tmp_path / "a.jpg") == tmp_path / "a-2.jpg"
    (tmp_path / "clip.v2-frames").mkdir()
    assert default_output([tmp_path / "clip.v2.mp4"], "frames", "") == tmp_path / "clip.v2-frames-1"


# --- bits and compression -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, args, dtype, compression", [
    (".tif", [], np.uint16, 8),
    (".tif", ["--bits", "8"], np.uint8, 8),
    (".tif", ["--compression", "lzw"], np.uint16, 5),
    (".tif", ["--compression", "none"], np.uint16, 1),
])
def test_bits_and_compression_of_tiff(pf, shots, tmp_path, suffix, args, dtype, compression):
    import tifffile

    out = tmp_path / f"r{suffix}"
    run = pf("-q", "stack", shots[0], "-o", out, *args)
    assert run.returncode == 0, run.stderr
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].dtype == dtype and tif.pages[0].compression == compression


def test_png_compression_is_a_zlib_level(pf, shots, tmp_path):
    small, fast = tmp_path / "9.png", tmp_path / "0.png"
    assert pf("-q", "stack", shots[0], "-o", small, "--compression", "9", "--bits", "16").returncode == 0
    assert pf("-q", "stack", shots[0], "-o", fast, "--compression", "none", "--bits", "16").returncode == 0
    assert small.stat().st_size < 0.9 * fast.stat().st_size


@pytest.mark.parametrize("name, args, flag", [
    ("r.jpg", ["--bits", "16"], "--bits 16"),
    ("r.png", ["--compression", "lzw"], "--compression 'lzw'"),
    ("r.tif", ["--compression", "7"], "--compression '7'"),
    ("r.jpg", ["--compression", "deflate"], "--compression"),
])
def test_bits_and_compression_refused_before_any_work(pf, shots, tmp_path, name, args, flag):
    run = pf("-q", "stack", shots[0], "-o", tmp_path / name, *args, cache=tmp_path / "untouched")
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert flag in run.err_lines[0] and "Traceback" not in run.stderr
    assert not (tmp_path / "untouched").exists()


# --- completion ---------------------------------------------------------------------------------------------


def test_shell_completion_script(tmp_path):
    run = run_postfocus(env={"_POSTFOCUS_COMPLETE": "bash_source"})
    assert run.returncode == 0 and "_postfocus_completion" in run.stdout and "complete " in run.stdout
    words = run_postfocus(env={"_POSTFOCUS_COMPLETE": "bash_complete", "COMP_WORDS": "postfocus al",
                               "COMP_CWORD": "1"})
    assert "align" in words.stdout


# --- config file --------------------------------------------------------------------------------------------


def _config(home: Path, text: str) -> dict[str, str]:
    folder = home / "postfocus"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(text)
    return {"XDG_CONFIG_HOME": str(home)}


def test_config_sets_defaults_and_the_command_line_wins(pf, shots, tmp_path):
    env = _config(tmp_path / "xdg", 'quality = 80\n[stack]\nmethod = "pyramid"\n')
    run = pf("-q", "stack", shots[0], "-o", tmp_path / "a.jpg", env=env)
    assert run.returncode == 0, run.stderr
    assert "(pyramid)" in run.stderr
    run = pf("-q", "stack", shots[0], "-o", tmp_path / "b.jpg", "--method", "depthmap", env=env)
    assert "(depthmap)" in run.stderr


def test_config_in_home_when_xdg_is_not_set(pf, shots, tmp_path):
    home = tmp_path / "home"
    _config(home / ".config", '[stack]\nmethod = "pyramid"\n')
    run = pf("-q", "stack", shots[0], "-o", tmp_path / "a.jpg", env={"HOME": str(home), "XDG_CONFIG_HOME": None})
    assert run.returncode == 0, run.stderr
    assert "(pyramid)" in run.stderr


def test_config_cache_is_used_and_expanded(shots, tmp_path):
    home = tmp_path / "home"
    env = _config(home / ".config", 'cache = "~/stacks"\n')
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), POSTFOCUS_CACHE=None)
    run = run_postfocus("-q", "stack", shots[0], "-o", tmp_path / "a.jpg", env=env)
    assert run.returncode == 0, run.stderr
    assert any((home / "stacks").iterdir())


@pytest.mark.parametrize("text, fragment", [
    ('methd = "pyramid"\n', "methd"),
    ('[stack]\nmethod = "sharpest"\n', "[stack] method = 'sharpest'"),
    ('[stack]\nat = "1,2"\n', "[stack] at"),
    ('[align]\noutput = "aligned"\n', "[align] output"),
    ("[stack\n", "not valid TOML"),
    ('quality = "high"\n', "quality = 'high'"),
    # these three printed a traceback (OverflowError, TypeError, ValueError from click's conversion):
    ("quality = inf\n", "quality = inf: not a value --quality takes"),
    ("cache = 5\n", "cache = 5: not a value --cache takes (a path)"),
    ('cache = "/tmp/a\\u0000b"\n', "not a value --cache takes (a path)"),
    pytest.param("quality = " + "[" * 100_000 + "]" * 100_000 + "\n", "not valid TOML (it nests too deep)",
                 id="nested-too-deep"),  # a traceback too
])
def test_bad_config_is_one_line_naming_the_file_and_key(pf, shots, tmp_path, text, fragment):
    env = _config(tmp_path / "xdg", text)
    run = pf("-q", "stack", shots[0], "-o", tmp_path / "a.jpg", env=env)
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    line = run.err_lines[0]
    assert str(tmp_path / "xdg" / "postfocus" / "config.toml") in line and fragment in line, line
    assert "Traceback" not in run.stderr and not (tmp_path / "a.jpg").exists()


def test_plain_postfocus_shows_the_help():
    run = run_postfocus()
    assert "Usage: postfocus" in run.stdout + run.stderr and "Commands:" in run.stdout + run.stderr
    assert "postfocus: error" not in run.stderr


def test_demo_output_is_ignored_by_git_and_documented():
    root = Path(__file__).resolve().parent.parent
    assert re.search(r"^/?postfocus-demo\*?(-\*)?\.jpg$", (root / ".gitignore").read_text(), re.M)
    assert "postfocus-demo.jpg" in (root / "README.md").read_text()
