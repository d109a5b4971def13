"""A stack folder's files against its manifest's records (``[size, CRC-32]`` of each file).

:func:`file_record` makes a record as the manifest keeps it; :func:`mismatch` says what is wrong
with a file against its record, reading its CRC-32 only when asked to, or only when the file's status
changed after the manifest was written (:func:`written_since`); :func:`verify_files` checks every file
(:meth:`postfocus.store.ProcessedStack.verify`) and :func:`check_fields` the manifest's own fields.
"""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from postfocus.errors import InputError
from postfocus.io.regular import open_regular
from postfocus.store.unwarped import UNWARPED_KEY

__all__ = ["MAX_MANIFEST_BYTES", "DamagedStackError", "check_fields", "file_record", "mismatch", "read_manifest",
           "read_recorded", "verify_files", "written_since"]


class DamagedStackError(InputError):
    """A stack folder's files do not match its manifest (truncated, missing or changed)."""


#: What every readable manifest holds, and the JSON type of each (a folder of unwarped frames also the geometry).
_FIELDS = {"kind": str, "names": list, "paths": list, "used": list, "size": list, "reference": int,
           "options": dict, "alignment": list, "frame_files": dict, "bit_depth": int, "grey": bool, "files": dict}
_UNWARPED_FIELDS = {"reference_size": list, "crop": list}


def check_fields(folder: Path, manifest: dict) -> None:
    """DamagedStackError naming the first field of ``manifest`` that is missing or of another type, or the first
    file whose record is not ``[size, CRC-32]``.

    A manifest of the right format that is valid JSON but lacks a field (a stray edit, another tool's
    file) was opened, then failed on first use as an internal error (``KeyError: 'size'``), in every
    later run: the folder was never made again.
    """
    fields = {**_FIELDS, **(_UNWARPED_FIELDS if manifest.get(UNWARPED_KEY) else {})}
    for name, kind in fields.items():
        value = manifest.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            what = "missing" if name not in manifest else f"not a JSON {kind.__name__}"
            raise DamagedStackError(f"{folder}: manifest.json field {name!r} is {what}")
    for name, record in manifest["files"].items():  # (5 or [] was a TypeError or IndexError in every run: review15)
        if not (isinstance(record, list) and len(record) == 2 and all(_whole(v) for v in record)
                and 0 <= record[0] < 1 << 62 and 0 <= record[1] < 1 << 32):  # (10**12 was read whole: review21)
            raise DamagedStackError(f"{folder}: manifest.json record of {name!r} is not [size, CRC-32]")
        if not _inside(name):  # ("/dev/zero" with size 0 was read for its CRC-32 until memory ran out)
            raise DamagedStackError(f"{folder}: manifest.json names {name[:80]!r}, not a file of the folder")
    for index, name in manifest["frame_files"].items():  # (read as frames, so a kept file the manifest records)
        if not (isinstance(name, str) and name in manifest["files"]):
            raise DamagedStackError(f"{folder}: manifest.json frame {str(index)[:20]!r} names no kept file")
    problem = _values(manifest)
    if problem:
        raise DamagedStackError(f"{folder}: manifest.json {problem}")
    slices = _volume_slices(folder)  # (fewer frames used than the volume's slices: an IndexError at a tap: fixes23)
    if slices is not None and slices != len(manifest["used"]):
        raise DamagedStackError(f"{folder}: manifest.json field 'used' names {len(manifest['used'])} frames, "
                                f"volume.npy holds {slices}")


def _volume_slices(folder: Path) -> int | None:
    """How many slices ``folder``'s ``volume.npy`` says it holds (its header: about 128 bytes read), or None when it
    cannot be told (missing, no regular file, no NumPy header: :meth:`ProcessedStack.verify` and the map's reader say
    what is wrong)."""
    try:
        handle = open_regular(folder / "volume.npy", follow=False)
    except (OSError, ValueError):
        return None
    if handle is None:
        return None
    with handle:
        try:
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape = read(handle)[0]
        except (OSError, ValueError, EOFError):
            return None
    return int(shape[0]) if len(shape) == 3 else None


def read_recorded(folder: Path, manifest: dict, name: str) -> bytes | None:
    """The bytes of ``folder``'s file ``name`` if the manifest records it (None when not: a file the manifest does
    not vouch for, a stray or planted ``profile.icc``, is never read), checked against its record.

    DamagedStackError when it is missing, no regular file (a FIFO, a device, a link) or not the bytes written.
    """
    record = manifest.get("files", {}).get(name)
    if record is None:
        return None
    try:
        handle = open_regular(folder / name, follow=False)
    except (OSError, ValueError):
        handle, problem = None, "is missing or cannot be read"
    else:
        problem = "is not a file"
    if handle is None:
        raise DamagedStackError(f"{folder}: {name} {problem}; process the stack again to make it again")
    with handle:  # (a size the file does not have is never asked for: 2**40 was a MemoryError, review21)
        data = handle.read(record[0] + 1) if os.fstat(handle.fileno()).st_size == record[0] else None
    if data is None or file_record(data) != list(record):
        raise DamagedStackError(f"{folder}: {name} has changed since it was written; process the stack again")
    return data


def _values(m: dict) -> str | None:
    """What no stack folder can hold in ``m``'s fields of the right JSON type, or None (review20): a size of text
    or of 10**12, frames used past the stack, an alignment of another shape were internal errors in every run."""
    from postfocus.align.report import FrameAlignment
    from postfocus.options import StackOptions

    n = len(m["names"])
    if not _sides(m["size"]):
        return "field 'size' is not two sides of a picture"
    if not (n and all(isinstance(name, str) for name in m["names"])):
        return "field 'names' is not the frames' names"
    used = m["used"]
    if not (used and all(_whole(k) for k in used) and used == sorted(set(used)) and 0 <= used[0] <= used[-1] < n):
        return f"field 'used' is not frames of the {n}, each once, in order"
    if not 0 <= m["reference"] < n:
        return f"field 'reference' is not one of the {n} frames"
    if any(str(k) not in m["frame_files"] for k in used):
        return "field 'frame_files' names no file for a used frame"
    if m.get(UNWARPED_KEY):
        crop, ref = m["crop"], m["reference_size"]
        if not (_sides(ref) and len(crop) == 4 and all(_whole(v) for v in crop)
                and 0 <= crop[0] < crop[2] <= ref[0] and 0 <= crop[1] < crop[3] <= ref[1]
                and [crop[2] - crop[0], crop[3] - crop[1]] == m["size"]):
            return "fields 'crop' and 'reference_size' are not a crop of the size"
    try:
        StackOptions(**m["options"])
        report = [FrameAlignment.from_dict(a) for a in m["alignment"]]
    except Exception:  # noqa: BLE001 (what a hand-edited field makes: TypeError, KeyError, ValueError, OptionError)
        return "fields 'options' or 'alignment' cannot be read"
    if len(report) != n or any(a.matrix.shape != (3, 3) or not np.isfinite(a.matrix).all() for a in report):
        return "field 'alignment' is not a transform for each frame"
    return None


def _sides(value: list) -> bool:
    """Whether ``value`` is the (height, width) of a picture a stack can have."""
    return len(value) == 2 and all(_whole(v) and 1 <= v <= MAX_SIDE for v in value)


MAX_SIDE = 1 << 20
"""Longest side, in pixels, a stack folder's manifest may record (a gigapixel panorama is 2**16 wide)."""


def _inside(name: str) -> bool:
    """Whether ``name`` is a relative path inside the folder that a path can name (no NUL, no lone surrogate:
    ``"\\u0000"`` passed, then every run's check of the folder was a ValueError; review16)."""
    parts = name.split("/")
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        return False
    return (bool(name) and "\\" not in name and ":" not in name and "\x00" not in name
            and all(p not in ("", ".", "..") for p in parts))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


MAX_MANIFEST_BYTES = 256 << 20
"""Largest ``manifest.json`` read (a 2000-frame stack's is about 2 MB)."""


def read_manifest(folder: Path) -> bytes:
    """The bytes of ``folder``'s ``manifest.json``, opened without waiting and read only if a regular file.

    InputError when there is none (not a stack folder); DamagedStackError when it is no regular file (a FIFO blocked
    the read for good, a link to ``/dev/zero`` was read until memory ran out: review20) or over
    :data:`MAX_MANIFEST_BYTES`.
    """
    try:
        handle = open_regular(folder / "manifest.json")
    except (OSError, ValueError) as exc:  # (ValueError: a NUL in the path)
        raise InputError(f"{folder}: not a postfocus stack folder ({getattr(exc, 'strerror', None) or exc})") from None
    if handle is None:  # (a FIFO, a device, a folder)
        raise DamagedStackError(f"{folder}: manifest.json is not a file")
    with handle:
        data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise DamagedStackError(f"{folder}: manifest.json is over {MAX_MANIFEST_BYTES >> 20} MB")
    return data


def written_since(folder: Path, manifest: dict) -> int | None:
    """When ``folder``'s manifest was written (ns), for the "changed" check; None when it is gone.

    The earlier of its ``st_ctime`` and the time it records: a ``chmod -R`` or ``touch`` of it later set its
    status time past a file overwritten before (and a file system's clock behind the writer's is not trusted
    either).
    """
    try:
        since = (folder / "manifest.json").stat().st_ctime_ns
    except OSError:
        return None
    written = manifest.get("written_ns")  # (folders written before it was recorded: the status time)
    return min(since, written) if isinstance(written, int) and not isinstance(written, bool) else since


def verify_files(folder: Path, manifest: dict, *, checksums: bool | str, seen: dict) -> None:
    """DamagedStackError naming the first of ``folder``'s files that does not match ``manifest``'s record.

    ``checksums`` as :meth:`postfocus.store.ProcessedStack.verify` takes it (True, False or ``"changed"``);
    ``seen`` as :func:`mismatch` keeps it (a file whose CRC-32 matched is not read again while its status
    stays so).
    """
    since = written_since(folder, manifest) if checksums == "changed" else None
    if checksums == "changed" and since is None:
        raise DamagedStackError(f"{folder}: manifest.json is missing")
    for name, record in manifest.get("files", {}).items():
        problem = mismatch(folder / name, record, None if checksums is True else since,
                           crc=checksums is not False, seen=seen, folder=folder)
        if problem:
            raise DamagedStackError(f"{folder}: {name} {problem}")


def _through_link(folder: Path, path: Path) -> bool:
    """Whether a folder between ``folder`` and ``path`` (e.g. ``frames/``) is a link or no folder (its own status)."""
    try:
        parts = path.relative_to(folder).parts[:-1]
    except ValueError:
        return True
    inner = folder
    for part in parts:
        inner = inner / part
        try:
            if not stat.S_ISDIR(inner.lstat().st_mode):
                return True
        except OSError:
            return True
    return False


def file_record(data: bytes) -> list[int]:
    """``[size, crc32]`` of a file's bytes, as a stack folder's manifest keeps them.

    Examples
    --------
    >>> file_record(b"postfocus")
    [9, 4138753529]
    """
    return [len(data), zlib.crc32(data)]


def mismatch(path: Path, record: Sequence[int], since: int | None, *, crc: bool, seen: dict,
             folder: Path | None = None) -> str | None:
    """What is wrong with the file at ``path`` against its manifest ``record`` ([size, CRC-32]), or None.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    record : sequence of int
        Its size and CRC-32 as written.
    since : int or None
        The manifest's ``st_ctime_ns``: the CRC-32 is read only for a file whose status changed then or later
        (None: always, when ``crc``). A file overwritten just after the manifest was written has its status
        time in the same tick of the file system's clock (measured on ext4: the same ``st_ctime_ns`` in most
        tries); it was taken as older, and its overwrite missed for good.
    crc : bool
        Compare the CRC-32 at all (False: the size only).
    seen : dict
        File -> the status whose bytes matched: with a ``since``, a file is not read again while its
        status stays so (the web app checks an open stack on every request). Updated here.
    folder : pathlib.Path, optional
        The stack folder ``path`` is in: a folder between the two that is a link (``frames/`` pointing
        elsewhere) makes the file "not inside the folder". The file itself is never followed through a link
        (its own status, ``lstat``): a kept file that is a link, wherever it points, "is not a file".

    Returns
    -------
    str or None
        e.g. "is missing", "has 12 bytes, 9 were written", "has changed since it was written".

    Examples
    --------
    >>> mismatch(Path("no/such/file"), [9, 0], None, crc=True, seen={})
    'is missing'
    """
    try:  # (a link to a file outside, of the recorded size and older than the manifest, passed and was read: review19)
        st = path.lstat()
    except OSError:
        return "is missing"
    if not stat.S_ISREG(st.st_mode):
        return "is not a file"
    if folder is not None and _through_link(folder, path):
        return "is not inside the folder (a folder on its way is a link)"
    if st.st_size != record[0]:
        return f"has {st.st_size} bytes, {record[0]} were written"
    if not crc or (since is not None and st.st_ctime_ns < since):  # (not <=: the same clock tick as the manifest)
        return None
    status = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if since is not None and seen.get(path) == status:  # (``checksums=True`` reads every file)
        return None
    if zlib.crc32(path.read_bytes()) != record[1]:
        return "has changed since it was written"
    seen[path] = status
    return None
