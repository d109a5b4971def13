"""The boxes of an MP4/MOV file (ISO-BMFF): a bounded walker and the movie's own metadata.

An MP4 or MOV file is a list of boxes ("atoms"): a 32-bit big-endian size, a
four-letter type, then the payload; a size of 1 means a 64-bit size follows the
type, a size of 0 that the box runs to the end of its parent. Boxes nest
(``moov`` holds ``mvhd``, the tracks and ``udta``, the user data).

:func:`iter_boxes` walks one level and trusts no length: every size is checked
against the header it needs and the bytes its parent has left, and at most
:data:`BOX_LIMIT` boxes a level are visited. :func:`read_movie_boxes` uses it to
read what :mod:`postfocus.io.video_metadata` needs, seeking past everything
else (the media data is never read): the creation time in ``moov/mvhd`` and
chosen ``moov/udta`` atoms, each read up to its own byte limit.
:func:`quicktime_text` decodes a QuickTime user-data text atom (``©xyz``,
``©mak``, ``©mod``, ...).
"""

from __future__ import annotations

import datetime as _dt
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

from postfocus.io.base import looks_like_mp4

__all__ = ["BOX_LIMIT", "BoxError", "MovieBoxes", "iter_boxes", "quicktime_text", "read_movie_boxes"]

BOX_LIMIT = 4096
"""Boxes visited per level at most (a real ``moov`` or ``udta`` holds a few dozen)."""

_EPOCH_1904 = _dt.datetime(1904, 1, 1, tzinfo=_dt.timezone.utc)


class BoxError(ValueError):
    """A box whose size does not fit its parent or the file; ``kind`` is its four-byte type."""

    def __init__(self, message: str, kind: bytes = b""):
        super().__init__(message)
        self.kind = kind


@dataclass
class MovieBoxes:
    """What :func:`read_movie_boxes` found.

    Attributes
    ----------
    created : datetime.datetime or None
        The creation time of ``moov/mvhd`` (UTC); None when unset (0) or implausible.
    atoms : dict[bytes, bytes]
        Payload of the first ``moov/udta`` atom of each type asked for, cut to its limit.
    problems : list[str]
        Damaged boxes met on the way, one line each; the walk of that level stopped there.
    """

    created: _dt.datetime | None = None
    atoms: dict[bytes, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def iter_boxes(fh: BinaryIO, start: int, end: int, where: str = "file") -> Iterator[tuple[bytes, int, int]]:
    """The boxes of one level, between byte ``start`` and byte ``end`` of ``fh``.

    Parameters
    ----------
    fh : BinaryIO
        The file, opened for binary reading (seekable).
    start, end : int
        Where the level's first box starts and where its parent ends.
    where : str
        The parent's name for messages (``"file"``, ``"moov"``, ...).

    Yields
    ------
    tuple[bytes, int, int]
        ``(type, payload start, payload end)``; fewer than 8 bytes left end the
        level (a QuickTime ``udta`` list may close with a 32-bit zero).

    Raises
    ------
    BoxError
        For a box whose size is smaller than its header or reaches past ``end``.

    Examples
    --------
    >>> fh = io.BytesIO(struct.pack(">I4s", 12, b"free") + b"abcd")
    >>> list(iter_boxes(fh, 0, 12))
    [(b'free', 8, 12)]
    """
    pos = start
    for _ in range(BOX_LIMIT):
        if end - pos < 8:
            return
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            raise BoxError(f"{where} ends early at byte {pos}")
        size, kind = struct.unpack(">I4s", head)
        header = 8
        if size == 1:  # 64-bit size
            wide = fh.read(8)
            if len(wide) < 8:
                raise BoxError(f"{where}: box {_name(kind)} at byte {pos} is cut short", kind)
            size, header = struct.unpack(">Q", wide)[0], 16
        elif size == 0:  # to the end of the parent
            size = end - pos
        if size < header or size > end - pos:
            raise BoxError(f"{where}: box {_name(kind)} at byte {pos} claims {size} bytes, {end - pos} are left",
                           kind)
        yield kind, pos + header, pos + size
        pos += size


def read_movie_boxes(path: str | Path, wanted: Mapping[bytes, int]) -> MovieBoxes:
    """The creation time and chosen user-data atoms of an MP4/MOV file; never raises.

    Parameters
    ----------
    path : str or Path
        The file. One that is not ISO-BMFF (by its first box) gives an empty result.
    wanted : Mapping[bytes, int]
        ``moov/udta`` atom types to read, each with the most bytes to read of it.

    Returns
    -------
    MovieBoxes
        Damaged boxes and read errors are in ``problems``, not raised.

    Examples
    --------
    >>> read_movie_boxes("VID_0001.mp4", {b"\\xa9xyz": 4096}).atoms  # doctest: +SKIP
    {b'\\xa9xyz': b'\\x00\\x12\\x15\\xc7+35.6586+139.7454/'}
    """
    found = MovieBoxes()
    if not looks_like_mp4(path):
        return found
    try:
        with open(path, "rb") as fh:
            _read_moov(fh, wanted, found)
    except (OSError, ValueError, struct.error, OverflowError) as exc:
        found.problems.append(f"cannot read the file's boxes ({exc})")
    return found


def _read_moov(fh: BinaryIO, wanted: Mapping[bytes, int], found: MovieBoxes) -> None:
    size = fh.seek(0, io.SEEK_END)
    moov = None
    try:
        for kind, start, end in iter_boxes(fh, 0, size):
            if kind == b"moov":
                moov = (start, end)
                break
    except BoxError as exc:
        if exc.kind == b"moov":
            found.problems.append(str(exc))
        return  # else a cut mdat before any moov: the video reader says the file is truncated
    if moov is None:
        return
    try:
        for kind, start, end in iter_boxes(fh, *moov, "moov"):
            if kind == b"mvhd":
                found.created = _creation_time(_payload(fh, start, end, 64))
            elif kind == b"udta":
                _read_udta(fh, start, end, wanted, found)
    except BoxError as exc:
        found.problems.append(str(exc))


def _read_udta(fh: BinaryIO, start: int, end: int, wanted: Mapping[bytes, int], found: MovieBoxes) -> None:
    try:
        for kind, s, e in iter_boxes(fh, start, end, "moov/udta"):
            if kind in wanted and kind not in found.atoms:
                found.atoms[kind] = _payload(fh, s, e, wanted[kind])
    except BoxError as exc:
        found.problems.append(str(exc))


def _name(kind: bytes) -> str:
    return "'" + kind.decode("latin-1").encode("ascii", "backslashreplace").decode() + "'"


def _payload(fh: BinaryIO, start: int, end: int, limit: int) -> bytes:
    fh.seek(start)
    return fh.read(min(end - start, limit))


def _creation_time(data: bytes) -> _dt.datetime | None:
    """The creation time of an ``mvhd`` payload (UTC); None when unset or implausible."""
    if len(data) < 8 or (data[0] == 1 and len(data) < 12):
        return None
    seconds = struct.unpack(">Q", data[4:12])[0] if data[0] == 1 else struct.unpack(">I", data[4:8])[0]
    if not seconds:
        return None
    try:
        created = _EPOCH_1904 + _dt.timedelta(seconds=seconds)
    except OverflowError:
        return None
    return created if 1980 <= created.year <= 2200 else None


def quicktime_text(data: bytes) -> str | None:
    """The text of a QuickTime user-data text atom's payload (or of an iTunes-style ``data`` child).

    Parameters
    ----------
    data : bytes
        The atom's payload: a 16-bit text length, a 16-bit language code and
        the text; or a ``data`` box (size, ``data``, type, locale, text).

    Returns
    -------
    str or None
        The text up to its first NUL, stripped; None when empty or too short.

    Examples
    --------
    >>> quicktime_text(b"\\x00\\x06\\x15\\xc7Google")
    'Google'
    """
    if len(data) >= 16 and data[4:8] == b"data":
        text = data[16 : struct.unpack(">I", data[:4])[0]]
    elif len(data) >= 4:
        text = data[4 : 4 + struct.unpack(">H", data[:2])[0]]
    else:
        return None
    value = text.split(b"\0")[0].decode("utf-8", "replace").strip()
    return value or None
