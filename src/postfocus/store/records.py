"""A stack folder's files against its manifest's records (``[size, CRC-32]`` of each file).

:func:`file_record` makes a record as the manifest keeps it; :func:`mismatch` says what is wrong
with a file against its record, reading its CRC-32 only when asked to, or only when the file's status
changed after the manifest was written (:meth:`postfocus.store.ProcessedStack.verify`).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Sequence

__all__ = ["file_record", "mismatch"]


def file_record(data: bytes) -> list[int]:
    """``[size, crc32]`` of a file's bytes, as a stack folder's manifest keeps them.

    Examples
    --------
    >>> file_record(b"postfocus")
    [9, 4138753529]
    """
    return [len(data), zlib.crc32(data)]


def mismatch(path: Path, record: Sequence[int], since: int | None, *, crc: bool, seen: dict) -> str | None:
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

    Returns
    -------
    str or None
        e.g. "is missing", "has 12 bytes, 9 were written", "has changed since it was written".

    Examples
    --------
    >>> mismatch(Path("no/such/file"), [9, 0], None, crc=True, seen={})
    'is missing'
    """
    try:
        st = path.stat()
    except OSError:
        return "is missing"
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
