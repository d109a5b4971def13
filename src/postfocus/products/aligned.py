"""The aligned frames themselves, as files for other tools (what ``align_image_stack -a`` writes).

A processed stack keeps every aligned frame in output geometry
(:meth:`~postfocus.store.ProcessedStack.frames`); :func:`align_frames` writes
them as 16-bit TIFFs (or 8-bit, or PNG) named after the input frames, each
with its frame's EXIF, atomically.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from postfocus.errors import OptionError, OutputError
from postfocus.io.encoding import Compression, check_encoding
from postfocus.io.images import to_float
from postfocus.io.write import output_folder, write_image
from postfocus.pipeline.analyse import Progress
from postfocus.store import ProcessedStack

__all__ = ["aligned_names", "align_frames", "check_aligned_target"]


def aligned_names(names: list[str], frames: list[int], suffix: str = ".tif") -> dict[int, str]:
    """File names of aligned frames, after their input frames (``pcb_003.jpg`` -> ``pcb_003.tif``).

    Names that would repeat (``a.jpg`` and ``a.png``) get ``-2``, ``-3`` ...;
    characters unsafe in a file name become ``_`` (a video's ``frame 0003``
    becomes ``frame_0003``).

    Examples
    --------
    >>> aligned_names(["a.jpg", "b.jpg", "a.png"], [0, 2])
    {0: 'a.tif', 2: 'a-2.tif'}
    >>> aligned_names(["frame 0000"], [0])
    {0: 'frame_0000.tif'}
    """
    out: dict[int, str] = {}
    taken: set[str] = set()
    for i in frames:
        base = Path(names[i]).stem if Path(names[i]).suffix else names[i]
        stem = re.sub(r"[^\w.+-]+", "_", base).strip("_") or f"frame_{i:04d}"
        name, k = stem, 1
        while name.lower() in taken:
            k += 1
            name = f"{stem}-{k}"
        taken.add(name.lower())
        out[i] = name + suffix
    return out


def check_aligned_target(out_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], *, suffix: str = ".tif",
                         bit_depth: int = 16, compression: Compression = None) -> None:
    """Refuse, before any work, a folder or format that :func:`align_frames` cannot use.

    The folder may not be one that holds the inputs: the aligned frames would
    replace or join the frames of the stack.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The folder asked for.
    inputs : sequence of path
        The input files or folder.
    suffix, bit_depth, compression
        As for :func:`align_frames`.

    Raises
    ------
    OutputError
    OptionError
    """
    if suffix.lower() not in (".tif", ".tiff", ".png"):
        raise OutputError(f"{out_dir}: aligned frames are written as .tif or .png, not {suffix}")
    check_encoding(f"frame{suffix}", bit_depth, compression)
    out = Path(os.path.realpath(out_dir))  # (not Path.resolve: it raises on a loop of links)
    for p in map(Path, inputs):
        holder = Path(os.path.realpath(p)) if p.is_dir() else Path(os.path.realpath(p)).parent
        if out == holder:
            raise OutputError(f"{out_dir}: holds the input frames; write the aligned frames to another folder")


def align_frames(
    stack: ProcessedStack,
    out_dir: str | os.PathLike,
    *,
    suffix: str = ".tif",
    bit_depth: int = 16,
    compression: Compression = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Write every aligned frame of a processed stack into ``out_dir``, named after its input.

    The frames are in output geometry (cropped to the area every frame covers,
    as every result of the stack), exposure-matched, each written under a
    temporary name and renamed. Frames that could not be aligned are not
    written (:attr:`ProcessedStack.used` lists those that are).

    Parameters
    ----------
    stack : ProcessedStack
        From :func:`postfocus.process`.
    out_dir : str or os.PathLike
        Folder for the frames; created if its parent exists.
    suffix : str
        ``.tif`` or ``.png``.
    bit_depth : int
        8 or 16.
    compression : str, int or None
        TIFF: ``none``, ``deflate`` (default) or ``lzw``; PNG: zlib level 0-9.
    overwrite : bool
        Replace files of those names already in ``out_dir``.
    progress : callable, optional
        ``progress(stage, done, total)``.

    Returns
    -------
    list of pathlib.Path
        The files written, in frame order.

    Raises
    ------
    OutputError
        The folder cannot be made, or already holds a file of one of those names.
    OptionError
        For ``bit_depth`` or ``compression``.

    Examples
    --------
    >>> align_frames(process("photos/"), "aligned/")[:2]  # doctest: +SKIP
    [PosixPath('aligned/pcb_001.tif'), PosixPath('aligned/pcb_002.tif')]
    """
    if not isinstance(stack, ProcessedStack):  # (photos' paths were "'str' object has no attribute 'info'")
        raise OptionError("stack", stack, "not a processed stack; open one with postfocus.process(...) first")
    if not isinstance(out_dir, (str, os.PathLike)):
        raise OptionError("out_dir", out_dir, "must be a folder's path (str or pathlib.Path)")
    check_aligned_target(out_dir, stack.info.paths, suffix=suffix, bit_depth=bit_depth, compression=compression)
    names = aligned_names(stack.names, list(stack.used), suffix.lower())
    out = output_folder(out_dir)
    taken = sorted(name for name in names.values() if (out / name).exists())
    if taken and not overwrite:
        raise OutputError(f"{out}: already holds {len(taken)} of these files ({taken[0]} ...); "
                          "choose another folder or allow overwriting")
    frames = stack.frames()
    total, written = len(stack.names), []
    for done, (i, name) in enumerate(names.items(), 1):
        description = f"postfocus: aligned frame {i} of {total} ({stack.names[i]}), reference {stack.reference}"
        written.append(write_image(out / name, to_float(frames.read_pixels(i)), bit_depth=bit_depth,
                                   exif=stack.frame_exif(i), icc=stack.info.icc, grey=stack.info.grey,
                                   description=description, compression=compression))
        if progress:
            progress("write aligned", done, len(names))
    return written
