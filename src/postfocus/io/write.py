"""Write files atomically, and result images with the reference frame's metadata.

Every file postfocus writes goes through :func:`atomic_write`: it is first
written to a hidden temporary file in the destination folder and then renamed
over the destination, so a crash or a full disk never leaves a half-written file
under the name asked for. :func:`write_image` writes JPEG, PNG and TIFF results
that carry the camera's EXIF and the colour profile (made by
:mod:`postfocus.io.metadata`).
"""

from __future__ import annotations

import glob
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
from PIL import Image

from postfocus.errors import OutputError
from postfocus.io.metadata import (SOFTWARE, embed_tiff_exif, output_exif, png_with_metadata, srgb_icc_profile,
                                   tiff_exif_tags)
from postfocus.io.encoding import Compression, check_encoding, tiff_compression
from postfocus.io.held import held_writes
from postfocus.io.encoding import png_level as _png_level
from postfocus.io.png import encode_png_fast

try:
    import fcntl
except ImportError:  # Windows: no stale-file detection
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "OUTPUT_FORMATS",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_path",
    "output_folder",
    "to_uint",
    "write_image",
]

OUTPUT_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}


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
    try:
        return _check_output_path(path, inputs)
    except OSError as exc:  # a name too long for the file system, a loop of links: was an internal error
        raise OutputError(f"{path}: cannot be used as an output ({exc.strerror or exc})") from None
    except ValueError:  # a NUL character (the Python API, a batch manifest)
        raise OutputError(f"{str(path)!r}: cannot be used as an output (it holds a NUL character)") from None


def _check_output_path(path: Path, inputs: Sequence[str | os.PathLike] | None) -> Path:
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
    resolved = os.path.realpath(path)  # (not Path.resolve: it raises on a loop of links)
    for p in inputs or []:
        if os.path.realpath(p) == resolved:
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
    try:
        exists = out.exists()
    except OSError as exc:  # a name too long for the file system: was an internal error
        raise OutputError(f"{out}: cannot be used as an output folder ({exc.strerror or exc})") from None
    if exists and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if not exists:
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
    tmp_path, held = Path(tmp), held_writes()  # (held: renamed by HeldWrites.commit, postfocus.io.held)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o644)
        if held is None:
            os.replace(tmp_path, path)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        os.close(fd)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    if held is None:
        os.close(fd)
    else:
        held.append((fd, tmp_path, path))  # (its lock kept: a killed run's file is removed by the next write)
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
    png_threads: int = 1,
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
        the default 6, files about 10 % larger; for working files: each row
        filtered by "Up", half the time of the adaptive filters).
    compression : str, int or None
        TIFF: ``none``, ``deflate`` (default) or ``lzw``; PNG: a zlib level
        0-9 instead of ``png_level`` (see :func:`~postfocus.io.encoding.check_encoding`).
    png_threads : int
        2: a PNG at level 1 is deflated on this thread and a helper (:func:`~postfocus.io.png.encode_png_fast`).

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
            import tifffile  # TIFF only (not loaded for other formats)
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
        elif fmt == "png" and (bit_depth == 16 or level == 1):
            # At level 1 (working files) every row filtered by "Up" instead of the adaptive choice (half
            # the time, files no larger), deflated by libdeflate (io/png.py); OpenCV for 16 bits
            # at other levels (docs/performance.md).
            if level == 1:
                encoded = encode_png_fast(pixels, threads=png_threads)
            else:
                out = pixels if single else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
                ok, array = cv2.imencode(".png", out, [cv2.IMWRITE_PNG_COMPRESSION, level])
                if not ok:
                    raise OSError("PNG encoder failed")
                encoded = array.tobytes()
            text = {"Software": SOFTWARE, **({"Description": description} if description else {})}
            tmp.write_bytes(png_with_metadata(encoded, icc, exif_out, text))
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
