"""The stack cache under faults: concurrent runs, damaged folders, an unwritable cache, killed runs.

Every case is one a careless or unlucky user meets: two commands started at
once on one input, a disk that filled up or a file truncated by a crash, a
cache folder that cannot be written, a run killed with ``kill -9``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_stack, meeting_twice, run_postfocus

from postfocus.errors import PostfocusWarning
from postfocus.io.lock import FileLock
from postfocus.pipeline.run import process
from postfocus.io.images import read_image
from postfocus.store import (FORMAT_VERSION, CacheError, DamagedStackError, FrameWriter, ProcessedStack, check_cache,
                             file_record)


def only_stack_folder(cache: Path) -> Path:
    folders = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return folders[0]


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith(".partial-"))


def test_manifest_records_every_file_with_its_size_and_checksum(tiny_stack, tmp_path):
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    files = ps.manifest["files"]
    assert {"focus_index.npy", "confidence.npy", "volume.npy", "all_in_focus_depthmap.png"} <= set(files)
    assert {f"frames/{i:04d}.png" for i in ps.used} <= set(files)  # the inputs' files, copied (format 7)
    for i in ps.used:
        assert ps.frame_path(i).read_bytes() == tiny_stack.paths[i].read_bytes()
    for name, record in files.items():
        assert record == file_record((ps.folder / name).read_bytes()), name
    ps.verify()  # a whole folder passes
    ps.all_in_focus("pyramid")  # a method made later is recorded too
    again = ProcessedStack.open(ps.folder)
    assert "all_in_focus_pyramid.png" in again.manifest["files"]
    again.verify()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lossless_frames_are_kept_as_compressed_tiff_and_read_back_the_same(tmp_path, dtype):
    import tifffile

    (tmp_path / "frames").mkdir()
    rng = np.random.default_rng(3)
    top = np.iinfo(dtype).max
    ramp = np.linspace(0, top, 120)[None, :, None] * np.ones((90, 1, 3))
    frames = {i: np.clip(ramp + rng.normal(0, top / 50, ramp.shape), 0, top).astype(dtype) for i in (0, 2)}
    writer = FrameWriter(tmp_path, lossless=True, deep=dtype == np.uint16)
    for index, pixels in frames.items():
        writer(index, pixels)
    names = writer.close()
    assert names == {"0": "frames/0000.tif", "2": "frames/0002.tif"}
    for index, pixels in frames.items():
        path = tmp_path / names[str(index)]
        assert writer.checksums[names[str(index)]] == file_record(path.read_bytes())
        assert np.array_equal(read_image(path, stored=True), pixels)
        with tifffile.TiffFile(path) as tif:  # compressed: Zstandard after horizontal differencing
            page = tif.pages[0]
            assert page.compression == tifffile.COMPRESSION.ZSTD and page.predictor == tifffile.PREDICTOR.HORIZONTAL


def test_the_image_just_written_is_handed_out_as_the_file_holds_it(tiny_stack, tmp_path):
    from postfocus.io.images import read_image

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    held = ps.all_in_focus()  # not read back: the image process() wrote, rounded as the PNG holds it
    assert not ps._written and np.array_equal(held, read_image(ps.all_in_focus_path()))
    held[:] = 0  # handed out once: the next call reads the file
    assert float(ps.all_in_focus().max()) > 0.1


def test_a_range_merge_lets_the_held_image_go_and_keeps_the_thread_budget(tiny_stack, tmp_path, monkeypatch):
    import postfocus.store.folder as folder_module

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    held = next(iter(ps._written.values()))
    assert held.dtype == np.uint8  # held as the file's integers, not as a float image
    budgets = []
    real_fuse = folder_module.fuse
    fake = lambda *a, **k: budgets.append(k.get("threads")) or real_fuse(*a, **k)  # noqa: E731
    monkeypatch.setattr(folder_module, "fuse", fake)
    monkeypatch.setattr("postfocus.pipeline.merge.fuse", fake)  # (unwarped frames: merge_unwarped's)
    ps.merge(frames=ps.used[:2], threads=1)
    assert not ps._written and budgets == [1]


@pytest.mark.parametrize("threads", [0, -2, 2.5, True, "2"])
def test_a_thread_budget_the_options_refuse_is_refused_by_a_merge_too(tiny_stack, tmp_path, threads):
    from postfocus.errors import OptionError
    from postfocus.options import StackOptions
    from postfocus.store import merge

    with pytest.raises(OptionError, match="threads"):
        StackOptions(threads=threads)
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    for call in (lambda: ps.merge(threads=threads), lambda: merge(ps, frames=ps.used[:2], threads=threads),
                 lambda: ps.all_in_focus("pyramid", threads=threads)):
        with pytest.raises(OptionError, match="threads"):
            call()
    assert not ps.all_in_focus_path("pyramid").exists()
    assert ps.merge(threads=np.int64(1)).shape[:2] == ps.size  # a NumPy integer is a whole number


@pytest.mark.parametrize("memory_mb", [0, -5, float("nan"), "512", True])
def test_a_memory_budget_the_options_refuse_is_refused_by_a_merge_too(tiny_stack, tmp_path, memory_mb):
    from postfocus.errors import OptionError
    from postfocus.options import StackOptions

    with pytest.raises(OptionError, match="must be a positive number of megabytes"):
        StackOptions(memory_mb=memory_mb)
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    for call in (lambda: ps.merge(memory_mb=memory_mb), lambda: ps.all_in_focus("pyramid", memory_mb=memory_mb)):
        with pytest.raises(OptionError, match="must be a positive number of megabytes"):
            call()


def test_maps_are_written_as_np_save_writes_them(tiny_stack, tmp_path):
    from postfocus.numeric import to_float16
    from postfocus.store import write_maps

    ps = process(tiny_stack.folder, cache_dir=tmp_path / "cache")
    maps = ps.maps
    volume = np.asarray(maps.volume, np.float32) * np.float32(3.5)  # any float32 volume, normalised on writing
    maps = type(maps)(np.asarray(maps.focus_index), np.asarray(maps.confidence), volume, maps.used, maps.size,
                      motion=None if maps.motion is None else np.asarray(maps.motion))
    out = tmp_path / "maps"
    out.mkdir()
    records = write_maps(out, maps, b"icc")
    reference = tmp_path / "reference.npy"
    np.save(reference, to_float16(volume / max(float(volume.max()), 1e-12)))
    assert (out / "volume.npy").read_bytes() == reference.read_bytes()
    np.save(reference, np.ascontiguousarray(maps.focus_index, np.float32))
    assert (out / "focus_index.npy").read_bytes() == reference.read_bytes()
    assert set(records) == {p.name for p in out.iterdir()}
    for name, record in records.items():
        assert record == file_record((out / name).read_bytes()), name


@pytest.mark.parametrize("damage", ["truncate map", "truncate frame", "flip a byte", "remove a frame",
                                    "truncate manifest", "garble manifest", "nest manifest"])
def test_a_damaged_stack_folder_is_made_again_with_a_warning(tiny_stack, tmp_path, damage):
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    good = ps.read_frame(ps.used[0])
    target = ps.folder / {"truncate map": "confidence.npy", "truncate manifest": "manifest.json",
                          "garble manifest": "manifest.json", "nest manifest": "manifest.json",
                          }.get(damage, ps.manifest["frame_files"]["0"])
    data = target.read_bytes()
    if damage == "garble manifest":  # not UTF-8 at all
        target.write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "nest manifest":  # json's RecursionError was an internal error
        target.write_bytes(b"[" * 100_000)
    elif damage.startswith("truncate"):
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip a byte":
        target.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    else:
        target.unlink()
    with pytest.raises(DamagedStackError):
        ProcessedStack.open(ps.folder).verify()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        again = process(tiny_stack.folder, cache_dir=tmp_path)
    said = [str(w.message) for w in caught]
    assert any("damaged" in m and "making it again" in m for m in said), said
    again.verify()
    assert np.array_equal(again.read_frame(again.used[0]), good)
    assert np.asarray(again.confidence).shape == np.asarray(ps.confidence).shape
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("change", ["only the format", "no used", "size a string", "no crop"])
def test_a_manifest_missing_a_field_is_a_damaged_folder_made_again(tiny_stack, tmp_path, change):
    # Valid JSON of this format but without a field: was opened, then "internal error: KeyError: 'size'"
    # in refocus, pop, ... and in every later run (the folder was never made again).
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = dict(ps.manifest)
    if change == "only the format":
        manifest = {"format": FORMAT_VERSION}
    elif change == "no used":
        del manifest["used"]
    elif change == "size a string":
        manifest["size"] = "200x300"
    else:
        assert ps.frames_unwarped
        del manifest["crop"]
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedStackError, match="manifest.json field"):
        ProcessedStack.open(ps.folder)
    again = _refocus_makes_it_again(tiny_stack, tmp_path, ps)
    assert again.size == ps.size and again.used == ps.used


def test_a_file_where_the_stack_folder_should_be_is_replaced_and_leaves_nothing(tiny_stack, tmp_path):
    # The file was swapped out to ".partial-old-<key>-<pid>" and never removed (rmtree of a file fails
    # silently; the next runs could not lock a file to judge it), in every cache it happened to.
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    folder = ps.folder
    shutil.rmtree(folder)
    folder.write_text("a file where the stack folder was")
    again = process(tiny_stack.folder, cache_dir=tmp_path)
    again.verify()
    assert again.folder == folder and folder.is_dir()
    assert leftovers(tmp_path) == []
    (tmp_path / ".partial-old-abc-123").write_text("left by an earlier version")
    check_cache(tmp_path)
    assert leftovers(tmp_path) == []


def test_an_old_format_folder_is_never_read(tiny_stack, tmp_path):
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = json.loads((ps.folder / "manifest.json").read_text())
    manifest["format"] = 1
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    again = process(tiny_stack.folder, cache_dir=tmp_path)
    assert again.manifest["format"] == FORMAT_VERSION
    again.verify()


def test_an_unwritable_cache_is_refused_before_any_work(tiny_stack, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache should be")
    started = time.perf_counter()
    with pytest.raises(CacheError, match="cannot keep processed stacks there"):
        process(tiny_stack.folder, cache_dir=blocker / "cache")
    assert time.perf_counter() - started < 1.0  # said at once, not after the alignment


def test_cli_stack_carries_on_without_an_unwritable_cache(tiny_stack, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    out = tmp_path / "out.jpg"
    run = run_postfocus("-q", "stack", tiny_stack.folder, "-o", out, "--cache", blocker / "cache")
    assert run.returncode == 0, run.stderr
    assert out.is_file()
    assert "merging without keeping the processed stack" in run.stderr
    assert "Traceback" not in run.stderr
    # commands that need the processed stack say so in one line
    run = run_postfocus("-q", "refocus", tiny_stack.folder, "--at", "50%,50%", "-o", tmp_path / "r.jpg",
                        "--cache", blocker / "cache")
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert "--cache DIR" in run.stderr and not (tmp_path / "r.jpg").exists()


@pytest.mark.parametrize("command, side", [
    (["stack"], "--motion-mask"),
    (["pop", "--at", "50%,50%"], "--mask"),
    (["depth"], "--confidence"),
])
def test_a_side_output_that_is_the_main_output_is_refused(tiny_stack, tmp_path, command, side):
    out = tmp_path / "same.png"
    run = run_postfocus("-q", command[0], tiny_stack.folder, *command[1:], "-o", out, side, out, cache=tmp_path / "c")
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert side in run.stderr and "same file" in run.stderr
    assert not out.exists()


def test_stale_partial_folders_are_removed_and_live_ones_kept(tmp_path):
    cache = tmp_path / "cache"
    stale = cache / ".partial-stale"
    live = cache / ".partial-live"
    for p in (stale, live):
        (p / "frames").mkdir(parents=True)
        (p / ".writing").write_text("")
    holder = FileLock(live / ".writing")
    holder.acquire()
    try:
        check_cache(cache)
        assert not stale.exists()
        assert live.exists()  # its writer is alive
    finally:
        holder.release()


def test_a_stale_part_file_beside_the_output_is_removed(tiny_stack, tmp_path):
    out = tmp_path / "r.jpg"
    part = tmp_path / ".r.k1ll3d.jpg.part"
    part.write_bytes(b"")
    old = time.time() - 60
    os.utime(part, (old, old))
    run = run_postfocus("-q", "stack", tiny_stack.folder, "-o", out, "--no-cache")
    assert run.returncode == 0, run.stderr
    assert out.is_file() and not part.exists()


def _bigger_stack(folder: Path) -> Path:
    """A stack that takes a few seconds, to be killed in the middle."""
    from postfocus.synth import render_stack, scene, write_stack

    sharp, depth01 = scene("steps", (720, 1080), seed=3)
    st = render_stack(sharp, depth01, 12, max_blur=5.0, seed=3, shake_px=4.0, noise=0.004)
    write_stack(st, folder, fmt="jpg")
    return folder


def test_a_killed_run_leaves_nothing_that_the_next_run_keeps(tmp_path):
    frames = _bigger_stack(tmp_path / "frames")
    cache, out = tmp_path / "cache", tmp_path / "out.jpg"
    env = dict(os.environ, POSTFOCUS_CACHE=str(cache))
    proc = subprocess.Popen([sys.executable, "-m", "postfocus", "-q", "stack", str(frames), "-o", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (cache.is_dir() and leftovers(cache)):
        time.sleep(0.05)  # killed while it writes its processed stack
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    run = run_postfocus("-q", "stack", frames, "-o", out, cache=cache)
    assert run.returncode == 0, run.stderr
    assert out.is_file()
    assert leftovers(cache) == []
    ProcessedStack.open(only_stack_folder(cache)).verify()


def test_concurrent_runs_on_one_input_share_one_stack_folder(tmp_path):
    """Two stacks and a refocus started 0-0.3 s apart on one input and one cache: all succeed, one folder."""
    for trial, delays in enumerate([(0.0, 0.0, 0.0), (0.0, 0.1, 0.3), (0.0, 0.3, 0.05)]):
        stack = make_tiny_stack(tmp_path / f"frames{trial}")
        cache = tmp_path / f"cache{trial}"
        env = dict(os.environ, POSTFOCUS_CACHE=str(cache))
        commands = [
            ["stack", str(stack.folder), "-o", str(tmp_path / f"a{trial}.jpg")],
            ["stack", str(stack.folder), "-o", str(tmp_path / f"b{trial}.png")],
            ["refocus", str(stack.folder), "--at", "50%,50%", "-o", str(tmp_path / f"r{trial}.jpg")],
        ]
        procs = []
        for delay, args in zip(delays, commands):
            time.sleep(delay)
            procs.append(subprocess.Popen([sys.executable, "-m", "postfocus", "-q", *args], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            assert "Traceback" not in err and "internal error" not in err, err
        ProcessedStack.open(only_stack_folder(cache)).verify()
        assert leftovers(cache) == []


def test_a_merge_of_frames_not_in_the_stack_names_the_frames_given(tiny_stack, tmp_path):
    """``merge(ps, frames=range(10, 20))`` said ``frames=[]``: the frames left after dropping the unknown ones."""
    from postfocus.errors import OptionError

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    with pytest.raises(OptionError) as refused:
        ps.merge(frames=range(10, 13))
    assert refused.value.value == [10, 11, 12] and "frames=[10, 11, 12]" in str(refused.value)
    with pytest.raises(OptionError) as refused:
        ps.merge(frames=(i for i in (7, 8)))  # a generator, read once
    assert refused.value.value == [7, 8]


def test_a_stack_folder_has_the_permissions_of_any_new_folder(tiny_stack, tmp_path):
    """The stack folder was a ``tempfile.mkdtemp`` folder renamed into place: mode 0700 whatever the umask, so a
    cache shared with a group (``--cache`` on a team disk) could not be reused by anyone else; its own frames/
    folder had the umask's mode."""
    old = os.umask(0o022)
    try:
        ps = process(tiny_stack.folder, cache_dir=tmp_path / "cache")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(old)
    mode = Path(ps.folder).stat().st_mode & 0o777
    assert mode == (tmp_path / "plain").stat().st_mode & 0o777 == 0o755


def test_verify_changed_reads_the_crc_of_files_changed_since_the_manifest(tiny_stack, tmp_path):
    """Sizes alone miss a file overwritten at the same size; ``checksums="changed"`` finds it, and a file only
    touched (its status changed, its bytes not) passes."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    name = ps.manifest["frame_files"][str(ps.used[1])]
    path = ps.folder / name
    time.sleep(0.05)  # past the file system's clock tick (a change in the manifest's own tick is not seen)
    os.utime(path)  # touched after the manifest: its CRC-32 is read, and matches
    ps.verify(checksums="changed")
    assert not ps.changed_since_written(name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    ps.verify(checksums=False)  # sizes only: not seen
    with pytest.raises(DamagedStackError, match="changed since it was written"):
        ps.verify(checksums="changed")
    assert ps.changed_since_written(name)
    with pytest.raises(DamagedStackError, match="changed since it was written"):
        ProcessedStack.open(ps.folder).verify()


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # (the middle of a JPEG's entropy-coded data: it still decodes)
    path.write_bytes(bytes(data))


def test_a_new_methods_image_is_not_kept_from_a_frame_changed_since_the_manifest(tmp_path):
    """``all_in_focus`` of a method not made yet writes the manifest again, and the new manifest vouches for
    every file: a kept photo overwritten at the same size before that (or while it merged) was carried over
    as sound, fused into the new image, and ``verify(checksums="changed")`` (the web app's) passed for good."""
    stack = make_tiny_stack(tmp_path / "frames", ".jpg")
    ps = process(stack.folder, cache_dir=tmp_path / "cache")
    other = "pyramid" if ps.options.method != "pyramid" else "depthmap"
    kept = ps.folder / ps.manifest["frame_files"][str(ps.used[1])]
    time.sleep(0.05)  # past the file system's clock tick
    _flip_a_byte(kept)
    with pytest.raises(DamagedStackError, match="changed since it was written"):
        ProcessedStack.open(ps.folder).all_in_focus(other)
    assert not ps.all_in_focus_path(other).exists()
    with pytest.raises(DamagedStackError, match="changed since it was written"):
        ProcessedStack.open(ps.folder).verify(checksums="changed")


def test_a_frame_changed_while_a_reused_folder_merges_is_made_again(tmp_path, monkeypatch):
    """``process`` with another method reuses the folder (checked whole), then merges the new method's image
    from the kept frames: a frame overwritten during that merge makes the folder again, with a warning."""
    stack = make_tiny_stack(tmp_path / "frames", ".jpg")
    first = process(stack.folder, cache_dir=tmp_path / "cache", method="depthmap")
    kept = first.folder / first.manifest["frame_files"][str(first.used[1])]
    merge = ProcessedStack.merge

    def overwriting(self, **kwargs):
        time.sleep(0.05)
        _flip_a_byte(kept)
        monkeypatch.setattr(ProcessedStack, "merge", merge)
        return merge(self, **kwargs)

    monkeypatch.setattr(ProcessedStack, "merge", overwriting)
    with pytest.warns(PostfocusWarning, match="changed since it was written"):
        ps = process(stack.folder, cache_dir=tmp_path / "cache", method="pyramid")
    ps.verify()  # made again: every file as its new manifest says
    assert ps.all_in_focus_path("pyramid").exists()


@pytest.mark.parametrize("frames", [5, "3:9", b"12"])
def test_frames_to_merge_that_are_not_a_sequence_are_refused_by_name(tiny_stack, tmp_path, frames):
    """``merge(ps, frames=5)`` was "TypeError: 'int' object is not iterable"; a string was read digit by digit."""
    from postfocus.errors import OptionError
    from postfocus.store import merge

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    with pytest.raises(OptionError, match=r"^frames=.*: give a sequence of frame numbers"):
        merge(ps, frames=frames)


@pytest.mark.parametrize("touch", ["chmod -R", "touch manifest"])
def test_a_frame_overwritten_before_the_manifest_was_touched_is_still_found(tmp_path, touch):
    """The "changed" check read the CRC-32 of the files whose status changed after the manifest's own
    (``st_ctime``): a ``chmod -R g+w`` of the cache (to share it) or a ``touch`` of the manifest after a kept
    photo was overwritten at the same size hid the overwrite for good. The manifest records when it was
    written; the check counts from the earlier of the two."""
    stack = make_tiny_stack(tmp_path / "frames", ".jpg")
    ps = process(stack.folder, cache_dir=tmp_path / "cache")
    assert isinstance(ps.manifest["written_ns"], int)
    time.sleep(0.05)
    _flip_a_byte(ps.folder / ps.manifest["frame_files"][str(ps.used[1])])
    time.sleep(0.05)
    if touch == "chmod -R":  # (the manifest last: its status time is then the latest)
        for path in sorted(ps.folder.rglob("*"), key=lambda p: p.name == "manifest.json"):
            os.chmod(path, path.stat().st_mode | 0o020)
    else:
        os.utime(ps.folder / "manifest.json")
    again = ProcessedStack.open(ps.folder)
    with pytest.raises(DamagedStackError, match="changed since it was written"):
        again.verify(checksums="changed")
    assert again.changed_since_written(ps.manifest["frame_files"][str(ps.used[1])])


def test_a_stack_folder_or_frame_number_of_another_type_is_one_line(tiny_stack, tmp_path):
    """``ProcessedStack.open(None)`` was a TypeError from pathlib; ``read_frame("1")`` found frame 1's file, then
    failed as a TypeError (list indices must be integers) where a number was needed."""
    from postfocus.errors import InputError

    with pytest.raises(InputError, match=r"^folder=None: not a postfocus stack folder"):
        ProcessedStack.open(None)
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    for index in ("1", 1.0, True):
        with pytest.raises(InputError, match=r"^frame .*: not a frame number \(frames kept: 0-2\)"):
            ps.read_frame(index)
    assert ps.read_frame(np.int64(1)).shape[:2] == ps.size


def test_merge_or_align_frames_given_no_processed_stack_is_refused_by_name(tiny_stack, tmp_path):
    """``postfocus.merge("photos/")`` was "'str' object has no attribute 'merge'" and ``align_frames`` of a path
    "'str' object has no attribute 'info'"; ``align_frames(ps, None)`` a TypeError from pathlib."""
    from postfocus import OptionError, align_frames, merge

    for call in (lambda: merge(str(tiny_stack.folder)), lambda: merge(None),
                 lambda: align_frames(str(tiny_stack.folder), tmp_path / "aligned")):
        with pytest.raises(OptionError, match=r"^stack=.*: not a processed stack; open one with postfocus.process"):
            call()
    with pytest.raises(OptionError, match=r"^out_dir=None: must be a folder's path"):
        align_frames(process(tiny_stack.folder, cache_dir=tmp_path / "cache"), None)
    assert not (tmp_path / "aligned").exists()


def test_a_cache_folder_or_progress_of_another_type_is_refused_by_name(tiny_stack, tmp_path):
    """``process(..., cache_dir=5)`` was pathlib's TypeError (bytes too, a NUL mkdir's ValueError);
    ``merge(ps, progress=5)`` a TypeError once the merge had begun."""
    from postfocus import OptionError, merge

    for cache_dir in (5, ["x"], "ca\0che"):
        with pytest.raises(OptionError, match=r"^cache_dir=.*: must be a folder's path"):
            process(tiny_stack.folder, cache_dir=cache_dir)
    ps = process(tiny_stack.folder, cache_dir=os.fsencode(tmp_path / "cache"))  # bytes are a path
    assert Path(ps.folder).parent == tmp_path / "cache"
    with pytest.raises(OptionError, match=r"^progress=5: must be a function"):
        merge(ps, progress=5)


def test_a_cache_folder_given_as_a_path_object_of_bytes_is_a_path(tiny_stack, tmp_path):
    """An ``os.PathLike`` whose ``__fspath__`` gives bytes (as bytes themselves are taken) was a TypeError from the
    NUL check (``"\\0" in b"..."``: "a bytes-like object is required"), and one giving a NUL an internal error."""
    from postfocus.errors import OptionError

    class BytesPath:
        def __init__(self, raw: bytes):
            self.raw = raw

        def __fspath__(self) -> bytes:
            return self.raw

    ps = process(tiny_stack.folder, cache_dir=BytesPath(os.fsencode(tmp_path / "cache")))
    assert Path(ps.folder).parent == tmp_path / "cache"
    with pytest.raises(OptionError, match=r"^cache_dir=.*: must be a folder's path"):
        process(tiny_stack.folder, cache_dir=BytesPath(b"ca\0che"))


def test_a_frame_overwritten_in_the_same_clock_tick_as_the_manifest_is_found(tmp_path):
    """A kept photo overwritten just after the manifest was written gets the same status time (the file
    system's clock moves in ticks: measured on ext4, the same ``st_ctime_ns`` in most tries); the "changed"
    check took a file of that time as older than the manifest and never read its CRC-32. Here the manifest
    records the overwrite's own time as when it was written, as a write in the same tick would."""
    from postfocus.io.write import atomic_write_json

    stack = make_tiny_stack(tmp_path / "frames", ".jpg")
    ps = process(stack.folder, cache_dir=tmp_path / "cache")
    name = ps.manifest["frame_files"][str(ps.used[1])]
    _flip_a_byte(ps.folder / name)
    tick = (ps.folder / name).stat().st_ctime_ns
    atomic_write_json(ps.folder / "manifest.json", {**ps.manifest, "written_ns": tick})
    again = ProcessedStack.open(ps.folder)
    with pytest.raises(DamagedStackError, match="changed since it was written"):
        again.verify(checksums="changed")
    assert again.changed_since_written(name)


@pytest.mark.parametrize("fault", ["folder deleted", "folder a file", "map cut short", "map a folder"])
def test_a_stack_whose_maps_went_after_it_was_opened_is_a_damaged_stack_not_an_os_error(tiny_stack, tmp_path, fault):
    """A ``ProcessedStack`` used after its folder was deleted (another process cleared the cache), or opened with
    ``ProcessedStack.open`` on a folder whose map is cut short or a folder, was a FileNotFoundError,
    NotADirectoryError, IsADirectoryError or "ValueError: mmap length is greater than file size" from NumPy
    (review13): a DamagedStackError naming the map, and ``process`` makes the folder again."""
    from postfocus.products.refocus import tap

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    folder, volume = ps.folder, ps.folder / "volume.npy"
    if fault == "folder deleted":
        shutil.rmtree(folder)
    elif fault == "folder a file":
        shutil.rmtree(folder)
        folder.write_bytes(b"x")
    elif fault == "map cut short":
        volume.write_bytes(volume.read_bytes()[:1000])
        ps = ProcessedStack.open(folder)
    else:
        volume.unlink()
        volume.mkdir()
        ps = ProcessedStack.open(folder)
    for use in (ps.merge, lambda: tap(ps, 10, 10), lambda: ps.volume):
        with pytest.raises(DamagedStackError, match=r"(focus_index|volume)\.npy (is missing|cannot be read)"):
            use()
    if fault == "folder a file":
        folder.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PostfocusWarning)
        again = process(tiny_stack.folder, cache_dir=tmp_path)
    assert again.folder == folder and again.volume.shape == np.load(folder / "volume.npy").shape


@pytest.mark.parametrize("fails", ["image", "manifest"])
def test_a_new_methods_image_the_folder_has_no_room_for_is_handed_out_not_kept(tiny_stack, tmp_path, monkeypatch,
                                                                                fails):
    """On a full cache disk, ``all_in_focus("pyramid")`` of a kept folder merged the image, then failed to keep it
    (an OutputError): ``postfocus stack --method pyramid`` wrote nothing, where it carries on without the cache
    otherwise (review13). The image is handed out with a warning and not kept; an image whose manifest could not
    be written is not left in the folder unvouched for; with room again it is kept."""
    import errno

    import postfocus.io.write
    import postfocus.store.folder
    from postfocus.errors import OutputError

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    before = {p.name for p in ps.folder.iterdir()}
    manifest = (ps.folder / "manifest.json").read_bytes()
    expected = ps.merge(method="pyramid")
    with monkeypatch.context() as m:
        if fails == "image":
            def full(*args, **kwargs):
                raise OSError(errno.ENOSPC, "No space left on device")

            m.setattr(postfocus.io.write.tempfile, "mkstemp", full)
        else:
            def full(path, *args, **kwargs):
                raise OutputError(f"{path}: cannot write (No space left on device)")

            m.setattr(postfocus.store.folder, "atomic_write_json", full)
        with pytest.warns(PostfocusWarning, match=r"No space left on device\); the pyramid image is not kept"):
            image = ps.all_in_focus("pyramid")
    assert np.array_equal(image, expected)
    assert {p.name for p in ps.folder.iterdir()} == before and (ps.folder / "manifest.json").read_bytes() == manifest
    with warnings.catch_warnings():
        warnings.simplefilter("error", PostfocusWarning)
        ps.all_in_focus("pyramid")  # room again: kept
    assert ps.all_in_focus_path("pyramid").is_file()
    assert "all_in_focus_pyramid.png" in json.loads((ps.folder / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("record", [5, [], None, {"a": 1}, [1234], [1234, "x"], [True, 0], [1.5, 0]],
                         ids=["a number", "empty", "null", "an object", "one number", "text", "bools", "a fraction"])
def test_a_file_record_that_is_no_size_and_checksum_is_a_damaged_folder_made_again(tiny_stack, tmp_path, record):
    """A manifest whose record of a file is not ``[size, CRC-32]`` (a stray edit, another tool) was opened, then
    its check failed as an internal error (``TypeError: 'int' object is not subscriptable``, an IndexError, a
    KeyError) in every later run: the folder was never made again (review15)."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = dict(ps.manifest)
    manifest["files"] = {**manifest["files"], "volume.npy": record}
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedStackError, match="manifest.json record of 'volume.npy'"):
        ProcessedStack.open(ps.folder)
    again = _refocus_makes_it_again(tiny_stack, tmp_path, ps)
    assert again.manifest["files"]["volume.npy"] == ps.manifest["files"]["volume.npy"]


@pytest.mark.parametrize("name", ["/dev/zero", "../../../dev/zero", "frames/../../x", "", "C:\\\\x",
                                  "frames/0000.jpg\x00", "volume.npy\x00.txt", "\ud800x.npy"],
                         ids=["device", "up-to-device", "up", "empty", "drive", "nul", "nul-inside", "lone-surrogate"])
def test_a_manifest_naming_a_file_outside_its_folder_or_no_path_is_a_damaged_folder_made_again(tiny_stack, tmp_path,
                                                                                             name):
    """A manifest naming ``/dev/zero`` with the size 0 its status gives had its CRC-32 read until memory ran out
    (a folder opened by path is anyone's file: the lead, at review15's note); a name with a NUL character or a lone
    surrogate (valid JSON: ``"\\u0000"``, ``"\\ud800"``) passed that check, then every run's check of the folder
    failed on the name (``internal error: ValueError: embedded null byte``) and the folder was never made again
    (review16). Each is a damaged folder, made again."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = dict(ps.manifest)
    manifest["files"] = {**manifest["files"], name: [0, 0]}
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedStackError, match="not a file of the folder"):
        ProcessedStack.open(ps.folder)
    _refocus_makes_it_again(tiny_stack, tmp_path, ps)


def test_a_kept_file_that_is_a_device_is_not_read(tiny_stack, tmp_path):
    """A kept file replaced by a link to a device whose size matches its record is reported, never read."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = dict(ps.manifest)
    (ps.folder / "volume.npy").unlink()
    (ps.folder / "volume.npy").symlink_to("/dev/zero")
    manifest["files"] = {**manifest["files"], "volume.npy": [0, 0]}
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedStackError, match="volume.npy is not a file"):
        ProcessedStack.open(ps.folder).verify()


@pytest.mark.parametrize("chroma_420", [True, False])
@pytest.mark.parametrize("quality", [97, 80])
def test_jpeg_frames_are_the_bytes_opencv_writes(tmp_path, monkeypatch, chroma_420, quality):
    """Kept JPEG frames come from imagecodecs' libjpeg-turbo, fed RGB as it is; OpenCV's encoder, fed BGR,
    wrote them before (and still does without imagecodecs' JPEG): the same file to the byte."""
    import cv2
    import imagecodecs

    rng = np.random.default_rng(5)
    smooth = cv2.GaussianBlur(rng.random((181, 243, 3)).astype(np.float32), (0, 0), 4)
    pixels = np.clip((smooth - smooth.min()) / np.ptp(smooth) * 255 + rng.normal(0, 6, smooth.shape), 0, 255)
    pixels = pixels.astype(np.uint8)
    factor = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420 if chroma_420 else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
    ok, opencv = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor])
    kept = {}
    for name, available in (("imagecodecs", True), ("opencv", False)):
        monkeypatch.setattr(imagecodecs.JPEG8, "available", available)
        (tmp_path / name / "frames").mkdir(parents=True)
        writer = FrameWriter(tmp_path / name, lossless=False, deep=False, jpeg_quality=quality, chroma_420=chroma_420)
        writer(4, pixels)
        kept[name] = (tmp_path / name / writer.close()["4"]).read_bytes()
    assert ok and kept["imagecodecs"] == kept["opencv"] == opencv.tobytes()


def test_two_writer_threads_encode_frames_at_once_into_the_files_one_writes(tmp_path, monkeypatch):
    """``FrameWriter(workers=2)`` (a video's kept frames) encodes two frames at once: both threads meet inside the
    encoder (a barrier one thread alone would break), and the files, their order and checksums are one thread's."""
    import postfocus.store.write as store_write

    rng = np.random.default_rng(8)
    frames = {i: rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for i in (0, 1, 3, 4, 6)}
    kept = {}
    for workers in (1, 2):
        (tmp_path / str(workers) / "frames").mkdir(parents=True)
        writer = FrameWriter(tmp_path / str(workers), lossless=False, deep=False, chroma_420=True, workers=workers)
        for index, pixels in frames.items():
            writer(index, pixels)
        names = writer.close()
        kept[workers] = (list(names.items()), writer.checksums,
                         {n: (tmp_path / str(workers) / n).read_bytes() for n in names.values()})
    assert kept[1] == kept[2] and len(kept[2][2]) == len(frames)

    # the first two frames: both threads in here at once
    monkeypatch.setattr(store_write, "_jpeg", meeting_twice(store_write._jpeg, []))
    (tmp_path / "met" / "frames").mkdir(parents=True)
    writer = FrameWriter(tmp_path / "met", lossless=False, deep=False, chroma_420=True, workers=2)
    for index, pixels in frames.items():
        writer(index, pixels)
    assert writer.close() == dict(kept[2][0])
    assert {n: (tmp_path / "met" / n).read_bytes() for n in dict(kept[2][0]).values()} == kept[2][2]


def _refocus_makes_it_again(tiny_stack, tmp_path, ps):
    """A command on the stack says the damaged folder is made again, and succeeds (no internal error); the
    folder opened again, verified."""
    run = run_postfocus("refocus", tiny_stack.folder, "--at", "50%,50%", "-o", tmp_path / "r.png", cache=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "damaged" in run.stderr and "making it again" in run.stderr and "internal error" not in run.stderr
    again = ProcessedStack.open(ps.folder)
    again.verify()
    return again


@pytest.mark.parametrize("name", ["/dev/zero", "../../x.png", 5, None, "frames/9999.jpg"],
                         ids=["device", "up", "a number", "null", "not kept"])
def test_a_frame_file_the_manifest_does_not_record_is_a_damaged_folder_made_again(tiny_stack, tmp_path, name):
    """``frame_files`` names were not checked as ``files`` names are (review16 noticed): a frame named
    ``/dev/zero`` or a file outside the folder was read as a frame. A frame must name a file the manifest records
    (inside the folder, with its size and CRC-32)."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = dict(ps.manifest)
    first = next(iter(manifest["frame_files"]))
    manifest["frame_files"] = {**manifest["frame_files"], first: name}
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedStackError, match="names no kept file"):
        ProcessedStack.open(ps.folder)
    again = _refocus_makes_it_again(tiny_stack, tmp_path, ps)
    assert again.manifest["frame_files"] == ps.manifest["frame_files"]


def test_a_writer_thread_out_of_disk_stops_the_writing_at_once_and_leaves_no_thread(tmp_path, monkeypatch):
    """``FrameWriter(workers=2)``: one thread's write failing (ENOSPC) is a CacheError at the caller's next frame
    handed or at ``close`` (the run then carries on without the cache), at most two frames after it are written,
    and the frames held stay at most three whatever the disk's speed (review19)."""
    import errno
    import threading
    import time
    from pathlib import Path

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    written, most = [], [0]
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.parent.name == "frames":
            time.sleep(0.02)  # (a slow disk: the caller outruns the writers)
            written.append(self.name)
            if self.name == "0004.jpg":
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    (tmp_path / "frames").mkdir()
    writer = FrameWriter(tmp_path, lossless=False, deep=False, chroma_420=True, workers=2)
    handed = 0
    with pytest.raises(CacheError, match="No space left"):
        try:
            for index in range(20):
                writer(index, pixels)
                handed += 1
                most[0] = max(most[0], sum(not job.done() for job in writer._pending))
        finally:
            writer.close()
    assert handed < 20 and most[0] <= 2
    assert len(written) - (written.index("0004.jpg") + 1) <= 2
    assert not any(t.name.startswith("postfocus-write") for t in threading.enumerate())


@pytest.mark.parametrize("link", ["frame file", "frames folder"])
def test_a_frame_file_reached_through_a_link_is_a_damaged_folder_never_read(tiny_stack, tmp_path, link):
    """A kept frame replaced by a link to a file outside the folder, of the recorded size and older than the manifest,
    passed the "changed" check and was read (the web app, ``depth_map``); now the folder is damaged, the link is
    not followed, and the next run makes it again."""
    cache = tmp_path / "cache"
    ps = process(tiny_stack.folder, cache_dir=cache)
    index = ps.used[0]
    name = ps.manifest["frame_files"][str(index)]
    good = ps.read_frame(index)
    outside = tmp_path / "outside"
    shutil.copytree(ps.folder / "frames", outside)
    import cv2

    size = (outside / Path(name).name).stat().st_size
    stored = cv2.imread(str(outside / Path(name).name), cv2.IMREAD_UNCHANGED)
    ok, flat = cv2.imencode(Path(name).suffix, np.full_like(stored, stored.max() // 3))
    assert ok and len(flat) < size
    (outside / Path(name).name).write_bytes(flat.tobytes() + bytes(size - len(flat)))  # other pixels, the same size
    assert not np.array_equal(read_image(outside / Path(name).name), good)
    if link == "frame file":
        (ps.folder / name).unlink()
        (ps.folder / name).symlink_to(outside / Path(name).name)
    else:
        shutil.rmtree(ps.folder / "frames")
        (ps.folder / "frames").symlink_to(outside, target_is_directory=True)
    manifest = json.loads((ps.folder / "manifest.json").read_text())
    manifest["written_ns"] = time.time_ns() + 1  # the link and its target older than the manifest
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    time.sleep(0.02)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}

    opened = ProcessedStack.open(ps.folder)
    with pytest.raises(DamagedStackError, match="is not a file|not inside"):
        opened.verify(checksums="changed")
    assert opened.changed_since_written(name)
    with pytest.raises(DamagedStackError):
        opened.verify()
    from postfocus.products.depth_frames import grid_frames  # (the depth step's own reads of the frames)

    with pytest.raises(DamagedStackError, match="does not match the manifest"):
        grid_frames(opened, (16, 16))(index)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PostfocusWarning)
        again = process(tiny_stack.folder, cache_dir=cache)
    assert any("damaged" in str(w.message) and "making it again" in str(w.message) for w in caught)
    again.verify()
    assert not (again.folder / "frames").is_symlink() and not (again.folder / name).is_symlink()
    assert np.array_equal(again.read_frame(index), good)
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before  # what the link pointed at: untouched


_MANIFEST_VALUES = {  # field -> a value of the right JSON type that no folder can have
    "size empty": ("size", []), "size of text": ("size", ["a", "b"]), "size huge": ("size", [10**12, 10**12]),
    "used of text": ("used", ["a"]), "used empty": ("used", []), "used negative": ("used", [-1, 0, 1]),
    "used past the frames": ("used", [0, 1, 99]), "used twice": ("used", [0, 0, 1]),
    "reference past the frames": ("reference", 99), "names of numbers": ("names", [1, 2, 3]),
    "alignment of text": ("alignment", ["x", "y", "z"]), "alignment short": ("alignment", []),
    "alignment 2x2": ("alignment", "2x2"), "crop of text": ("crop", ["a"]), "crop empty": ("crop", []),
    "crop not the size": ("crop", [0, 0, 50, 50]), "reference_size of text": ("reference_size", ["a", "b"]),
    "options not options": ("options", {"align": 5}), "a used frame with no file": ("frame_files", {}),
}


@pytest.mark.parametrize("change", list(_MANIFEST_VALUES))
def test_a_manifest_whose_values_no_folder_can_have_is_a_damaged_folder_made_again(tiny_stack, tmp_path, change):
    """A manifest edited by hand (or by another tool) whose fields have the right JSON types but values no stack
    folder has (a size of text or of 10**12, frames used past the stack, an alignment of another shape, a crop of
    another size) passed ``check_fields``: every later run was an internal error (ValueError, IndexError,
    KeyError, TypeError, OpenCV's "Can't parse 'dsize'") or an OptionError blaming the caller's options
    (``region=None``), and the folder was never made again (review20). Each is a damaged folder, made again."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    assert ps.frames_unwarped  # (crop and reference_size are checked)
    manifest = dict(ps.manifest)
    name, value = _MANIFEST_VALUES[change]
    if value == "2x2":
        value = [dict(a, matrix=[[1, 0], [0, 1]]) for a in manifest["alignment"]]
    manifest[name] = value
    (ps.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedStackError, match="manifest.json"):
        ProcessedStack.open(ps.folder)
    with pytest.warns(PostfocusWarning, match="damaged .*making it again"):
        again = process(tiny_stack.folder, cache_dir=tmp_path)
    again.verify()
    assert again.manifest[name] == ps.manifest[name]
    assert again.merge().shape[:2] == ps.size


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_manifest_that_is_no_file_is_never_waited_on_or_read_whole(tiny_stack, tmp_path, kind):
    """A FIFO named ``manifest.json`` blocked its read for good: every command on the input hung (and ``info``, which
    opens every folder of the cache); a link to ``/dev/zero`` was read until memory ran out (review20; review16 did
    this for the kept ``.npz`` files). The manifest is opened without waiting and read only if a regular file: a
    damaged folder, made again with a warning."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    manifest = ps.folder / "manifest.json"
    manifest.unlink()
    if kind == "fifo":
        os.mkfifo(manifest)
    elif kind == "device":
        manifest.symlink_to("/dev/zero")
    else:
        manifest.mkdir()
    code = ("import sys, warnings; from postfocus.pipeline.run import process\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            f"    ps = process({str(tiny_stack.folder)!r}, cache_dir={str(tmp_path)!r})\n"
            "ps.verify(); print(' | '.join(str(w.message) for w in caught))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
                         preexec_fn=lambda: __import__("resource").setrlimit(__import__("resource").RLIMIT_AS,
                                                                              (4 << 30, 4 << 30)))
    assert run.returncode == 0, run.stderr[-600:]
    assert "damaged" in run.stdout and "manifest.json is not a file" in run.stdout, run.stdout
    assert ProcessedStack.open(ps.folder).used == ps.used


def test_a_manifest_using_other_frames_than_the_volume_holds_is_a_damaged_folder_made_again(tiny_stack, tmp_path):
    """``"used": [0, 1]`` in a folder whose ``volume.npy`` holds three slices passed every check: merges were quiet,
    a tap on the far half was an ``IndexError`` from the refocus code (review20, fixes23). The manifest's frames and
    the volume's slices are compared when the folder is opened (the volume's header): a damaged folder, made again."""
    from postfocus.products.refocus import tap

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    assert ps.used == [0, 1, 2]
    (ps.folder / "manifest.json").write_text(json.dumps({**ps.manifest, "used": [0, 1]}))
    with pytest.raises(DamagedStackError, match="field 'used' names 2 frames, volume.npy holds 3"):
        ProcessedStack.open(ps.folder)
    with pytest.warns(PostfocusWarning, match="damaged .*making it again"):
        again = process(tiny_stack.folder, cache_dir=tmp_path)
    assert again.used == [0, 1, 2]
    assert tap(again, 250, 100).frame in again.used


def test_a_colour_profile_the_manifest_does_not_record_is_never_read(tiny_stack, tmp_path):
    """``ProcessedStack.info`` read any ``profile.icc`` in the folder, recorded in the manifest or not: a stray or
    planted file became the colour profile of every result written from the stack (fixes23). Only a recorded one is
    read, and only as it was written."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    assert "profile.icc" not in ps.manifest["files"]
    profile = ps.folder / "profile.icc"
    profile.write_bytes(b"not the inputs' profile")
    assert ProcessedStack.open(ps.folder).info.icc is None
    (ps.folder / "manifest.json").write_text(json.dumps(
        {**ps.manifest, "files": {**ps.manifest["files"], "profile.icc": file_record(b"the inputs' profile")}}))
    with pytest.raises(DamagedStackError, match="profile.icc has changed since it was written"):
        ProcessedStack.open(ps.folder).info
    profile.write_bytes(b"the inputs' profile")
    assert ProcessedStack.open(ps.folder).info.icc == b"the inputs' profile"
    profile.unlink()
    os.mkfifo(profile)  # (recorded, but no file: not waited on)
    with pytest.raises(DamagedStackError, match="profile.icc is not a file"):
        ProcessedStack.open(ps.folder).info


@pytest.mark.parametrize("record", [[-5, 1], [10**30, 1], [4, -1], [4, 2**40]])
def test_a_record_no_file_can_have_is_a_damaged_folder(tiny_stack, tmp_path, record):
    """A hand-edited record of ``profile.icc`` (review21): its size was read as it stood, ``ProcessedStack.open(...).info``
    a ValueError (-5) or an OverflowError (10**30), not the damaged folder's message; now the manifest is refused
    when opened, and the folder made again."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    (ps.folder / "profile.icc").write_bytes(b"a profile")
    (ps.folder / "manifest.json").write_text(json.dumps(
        {**ps.manifest, "files": {**ps.manifest["files"], "profile.icc": record}}))
    with pytest.raises(DamagedStackError, match="record of 'profile.icc' is not"):
        ProcessedStack.open(ps.folder)
    with pytest.warns(PostfocusWarning, match="damaged .*making it again"):
        again = process(tiny_stack.folder, cache_dir=tmp_path)
    assert again.info.icc is None and "profile.icc" not in again.manifest["files"]


def test_a_recorded_file_of_another_size_is_not_read_whole(tiny_stack, tmp_path):
    """A record of a size a file can have but this one has not (10**12 bytes): ``ProcessedStack.open(...).info``
    asked for them all, a MemoryError (review21); now a damaged folder before a byte is read, made again."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    (ps.folder / "profile.icc").write_bytes(b"a profile")
    (ps.folder / "manifest.json").write_text(json.dumps(
        {**ps.manifest, "files": {**ps.manifest["files"], "profile.icc": [10**12, 1]}}))
    with pytest.raises(DamagedStackError, match="profile.icc has changed since it was written"):
        ProcessedStack.open(ps.folder).info
    with pytest.warns(PostfocusWarning, match="damaged .*making it again"):
        again = process(tiny_stack.folder, cache_dir=tmp_path)
    assert again.info.icc is None
