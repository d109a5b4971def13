"""A memory limit: the peak estimate, the bands it asks for, and banded merges that equal whole ones."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from postfocus.pipeline import memory
from postfocus.errors import PostfocusError
from postfocus.pipeline.analyse import analyse
from postfocus.pipeline.merge import fuse
from postfocus.pipeline.run import stack
from postfocus.pipeline.run import process
from postfocus.store import merge


def test_estimate_falls_with_bands_and_grows_with_frames():
    size, small = (4000, 6000), 800 * 533
    one = memory.estimate_mb(size, 100, small)
    assert memory.estimate_mb(size, 100, small, bands=4) < 0.75 * one
    assert memory.estimate_mb(size, 200, small) > one
    assert memory.bands_for(size, 100, small, None) == 1
    assert memory.bands_for(size, 100, small, 10 * one) == 1
    bands = memory.bands_for(size, 100, small, 0.7 * one)
    assert bands > 1 and memory.estimate_mb(size, 100, small, bands) <= 0.7 * one
    assert memory.estimate_mb(size, 100, small, bands - 1) > 0.7 * one  # the fewest that fit


def test_a_limit_below_what_any_banding_reaches_names_the_minimum():
    with pytest.raises(PostfocusError, match=r"memory_mb=200(\.0)?: this stack needs at least about \d+ MB"):
        memory.bands_for((4000, 6000), 100, 800 * 533, 200)


def test_banded_fusion_equals_the_whole(tiny_stack):
    source_files = tiny_stack.folder
    from postfocus.io.open import open_source

    source = open_source(source_files)
    analysis = analyse(source)
    box = analysis.common_area()
    whole = fuse(source, analysis.maps, alignment=analysis.alignment, region=box)
    for bands in (2, 5):
        banded = fuse(source, analysis.maps, alignment=analysis.alignment, region=box, bands=bands)
        assert banded.shape == whole.shape
        # 8-bit frames are warped as 8-bit: a rectangle starting elsewhere may round a pixel the other way
        diff = np.abs(banded - whole)
        assert diff.max() <= 1.01 / 255 and diff.mean() < 2e-4
    with pytest.raises(PostfocusError, match="depthmap"):
        fuse(source, analysis.maps, alignment=analysis.alignment, method="pyramid", bands=2)


def test_banded_processing_keeps_the_same_frames(tiny_stack, tmp_path, monkeypatch):
    """With a limit that asks for bands, the processed stack holds the same aligned frames and result."""
    plain = process(tiny_stack.folder, cache_dir=tmp_path / "a")
    monkeypatch.setattr(memory, "BASE_MB", 0.0)  # make the tiny stack "big" for the limit below
    monkeypatch.setattr(memory, "ALIGN_MB", 0.0)
    need = memory.estimate_mb((200, 300), 3, plain.focus_index.size)
    assert memory.bands_for((200, 300), 3, plain.focus_index.size, 0.8 * need) > 1
    banded = process(tiny_stack.folder, cache_dir=tmp_path / "b", memory_mb=0.8 * need)
    for i in plain.used:
        assert np.array_equal(plain.read_frame(i), banded.read_frame(i))
    assert np.abs(plain.all_in_focus() - banded.all_in_focus()).max() <= 1 / 255 + 1e-6
    again = merge(banded, frames=banded.used[:2], memory_mb=0.8 * need)
    assert np.abs(again - merge(plain, frames=plain.used[:2])).max() <= 1.01 / 255


def test_pyramid_with_a_limit_warns_and_merges_whole(tiny_stack):
    with pytest.warns(UserWarning, match="a memory limit applies to the depthmap method"):
        result = stack(tiny_stack.folder, method="pyramid", memory_mb=4000)
    assert result.image.shape[:2] == (result.crop[2] - result.crop[0], result.crop[3] - result.crop[1])


def test_cli_memory_limit(cli, tiny_stack, tmp_path):
    ok = cli("stack", str(tiny_stack.folder), "-o", str(tmp_path / "a.jpg"), "--memory", "4000", "--no-cache")
    assert ok.returncode == 0 and (tmp_path / "a.jpg").exists()
    low = cli("stack", str(tiny_stack.folder), "-o", str(tmp_path / "b.jpg"), "--memory", "120", "--no-cache")
    assert low.returncode == 2 and "--memory 120: this stack needs at least about" in low.err_lines[-1]
    assert "Traceback" not in low.stderr and not (tmp_path / "b.jpg").exists()
    bad = cli("stack", str(tiny_stack.folder), "-o", str(tmp_path / "c.jpg"), "--memory", "10")
    assert bad.returncode == 2 and len(bad.err_lines) == 1


def test_cli_says_when_a_limit_makes_it_merge_in_bands(cli, tmp_path):
    """Three 12 MP frames need about 900 MB merged whole; under 700 MB the merge runs in bands, and says so."""
    import cv2

    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.random((750, 1000, 3), dtype=np.float32), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    paths = []
    for k, sigma in enumerate((0.5, 2.0, 4.0)):
        frame = texture.copy()
        frame[:, 1300 * k : 1300 * (k + 1)] = cv2.GaussianBlur(texture, (0, 0), sigma)[:, 1300 * k : 1300 * (k + 1)]
        paths.append(tmp_path / f"f{k}.jpg")
        cv2.imwrite(str(paths[-1]), np.clip(frame * 255, 0, 255).astype(np.uint8))
    assert memory.bands_for((3000, 4000), 3, 800 * 600, 700) > 1
    run = cli("stack", *map(str, paths), "-o", str(tmp_path / "out.jpg"), "--memory", "700", "--no-cache")
    assert run.returncode == 0, run.stderr
    assert any("bands of rows to stay under --memory 700 MB" in line for line in run.err_lines)
    assert (tmp_path / "out.jpg").exists()


def test_occlusion_blend_memory_within_its_count():
    """The occlusion-safe blend (and the solved background) stay within the bytes per band pixel counted for them."""
    import tracemalloc

    from postfocus.fuse.depthmap import DepthmapFusion
    from postfocus.synth.halo_scenes import render_layered

    st = render_layered("pins", 6, size=(160, 240), max_blur=6.0, seed=2)
    index = st.depth
    safe = np.minimum(index, np.float32(index.max()) * 0.5)  # differs over the whole background: a large box
    frames = [f.astype(np.float32) / 255 if f.dtype == np.uint8 else f.astype(np.float32) for f in st.frames]
    peaks = {}
    for kind, kwargs in (("plain", {}), ("safe", {"safe_index": safe}), ("restore", {"safe_index": safe, "slope": 1.0})):
        tracemalloc.start()
        fusion = DepthmapFusion(index, 0.35, **kwargs)
        for i, frame in enumerate(frames):
            fusion.add(float(i), frame)
        fusion.result()
        peaks[kind] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    pixels = index.size
    assert peaks["safe"] - peaks["plain"] <= memory.OCCLUSION_BYTES_PER_PIXEL * pixels
    assert peaks["restore"] - peaks["safe"] <= memory.RESTORE_BYTES_PER_PIXEL * pixels
    size = (4000, 6000)
    assert memory.estimate_mb(size, 100, 800 * 533) > memory.estimate_mb(size, 100, 800 * 533, occlusion=False)
    assert memory.estimate_mb(size, 100, 800 * 533, restore=True) > memory.estimate_mb(size, 100, 800 * 533)



def test_the_band_solvers_memory_where_its_band_covers_the_box_is_within_its_count():
    """Near steps everywhere (random 4 px depth cells): the band solver's band is the whole box, its worst case
    (277 B a pixel here, above the 200 B counted for the box solver it replaced), and stays within its count."""
    import tracemalloc

    import cv2

    from postfocus.fuse.depthmap import DepthmapFusion
    from postfocus.fuse.restore import BandSolver

    rng = np.random.default_rng(1)
    h, w, n = 240, 360, 8
    index = cv2.resize(rng.integers(0, n, (h // 4, w // 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    frames = [rng.random((h, w, 3), dtype=np.float32) for _ in range(n)]
    safe = index - np.float32(0.06)  # differs everywhere: the box is the picture
    peaks, band = {}, 0
    for kind, kwargs in (("safe", {"safe_index": safe}), ("restore", {"safe_index": safe, "slope": 2.0})):
        tracemalloc.start()
        fusion = DepthmapFusion(index, 0.35, **kwargs)
        if kind == "restore":
            assert isinstance(fusion._restore, BandSolver)
            band = fusion._restore.at[0].size
        for i, frame in enumerate(frames):
            fusion.add(float(i), frame)
        fusion.result()
        peaks[kind] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert band >= 0.99 * index.size
    assert 200 * index.size < peaks["restore"] - peaks["safe"] <= memory.RESTORE_BYTES_PER_PIXEL * index.size

_FRAGMENTED = """
import os, numpy as np
from postfocus.pipeline.memory import give_back_freed


def resident_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


np.ones(4_000_000, np.float64).sum()  # a block mapped on its own, freed: glibc's threshold rises above 0.8 MB
big, small = [], []
for _ in range(200):  # 0.8 MB blocks from the heap, 16 kB ones kept between them
    big.append(np.ones(100_000, np.float64))
    small.append(np.ones(2000, np.float64))
del big
before = resident_mb()
give_back_freed()
print(before, resident_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_freed_inside_the_heap_is_given_back():
    # In a fresh process, so the heap is as this test makes it: 160 MB freed below its top stay
    # resident until they are given back.
    # (Without glibc tunables from the environment: e.g. Dask sets MALLOC_TRIM_THRESHOLD_, which makes
    # glibc map such blocks on their own and hand them back at once.)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", _FRAGMENTED], capture_output=True, text=True, env=env, check=True)
    before, after = map(float, out.stdout.split())
    assert after < before - 100


@pytest.mark.parametrize("box", [(0, 0, 7, 9), (2, 3, 7, 8), (0, 4, 5, 9), (3, 0, 7, 5), (1, 1, 2, 2)])
def test_compact_moves_a_box_to_the_front_in_place(box):
    """The fused region is handed back in the fused array's own memory (no second image), row by row."""
    image = np.random.default_rng(0).uniform(0, 1, (7, 9, 3)).astype(np.float32)
    t, l, b, r = box
    expected = image[t:b, l:r].copy()
    out = memory.compact(image, box)
    assert out.flags.c_contiguous and np.shares_memory(out, image) and np.array_equal(out, expected)


def _header_only_png(path, width: int, height: int):
    """A PNG whose header says width x height (8-bit RGB) with a few bytes of image data: read, never decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def gigapixel_stack(tmp_path, monkeypatch):
    """Two 1 GP frames' headers (32768x32768, the largest frame read) on a machine of 8000 MB; decoding fails the test."""
    import postfocus.io.images as images

    def decoded(path):
        raise AssertionError(f"{path} decoded before the memory it needs was known")

    monkeypatch.setattr(images, "decode_png", decoded)
    monkeypatch.setattr(memory, "machine_mb", lambda: 8000.0, raising=False)  # (raising: main had none)
    return [_header_only_png(tmp_path / f"giga {k}.png", 32768, 32768) for k in range(2)]


def test_a_gigapixel_stack_the_machine_cannot_hold_is_refused_before_a_frame_is_decoded(gigapixel_stack, tmp_path):
    """A 1 GP frame was accepted and decoded (3 GB a frame, more as floats) until the system's OOM killer stopped the
    run. Without ``memory_mb`` the machine's memory is the limit: when even the most bands cannot fit, the stack is
    refused at once in one line naming the frames' size and the memory needed (on main: the frames were decoded)."""
    with pytest.raises(PostfocusError) as caught:
        stack(gigapixel_stack)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("2 frames of 32768x32768 (1073.7 MP) need at least about ")
    assert message.endswith("MB of memory; this machine has 8000 MB")
    needed = int(message.split("about ")[1].split(" MB")[0])
    assert needed == pytest.approx(memory.estimate_mb((32768, 32768), 2, 800 * 800, 32768 // memory.MIN_BAND_ROWS),
                                   abs=1)


def test_the_command_line_says_the_gigapixel_refusal_in_one_line(gigapixel_stack, tmp_path):
    import cv2
    from click.testing import CliRunner

    from postfocus.cli import main

    before = cv2.getNumThreads()
    try:
        result = CliRunner().invoke(main, ["--threads", "1", "stack", *map(str, gigapixel_stack), "-o",
                                           str(tmp_path / "out.png"), "--cache", str(tmp_path / "cache")])
    finally:
        cv2.setNumThreads(before)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("postfocus: error: 2 frames of 32768x32768 (1073.7 MP) need at least about ")
    assert not (tmp_path / "out.png").exists()


def test_a_stack_too_large_to_merge_whole_is_banded_to_fit_the_machine(monkeypatch):
    """Between the two: a stack whose whole-picture merge the machine cannot hold (estimated) but the bands can is
    merged in bands, said once; every stack that fits whole stays one band, as with no limit before."""
    from postfocus.pipeline.plan import plan_bands

    said = []
    monkeypatch.setattr(memory, "machine_mb", lambda: 2000.0)
    assert plan_bands((6000, 8000), 2, "depthmap", None, said.append) == 4
    assert said and "4 bands of rows to fit this machine's 2000 MB" in said[0]
    assert plan_bands((6000, 8000), 2, "pyramid", None, said.append) == 1  # (merges whole: refused only by the floor)
    monkeypatch.setattr(memory, "machine_mb", lambda: 24000.0)
    assert plan_bands((6000, 8000), 2, "depthmap", None, said.append) == 1 and len(said) == 1


def test_the_machines_memory_is_its_control_groups_limit_where_lower(tmp_path, monkeypatch):
    whole = memory.machine_mb()
    assert whole is None or whole > 100
    limit = tmp_path / "memory.max"
    limit.write_text(f"{50 * 2**20}\n")
    monkeypatch.setattr(memory, "CGROUP_LIMITS", (str(limit),))
    assert memory.machine_mb() == pytest.approx(50.0)
    limit.write_text("max\n")  # (no limit: the machine's RAM)
    assert memory.machine_mb() == pytest.approx(whole) if whole else True
