"""Write result images atomically, with the reference frame's metadata.

A result is first written to a hidden temporary file in the destination folder
and then renamed over the destination, so a crash or a full disk never leaves a
half-written file under the name the user asked for.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import tifffile
from PIL import Image

from postfocus.errors import OutputError

OUTPUT_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}
SOFTWARE = "postfocus"


def check_output_path(path: str | os.PathLike, inputs: list[Path] | None = None) -> Path:
    """Refuse an output path that cannot be written or would overwrite an input.

    Returns the path; raises OutputError with a one-line reason otherwise.
    """
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise OutputError(f"{path}: unknown output format '{path.suffix}'; use .jpg, .png or .tif")
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


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)`` then rename the temp file to ``path``.

    The temp file lives in the destination folder (same file system) and is
    removed if ``write`` fails.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".part", dir=parent)
    except OSError as exc:  # folder missing, not a folder, read-only, full
        raise OutputError(f"{path}: cannot write in {parent} ({exc.strerror or exc})") from None
    os.close(fd)
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
    return path


def _exif_for_output(exif: bytes | None) -> bytes | None:
    """EXIF of the reference frame with orientation reset (pixels are upright)."""
    if not exif:
        return None
    try:
        ex = Image.Exif()
        ex.load(exif)
        ex[0x0112] = 1
        ex[0x0131] = SOFTWARE
        return ex.tobytes()
    except Exception:
        return None


def to_uint(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Round a float image in [0, 1] to uint8 or uint16."""
    top = 255 if bit_depth == 8 else 65535
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return (np.clip(image, 0.0, 1.0) * np.float32(top) + np.float32(0.5)).astype(dtype)


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    bit_depth: int | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    icc: bytes | None = None,
    grey: bool = False,
) -> Path:
    """Write a float RGB image in [0, 1] to JPEG, PNG or TIFF, atomically.

    Parameters
    ----------
    path : destination; the suffix picks the format.
    image : float32 (H, W, 3) or (H, W) in [0, 1].
    bit_depth : 8 or 16; default 16 for TIFF, 8 otherwise (JPEG is always 8).
    quality : JPEG quality 1-100.
    exif, icc : metadata to embed (EXIF of the reference frame, colour profile).
    grey : write a single-channel image.

    Returns
    -------
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
    if bit_depth is None:
        bit_depth = 16 if fmt == "tiff" else 8
    if fmt == "jpeg":
        bit_depth = 8
    if image.ndim == 3 and grey:
        image = image[:, :, :3].mean(axis=2) if image.shape[2] == 3 else image[:, :, 0]
    pixels = to_uint(image, bit_depth)
    exif_out = _exif_for_output(exif)

    def write(tmp: Path) -> None:
        if fmt == "tiff":
            extratags = [(305, "s", 0, SOFTWARE, True)]
            tifffile.imwrite(
                tmp,
                pixels,
                photometric="minisblack" if pixels.ndim == 2 else "rgb",
                compression="zlib",
                iccprofile=icc,
                extratags=extratags,
                metadata=None,
            )
        elif fmt == "png" and bit_depth == 16:
            out = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(tmp), out):
                raise OSError("PNG encoder failed")
        else:
            im = Image.fromarray(pixels)
            kwargs: dict = {}
            if exif_out:
                kwargs["exif"] = exif_out
            if icc:
                kwargs["icc_profile"] = icc
            if fmt == "jpeg":
                kwargs.update(quality=int(quality), subsampling=0 if quality >= 90 else 2, optimize=True)
            buf = io.BytesIO()
            im.save(buf, format=fmt.upper(), **kwargs)
            tmp.write_bytes(buf.getvalue())

    return atomic_write(path, write)
