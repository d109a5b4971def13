"""Write files atomically, and result images with the reference frame's metadata.

Every file postfocus writes goes through :func:`atomic_write`: it is first
written to a hidden temporary file in the destination folder and then renamed
over the destination, so a crash or a full disk never leaves a half-written file
under the name asked for. :func:`write_image` writes JPEG, PNG and TIFF results
that carry the camera's EXIF and the colour profile.
"""

from __future__ import annotations

import functools
import glob
import io
import json
import os
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import tifffile
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from postfocus._version import __version__
from postfocus.errors import OutputError
from postfocus.io.encoding import Compression, check_encoding, tiff_compression
from postfocus.io.encoding import png_level as _png_level

try:
    import fcntl
except ImportError:  # Windows: no stale-file detection
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "OUTPUT_FORMATS",
    "SOFTWARE",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_path",
    "describe_stack",
    "embed_tiff_exif",
    "output_exif",
    "output_folder",
    "srgb_icc_profile",
    "tiff_exif_tags",
    "to_uint",
    "write_image",
]

OUTPUT_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}
SOFTWARE = f"postfocus {__version__}"


def check_output_path(
    path: str | os.PathLike, inputs: Sequence[str | os.PathLike] | None = None, suffixes: Sequence[str] | None = None
) -> Path:
    """Refuse an output path that cannot be written or would overwrite an input.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    inputs : Sequence[str or os.PathLike] or None
        Input files it must not be.
    suffixes : Sequence[str] or None
        Accepted suffixes (default: the image formats .jpg, .png, .tif).

    Returns
    -------
    Path
        The checked output path.

    Raises
    ------
    OutputError
        With a one-line reason when the path cannot be used.
    """
    path = Path(path)
    if suffixes is None:
        if path.suffix.lower() not in OUTPUT_FORMATS:
            raise OutputError(f"{path}: unknown output format '{path.suffix}'; use .jpg, .png or .tif")
    elif path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: unknown output format '{path.suffix}'; use {', '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        if parent.exists():
            raise OutputError(f"{path}: {parent} is a file, not a folder")
        raise OutputError(f"{path}: output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: output folder {parent} is not writable")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{path}: exists and is not writable")
    resolved = path.resolve()
    for p in inputs or []:
        if Path(p).resolve() == resolved:
            raise OutputError(f"{path}: is one of the input frames; choose another output name")
    return path


def output_folder(path: str | os.PathLike) -> Path:
    """An output folder: ``path`` if it is a folder, else made (its parent must exist).

    Raises
    ------
    OutputError
        When ``path`` is a file, its parent is missing, or the folder cannot be made.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if not out.exists():
        if not (out.parent if str(out.parent) else Path(".")).is_dir():
            raise OutputError(f"{out}: parent folder {out.parent} does not exist")
        try:
            out.mkdir()
        except OSError as exc:
            raise OutputError(f"{out}: cannot create folder ({exc.strerror or exc})") from None
    return out


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)`` then rename the temp file to ``path``.

    The temp file (``.<stem>.<random><suffix>.part``) lives in the destination
    folder (same file system) and is removed if ``write`` fails. The file
    written is readable by everyone (mode 0644).

    Parameters
    ----------
    path : str or os.PathLike
        The destination.
    write : Callable[[Path], None]
        Writes the whole file at the path it is given.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        When the folder cannot take the file or writing fails with an OSError.

    Examples
    --------
    >>> atomic_write("notes.txt", lambda p: p.write_text("done"))  # doctest: +SKIP
    PosixPath('notes.txt')
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    _remove_stale_parts(path, parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".part", dir=parent)
    except OSError as exc:  # folder missing, not a folder, read-only, full
        raise OutputError(f"{path}: cannot write in {parent} ({exc.strerror or exc})") from None
    if fcntl is not None:  # held while writing: a later run can tell this file from one a killed run left
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    finally:
        os.close(fd)
    return path


STALE_PART_SECONDS = 2.0
"""A temp file of :func:`atomic_write` older than this whose lock is free was left by a killed run."""


def _remove_stale_parts(path: Path, parent: Path) -> None:
    """Remove temp files of earlier writes of ``path`` that a killed process left behind."""
    if fcntl is None:
        return
    try:
        candidates = list(parent.glob(f".{glob.escape(path.stem)}.*{glob.escape(path.suffix)}.part"))
    except OSError:
        return
    for part in candidates:
        try:
            if time.time() - part.stat().st_mtime < STALE_PART_SECONDS:
                continue
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live writer holds it
        else:
            part.unlink(missing_ok=True)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path : str or os.PathLike
        The destination.
    data : bytes
        The whole content.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path : str or os.PathLike
        The destination.
    text : str
        The whole content.
    encoding : str
        Text encoding.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def atomic_write_json(path: str | os.PathLike, data: Any, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON (UTF-8) to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path : str or os.PathLike
        The destination.
    data : Any
        Anything :func:`json.dumps` takes.
    indent : int or None
        Indentation of nested values; None for one line.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> atomic_write_json("job.json", {"state": "done"})  # doctest: +SKIP
    PosixPath('job.json')
    """
    return atomic_write_text(path, json.dumps(data, indent=indent))


# IFD0 tags carried from the reference frame into every output. The rest of an
# input's IFD0 (strip layout, DNG colour calibration, ...) describes that file only.
_IFD0_KEEP = (0x010E, 0x010F, 0x0110, 0x0112, 0x011A, 0x011B, 0x0128, 0x0131, 0x0132, 0x013B, 0x8298)
# EXIF tags that lose their meaning once the pixels are rewritten: MakerNote
# (vendor offsets into the original file), the Interop pointer, pixel dimensions.
_EXIF_DROP = {0x927C, 0xA005, 0xA002, 0xA003}
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
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


def _exif_bytes(ifd0: dict, sub: dict, gps: dict, *, endian: str = ">", offset: int = 8) -> bytes:
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
        data = _exif_bytes(ifd0, sub, gps)
    except Exception:  # a camera value Pillow cannot write back: keep the plain IFD0
        data = _exif_bytes(ifd0, {}, {})
    if len(data) > 65000:  # a JPEG APP1 segment holds 64 KiB
        data = _exif_bytes(ifd0, {}, gps)
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
        blob = _exif_bytes({}, wanted.get(_EXIF_IFD, {}), wanted.get(_GPS_IFD, {}), endian="<", offset=end)[14:]
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


def _png_with_metadata(png: bytes, icc: bytes | None, exif: bytes | None, text: dict[str, str]) -> bytes:
    """Insert iCCP, eXIf and tEXt chunks right after IHDR (before any image data)."""
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    for key, value in text.items():
        extra += _png_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace"))
    return png[:ihdr_end] + extra + png[ihdr_end:]


def to_uint(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Round a float image in [0, 1] to uint8 or uint16 (a band of rows at a time: no full-size float temporary).

    Parameters
    ----------
    image : np.ndarray
        Float values; clipped to [0, 1].
    bit_depth : int
        8 or 16.

    Returns
    -------
    np.ndarray
        Integers (uint8 or uint16), shaped like ``image``.

    Examples
    --------
    >>> to_uint(np.array([[0.0, 0.5, 1.2]], np.float32), 8).tolist()
    [[0, 128, 255]]
    """
    top = 255 if bit_depth == 8 else 65535
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    out = np.empty(image.shape, dtype)
    step = max(1, (1 << 20) // max(1, image[:1].size))
    for row in range(0, image.shape[0], step):
        band = np.clip(image[row : row + step], 0.0, 1.0).astype(np.float32)
        band *= np.float32(top)
        band += np.float32(0.5)
        out[row : row + step] = band
    return out


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    bit_depth: int | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    icc: bytes | None = None,
    grey: bool = False,
    description: str | None = None,
    png_level: int = 6,
    compression: Compression = None,
) -> Path:
    """Write a float RGB image in [0, 1] to JPEG, PNG or TIFF, atomically.

    Every format carries the same metadata: the reference frame's EXIF (camera,
    lens, exposure, ISO, dates, GPS) with orientation 1 (pixels are upright),
    Software "postfocus <version>", ``description`` as ImageDescription, and the
    colour profile (an sRGB profile when the inputs had none).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; the suffix picks the format.
    image : np.ndarray
        float32 (H, W, 3) or (H, W) in [0, 1], sRGB-encoded.
    bit_depth : int or None
        8 or 16; default 16 for TIFF, 8 otherwise (JPEG is always 8).
    quality : int
        JPEG quality 1-100.
    exif, icc : bytes or None
        Metadata to embed (EXIF of the reference frame, colour profile).
    grey : bool
        Write a single-channel image.
    description : str or None
        One line on how the image was made (see :func:`describe_stack`).
    png_level : int
        zlib level of PNG files, 0-9 (1 is several times faster than
        the default 6, files about 10 % larger; for working files).
    compression : str, int or None
        TIFF: ``none``, ``deflate`` (default) or ``lzw``; PNG: a zlib level
        0-9 instead of ``png_level`` (see :func:`~postfocus.io.encoding.check_encoding`).

    Returns
    -------
    Path
        The path written.

    Examples
    --------
    >>> write_image("out.jpg", np.zeros((4, 4, 3), np.float32))  # doctest: +SKIP
    PosixPath('out.jpg')
    """
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"{path}: unknown output format '{path.suffix}'; use .jpg, .png or .tif")
    check_encoding(path, None if fmt == "jpeg" else bit_depth, compression)
    if bit_depth is None:
        bit_depth = 16 if fmt == "tiff" else 8
    if fmt == "jpeg":
        bit_depth = 8
    level = _png_level(compression, png_level)
    if image.ndim == 3 and grey:
        image = image[:, :, :3].mean(axis=2) if image.shape[2] == 3 else image[:, :, 0]
    pixels = to_uint(image, bit_depth)
    single = pixels.ndim == 2
    if icc is None and not single:
        icc = srgb_icc_profile()
    if icc and single and icc[16:20] != b"GRAY":
        icc = None  # a colour profile is invalid in a grey file
    exif_out = output_exif(exif, description, None if fmt == "tiff" else pixels.shape[:2])

    def write(tmp: Path) -> None:
        if fmt == "tiff":
            tifffile.imwrite(
                tmp,
                pixels,
                photometric="minisblack" if single else "rgb",
                compression=tiff_compression(compression),
                iccprofile=icc,
                description=description,
                software=SOFTWARE,
                extratags=tiff_exif_tags(exif_out),
                metadata=None,
            )
            embed_tiff_exif(tmp, exif_out)
        elif fmt == "png" and bit_depth == 16:
            out = pixels if single else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
            ok, encoded = cv2.imencode(".png", out, [cv2.IMWRITE_PNG_COMPRESSION, level])
            if not ok:
                raise OSError("PNG encoder failed")
            text = {"Software": SOFTWARE, **({"Description": description} if description else {})}
            tmp.write_bytes(_png_with_metadata(encoded.tobytes(), icc, exif_out, text))
        else:
            im = Image.fromarray(pixels)
            kwargs: dict = {"exif": exif_out}
            if icc:
                kwargs["icc_profile"] = icc
            if fmt == "jpeg":
                # No optimize=True: Pillow's optimised encoder fails ('Suspension not allowed here')
                # when a very detailed picture compresses worse than its buffer allows.
                kwargs.update(quality=int(quality), subsampling=0 if quality >= 90 else 2)
            else:
                from PIL.PngImagePlugin import PngInfo

                info = PngInfo()
                info.add_text("Software", SOFTWARE)
                if description:
                    info.add_text("Description", description)
                kwargs["pnginfo"] = info
                kwargs["compress_level"] = level
            buf = io.BytesIO()
            im.save(buf, format=fmt.upper(), **kwargs)
            tmp.write_bytes(buf.getvalue())

    return atomic_write(path, write)
