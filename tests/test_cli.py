"""The command line through its real entry points: ``python -m postfocus`` and the ``postfocus`` script."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version

import numpy as np
import pytest
from PIL import Image

from postfocus.io.images import read_image

TINY_SIZE = (200, 300)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def best_offset_psnr(image: np.ndarray, truth: np.ndarray, max_offset: int = 6) -> tuple[float, tuple[int, int]]:
    """PSNR of ``image`` against the window of ``truth`` it best matches (the crop offset is not printed)."""
    h, w = image.shape[:2]
    best = (-1.0, (0, 0))
    for t in range(0, min(max_offset, truth.shape[0] - h) + 1):
        for left in range(0, min(max_offset, truth.shape[1] - w) + 1):
            best = max(best, (psnr(image, truth[t : t + h, left : left + w]), (t, left)))
    return best


def test_help_lists_commands(cli):
    run = cli("--help")
    assert run.returncode == 0, run.stderr
    assert "Usage:" in run.stdout
    for command in ("stack", "demo"):
        assert f"  {command}" in run.stdout
    sub = cli("stack", "--help")
    assert sub.returncode == 0
    for option in ("--method", "--reference", "--align", "--crop / --no-crop", "--range", "--quality", "--report"):
        assert option in sub.stdout


def test_installed_script(cli):
    if shutil.which("postfocus") is None:
        pytest.skip("postfocus script not on PATH")
    run = cli("--help", script=True)
    assert run.returncode == 0 and "  stack" in run.stdout
    run = cli("--version", script=True)
    assert run.returncode == 0 and version("postfocus") in run.stdout


def test_version(cli):
    run = cli("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"postfocus, version {version('postfocus')}"


def test_demo_writes_a_jpeg_and_prints_its_path(cli, tmp_path):
    (tmp_path / "tmp").mkdir()
    run = cli("-q", "demo", "-o", "tmp/x.jpg", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "tmp" / "x.jpg"
    assert str(out.resolve()) in run.stdout
    with Image.open(out) as im:
        assert im.format == "JPEG"
        w, h = im.size
    # the bundled ring frames are 1521x1141; the result is cropped to their common area
    assert 1400 < w <= 1521 and 1050 < h <= 1141
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["x.jpg"]


@pytest.mark.parametrize("output", ["missing/x.jpg", "x.bmp"])
def test_demo_refuses_an_output_it_cannot_write_before_stacking(cli, tmp_path, output):
    """``demo -o missing/x.jpg`` stacked the whole sample first, then failed; its only message before the error
    was "stacking the bundled sample"."""
    run = cli("demo", "-o", output, cwd=tmp_path)
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert run.err_lines[0].startswith("postfocus: error:")


@pytest.mark.parametrize("method", ["depthmap", "pyramid"])
def test_stack_each_method(cli, tiny_stack, tmp_path, method):
    out = tmp_path / f"{method}.png"
    run = cli("-q", "stack", tiny_stack.folder, "-o", out, "--method", method, cache=tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    assert f"merged 3 of 3 frames ({method})" in run.stderr
    image = read_image(out)
    assert 190 <= image.shape[0] < 200 and 290 <= image.shape[1] < 300  # cropped a little
    quality, _ = best_offset_psnr(image, tiny_stack.sharp)
    assert quality > 38, quality  # library result: 42.6 dB (depthmap), 43.1 dB (pyramid)


def test_second_method_from_the_cache_is_as_good_as_a_fresh_run(cli, tiny_stack, tmp_path):
    """The first run keeps aligned frames in the cache; a later run with another method fuses those.

    Measured: pyramid fused fresh 43.0 dB, pyramid fused from the cache after a depthmap run
    36.0 dB. The cached aligned frames are stored as JPEG (quality 95, 4:2:0 chroma), and the
    max-contrast pyramid picks up the JPEG artefacts.
    """
    cache = tmp_path / "cache"
    assert cli("-q", "stack", tiny_stack.folder, "-o", tmp_path / "first.png", cache=cache).returncode == 0
    second = cli("-q", "stack", tiny_stack.folder, "-o", tmp_path / "cached.png", "--method", "pyramid", cache=cache)
    fresh = cli("-q", "stack", tiny_stack.folder, "-o", tmp_path / "fresh.png", "--method", "pyramid", "--no-cache")
    assert second.returncode == 0 and fresh.returncode == 0
    q_cached, _ = best_offset_psnr(read_image(tmp_path / "cached.png"), tiny_stack.sharp)
    q_fresh, _ = best_offset_psnr(read_image(tmp_path / "fresh.png"), tiny_stack.sharp)
    assert q_cached > q_fresh - 1.0, f"pyramid from the cache {q_cached:.1f} dB, fresh {q_fresh:.1f} dB"


@pytest.mark.parametrize("name", ["out.jpg", "out.png", "out.tif"])
def test_the_output_written_beside_the_stack_folder_is_the_one_a_reused_folder_gives(cli, tiny_stack, tmp_path,
                                                                                       name):
    """The first run writes its output while the stack folder's image is written (``process(on_image=)``); a
    second run reads the kept folder: the same bytes, metadata and all (and those of ``--no-cache`` for 8-bit
    outputs)."""
    cache = tmp_path / "cache"
    made, reused = tmp_path / "made" / name, tmp_path / "reused" / name
    made.parent.mkdir(), reused.parent.mkdir()
    assert cli("-q", "stack", tiny_stack.folder, "-o", made, cache=cache).returncode == 0
    assert cli("-q", "stack", tiny_stack.folder, "-o", reused, cache=cache).returncode == 0
    assert made.read_bytes() == reused.read_bytes()
    if name != "out.tif":  # (16 bits here: --no-cache's differs from the kept image in the last bits, as on main)
        fresh = tmp_path / "fresh" / name
        fresh.parent.mkdir()
        assert cli("-q", "stack", tiny_stack.folder, "-o", fresh, "--no-cache").returncode == 0
        assert fresh.read_bytes() == made.read_bytes()


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("fault", [KeyboardInterrupt, MemoryError], ids=["ctrl-c", "out-of-memory"])
def test_a_run_stopped_while_the_stack_folder_is_written_leaves_the_output_as_it_was(tiny_stack, tmp_path,
                                                                                       monkeypatch, fault, threads):
    """The output is written on a second thread while the stack folder's image and manifest are (video7). A
    Ctrl+C (or an out-of-memory) during the folder's write exited 130, "interrupted; no output was written",
    with the output replaced all the same; now the output written beside the folder is renamed into place only
    once the folder is kept, and an old output stays as it was, with no temporary file left (review16)."""
    import threading

    import cv2
    from click.testing import CliRunner

    import postfocus.cli.stack as stack_module
    import postfocus.pipeline.run as run_module
    from postfocus.cli import main

    saved, real_save = threading.Event(), stack_module.save_image

    def save_image(*args, **kwargs):
        try:
            return real_save(*args, **kwargs)
        finally:
            saved.set()

    def write_stack_folder(*args, **kwargs):  # stopped once the output beside it is written
        assert saved.wait(60)
        raise fault()

    monkeypatch.setattr(stack_module, "save_image", save_image)
    monkeypatch.setattr(run_module, "write_stack_folder", write_stack_folder)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # (set by --threads: set back after the test)
        monkeypatch.setenv(var, "")
    out = tmp_path / "out" / "stacked.jpg"
    out.parent.mkdir()
    out.write_bytes(b"the photographer's earlier result")
    before = cv2.getNumThreads()
    try:
        result = CliRunner().invoke(main, ["--threads", threads, "-q", "stack", str(tiny_stack.folder), "-o",
                                           str(out), "--cache", str(tmp_path / "cache")])  # (1: the output first)
    finally:
        cv2.setNumThreads(before)
    assert saved.is_set() and result.exit_code != 0, result.output
    assert out.read_bytes() == b"the photographer's earlier result"
    assert sorted(p.name for p in out.parent.iterdir()) == ["stacked.jpg"]
    if fault is KeyboardInterrupt:
        assert result.exit_code == 130 and "no output was written" in result.output


def test_stack_from_files_via_script(cli, tiny_stack, tmp_path):
    if shutil.which("postfocus") is None:
        pytest.skip("postfocus script not on PATH")
    out = tmp_path / "r.jpg"
    run = cli("-q", "stack", *tiny_stack.paths, "-o", out, "--quality", "90", script=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    assert read_image(out).shape[2] == 3


def test_no_crop_gives_the_full_frame(cli, tiny_stack, tmp_path):
    out = tmp_path / "full.png"
    run = cli("-q", "stack", tiny_stack.folder, "-o", out, "--no-crop")
    assert run.returncode == 0, run.stderr
    assert read_image(out).shape == (*TINY_SIZE, 3)
    quality = psnr(read_image(out)[10:-10, 10:-10], tiny_stack.sharp[10:-10, 10:-10])
    assert quality > 38, quality


def test_align_none_uses_identity(cli, tiny_stack, tmp_path):
    out, report = tmp_path / "none.png", tmp_path / "none.json"
    run = cli("-q", "stack", tiny_stack.folder, "-o", out, "--align", "none", "--report", report)
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    assert all(np.allclose(f["matrix"], np.eye(3)) for f in data["frames"])
    assert [f["method"] for f in data["frames"]] == ["none", "reference", "none"]
    # nothing moves, so nothing is cropped
    assert read_image(out).shape == (*TINY_SIZE, 3)


def test_report_json(cli, tiny_stack, tmp_path):
    out, report = tmp_path / "r.png", tmp_path / "report.json"
    run = cli("-q", "stack", tiny_stack.folder, "-o", out, "--report", report)
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    assert data["method"] == "depthmap"
    assert data["frames_used"] == [0, 1, 2]
    assert data["reference"] == 1
    assert data["warnings"] == []
    frames = data["frames"]
    assert [f["name"] for f in frames] == ["frame0.png", "frame1.png", "frame2.png"]
    assert [f["used"] for f in frames] == [True, True, True]
    assert frames[1]["method"] == "reference"
    for f, (dx, dy) in zip(frames, tiny_stack.shifts):
        assert f["shift_px"] == pytest.approx([-dx, -dy], abs=0.15)  # see test_fuse: hard blur seam
        assert f["scale"] == pytest.approx(1.0, abs=1e-3)
        assert f["gain"] == pytest.approx([1, 1, 1], abs=0.01)
        assert np.asarray(f["matrix"]).shape == (3, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.png", "report.json"]


def test_range_merges_only_those_frames(cli, tiny_stack, tmp_path):
    out, report = tmp_path / "r01.png", tmp_path / "r01.json"
    run = cli("-q", "stack", tiny_stack.folder, "-o", out, "--range", "0:1", "--report", report)
    assert run.returncode == 0, run.stderr
    assert json.loads(report.read_text())["frames_used"] == [0, 1]
    assert "merged 2 of 3 frames" in run.stderr
    image = read_image(out)
    assert cli("-q", "stack", tiny_stack.folder, "-o", tmp_path / "all.png").returncode == 0
    full = read_image(tmp_path / "all.png")
    # frame 2 (the only sharp one on the right) is not merged: the right half is clearly softer
    right = (slice(20, 180), slice(170, 280))
    grad = lambda im: float(np.mean(np.abs(np.diff(im[right].mean(axis=2), axis=1))))  # noqa: E731
    assert grad(image) < 0.8 * grad(full)


def test_files_keep_the_given_order(cli, tiny_stack, tmp_path):
    report = tmp_path / "order.json"
    given = [tiny_stack.paths[2], tiny_stack.paths[0], tiny_stack.paths[1]]
    run = cli("-q", "stack", *given, "-o", tmp_path / "o.png", "--report", report)
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    assert [f["name"] for f in data["frames"]] == ["frame2.png", "frame0.png", "frame1.png"]
    assert data["reference"] == 1  # the middle of the given order: frame0.png
    assert data["frames"][1]["method"] == "reference"


def test_reference_option(cli, tiny_stack, tmp_path):
    out, report = tmp_path / "ref0.png", tmp_path / "ref0.json"
    run = cli("-q", "stack", tiny_stack.folder, "-o", out, "--reference", "0", "--report", report, "--no-crop")
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    assert data["reference"] == 0
    assert data["frames"][0]["method"] == "reference"
    # frame 2 is 4 px right / 2 px up of frame 0
    assert data["frames"][2]["shift_px"] == pytest.approx([-4, 2], abs=0.2)  # two links from the reference


def test_sixteen_bit_tiff_output(cli, tmp_path, tiny_stack):
    import tifffile

    out = tmp_path / "r.tif"
    run = cli("-q", "stack", tiny_stack.folder, "-o", out)
    assert run.returncode == 0, run.stderr
    pixels = tifffile.imread(out)
    assert pixels.dtype == np.uint16  # TIFF is 16-bit by default


@pytest.mark.parametrize("no_cache", [False, True])
def test_order_auto_says_which_order_it_found(cli, tiny_stack, tmp_path, no_cache):
    """``stack --order auto`` merged without a word of the order it measured (only ``info`` said it), though halo
    handling, depth and pop follow it; a photographer needs to know, and a script reads it from --json."""
    extra = ["--no-cache"] if no_cache else []
    run = cli("-q", "stack", *map(str, tiny_stack.paths), "--order", "auto", "-o", tmp_path / "a.jpg", "--json",
              *extra)
    assert run.returncode == 0, run.stderr
    order = json.loads(run.stdout)["order"]
    assert isinstance(order["near_to_far"], bool) and order["given"] == "auto"
    said = [line for line in run.err_lines if line.startswith("focus order: ")]
    assert len(said) == 1 and ("near to far" in said[0] or "far to near" in said[0]), run.stderr
    run = cli("-q", "stack", *map(str, tiny_stack.paths), "-o", tmp_path / "b.jpg", *extra)
    assert run.returncode == 0 and "focus order" not in run.stderr  # stated: nothing to report


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_serve_refuses_an_upload_limit_that_is_not_a_number(cli, tmp_path, value):
    """FloatRange(min=0) lets inf and nan through: the server died with an internal OverflowError/ValueError."""
    run = cli("serve", "--no-browser", "--port", "0", "--data-dir", tmp_path / "web", "--max-upload-mb", value,
              timeout=60)
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert run.err_lines[0].startswith(f"postfocus: error: --max-upload-mb {value}")


def test_serve_hands_the_upload_limits_to_the_app(tmp_path, monkeypatch):
    """``serve --max-uploads 7 --upload-timeout 2.5`` (app24): create_app(max_uploads=7, upload_timeout=2.5);
    without them, the app's own defaults (web/intake.py), which serve shows in --help without importing it."""
    pytest.importorskip("starlette")
    from click.testing import CliRunner

    from postfocus.cli.common import main
    from postfocus.errors import PostfocusError
    from postfocus.web import app, intake

    made = []

    def create(*args, **kwargs):
        made.append((kwargs["max_uploads"], kwargs["upload_timeout"]))
        raise PostfocusError("stopped here")

    monkeypatch.setattr(app, "create_app", create)
    for args, limits in ((["--max-uploads", "7", "--upload-timeout", "2.5"], (7, 2.5)),
                         ([], (intake.DEFAULT_MAX_UPLOADS, intake.DEFAULT_UPLOAD_TIMEOUT))):
        result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path), "--no-browser", *args])
        assert "stopped here" in result.output and result.exit_code != 0
        assert made.pop() == limits


@pytest.mark.parametrize(("flag", "value", "reason"), [
    ("--max-uploads", "0", "'--max-uploads': 0 is not in the range x>=1"),
    ("--max-uploads", "2.5", "'--max-uploads': '2.5' is not a valid integer"),
    ("--upload-timeout", "0", "'--upload-timeout': 0.0 is not in the range x>0"),
    ("--upload-timeout", "inf", "--upload-timeout inf: must be a number of seconds above 0"),
])
def test_serve_refuses_an_upload_limit_out_of_the_apps_range(cli, tmp_path, flag, value, reason):
    """The app takes at least 1 upload at once and a finite timeout above 0 seconds (web23); serve refuses the
    rest with one line naming the flag, before it listens (inf passes click's FloatRange: the app refuses it)."""
    run = cli("serve", "--no-browser", "--port", "0", "--data-dir", tmp_path / "web", flag, value, timeout=60)
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert run.err_lines[0].startswith("postfocus: error: ") and reason in run.err_lines[0], run.stderr


_HEAP_PROBE = """
import ctypes, sys
import numpy as np
from postfocus.cli.heap import small_frame_heap

class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
set_ = small_frame_heap(tuple(int(v) for v in sys.argv[1:3]))
before = libc.mallinfo2().hblks
frames = [np.empty(4_500_000, np.uint8) for _ in range(3)]  # a beetle frame in float32 (750x500x3x4 bytes)
mapped = libc.mallinfo2().hblks - before  # of them mapped by themselves, outside the heap
del frames
kept = libc.mallinfo2().fordblks  # freed bytes the heap still holds
print(set_, mapped, kept)
"""


def _heap_probe(size: tuple[int, int], **env: str) -> tuple[str, int, int]:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    run = subprocess.run([sys.executable, "-c", _HEAP_PROBE, *map(str, size)], capture_output=True, text=True,
                         env=environ, check=True)
    flag, mapped, kept = run.stdout.split()
    return flag, int(mapped), int(kept)


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt and mallinfo2")
def test_small_frames_keep_freed_memory_in_the_heap():
    """Sub-megapixel frames: frame-sized arrays come from the heap and stay there when freed."""
    flag, mapped, kept = _heap_probe((500, 750))
    assert flag == "True"
    assert mapped == 0  # glibc's default would map the first 4.5 MB arrays by themselves
    assert kept >= 3 * 4_500_000  # and, freed, they are kept for the next frame, not handed back
    big_flag, big_mapped, _ = _heap_probe((2160, 3840))  # 4K: glibc's sliding thresholds stay
    assert big_flag == "False" and big_mapped == 3
    env_flag, env_mapped, _ = _heap_probe((500, 750), MALLOC_TRIM_THRESHOLD_="131072")  # the user's setting wins
    assert env_flag == "False" and env_mapped == 3


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt and mallinfo2")
def test_a_heap_setting_given_as_a_glibc_tunable_is_the_users_too():
    """GLIBC_TUNABLES sets glibc's heap as its MALLOC_* variables do; the user's setting wins there too
    (the fixed thresholds overrode ``glibc.malloc.mmap_threshold``, and one arena ``glibc.malloc.arena_max``)."""
    from postfocus.cli.heap import _user_set

    flag, mapped, _ = _heap_probe((500, 750), GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")
    assert flag == "False" and mapped == 3  # glibc maps each 4.5 MB array by itself, as the user asked
    flag, mapped, _ = _heap_probe((500, 750), GLIBC_TUNABLES="glibc.malloc.tcache_count=0")  # another tunable
    assert flag == "True" and mapped == 0
    assert _user_set("ARENA_MAX", environ={"GLIBC_TUNABLES": "glibc.malloc.check=0:glibc.malloc.arena_max=4"})
    assert not _user_set("ARENA_MAX", environ={"GLIBC_TUNABLES": "glibc.malloc.arena_test=4"})


_ARENA_PROBE = """
import ctypes, re, sys, threading
from postfocus.cli.heap import one_malloc_arena

one_malloc_arena()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = libc.fopen.restype = ctypes.c_void_p
start, kept = threading.Barrier(8), []

def allocate():
    start.wait()  # all eight at once: glibc gives threads that meet in an arena arenas of their own
    kept.extend(libc.malloc(64) for _ in range(2000))

threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
report = libc.fopen(sys.argv[1].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
print(len(re.findall("<heap nr=", open(sys.argv[1]).read())))
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt and malloc_info")
def test_an_empty_or_zero_arena_max_is_glibcs_unset_and_one_arena_is_still_set(tmp_path):
    """glibc ignores ``MALLOC_ARENA_MAX=""`` (and 0: its least is 1): the command line's one arena holds then
    (it was skipped as the user's setting, and the threads took 9 arenas). An arena count the user gave wins."""
    import os
    import subprocess
    import sys

    def arenas(**env: str) -> int:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
        run = subprocess.run([sys.executable, "-c", _ARENA_PROBE, str(tmp_path / "malloc.xml")], capture_output=True,
                             text=True, env=environ | env, check=True)
        return int(run.stdout)

    assert arenas(MALLOC_ARENA_MAX="") == 1
    assert arenas(MALLOC_ARENA_MAX="0") == 1
    assert arenas(GLIBC_TUNABLES="glibc.malloc.arena_max=") == 1
    assert arenas(MALLOC_ARENA_MAX="4") == 4  # the user's
