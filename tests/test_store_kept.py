"""Results kept in a stack folder (``postfocus.store.kept``): the noise floor a folder made before format 8 has
measured and kept beside it (``tap_floor.npz``), never trusted when its value is no floor."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from postfocus import process, tap
from postfocus.store import ProcessedStack
from postfocus.store.kept import FLOOR_FILE, KEY_FIELD, load_kept


@pytest.fixture(scope="module")
def stacks(tiny_stack, tmp_path_factory):
    """A format-8 stack folder and the key its format-7 copies keep their measured floor under."""
    root = tmp_path_factory.mktemp("kept")
    ps = process([str(p) for p in tiny_stack.paths], cache_dir=root / "cache")
    key = json.dumps({"tap_floor": 1, "volume": ps.manifest["files"]["volume.npy"]})
    return ps, key


def _format_7(ps, folder):
    """A copy of ``ps``'s folder as format 7 wrote it (no ``tap_floor`` in the manifest)."""
    shutil.copytree(ps.folder, folder, ignore=shutil.ignore_patterns(FLOOR_FILE, "frames"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format"] = 7
    del manifest["tap_floor"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("members", [
    {"floor": np.float64("nan")}, {"floor": np.float64("inf")}, {"floor": np.float64(-1.0)},
    {"floor": np.float64(5.0)}, {"floor": np.ones(3)}, {"floor": np.asarray("abc")},
    {"floor": np.complex128(1j)}, {"other": np.ones(1)},
], ids=["nan", "inf", "negative", "above-1", "three-values", "text", "complex", "missing"])
def test_a_kept_floor_that_is_no_floor_is_measured_again_and_healed(stacks, tmp_path, members):
    """A ``tap_floor.npz`` under the right key whose floor is NaN, infinite, negative, above 1 (the volume is
    divided by its maximum), not one number, or missing was trusted or failed: NaN made every tap's confidence
    NaN (the web app's JSON answer a 500), 5.0 every window plain, three values a TypeError, text a ValueError,
    a missing one a KeyError, on every tap of the folder for good. It is measured again and kept."""
    ps, key = stacks
    old = _format_7(ps, tmp_path / "old")
    with open(old / FLOOR_FILE, "wb") as fh:
        np.savez(fh, **{KEY_FIELD: np.asarray(key)}, **members)
    opened = ProcessedStack.open(old)
    assert opened.tap_floor == pytest.approx(ps.tap_floor, rel=1e-6) and 0 < ps.tap_floor < 1
    h, w = ps.size
    for x, y in ((w * 0.2, h * 0.5), (w * 0.8, h * 0.5), (3, 3)):
        answer = tap(opened, x, y)
        assert answer == tap(ps, x, y) and math.isfinite(answer.confidence)
    healed = load_kept(old / FLOOR_FILE, key)
    assert healed is not None and float(healed["floor"]) == pytest.approx(ps.tap_floor, rel=1e-6)


def test_a_pickle_in_the_kept_floor_is_never_loaded(stacks, tmp_path):
    """An object array (a pickle) in ``tap_floor.npz`` is not unpickled: the floor is measured."""
    ps, key = stacks
    old = _format_7(ps, tmp_path / "old")
    with open(old / FLOOR_FILE, "wb") as fh:
        np.savez(fh, **{KEY_FIELD: np.asarray(key)}, floor=np.asarray([{"a": 1}], dtype=object))
    assert ProcessedStack.open(old).tap_floor == pytest.approx(ps.tap_floor, rel=1e-6)


def test_a_folder_that_cannot_be_written_measures_its_floor_and_keeps_nothing(stacks, tmp_path, monkeypatch):
    """A format-7 folder whose files cannot be written (a read-only cache, a full disk): the floor is measured, the
    taps answer as on the format-8 folder, nothing is written in it (a guard, as it behaved)."""
    from postfocus.errors import OutputError

    ps, _ = stacks
    old = _format_7(ps, tmp_path / "old")
    before = sorted(p.name for p in old.iterdir())

    def refuse(path, write):
        raise OutputError(f"{path}: read-only")

    monkeypatch.setattr("postfocus.store.kept.atomic_write", refuse)
    opened = ProcessedStack.open(old)
    assert opened.tap_floor == pytest.approx(ps.tap_floor, rel=1e-6)
    h, w = ps.size
    assert tap(opened, w * 0.2, h * 0.5) == tap(ps, w * 0.2, h * 0.5)
    assert sorted(p.name for p in old.iterdir()) == before


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_a_kept_file_that_is_no_regular_file_is_made_again_without_waiting(tmp_path, kind):
    """A FIFO under a kept file's name (``tap_depth_<method>.npz``, ``depth_<method>.npz``, ``tap_floor.npz``; a
    folder opened by path is anyone's) blocked ``np.load``'s open for good: every tap, aperture and pop of the
    folder hung, in the web app a worker thread each (review16). Anything but a regular file is no kept file: the
    arrays are made and kept in its place."""
    import os
    import threading

    from postfocus.store.kept import kept

    path = tmp_path / "folder" / "tap_depth_depthmap.npz"
    path.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    answer = {}
    worker = threading.Thread(target=lambda: answer.setdefault("kept", kept(path, "k", lambda: {"a": np.ones(2)})),
                              daemon=True)
    worker.start()
    worker.join(30)
    hung = worker.is_alive()
    if hung and kind == "fifo":  # (a writer opened and gone lets the reader go: the test fails, it does not hang)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        worker.join(30)
    assert not hung
    assert answer["kept"]["a"].tolist() == [1.0, 1.0]
    if kind != "folder":  # (a folder is not replaced by a rename: made each time, unkept)
        again = load_kept(path, "k")
        assert again is not None and again["a"].tolist() == [1.0, 1.0]


def test_a_kept_file_that_is_a_link_is_not_followed_and_is_made_again(tmp_path):
    """A kept result replaced by a link to a file outside the stack folder, holding the right key and other arrays,
    was read and trusted (``open`` follows links); a link is no kept file: made again, kept in its place, and what
    it pointed at is left as it was."""
    from postfocus.store.kept import keep, kept

    outside = tmp_path / "elsewhere.npz"
    assert keep(outside, "k", {"a": np.full(2, 7.0)})
    before = outside.read_bytes()
    path = tmp_path / "folder" / "depth_depthmap.npz"
    path.parent.mkdir()
    path.symlink_to(outside)
    assert load_kept(path, "k") is None
    assert kept(path, "k", lambda: {"a": np.ones(2)})["a"].tolist() == [1.0, 1.0]
    assert not path.is_symlink() and load_kept(path, "k")["a"].tolist() == [1.0, 1.0]
    assert outside.read_bytes() == before
