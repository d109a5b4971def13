"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, ...) as a frame source.

Colour pipeline
---------------
Each RAW file is developed by LibRaw (through rawpy) to *linear* 16-bit
camera-to-sRGB RGB: black level removed, one white balance for every frame,
AHD demosaic, the camera's colour matrix to sRGB primaries, highlights clipped,
no automatic brightening. Those linear 16-bit values are then encoded with the
exact sRGB transfer function into float32 through a 65536-entry table, so the
only rounding after demosaicing is the single one when the result is written
(16-bit TIFF/PNG, or 8-bit JPEG), and every output carries an sRGB profile.

The frames handed to the pipeline are therefore sRGB-encoded floats, like the
frames of every other source, and alignment and focus analysis see
display-referred values. That keeps one contract for all sources:
:attr:`StackResult.image`, the processed-stack cache, refocus and the viewers
all treat frames and results as display-ready pictures, whatever the input.
The merge is the one step that works on light: a RAW source sets
:attr:`SourceInfo.linear`, so the fusion decodes its frames with
:func:`postfocus.colour.srgb_decode`, blends linear values and encodes the
result once (:func:`postfocus.colour.srgb_encode`).

White balance: all frames are developed with the camera white balance of the
middle frame (the pipeline's default reference), so a stack whose frames the
camera balanced differently still has one colour; a warning says when that
happened.

Metadata: make, model, date, exposure, ISO, lens and GPS are read from the
file's TIFF structure (DNG, CR2, NEF, ARW, ORF, RW2, PEF, SRW), from the
embedded JPEG (RAF) or from the CMT boxes (CR3), completed from what LibRaw
reports (:mod:`postfocus.io.raw_metadata`), and become :attr:`SourceInfo.exif`
of the middle frame.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from postfocus.colour import srgb_encode
from postfocus.errors import InputError, PostfocusWarning
from postfocus.io.base import RAW_EXTENSIONS, FrameSource, SourceInfo, check_sizes, fit_size
from postfocus.io.metadata import srgb_icc_profile
from postfocus.io.raw_metadata import raw_exif

__all__ = ["RawFilesSource", "RawHeader", "open_raw_files", "read_raw_header"]

# Frames whose white balance differs from the reference's by more than this
# (relative, per channel, green-normalised) trigger the "one white balance" warning.
WB_TOLERANCE = 0.02


def _libraw_version() -> str:
    import rawpy

    return ".".join(str(v) for v in rawpy.libraw_version)


def _raw_error(path: Path, exc: Exception) -> InputError:
    """One-line InputError for a rawpy/LibRaw failure on ``path``."""
    import rawpy

    name = type(exc).__name__
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        if _looks_like_text(path):
            return InputError(f"{path}: is a text file, not a RAW image")
        return InputError(
            f"{path}: not a RAW file LibRaw {_libraw_version()} can decode "
            "(unsupported camera, format or compression)"
        )
    if isinstance(exc, (rawpy.LibRawIOError, rawpy.LibRawDataError)):
        return InputError(f"{path}: truncated or corrupt RAW file (LibRaw: {_message(exc)})")
    if isinstance(exc, rawpy.LibRawTooBigError):
        return InputError(f"{path}: RAW image too big for LibRaw to decode")
    if isinstance(exc, (rawpy.LibRawUnsufficientMemoryError, MemoryError)):
        return InputError(f"{path}: out of memory while decoding the RAW file")
    return InputError(f"{path}: cannot decode RAW file ({name}: {_message(exc)})")


def _message(exc: Exception) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split()) or type(exc).__name__


def _looks_like_text(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RawHeader:
    """What LibRaw reports about a RAW file before decoding it."""

    def __init__(self, path: Path, width: int, height: int, wb: tuple[float, float, float, float], colors: int):
        self.path = path
        self.width = width  # upright (LibRaw's flip applied)
        self.height = height
        self.wb = wb  # camera white balance multipliers (R, G, B, G2)
        self.colors = colors

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``, upright."""
        return self.height, self.width


def read_raw_header(path: str | os.PathLike) -> RawHeader:
    """Open a RAW file with LibRaw and read its size and white balance.

    Parameters
    ----------
    path : str or os.PathLike
        A camera RAW file.

    Returns
    -------
    RawHeader

    Raises
    ------
    InputError
        Naming the file when it is missing, not RAW, truncated or unsupported.

    Examples
    --------
    >>> read_raw_header("IMG_0001.CR2").size  # doctest: +SKIP
    (4000, 6000)
    """
    import rawpy

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            wb = tuple(float(v) for v in raw.camera_whitebalance)
            if not (wb[0] > 0 and wb[1] > 0 and wb[2] > 0):
                wb = tuple(float(v) for v in raw.daylight_whitebalance)
            colors = int(raw.num_colors)
    except InputError:
        raise
    except Exception as exc:
        raise _raw_error(path, exc) from None
    width, height = int(sizes.width), int(sizes.height)
    if sizes.pixel_aspect and abs(float(sizes.pixel_aspect) - 1.0) > 1e-3:
        raise InputError(f"{path}: non-square sensor pixels (aspect {sizes.pixel_aspect:.3f}) are not supported")
    if int(sizes.flip) in (5, 6):
        width, height = height, width
    if width < 2 or height < 2:
        raise InputError(f"{path}: RAW image has no pixels LibRaw can decode")
    wb4 = (wb[0], wb[1], wb[2], wb[3] if len(wb) > 3 and wb[3] > 0 else wb[1])
    return RawHeader(path, width, height, wb4, colors)


def _same_wb(a: Sequence[float], b: Sequence[float]) -> bool:
    na = np.asarray(a[:3], np.float64) / a[1]
    nb = np.asarray(b[:3], np.float64) / b[1]
    return bool(np.all(np.abs(na - nb) <= WB_TOLERANCE * np.maximum(na, nb)))


class RawFilesSource(FrameSource):
    """Frames developed from camera RAW files, as sRGB-encoded float32 RGB.

    Parameters
    ----------
    headers : Sequence[RawHeader]
        One header per file, in focus order.
    reference : int or None
        Frame whose camera white balance all frames are developed with
        and whose metadata the outputs carry (default: the middle frame).

    Examples
    --------
    >>> src = open_raw_files(["a.dng", "b.dng"])  # doctest: +SKIP
    >>> src.read(0).dtype  # doctest: +SKIP
    dtype('float32')
    """

    def __init__(self, headers: Sequence[RawHeader], reference: int | None = None):
        self._headers = list(headers)
        n = len(self._headers)
        ref = n // 2 if reference is None else reference
        first = self._headers[0]
        self.reference = ref
        self.white_balance = self._headers[ref].wb
        self.info = SourceInfo(
            kind="raw",
            names=[h.path.name for h in self._headers],
            height=first.height,
            width=first.width,
            bit_depth=16,
            grey=False,
            exif=raw_exif(self._headers[ref].path),
            icc=srgb_icc_profile(),
            paths=[h.path for h in self._headers],
            linear=True,  # merged in linear light: decoded, added up, encoded once
        )

    def __len__(self) -> int:
        return len(self._headers)

    def develop(self, index: int) -> np.ndarray:
        """Decode frame ``index`` to linear 16-bit sRGB-primaries RGB (uint16, H x W x 3, upright).

        Parameters
        ----------
        index : int
            Frame number; its file is decoded by LibRaw on every call.

        Returns
        -------
        np.ndarray
            uint16 (H, W, 3) linear RGB, as LibRaw made it (not yet fitted to the stack's size).

        Raises
        ------
        InputError
            When LibRaw cannot decode the file or decodes other than three channels.
        """
        import rawpy

        path = self._headers[index].path
        try:
            with rawpy.imread(str(path)) as raw:
                rgb = raw.postprocess(
                    output_bps=16,
                    gamma=(1.0, 1.0),
                    no_auto_bright=True,
                    use_camera_wb=False,
                    use_auto_wb=False,
                    user_wb=list(self.white_balance),
                    output_color=rawpy.ColorSpace.sRGB,
                )
        except Exception as exc:
            raise _raw_error(path, exc) from None
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InputError(
                f"{path}: LibRaw decoded {rgb.shape[2] if rgb.ndim == 3 else 1} colour channel(s), not RGB "
                "(unsupported or broken colour filter pattern)"
            )
        return rgb

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` developed (:meth:`develop`), sRGB-encoded and fitted to the first frame's size.

        See :meth:`FrameSource.read`.
        """
        frame = srgb_encode(self.develop(index))
        return fit_size(frame, self.info.height, self.info.width)


def open_raw_files(paths: Sequence[str | os.PathLike]) -> RawFilesSource:
    """Open camera RAW files as one frame source (headers checked now, pixels on demand).

    Parameters
    ----------
    paths : Sequence[str or os.PathLike]
        RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, ...) in focus order.

    Returns
    -------
    RawFilesSource

    Raises
    ------
    InputError
        When a file is not RAW (RAW and other images cannot be mixed),
        cannot be decoded, or the frames differ in size.

    Examples
    --------
    >>> src = open_raw_files(sorted(Path("sweep").glob("*.NEF")))  # doctest: +SKIP
    >>> src.info.bit_depth  # doctest: +SKIP
    16
    """
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no input given: name RAW files or a folder of them")
    raw_files = [p for p in files if p.suffix.lower() in RAW_EXTENSIONS]
    others = [p for p in files if p.suffix.lower() not in RAW_EXTENSIONS]
    if others and raw_files:
        raise InputError(
            f"{others[0]}: is not a RAW file but {raw_files[0].name} is; "
            "RAW and other images cannot be stacked together; name only the RAW files or only the others"
        )
    if len(files) < 2:
        raise InputError(f"{files[0]}: a stack needs at least two frames, got one")
    headers = [read_raw_header(p) for p in files]
    check_sizes([h.path for h in headers], [h.size for h in headers])
    source = RawFilesSource(headers)
    odd = [h.path.name for h in headers if not _same_wb(h.wb, source.white_balance)]
    if odd:
        ref = headers[source.reference].path.name
        warnings.warn(
            f"{len(odd)} frame(s) have a different camera white balance than {ref} ("
            + ", ".join(odd[:5])
            + (" ..." if len(odd) > 5 else "")
            + f"); all frames are developed with the white balance of {ref} so their colours match",
            PostfocusWarning,
            stacklevel=2,
        )
    return source
