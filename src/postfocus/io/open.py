"""Turn what the user named (a folder, image files, RAW files, a video) into a FrameSource.

A source is read lazily: headers are checked when it is opened (so a bad file
is reported before any work starts), pixels are decoded one frame at a time.
This is the only ``postfocus.io`` module that knows every kind of source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from postfocus.errors import InputError
from postfocus.io.base import (
    IMAGE_EXTENSIONS,
    MIN_FRAME_SIDE,
    RAW_EXTENSIONS,
    VIDEO_EXTENSIONS,
    FrameSource,
    check_sizes,
    list_folder,
    looks_like_mp4,
)
from postfocus.io.images import ImageFilesSource, read_header

__all__ = ["MIN_FRAME_SIDE", "open_source"]


def open_source(inputs: str | os.PathLike | Sequence[str | os.PathLike], *, threads: int | None = None,
                min_frames: int = 2) -> FrameSource:
    """Open a folder, a list of image or RAW files, or a video as a frame source.

    Parameters
    ----------
    inputs : str, os.PathLike or a sequence of them
        A folder of frames, a video file, or image files in focus order.
    threads : int, optional
        Decoder threads for a video (default: FFmpeg's choice, all cores).
    min_frames : int
        Frames the source must have: 2 for a stack; 1 where frames are only written out (``postfocus
        frames`` of a one-frame video).

    Returns
    -------
    FrameSource
        With every header already checked.

    Raises
    ------
    InputError
        Naming the first path that cannot be used, or what is not a path (``None``, a number, a list of
        pixel values).

    Examples
    --------
    >>> src = open_source("shared/data/ring")  # doctest: +SKIP
    >>> len(src), src.info.size  # doctest: +SKIP
    (6, (1141, 1521))
    """
    paths = _paths(inputs)
    if not paths:
        raise InputError("no input given: name a folder of frames, image files or a video")
    for p in paths:
        try:
            found = p.exists()
        except OSError as exc:  # a name too long for the file system: was an internal error
            raise InputError(f"{p}: cannot be read ({exc.strerror or exc})") from None
        except ValueError:  # a NUL character (the Python API)
            raise InputError(f"{str(p)!r}: no such file or folder (the name holds a NUL character)") from None
        if not found:
            raise InputError(f"{p}: " + ("a link to nothing (its target is missing, or the links loop)" if p.is_symlink()
                                         else "no such file or folder"))
    if len(paths) == 1 and paths[0].is_dir():
        if (paths[0] / "manifest.json").is_file() and (paths[0] / "frames").is_dir():
            raise InputError(f"{paths[0]}: is a processed stack folder (postfocus's cache), not a folder of frames; "
                             "give the photos or video it was made from")  # (was: "a stack needs at least two frames")
        files = list_folder(paths[0])
    else:
        for p in paths:
            if p.is_dir():
                raise InputError(f"{p}: is a folder; give either one folder or a list of files")
        files = paths
    files = _distinct(files, min_frames=min_frames)
    if len(files) == 1 and _is_video(files[0]):
        from postfocus.io.video import VideoSource  # PyAV loads in 0.1 s: only when a video is opened

        return _big_enough(VideoSource(files[0], threads=threads, min_frames=min_frames), files[0])
    if any(p.suffix.lower() in RAW_EXTENSIONS for p in files):
        from postfocus.io.raw import open_raw_files

        return _big_enough(open_raw_files(files), files[0])
    headers = [read_header(p) for p in files]
    if len(paths) == 1 and paths[0].is_dir():
        headers = _frames_only(paths[0], headers)
    if len(headers) < min_frames:
        raise InputError(f"{files[0]}: a stack needs at least two frames, got one")
    check_sizes([hd.path for hd in headers], [hd.size for hd in headers], [hd.bit_depth for hd in headers])
    return _big_enough(ImageFilesSource(headers), files[0])


def _distinct(files: list[Path], *, min_frames: int) -> list[Path]:
    """``files`` with each photo once: a file named again (``stack a.jpg b.jpg a.jpg``, through another path, a
    symbolic or a hard link: the same device and inode) is left out, with one warning line for them all.

    It was stacked as one more frame without a word, out of its place in the focus order. InputError when
    fewer than ``min_frames`` different files are left (``stack a.jpg a.jpg``), unless the one file left is a
    video (``stack sweep.mp4 sweep.mp4`` is ``stack sweep.mp4``: it said "a stack needs at least two different
    photos", as if the video alone could not be stacked).
    """
    first: dict[tuple[int, int], Path] = {}
    kept, again = [], []
    for p in files:
        try:
            st = p.stat()
        except OSError:  # (read, and refused by name, with its header)
            kept.append(p)
            continue
        same = first.setdefault((st.st_dev, st.st_ino), p)
        if same is p:
            kept.append(p)
        else:
            again.append((p, same))
    if not again:
        return files
    video = len(kept) == 1 and _is_video(kept[0])
    if len(kept) < min_frames and not video:
        p, same = again[0]  # ("a.jpg: is a.jpg again" said the same name twice)
        said = "named twice" if p == same else f"the same photo as {same}"
        raise InputError(f"{p}: {said}; a stack needs at least two different photos")
    import warnings

    from postfocus.errors import PostfocusWarning

    named = ", ".join(str(p) if p == same else f"{p} (= {same})" for p, same in again[:5]) + (", ..." if len(again) > 5 else "")
    what = "video" if video else "photo(s)"
    warnings.warn(f"left out {len(again)} {what} named twice: {named}", PostfocusWarning, stacklevel=3)
    return kept


def _is_video(path: Path) -> bool:
    """Whether ``path`` is a video, by its suffix or its first bytes."""
    return path.suffix.lower() in VIDEO_EXTENSIONS or _looks_like_video(path)


def _frames_only(folder: Path, headers: list) -> list:
    """``headers`` without the files postfocus wrote as results (its ImageDescription says so), with a warning.

    A result written into the folder of its frames (``stack frames/ -o frames/result.jpg``) was taken
    as a frame by the next run on that folder: merged into the stack without a word (a tripod stack, whose
    result has the frames' size), or refused for its size. Aligned frames (``postfocus align``) and
    frames of a video (``postfocus frames``) are frames and stay.
    """
    results = [hd for hd in headers if _is_result(hd)]
    if results:
        import warnings

        from postfocus.errors import PostfocusWarning

        names = ", ".join(hd.path.name for hd in results[:5])
        warnings.warn(f"{folder}: left out {len(results)} postfocus result(s), not frames: {names}",
                      PostfocusWarning, stacklevel=3)
    return [hd for hd in headers if not _is_result(hd)]


def _is_result(header) -> bool:  # noqa: ANN001
    """Whether the file's EXIF ImageDescription names it a postfocus result (not an aligned frame)."""
    block = header.exif_block
    if block is None:
        return False
    try:
        if isinstance(block, tuple):
            exif = block[0]
        else:
            from PIL import Image

            exif = Image.Exif()
            exif.load(block)
        text = exif.get(0x010E)
    except Exception:  # an EXIF block Pillow cannot parse: a frame like any other
        return False
    return isinstance(text, str) and text.startswith("postfocus") and not text.startswith("postfocus: aligned frame")


def _paths(inputs: object) -> list[Path]:
    """``inputs`` (a path, or an iterable of paths; bytes too) as paths; InputError for anything else.

    ``None``, a number or a frame given as a nested list was a ``TypeError`` from deep in the standard
    library, and a path given as bytes was read byte by byte.

    Examples
    --------
    >>> _paths(b"sweep.mp4"), _paths(("a.jpg", Path("b.jpg")))
    ([PosixPath('sweep.mp4')], [PosixPath('a.jpg'), PosixPath('b.jpg')])
    >>> _paths(None)
    Traceback (most recent call last):
    postfocus.errors.InputError: inputs=None: give a folder, a video or image files (or frames as NumPy arrays)
    """
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    if not isinstance(inputs, Iterable):
        raise InputError(f"inputs={inputs!r:.60}: give a folder, a video or image files (or frames as NumPy arrays)")
    if isinstance(inputs, (set, frozenset)):  # (its order, the focus order, changed from one process to the next)
        raise InputError("inputs: a set has no order; give the files as a list, in their focus order (or a folder)")
    paths = []
    for k, p in enumerate(inputs):
        if not isinstance(p, (str, bytes, os.PathLike)):
            kind = type(p).__name__
            raise InputError(f"input {k + 1} (inputs[{k}]): {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a path; "
                             "give paths only, or frames as NumPy arrays only")  # (counted from 1, as every message)
        paths.append(Path(os.fsdecode(p)))
    return paths


def _big_enough(source: FrameSource, where: Path) -> FrameSource:
    """``source``, or InputError when its frames are too small to align and measure (an icon, a thumbnail)."""
    h, w = source.info.size
    if min(h, w) < MIN_FRAME_SIDE:
        raise InputError(f"{where}: frames of {w}x{h} pixels; a focus stack needs frames of at least "
                         f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE}")
    return source


def _looks_like_video(path: Path) -> bool:
    """True when a file without a photo or RAW suffix carries an MP4/MOV header."""
    if path.suffix.lower() in IMAGE_EXTENSIONS | RAW_EXTENSIONS:
        return False
    return looks_like_mp4(path)
