"""Metadata of result images: EXIF, colour profile, TIFF and PNG embedding.

:func:`output_exif` makes the EXIF a result carries: the reference frame's
camera, lens, exposure, dates and GPS, orientation 1 (the pixels are upright)
and Software "postfocus <version>". :func:`tiff_exif_tags` and
:func:`embed_tiff_exif` put it into a TIFF written by tifffile,
:func:`png_with_metadata` into a PNG encoded by OpenCV, and
:func:`srgb_icc_profile` is the profile of outputs whose inputs carried none.
:func:`postfocus.io.write.write_image` uses them all.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from typing import Any, Sequence

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from postfocus._version import __version__

__all__ = [
    "SOFTWARE",
    "describe_stack",
    "embed_tiff_exif",
    "exif_bytes",
    "output_exif",
    "png_with_metadata",
    "srgb_icc_profile",
    "tiff_exif_tags",
]

SOFTWARE = f"postfocus {__version__}"


# IFD0 tags carried from the reference frame into every output. The rest of an
# input's IFD0 (strip layout, DNG colour calibration, ...) describes that file only.
_IFD0_KEEP = (0x010E, 0x010F, 0x0110, 0x0112, 0x011A, 0x011B, 0x0128, 0x0131, 0x0132, 0x013B, 0x8298)
# EXIF tags that lose their meaning once the pixels are rewritten: MakerNote
# (vendor offsets into the original file), the Interop pointer, pixel dimensions.
_EXIF_DROP = {0x927C, 0xA005, 0xA002, 0xA003}
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_EXIF_ROOM = 65000  # bytes of EXIF a result's JPEG APP1 segment takes (64 KiB, less its header)
# tifffile refuses to write the EXIF/GPS pointer tags itself; it writes these
# neighbouring private codes instead, which embed_tiff_exif renames and points.
_TIFF_SLOTS = {_EXIF_IFD - 1: _EXIF_IFD, _GPS_IFD - 1: _GPS_IFD}


@functools.lru_cache(maxsize=1)
def srgb_icc_profile() -> bytes | None:
    """The sRGB ICC profile embedded in outputs whose inputs carried none.

    Returns
    -------
    bytes or None
        The profile (the same bytes every run), or None when Pillow has no LittleCMS.

    Examples
    --------
    >>> srgb_icc_profile()[36:40]
    b'acsp'
    """
    try:
        from PIL import ImageCms

        profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    except Exception:  # Pillow built without LittleCMS
        return None
    profile[24:36] = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)  # fixed creation date: same bytes every run
    return bytes(profile)



def _output_tags(
    exif: bytes | None, description: str | None, size: tuple[int, int] | None
) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    """(IFD0, EXIF IFD, GPS IFD) for an output: the reference frame's camera,
    exposure, lens, date and GPS; orientation 1 (pixels are upright); Software."""
    src = Image.Exif()
    if exif:
        try:
            src.load(exif)
        except Exception:
            src = Image.Exif()
    ifd0 = {tag: src[tag] for tag in _IFD0_KEEP if tag in src}
    try:
        sub = {t: v for t, v in src.get_ifd(_EXIF_IFD).items() if t not in _EXIF_DROP}
        gps = dict(src.get_ifd(_GPS_IFD))
    except Exception:
        sub, gps = {}, {}
    if sub:
        sub.setdefault(0x9000, b"0232")  # ExifVersion
        sub.setdefault(0xA000, b"0100")  # FlashpixVersion
        sub.setdefault(0xA001, 1)  # ColorSpace: sRGB
        if size is not None:
            sub[0xA002], sub[0xA003] = size[1], size[0]
    if size is not None and 0x011A not in ifd0:
        ifd0[0x011A], ifd0[0x011B], ifd0[0x0128] = IFDRational(72, 1), IFDRational(72, 1), 2
    ifd0[0x0112] = 1
    ifd0[0x0131] = SOFTWARE
    if description:
        ifd0[0x010E] = description
    return ifd0, sub, gps


def exif_bytes(ifd0: dict, sub: dict, gps: dict, *, endian: str = ">", offset: int = 8) -> bytes:
    """EXIF bytes (``Exif\\0\\0`` and TIFF data) from the tags of IFD0, the EXIF IFD and the GPS IFD.

    Parameters
    ----------
    ifd0, sub, gps : dict
        Tag number -> value (as Pillow reads them) of each IFD; an empty
        ``sub`` or ``gps`` is left out.
    endian : str
        ">" (Motorola) or "<" (Intel) byte order.
    offset : int
        Where the TIFF header will stand in the file (8 unless appended to one).

    Returns
    -------
    bytes

    Examples
    --------
    >>> exif_bytes({0x010F: "Panasonic"}, {}, {})[:10]
    b'Exif\\x00\\x00MM\\x00*'
    """
    ex = Image.Exif()
    ex.endian = endian
    for tag, value in ifd0.items():
        ex[tag] = value
    if sub:
        ex[_EXIF_IFD] = sub
    if gps:
        ex[_GPS_IFD] = gps
    return ex.tobytes(offset)


def output_exif(exif: bytes | None, description: str | None = None, size: tuple[int, int] | None = None) -> bytes:
    """EXIF bytes for a result: what :func:`write_image` embeds in JPEG and PNG.

    Parameters
    ----------
    exif : bytes or None
        EXIF of the reference frame (any byte order), or None.
    description : str or None
        Text for ImageDescription, e.g. from :func:`describe_stack`.
    size : tuple[int, int] or None
        (height, width) of a JPEG or PNG result, for PixelX/YDimension and
        a default resolution (None for TIFF, whose own tags say both).

    Returns
    -------
    bytes

    Examples
    --------
    >>> ex = Image.Exif(); ex.load(output_exif(None, "test"))
    >>> ex[0x0131].startswith("postfocus"), ex[0x0112]
    (True, 1)
    """
    ifd0, sub, gps = _output_tags(exif, description, size)
    try:
        data = exif_bytes(ifd0, sub, gps)
    except Exception:  # a camera value Pillow cannot write back: keep the plain IFD0
        data = exif_bytes(ifd0, {}, {})
    if len(data) > _EXIF_ROOM:  # a JPEG APP1 segment holds 64 KiB
        data = exif_bytes(ifd0, {}, gps)
    texts = sorted((t for t, v in ifd0.items() if isinstance(v, str) and t not in (0x0131, 0x010E)),
                   key=lambda t: len(ifd0[t]))
    while len(data) > _EXIF_ROOM and texts:  # IFD0's text fills it (a 65 KB copyright: "EXIF data is too long",
        del ifd0[texts.pop()]  # an internal error in every result; review20): the camera's longest text goes first
        data = exif_bytes(ifd0, {}, {})
    if len(data) > _EXIF_ROOM and isinstance(ifd0.get(0x010E), str):  # a description too long (save_image's): cut
        ifd0[0x010E] = ifd0[0x010E][: max(0, len(ifd0[0x010E]) - (len(data) - _EXIF_ROOM))]
        data = exif_bytes(ifd0, {}, {})
    return data


def tiff_exif_tags(exif: bytes | None) -> list[tuple]:
    """tifffile ``extratags`` for the IFD0 fields of ``exif`` and slots for its EXIF and GPS IFDs.

    ImageDescription, Software and the resolution tags are left to tifffile's own
    arguments. After writing, call :func:`embed_tiff_exif` with the same ``exif``.

    Parameters
    ----------
    exif : bytes or None
        EXIF as made by :func:`output_exif`.

    Returns
    -------
    list[tuple]
        ``(code, type, count, value, writeonce)`` tuples.

    Examples
    --------
    >>> [t[0] for t in tiff_exif_tags(output_exif(None))]
    [274]
    """
    if not exif:
        return []
    src = Image.Exif()
    src.load(exif)
    tags: list[tuple] = []
    for tag in (0x010F, 0x0110, 0x0112, 0x0132, 0x013B, 0x8298):
        value = src.get(tag)
        if value is None:
            continue
        if tag == 0x0112:
            tags.append((tag, "H", 1, int(value), True))
        else:
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            tags.append((tag, "s", 0, text.encode("utf-8", "replace").rstrip(b"\0"), True))
    for slot, tag in _TIFF_SLOTS.items():
        if tag in src:
            tags.append((slot, "I", 1, 0, True))
    return tags


def embed_tiff_exif(path: str | os.PathLike, exif: bytes | None) -> bool:
    """Append the EXIF and GPS IFDs of ``exif`` to a TIFF written with :func:`tiff_exif_tags`.

    The slot tags tifffile wrote in IFD0 become the ExifIFD and GPSInfo
    pointers.

    Parameters
    ----------
    path : str or os.PathLike
        A TIFF written by tifffile with :func:`tiff_exif_tags`.
    exif : bytes or None
        The same EXIF.

    Returns
    -------
    bool
        False when there was nothing to embed or the file is not a classic
        little-endian TIFF.

    Examples
    --------
    >>> embed_tiff_exif("out.tif", exif)  # doctest: +SKIP
    True
    """
    if not exif:
        return False
    src = Image.Exif()
    src.load(exif)
    sub = src.get_ifd(_EXIF_IFD) if _EXIF_IFD in src else {}
    gps = src.get_ifd(_GPS_IFD) if _GPS_IFD in src else {}
    with open(path, "r+b") as fh:
        head = fh.read(8)
        if head[:4] != b"II*\0":
            return False
        ifd0 = struct.unpack("<I", head[4:])[0]
        fh.seek(ifd0)
        count = struct.unpack("<H", fh.read(2))[0]
        entries = fh.read(12 * count)
        slots = {}
        for k in range(count):
            code = struct.unpack("<H", entries[12 * k : 12 * k + 2])[0]
            if code in _TIFF_SLOTS:
                slots[_TIFF_SLOTS[code]] = ifd0 + 2 + 12 * k
        wanted = {tag: ifd for tag, ifd in ((_EXIF_IFD, sub), (_GPS_IFD, gps)) if ifd and tag in slots}
        if not wanted:
            return False
        end = fh.seek(0, os.SEEK_END)
        if end % 2:
            fh.write(b"\0")
            end += 1
        # A two-entry IFD holding the sub-IFDs, laid out for this file position;
        # only the sub-IFDs it points to are referenced.
        blob = exif_bytes({}, wanted.get(_EXIF_IFD, {}), wanted.get(_GPS_IFD, {}), endian="<", offset=end)[14:]
        n = struct.unpack("<H", blob[:2])[0]
        pointers = {}
        for k in range(n):
            code, _typ, _cnt, value = struct.unpack("<HHII", blob[2 + 12 * k : 14 + 12 * k])
            pointers[code] = value
        fh.write(blob)
        for tag, entry in slots.items():
            if tag in pointers:
                fh.seek(entry)
                fh.write(struct.pack("<HHII", tag, 4, 1, pointers[tag]))
    return True


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_metadata(png: bytes, icc: bytes | None, exif: bytes | None, text: dict[str, str]) -> bytes:
    """Insert iCCP, eXIf and tEXt chunks right after IHDR (before any image data).

    Parameters
    ----------
    png : bytes
        A whole PNG file, e.g. as encoded by OpenCV.
    icc : bytes or None
        Colour profile for the iCCP chunk, or None for none.
    exif : bytes or None
        EXIF for the eXIf chunk (with or without the six-byte ``Exif`` header of JPEG), or None.
    text : dict[str, str]
        tEXt chunks, keyword to Latin-1 text.

    Returns
    -------
    bytes
        The PNG file with the chunks added.
    """
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    for key, value in text.items():
        extra += _png_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace"))
    return png[:ihdr_end] + extra + png[ihdr_end:]


def describe_stack(frames_used: Sequence[int], n_frames: int, method: str, reference: int | None = None) -> str:
    """One line saying how a result was made, for the ImageDescription tag.

    Parameters
    ----------
    frames_used : Sequence[int]
        Frames merged.
    n_frames : int
        Frames in the stack.
    method : str
        Fusion method.
    reference : int or None
        Reference frame, when it is worth saying.

    Returns
    -------
    str

    Examples
    --------
    >>> describe_stack([0, 1, 2, 5], 8, "depthmap")
    'postfocus: frames 0-2,5 of 8, method depthmap'
    """
    runs: list[str] = []
    for i in sorted(frames_used):
        if runs and i == int(runs[-1].split("-")[-1]) + 1:
            runs[-1] = f"{runs[-1].split('-')[0]}-{i}"
        else:
            runs.append(str(i))
    text = f"postfocus: frames {','.join(runs)} of {n_frames}, method {method}"
    return text + (f", reference {reference}" if reference is not None else "")
