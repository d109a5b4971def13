"""Metadata of camera RAW files, as the EXIF of a result.

Make, model, date, exposure, ISO, lens and GPS are read from the file's TIFF
structure (DNG, CR2, NEF, ARW, ORF, RW2, PEF, SRW), from the embedded JPEG
(RAF) or from the CMT boxes (CR3), and completed from what LibRaw reports
(:func:`raw_exif`). :class:`postfocus.io.raw.RawFilesSource` gives them to the
middle frame.
"""

from __future__ import annotations

import io
import os
import struct
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["raw_exif"]

# EXIF sub-IFD tags copied from a RAW file (exposure, lens, dates, camera serial).
EXIF_TAGS = (
    0x829A, 0x829D, 0x8822, 0x8827, 0x8830, 0x8832, 0x9000, 0x9003, 0x9004, 0x9010, 0x9011, 0x9012,
    0x9201, 0x9202, 0x9204, 0x9205, 0x9207, 0x9208, 0x9209, 0x920A, 0x9290, 0x9291, 0x9292,
    0xA405, 0xA430, 0xA431, 0xA432, 0xA433, 0xA434, 0xA435,
)
IFD0_TAGS = (0x010F, 0x0110, 0x0112, 0x0132, 0x013B, 0x8298)  # make, model, orientation, date, artist, copyright
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
# How much of a file is searched for its metadata.
METADATA_READ_LIMIT = 256 << 20


def _read_limited(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(METADATA_READ_LIMIT)


def _load_tiff_exif(data: bytes) -> Any:
    """Pillow Exif over TIFF-structured bytes (ORF/RW2 magic numbers normalised), or None."""
    from PIL import Image

    if data[:2] not in (b"II", b"MM") or len(data) < 8:
        return None
    if data[2:4] not in (b"*\0", b"\0*"):
        data = data[:2] + (b"*\0" if data[:2] == b"II" else b"\0*") + data[4:]
    ex = Image.Exif()
    try:
        ex.load(data)
    except Exception:
        return None
    return ex


def _safe_ifd(ex: Any, tag: int) -> dict[int, Any]:
    try:
        return dict(ex.get_ifd(tag)) if tag in ex else {}
    except Exception:
        return {}


def _tiff_tags(data: bytes) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    ex = _load_tiff_exif(data)
    if ex is None:
        return {}, {}, {}
    ifd0 = {t: ex[t] for t in ex if t not in (EXIF_IFD, GPS_IFD)}
    return ifd0, _safe_ifd(ex, EXIF_IFD), _safe_ifd(ex, GPS_IFD)


def _raf_tags(data: bytes) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    """EXIF of the JPEG preview a Fujifilm RAF file embeds."""
    from PIL import Image

    if len(data) < 92:
        return {}, {}, {}
    offset, length = struct.unpack(">II", data[84:92])
    try:
        with Image.open(io.BytesIO(data[offset : offset + length])) as im:
            ex = im.getexif()
            ifd0 = {t: ex[t] for t in ex if t not in (EXIF_IFD, GPS_IFD)}
            return ifd0, _safe_ifd(ex, EXIF_IFD), _safe_ifd(ex, GPS_IFD)
    except Exception:
        return {}, {}, {}


def _cr3_tags(data: bytes) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    """EXIF of a Canon CR3: TIFF structures in the CMT1 (IFD0), CMT2 (EXIF) and CMT4 (GPS) boxes."""
    found: list[dict[int, Any]] = []
    for box in (b"CMT1", b"CMT2", b"CMT4"):
        at = data.find(box, 0, 1 << 20)
        tags: dict[int, Any] = {}
        if at >= 4:
            size = struct.unpack(">I", data[at - 4 : at])[0]
            ex = _load_tiff_exif(data[at + 4 : at - 4 + size])
            if ex is not None:
                tags = dict(ex)
        found.append(tags)
    return found[0], found[1], found[2]


def _rational(value: float, limit: int = 100000) -> Any:
    from PIL.TiffImagePlugin import IFDRational

    f = Fraction(value).limit_denominator(limit)
    return IFDRational(f.numerator, f.denominator)


def raw_exif(path: str | os.PathLike) -> bytes | None:
    """EXIF bytes with the camera, lens, exposure, ISO, date and GPS of a RAW file.

    Tags are read from the file's own metadata where its format allows, and
    completed from what LibRaw reports (ISO, shutter, aperture, focal length,
    time, lens).

    Parameters
    ----------
    path : str or os.PathLike
        The RAW file whose metadata is wanted.

    Returns
    -------
    bytes or None
        EXIF bytes, or None when nothing was found or the file cannot be read.

    Examples
    --------
    >>> from PIL import Image
    >>> ex = Image.Exif(); ex.load(raw_exif("IMG_0001.CR2"))  # doctest: +SKIP
    >>> ex[0x010F]  # doctest: +SKIP
    'Canon'
    """
    from PIL import Image

    path = Path(path)
    try:
        data = _read_limited(path)
    except OSError:
        return None
    if data.startswith(b"FUJIFILMCCD-RAW"):
        ifd0, sub, gps = _raf_tags(data)
    elif data[4:8] == b"ftyp":
        ifd0, sub, gps = _cr3_tags(data)
    else:
        ifd0, sub, gps = _tiff_tags(data)
    del data
    out0 = {t: ifd0[t] for t in IFD0_TAGS if t in ifd0 and ifd0[t] not in ("", b"")}
    out_sub = {t: v for t, v in ifd0.items() if t in EXIF_TAGS}  # DNG may keep EXIF tags in IFD0
    out_sub.update({t: v for t, v in sub.items() if t in EXIF_TAGS})
    if 0x0110 not in out0 and isinstance(ifd0.get(0xC614), str):  # DNG UniqueCameraModel
        out0[0x0110] = ifd0[0xC614]
    if 0xA432 not in out_sub and 0xC630 in ifd0:  # DNG LensInfo -> LensSpecification
        out_sub[0xA432] = ifd0[0xC630]
    _complete_from_libraw(path, out0, out_sub)
    if not (out0 or out_sub or gps):
        return None
    ex = Image.Exif()
    for tag, value in out0.items():
        ex[tag] = value
    if out_sub:
        out_sub.setdefault(0x9000, b"0232")
        ex[EXIF_IFD] = out_sub
    if gps:
        ex[GPS_IFD] = gps
    try:
        return ex.tobytes()
    except Exception:  # a value Pillow cannot write back: keep camera and exposure basics
        ex = Image.Exif()
        for tag, value in out0.items():
            ex[tag] = value
        return ex.tobytes()


def _complete_from_libraw(path: Path, ifd0: dict[int, Any], sub: dict[int, Any]) -> None:
    """Fill exposure, ISO, lens and date tags the file's own metadata did not give."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            other, lens = raw.other, raw.lens
    except Exception:
        return
    if other.iso_speed > 0:
        sub.setdefault(0x8827, int(round(other.iso_speed)))
    if other.shutter_speed > 0:
        sub.setdefault(0x829A, _rational(other.shutter_speed))
    if other.aperture > 0:
        sub.setdefault(0x829D, _rational(other.aperture, 100))
    if other.focal_length > 0:
        sub.setdefault(0x920A, _rational(other.focal_length, 100))
    stamp = other.timestamp
    if isinstance(stamp, datetime) and stamp.year > 1970:
        text = stamp.strftime("%Y:%m:%d %H:%M:%S")
        sub.setdefault(0x9003, text)
        ifd0.setdefault(0x0132, sub[0x9003])
    elif 0x9003 in sub:
        ifd0.setdefault(0x0132, sub[0x9003])
    if lens.model:
        sub.setdefault(0xA434, lens.model)
    if lens.make:
        sub.setdefault(0xA433, lens.make)
    if other.artist:
        ifd0.setdefault(0x013B, other.artist)
