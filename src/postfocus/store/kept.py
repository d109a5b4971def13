"""Results made from a stack folder and kept in it (e.g. the depth map), under a key, healing when damaged.

A kept result is a set of named arrays written as one uncompressed ``.npz`` file
(a ZIP archive: every member carries its CRC-32, checked when it is read) with
the key it was made under. It is not in the manifest: a damaged or stale file
is made again, never trusted, and never makes the whole stack be processed
again. Made by one process at a time (:func:`~postfocus.store.cache.folder_lock`:
a second one waits, then reads the first one's file), written atomically.
A folder that cannot be written (read-only) still gives the result, unkept.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from postfocus.errors import OutputError
from postfocus.io.regular import open_regular
from postfocus.io.write import atomic_write
from postfocus.store.cache import folder_lock

__all__ = ["FLOOR_FILE", "KEY_FIELD", "keep", "kept", "kept_floor", "load_kept"]

KEY_FIELD = "key"
"""Name of the member holding the key the arrays were made under."""

FLOOR_FILE = "tap_floor.npz"
"""Where a folder made before format 8 keeps the noise floor measured from its volume."""


def load_kept(path: Path, key: str, names: Sequence[str] | None = None) -> dict[str, np.ndarray] | None:
    """The arrays kept at ``path`` under ``key`` (only those of ``names``, when given); None when missing, made
    under another key, damaged, without one of ``names``, or not a regular file of its own (a link is not followed).

    Examples
    --------
    >>> load_kept(Path("no-such-file.npz"), "k") is None
    True
    """
    # (opened without waiting: a FIFO under the name blocked the open, every tap with it, for good: review16; and not
    # through a link: one to a file outside the folder was read and trusted: fixes22)
    try:
        fh = open_regular(path, follow=False)
    except (OSError, ValueError):
        return None  # missing, unreadable, no path, a link
    if fh is None:
        return None  # a FIFO, a device, a folder: no kept file
    try:
        with np.load(fh, allow_pickle=False) as kept_file:
            if KEY_FIELD not in kept_file.files or str(kept_file[KEY_FIELD]) != key:
                return None
            wanted = [name for name in kept_file.files if name != KEY_FIELD] if names is None else list(names)
            return {name: kept_file[name] for name in wanted}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None  # truncated, a changed byte (CRC), not an npz
    finally:
        fh.close()


def keep(path: Path, key: str, arrays: dict[str, np.ndarray]) -> bool:
    """Write ``arrays`` under ``key`` atomically; False when the folder cannot take them."""
    try:
        atomic_write(path, lambda tmp: _save(tmp, key, arrays))
    except OutputError:
        return False
    return True


def _save(tmp: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to the temporary name
        np.savez(fh, **{KEY_FIELD: np.asarray(key)}, **arrays)


def kept(path: Path, key: str, make: Callable[[], dict[str, np.ndarray]], *,
         valid: Callable[[dict[str, np.ndarray]], bool] | None = None) -> dict[str, np.ndarray]:
    """The arrays kept at ``path`` (in a stack folder) under ``key``, made with ``make()`` and kept when not.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npz`` file, inside a stack folder (whose lock guards it).
    key : str
        What the arrays depend on; a file made under another key is made again.
    make : callable
        Makes the arrays (called at most once, under the stack folder's lock).
    valid : callable, optional
        ``valid(arrays)``: whether arrays read under ``key`` are what ``make`` makes (a value of the right kind);
        kept ones that are not are made again and kept in their place, as a damaged file is.

    Returns
    -------
    dict of str to numpy.ndarray
    """
    found = load_kept(path, key)
    if found is not None and (valid is None or valid(found)):
        return found
    try:
        lock = folder_lock(path.parent)
        lock.acquire()
    except OutputError:  # a folder nobody can lock (read-only): made, not kept
        return make()
    try:
        found = load_kept(path, key)  # another process made it while this one waited
        if found is not None and (valid is None or valid(found)):
            return found
        arrays = make()
        keep(path, key, arrays)
        return arrays
    finally:
        lock.release()


def kept_floor(folder: Path, manifest: dict, volume: Callable[[], np.ndarray]) -> float:
    """The noise floor of a stack folder's focus volume for a tap's window (:mod:`postfocus.focus.floor`).

    The manifest's ``tap_floor`` (format 8 on; from 0 to 1, as the volume's values are); a folder made before, or
    one whose manifest holds no such number, has it measured from ``volume()`` once (the
    whole volume is read) and kept in :data:`FLOOR_FILE` under the volume's checksum; a folder that cannot be
    written measures it each time it is asked.

    Parameters
    ----------
    folder : pathlib.Path
        The stack folder.
    manifest : dict
        Its manifest.
    volume : callable
        Gives the folder's focus volume (read only when the floor is measured).

    Returns
    -------
    float
    """
    floor = manifest.get("tap_floor")
    # (the volume is kept divided by its maximum: its floor is from 0 to 1; a larger one, 2.0 or 1e308, made every
    # window plain, every tap answered from the fill: review14)
    if isinstance(floor, (int, float)) and not isinstance(floor, bool) and 0 <= floor <= 1:
        return float(floor)
    from postfocus.focus.floor import window_floor

    key = json.dumps({"tap_floor": 1, "volume": manifest.get("files", {}).get("volume.npy")})
    # (a kept floor that is no floor, NaN, 5.0, three values, text, was trusted or a TypeError on every tap: review15)
    arrays = kept(folder / FLOOR_FILE, key, lambda: {"floor": np.asarray(window_floor(volume()), np.float64)},
                  valid=lambda found: _floor(found.get("floor")) is not None)
    return _floor(arrays["floor"]) or 0.0  # (a volume whose floor is no number: no floor known, as for 0)


def _floor(value: object) -> float | None:
    """``value`` as a noise floor: one real number from 0 to 1, else None."""
    if not isinstance(value, np.ndarray) or value.shape != () or value.dtype.kind not in "fiu":
        return None
    floor = float(value)
    return floor if 0 <= floor <= 1 else None  # (NaN is not)
