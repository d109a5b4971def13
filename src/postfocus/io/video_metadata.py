"""Camera metadata of a video file: Panasonic's PANA atom, QuickTime user data, the movie header.

A Panasonic Lumix "Post Focus" or "Focus Stacking" MP4 carries the camera's
metadata in a ``PANA`` user-data atom (``moov/udta/PANA``; Leica twins of those
cameras write ``LEIC``). As ExifTool documents it (``Panasonic::PANA``), the
atom holds the model name near its start, a JPEG thumbnail, and a complete
EXIF block wrapped like a JPEG's APP1 segment (``FF D8 FF E1``, a two-byte
length, ``Exif\\0\\0``, then TIFF data) at byte 0x4068, 0x4080 (FZ1000
generation) or 0x200080 (GH6). The EXIF holds make, model, lens, exposure and
dates, and a Panasonic maker note: the bytes ``Panasonic\\0\\0\\0`` and then a
TIFF IFD whose offsets count from the EXIF's TIFF header. Two of its tags say
what the video is:

``VideoBurstMode`` (0x00bb)
    4 = Post Focus, 0x408 = Focus Stacking (other 4K/6K burst modes by name).
``VideoBurstResolution`` (0x00b3)
    1 = 4K (or off), 4 = 6K.

Other cameras and phones write standard QuickTime user data instead:
``moov/udta/©xyz`` (an ISO 6709 location such as ``+35.6586+139.7454/``),
``©mak`` and ``©mod`` (make and model), and every MP4 has a creation time in
its movie header (``moov/mvhd``, seconds since 1904 in UTC; 0 when unset).

:func:`read_video_metadata` finds these boxes with the bounded walker of
:mod:`postfocus.io.mp4_boxes` (every size checked, only the PANA atom, the
text atoms and ``mvhd`` read, each up to a limit) and parses the EXIF and the
maker note's IFD with Pillow. A damaged box is skipped with one
:class:`~postfocus.errors.PostfocusWarning`; nothing here raises on a bad file.

What is found becomes EXIF bytes (the camera's EXIF completed with the
container's make, model, GPS location and date where the EXIF lacks them;
the maker note is dropped since its offsets do not survive a rewrite) that
:func:`postfocus.io.write.output_exif` takes, and a small summary for
``postfocus info``.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.TiffImagePlugin import IFDRational, ImageFileDirectory_v2

from postfocus.errors import PostfocusWarning
from postfocus.io.mp4_boxes import MovieBoxes, quicktime_text, read_movie_boxes
from postfocus.io.metadata import exif_bytes

__all__ = [
    "BURST_MODES",
    "VideoMetadata",
    "describe_camera",
    "parse_iso6709",
    "read_video_metadata",
]

BURST_MODES = {
    0x01: None,  # off
    0x04: "Post Focus",
    0x18: "4K Burst",
    0x28: "4K Burst (Start/Stop)",
    0x48: "4K Pre-burst",
    0x108: "Loop Recording",
    0x408: "Focus Stacking",
    0x810: "6K Burst",
    0x820: "6K Burst (Start/Stop)",
    0x1001: "High Resolution Mode",
}
"""Panasonic ``VideoBurstMode`` values (maker note tag 0x00bb) by name, as ExifTool lists them."""

_BURST_RESOLUTIONS = {1: "4K", 4: "6K"}  # VideoBurstResolution (0x00b3); 1 also means "off"
_TEXT_ATOMS = (b"\xa9xyz", b"\xa9mak", b"\xa9mod")
# moov/udta atoms read, with the most bytes read of each (the GH6 keeps its EXIF past 2 MiB of its PANA atom)
_WANTED = {b"PANA": 8 << 20, b"LEIC": 8 << 20, **{kind: 4096 for kind in _TEXT_ATOMS}}
_EXIF_AT = (0x4068, 0x4080, 0x200080, 0x10)  # where ExifTool finds the EXIF in a PANA atom
_APP1 = re.compile(rb"\xff\xd8\xff\xe1..Exif\0\0", re.S)
_MODEL_AT = (0x04, 0x0C)  # a model name in a PANA atom (used when the EXIF has none)
_EXIF_IFD, _GPS_IFD, _MAKER_NOTE = 0x8769, 0x8825, 0x927C
_ISO6709 = re.compile(r"^\s*([+-]\d+(?:\.\d*)?)([+-]\d+(?:\.\d*)?)([+-]\d+(?:\.\d*)?)?")


@dataclass
class VideoMetadata:
    """What a video file says about the camera that recorded it.

    Attributes
    ----------
    exif : bytes or None
        EXIF (``Exif\\0\\0`` and TIFF data) for the stack's outputs, None when
        the file carries nothing.
    camera : dict or None
        ``make``, ``model``, ``lens``, ``mode`` ("Post Focus", "Focus
        Stacking", ... or None), ``resolution`` ("4K", "6K" or None), ``date``
        (EXIF form, "YYYY:MM:DD HH:MM:SS") and ``location`` ([latitude,
        longitude] or [latitude, longitude, altitude], degrees and metres);
        None when nothing was found.
    problems : list[str]
        Why some metadata could not be read (damaged boxes); already warned.
    """

    exif: bytes | None = None
    camera: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def read_video_metadata(path: str | Path) -> VideoMetadata:
    """Camera metadata of an MP4/MOV file: PANA atom, ``©xyz`` / ``©mak`` / ``©mod``, ``mvhd`` date.

    Never raises for a bad file: a box that cannot be read is skipped with a
    :class:`~postfocus.errors.PostfocusWarning` and what could be read is kept.

    Parameters
    ----------
    path : str or Path
        A video file. Files that are not ISO-BMFF (MKV, MTS, ...) give an empty result.

    Returns
    -------
    VideoMetadata

    Examples
    --------
    >>> meta = read_video_metadata("P1000123.MP4")  # doctest: +SKIP
    >>> meta.camera["model"], meta.camera["mode"], meta.camera["resolution"]  # doctest: +SKIP
    ('DC-FZ2000', 'Post Focus', '4K')
    """
    boxes = read_movie_boxes(path, _WANTED)
    problems = boxes.problems
    try:
        meta = _combine(boxes, problems)
    except Exception as exc:  # metadata is optional: a value no reader foresaw never stops the video
        problems.append(f"cannot interpret it ({type(exc).__name__}: {exc})")
        meta = VideoMetadata(problems=problems)
    if problems:
        warnings.warn(f"{path}: camera metadata not read ({problems[0]}); carrying on without it",
                      PostfocusWarning, stacklevel=2)
    return meta


# ---------------------------------------------------------------------------
# The PANA atom and its EXIF


def _pana_exif(atom: bytes) -> tuple[Image.Exif, bytes] | None:
    """The EXIF of a PANA atom (first at ExifTool's offsets, else anywhere in it), loaded by Pillow,
    and the TIFF bytes it was loaded from (a maker note's offsets count from them)."""
    starts = [at for at in _EXIF_AT if _APP1.match(atom, at)]
    starts += [m.start() for m in _APP1.finditer(atom) if m.start() not in starts]
    for at in starts[:8]:
        length = struct.unpack(">H", atom[at + 4 : at + 6])[0]  # of the APP1 segment, from its length field
        end = at + 4 + length if 16 <= length <= len(atom) - at - 4 else len(atom)
        tiff = atom[at + 12 : end]
        ex = _load_exif(tiff)
        if ex is not None and len(ex):
            return ex, tiff
    return None


def _load_exif(tiff: bytes) -> Image.Exif | None:
    ex = Image.Exif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "corrupt EXIF" notes: the result is checked instead
            ex.load(tiff)
            ex.get_ifd(_EXIF_IFD)
            ex.get_ifd(_GPS_IFD)
    except Exception:
        return None
    return ex


def _maker_note_tags(tiff: bytes, note: Any) -> dict[int, Any]:
    """Tags of a Panasonic maker note (``Panasonic\\0\\0\\0`` + IFD, offsets from the TIFF header)."""
    if not isinstance(note, bytes) or not note.startswith(b"Panasonic\0") or len(note) < 14:
        return {}
    at = tiff.find(note)
    data, start = (tiff, at + 12) if at >= 0 else (note, 12)
    # The note's byte order is its own ("Unknown" to ExifTool): the one in which the IFD is plausible.
    order = tiff[:2] if tiff[:2] in (b"II", b"MM") else b"II"
    for prefix in (order, b"MM" if order == b"II" else b"II"):
        if not _plausible_ifd(data, start, "<" if prefix == b"II" else ">"):
            continue
        ifd = ImageFileDirectory_v2(prefix + (b"*\0" if prefix == b"II" else b"\0*") + bytes(4))
        fp = io.BytesIO(data)
        fp.seek(start)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ifd.load(fp)
        except Exception:
            continue
        return dict(ifd)
    return {}


def _plausible_ifd(data: bytes, start: int, endian: str) -> bool:
    """True when an IFD read in this byte order fits ``data`` and every entry has a TIFF type (1-13)."""
    if start + 2 > len(data):
        return False
    count = struct.unpack(endian + "H", data[start : start + 2])[0]
    if not 0 < count <= 1000 or start + 2 + 12 * count > len(data):
        return False
    types = struct.unpack_from(endian + "xxHxxxxxxxx" * count, data, start + 2)
    return all(1 <= t <= 13 for t in types)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) and value else value


def _atom_model(atom: bytes) -> str | None:
    for at in _MODEL_AT:
        text = atom[at : at + 16].split(b"\0")[0]
        if len(text) >= 6 and all(32 <= c < 127 for c in text):
            return text.decode("ascii").strip()
    return None


# ---------------------------------------------------------------------------
# Locations and dates


def parse_iso6709(text: str) -> tuple[float, ...] | None:
    """Latitude, longitude (and altitude) in degrees and metres from an ISO 6709 string.

    Degrees may be written as decimal degrees (``+35.6586``), degrees and
    minutes (``+3539.516``) or degrees, minutes and seconds (``+353930.96``);
    longitudes have one more degree digit.

    Parameters
    ----------
    text : str
        E.g. ``"+35.6586+139.7454/"`` or ``"+35.6586+139.7454+010.500/"``.

    Returns
    -------
    tuple[float, ...] or None
        ``(lat, lon)`` or ``(lat, lon, alt)``; None when the text is no location.

    Examples
    --------
    >>> parse_iso6709("+35.6586+139.7454/")
    (35.6586, 139.7454)
    >>> parse_iso6709("-3339.516+15112.2+012.5/")
    (-33.6586, 151.20333333333335, 12.5)
    """
    m = _ISO6709.match(text or "")
    if not m:
        return None
    lat, lon = _sexagesimal(m.group(1), 2), _sexagesimal(m.group(2), 3)
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None
    return (lat, lon) if m.group(3) is None else (lat, lon, float(m.group(3)))


def _sexagesimal(part: str, degree_digits: int) -> float | None:
    sign = -1.0 if part[0] == "-" else 1.0
    whole, _, fraction = part[1:].partition(".")
    extra = len(whole) - degree_digits
    if extra not in (0, 2, 4):
        return None
    value = float(whole + "." + (fraction or "0"))
    if extra == 0:
        return sign * value
    if extra == 2:  # DDMM.mmm
        return sign * (int(whole[:degree_digits]) + (value - int(whole[:degree_digits]) * 100) / 60)
    degrees, minutes = int(whole[:degree_digits]), int(whole[degree_digits : degree_digits + 2])
    seconds = value - degrees * 10000 - minutes * 100
    return sign * (degrees + minutes / 60 + seconds / 3600)


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(round(seconds * 10000), 10000)


def _gps_ifd(location: tuple[float, ...]) -> dict[int, Any]:
    lat, lon = location[0], location[1]
    gps: dict[int, Any] = {0: b"\x02\x02\x00\x00", 1: "N" if lat >= 0 else "S", 2: _dms(lat),
                           3: "E" if lon >= 0 else "W", 4: _dms(lon)}
    if len(location) > 2:
        gps[5] = 0 if location[2] >= 0 else 1
        gps[6] = IFDRational(round(abs(location[2]) * 1000), 1000)
    return gps


# ---------------------------------------------------------------------------
# Putting it together


def _combine(boxes: MovieBoxes, problems: list[str]) -> VideoMetadata:
    ifd0: dict[int, Any] = {}
    sub: dict[int, Any] = {}
    gps: dict[int, Any] = {}
    note: dict[int, Any] = {}
    atom = boxes.atoms.get(b"PANA", boxes.atoms.get(b"LEIC"))
    texts = {kind: quicktime_text(boxes.atoms.get(kind, b"")) for kind in _TEXT_ATOMS}
    if atom is not None:
        loaded = _pana_exif(atom)
        if loaded is None:
            problems.append(f"its {len(atom)}-byte PANA atom holds no readable EXIF")
        else:
            ex, tiff = loaded
            ifd0 = {t: v for t, v in ex.items() if t not in (_EXIF_IFD, _GPS_IFD)}
            sub = dict(ex.get_ifd(_EXIF_IFD))
            gps = dict(ex.get_ifd(_GPS_IFD))
            note = _maker_note_tags(tiff, sub.pop(_MAKER_NOTE, None))
        ifd0.setdefault(0x010F, "LEICA" if atom.startswith(b"LEICA") else "Panasonic")
        model = _atom_model(atom)
        if model:
            ifd0.setdefault(0x0110, model)
    if texts[b"\xa9mak"]:
        ifd0.setdefault(0x010F, texts[b"\xa9mak"])
    if texts[b"\xa9mod"]:
        ifd0.setdefault(0x0110, texts[b"\xa9mod"])
    location = parse_iso6709(texts[b"\xa9xyz"] or "")
    if location is not None and not gps:
        gps = _gps_ifd(location)
    created = boxes.created
    if created is not None and 0x9003 not in sub:
        stamp = created.strftime("%Y:%m:%d %H:%M:%S")
        sub.update({0x9003: stamp, 0x9004: stamp, 0x9011: "+00:00", 0x9012: "+00:00"})
        ifd0.setdefault(0x0132, stamp)
    if not (ifd0 or sub or gps):
        return VideoMetadata(problems=problems)
    return VideoMetadata(exif=_exif_bytes(ifd0, sub, gps), camera=_summary(ifd0, sub, note, location),
                         problems=problems)


def _exif_bytes(ifd0: dict[int, Any], sub: dict[int, Any], gps: dict[int, Any]) -> bytes | None:
    try:
        return exif_bytes(ifd0, sub, gps, endian="<")
    except Exception:  # a camera value Pillow cannot write back: keep the text (make, model, lens, dates)
        try:
            return exif_bytes({t: v for t, v in ifd0.items() if isinstance(v, str)},
                              {t: v for t, v in sub.items() if isinstance(v, str)}, {}, endian="<")
        except Exception:
            return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.split(b"\0")[0].decode("latin-1")
    if isinstance(value, str):
        value = value.strip("\0 ").strip()
        return value or None
    return None


def _summary(ifd0: dict[int, Any], sub: dict[int, Any], note: dict[int, Any],
             location: tuple[float, ...] | None) -> dict[str, Any]:
    mode_value = _first(note.get(0x00BB))
    mode = BURST_MODES.get(mode_value, f"burst mode 0x{mode_value:x}") if isinstance(mode_value, int) else None
    resolution = _BURST_RESOLUTIONS.get(_first(note.get(0x00B3)))
    if mode is None and resolution == "4K":  # 1 also means "off"
        resolution = None
    return {
        "make": _text(ifd0.get(0x010F)),
        "model": _text(ifd0.get(0x0110)),
        "lens": _text(sub.get(0xA434)),
        "mode": mode,
        "resolution": resolution,
        "date": _text(sub.get(0x9003)) or _text(ifd0.get(0x0132)),
        "location": list(location) if location is not None else None,
    }


def describe_camera(camera: dict[str, Any] | None) -> str | None:
    """One line naming the camera and its video mode, from :attr:`VideoMetadata.camera`.

    Parameters
    ----------
    camera : dict or None
        The summary (``SourceInfo.camera``).

    Returns
    -------
    str or None
        E.g. ``"Panasonic DC-FZ2000, Post Focus, 4K"``; None when neither the
        camera nor a mode is known.

    Examples
    --------
    >>> describe_camera({"make": "Panasonic", "model": "DC-FZ2000", "mode": "Post Focus", "resolution": "4K"})
    'Panasonic DC-FZ2000, Post Focus, 4K'
    >>> describe_camera({"make": "Canon", "model": "Canon EOS R5"}), describe_camera(None)
    ('Canon EOS R5', None)
    """
    if not camera:
        return None
    make, model = camera.get("make") or "", camera.get("model") or ""
    name = model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    parts = [p for p in (name, camera.get("mode"), camera.get("resolution") if camera.get("mode") else None) if p]
    return ", ".join(parts) or None
