"""Write a synthetic stack to a folder the way a camera would leave it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import tifffile

from postfocus.errors import OutputError, PostfocusError

__all__ = ["FORMATS", "write_stack"]

FORMATS = {"jpg": ".jpg", "png": ".png", "tif16": ".tif", "png16": ".png"}


def _bgr(image: np.ndarray, depth: int) -> np.ndarray:
    scale = 65535.0 if depth == 16 else 255.0
    pixels = np.round(np.clip(image, 0.0, 1.0) * scale).astype(np.uint16 if depth == 16 else np.uint8)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)


def _imwrite(path: Path, image: np.ndarray, params: list[int] | None = None) -> None:
    if not cv2.imwrite(str(path), image, params or []):
        raise OutputError(f"{path}: could not be written")


def write_stack(stack, folder: str | os.PathLike, fmt: str = "jpg", quality: int = 95) -> list[Path]:
    """Save the frames as ``frame_000.<ext>`` ... and the truth under ``truth/``.

    ``truth/`` holds ``truth_sharp.png`` (16-bit), ``truth_depth.npy`` (float32
    focus index), ``transforms.npy``, ``gains.npy`` and ``focus_positions.npy``,
    so a tool given the folder sees only the frames.

    Parameters
    ----------
    stack : SyntheticStack
        The stack to save.
    folder : str or os.PathLike
        Created if missing; must not hold other ``frame_*`` images.
    fmt : str
        ``'jpg'`` (8-bit), ``'png'`` (8-bit), ``'png16'`` or ``'tif16'`` (16-bit).
    quality : int
        JPEG quality 1-100 (jpg only).

    Returns
    -------
    list[Path]
        The frame files in frame order.

    Examples
    --------
    >>> paths = write_stack(stack, "out/steps", fmt="tif16")  # doctest: +SKIP
    >>> paths[0].name  # doctest: +SKIP
    'frame_000.tif'
    """
    if fmt not in FORMATS:
        raise PostfocusError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not 1 <= int(quality) <= 100:
        raise PostfocusError(f"JPEG quality must be 1-100, got {quality}")
    folder = Path(folder)
    truth = folder / "truth"
    try:
        truth.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create folder ({exc.strerror})") from exc
    ext = FORMATS[fmt]
    paths = [folder / f"frame_{i:03d}{ext}" for i in range(len(stack.frames))]
    stale = sorted(p.name for p in folder.glob("frame_*") if p.is_file() and p not in paths)
    if stale:
        raise OutputError(f"{folder}: already holds other frames ({', '.join(stale[:3])}); use an empty folder")

    for path, frame in zip(paths, stack.frames):
        if fmt == "jpg":
            _imwrite(path, _bgr(frame, 8), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        elif fmt == "png":
            _imwrite(path, _bgr(frame, 8))
        elif fmt == "png16":
            _imwrite(path, _bgr(frame, 16))
        else:
            pixels = np.round(np.clip(frame, 0.0, 1.0) * 65535.0).astype(np.uint16)
            try:
                tifffile.imwrite(path, pixels, photometric="rgb")
            except OSError as exc:
                raise OutputError(f"{path}: could not be written ({exc})") from exc

    _imwrite(truth / "truth_sharp.png", _bgr(stack.sharp, 16))
    np.save(truth / "truth_depth.npy", np.asarray(stack.depth, np.float32))
    np.save(truth / "transforms.npy", np.stack(stack.transforms).astype(np.float64))
    np.save(truth / "gains.npy", np.asarray(stack.gains, np.float64))
    np.save(truth / "focus_positions.npy", np.asarray(stack.focus_positions, np.float64))
    return paths
