"""Depth maps as 16-bit grey PNG files whose text chunks carry their scale in frames.

``0`` is the nearest frame and ``65535`` frame ``N - 1``: ``frame = value / 65535 * (N - 1)``; the scale is
also written into the PNG's text chunks (``postfocus:depth_frames`` = N, ``postfocus:depth_scale`` = frames
per count, ``postfocus:depth_zero``), which :func:`read_depth_png` reads back.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from postfocus.errors import InputError, OutputError
from postfocus.io.decode import decode_png
from postfocus.io.write import atomic_write

__all__ = ["colourise", "depth_png_bytes", "depth_range", "depth_to_uint16", "read_depth_png", "write_depth_npy",
           "write_depth_png"]


def _png_text(png: bytes, text: dict[str, str]) -> bytes:
    """Insert tEXt chunks right after the IHDR chunk of an encoded PNG."""
    end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    chunks = b""
    for key, value in text.items():
        data = key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace")
        chunks += struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return png[:end] + chunks + png[end:]


def depth_to_uint16(depth: np.ndarray, frames: int) -> np.ndarray:
    """Frame units -> 16-bit counts: 0 = frame 0, 65535 = frame ``frames - 1``."""
    span = max(frames - 1, 1)
    return (np.clip(depth / span, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def depth_png_bytes(result) -> bytes:  # noqa: ANN001 (a products.depth.DepthResult)
    """The whole 16-bit grey PNG file of ``result`` (its ``depth`` in frames and ``frames``), text chunks included:
    what :func:`write_depth_png` writes (encoded apart, e.g. on a helper thread while other files are written).

    Raises
    ------
    OutputError
        The PNG encoder failed.
    """
    counts = depth_to_uint16(result.depth, result.frames)
    span = max(result.frames - 1, 1)
    ok, encoded = cv2.imencode(".png", counts)
    if not ok:
        raise OutputError("PNG encoder failed")
    text = {
        "Software": "postfocus",
        "Description": (f"postfocus depth map: frame = value / 65535 * {span} "
                        f"(0 = nearest frame, 65535 = frame {result.frames - 1})"),
        "postfocus:depth_frames": str(result.frames),
        "postfocus:depth_scale": repr(span / 65535.0),
        "postfocus:depth_zero": "nearest frame",
    }
    return _png_text(encoded.tobytes(), text)


def write_depth_png(path: str | os.PathLike, result, *, data: bytes | None = None) -> Path:  # noqa: ANN001
    """16-bit grey PNG of ``result`` (a :class:`~postfocus.products.depth.DepthResult`: its ``depth`` in frames
    and ``frames``); 0 = nearest frame, 65535 = frame N-1; the scale is in the PNG text. ``data``: the file's
    bytes, :func:`depth_png_bytes` of ``result``, when encoded already."""
    try:
        blob = depth_png_bytes(result) if data is None else data
    except OutputError as exc:
        raise OutputError(f"{path}: {exc}") from None
    return atomic_write(path, lambda p: p.write_bytes(blob))


def read_depth_png(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a depth PNG written by :func:`write_depth_png`: (depth in frames, number of frames)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            frames = int(im.info.get("postfocus:depth_frames", 0) or 0)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read depth map ({exc})") from None
    counts = decode_png(path)  # (libpng's errors and warnings said by postfocus, not printed on stderr)
    if counts.ndim != 2 or counts.dtype != np.uint16:
        raise InputError(f"{path}: not a 16-bit grey depth map")
    if frames < 1:
        raise InputError(f"{path}: no postfocus depth scale in this PNG")
    return (counts.astype(np.float32) / 65535.0 * max(frames - 1, 1)).astype(np.float32), frames


def write_depth_npy(path: str | os.PathLike, result) -> Path:  # noqa: ANN001 (a DepthResult)
    """float32 depth in frame units (0 = nearest frame) of a :class:`~postfocus.products.depth.DepthResult`."""
    depth = np.asarray(result.depth, np.float32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # (straight into the file: the same bytes as np.save's, no copy in memory)
            np.save(fh, depth)

    return atomic_write(path, write)


def depth_range(depth: np.ndarray, frames: int, percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[float, float]:
    """The depths a scene spans: robust percentiles of its depth map, at least one frame apart.

    A macro subject may fill a few frames of a long sweep; colouring it over
    the whole sweep would leave it one colour. The 1st and 99th percentiles
    ignore the few pixels at the extremes.

    Examples
    --------
    >>> d = np.linspace(1.5, 6.7, 1000, dtype=np.float32).reshape(10, 100)
    >>> [round(v, 1) for v in depth_range(d, 41)]
    [1.6, 6.6]
    """
    top = float(max(frames - 1, 1))
    lo, hi = (float(v) for v in np.percentile(np.asarray(depth, np.float32), percentiles))
    if hi - lo < 1.0:  # a flat scene: one frame around its middle, inside the sweep
        mid = 0.5 * (lo + hi)
        lo = min(max(mid - 0.5, 0.0), max(top - 1.0, 0.0))
        hi = lo + min(1.0, top)
    return lo, hi


def colourise(depth: np.ndarray, frames: int, *, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Turbo colour map of a depth map (near = red, far = blue), float32 RGB in [0, 1].

    The colours span depths ``lo`` (red) to ``hi`` (blue), by default the whole
    sweep ``0 .. frames - 1``.
    """
    lo = 0.0 if lo is None else float(lo)
    hi = float(max(frames - 1, 1)) if hi is None else float(hi)
    t = 1.0 - np.clip((np.asarray(depth, np.float32) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    bgr = cv2.applyColorMap((t * 255.0 + 0.5).astype(np.uint8), cv2.COLORMAP_TURBO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
