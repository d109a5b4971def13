"""How much memory merging a stack takes, and how to stay under a limit.

Pass 1 keeps small maps per frame (at the analysis size); pass 2 keeps the
blend state of every output pixel (sums, weights, focus index, blend width)
plus the finished image. At 24 megapixels the second dominates, so a memory
limit is met by fusing the output in bands of rows, one after another: each
band decodes the frames again, and holds only its share of the blend state.

The constants are measured peaks (``/usr/bin/time -v``, see
docs/performance.md), rounded up.

Without a limit the machine's memory is one (:func:`machine_bands`): a stack whose whole-picture merge would
not fit is fused in bands, and one that even the most bands cannot fit is refused before a frame is decoded,
in one line naming its size and the memory it needs, not killed by the system half way.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from postfocus.errors import InputError, OptionError

__all__ = ["FOLD_ROWS", "bands_for", "compact", "estimate_mb", "give_back_freed", "machine_bands", "machine_mb"]

#: Rows of a footprint rectangle made float at a time in pass 2 (the depth-map blend is computed pixel by pixel,
#: so the same bits as the whole rectangle at once, with float temporaries of a band).
FOLD_ROWS = 128
#: Interpreter, libraries, the video decoder and the frames in flight (MB, i.e. MiB).
BASE_MB = 390.0
#: Pass 1's working-size arrays (alignment pyramids, tile maps), beside its per-frame maps (MB).
ALIGN_MB = 100.0
#: Per frame and analysis pixel (bytes): the focus volume and small frames kept from pass 1 to 2.
ANALYSIS_BYTES_PER_PIXEL = 8.0
#: Per output pixel, whatever the bands (bytes): the finished float image and the frames in flight.
OUTPUT_BYTES_PER_PIXEL = 12.0
#: Per pixel of the band being fused (bytes): three sums, weight, focus index, blend width, and the
#: band's finished pixels.
BAND_BYTES_PER_PIXEL = 36.0
#: Per pixel of the band being fused, where the occlusion-safe blend is kept (bytes): its three sums and
#: weight (16) and the consistency check's planes when the blend is finished. Kept over the box of the tiles
#: where the occlusion-safe index differs, which may be the whole band (a picture full of near edges, e.g.
#: pcb's pins), so counted for every band pixel. Peak measured with tracemalloc (tests/test_memory.py:
#: 24 B over a 338k-pixel box of the ``pins`` halo scene at 480x720, 32 B on a 240x160 one), rounded up.
OCCLUSION_BYTES_PER_PIXEL = 36.0
#: The same for the background solved behind near objects (``fuse(..., restore=True)``, the band solver,
#: :class:`~postfocus.fuse.restore.BandSolver`): its sums, precision and cover for the band's pixels, the band's
#: coordinates, and each frame's spill and cover of the nearer layers while it is finished. It costs by the share
#: of the box its band covers (73-107 B on the ``pins`` scene, 480x720 and 240x160), up to 273 B where near steps
#: reach every pixel (tracemalloc, 4-16 frames, random 4 px depth cells, slopes 0.5-8; tests/test_memory.py; the
#: box solver it replaced: 178-185 B): counted as that, rounded up.
RESTORE_BYTES_PER_PIXEL = 300.0
#: Bands are at least this many rows high (more passes cost more than they save).
MIN_BAND_ROWS = 64
MB = float(2**20)


def estimate_mb(size: tuple[int, int], n_frames: int, analysis_pixels: int, bands: int = 1, *,
                occlusion: bool = True, restore: bool = False) -> float:
    """Expected peak memory (MB) of merging ``n_frames`` of ``size`` (H, W) with the depth-map method.

    The larger of pass 1 (alignment and focus maps) and pass 2 (the blend);
    fitted to peaks measured at 8 and 24 megapixels with 1 to 4 bands
    (docs/performance.md), on the side of too much.

    Parameters
    ----------
    size : (height, width) of the frames (and of the output, before cropping).
    n_frames : frames in the stack.
    analysis_pixels : pixels of the analysis-size maps (about 800 px long edge).
    bands : bands of rows the output is fused in.
    occlusion : the occlusion-safe blend is made (``fuse(..., occlusion=True)``, the default).
    restore : the background behind near objects is solved too (``fuse(..., restore=True)``).

    Returns
    -------
    Megabytes.

    Examples
    --------
    >>> round(estimate_mb((2160, 3840), 30, 800 * 450)), round(estimate_mb((2160, 3840), 30, 800 * 450, occlusion=False))
    (1137, 852)
    """
    pixels = size[0] * size[1]
    maps = ANALYSIS_BYTES_PER_PIXEL * analysis_pixels * n_frames / MB
    pass1 = BASE_MB + ALIGN_MB + 1.5 * maps
    band = BAND_BYTES_PER_PIXEL + (OCCLUSION_BYTES_PER_PIXEL if occlusion else 0.0) + (
        RESTORE_BYTES_PER_PIXEL if occlusion and restore else 0.0)
    pass2 = BASE_MB + maps + (OUTPUT_BYTES_PER_PIXEL * pixels + band * pixels / max(1, bands)) / MB
    return max(pass1, pass2)


def bands_for(size: tuple[int, int], n_frames: int, analysis_pixels: int, limit_mb: float | None, *,
              occlusion: bool = True, restore: bool = False) -> int:
    """Fewest bands of rows that keep the estimated peak under ``limit_mb`` (1 without a limit).

    Raises OptionError (``memory_mb``), naming the smallest limit that would do, when no
    number of bands is enough.

    Examples
    --------
    >>> bands_for((4000, 6000), 100, 800 * 533, 1500), bands_for((4000, 6000), 100, 800 * 533, 1500, occlusion=False)
    (4, 2)
    """
    if limit_mb is None:
        return 1
    most = max(1, size[0] // MIN_BAND_ROWS)
    for bands in range(1, most + 1):
        if estimate_mb(size, n_frames, analysis_pixels, bands, occlusion=occlusion, restore=restore) <= limit_mb:
            return bands
    floor = estimate_mb(size, n_frames, analysis_pixels, most, occlusion=occlusion, restore=restore)
    raise OptionError("memory_mb", limit_mb,
                      f"this stack needs at least about {math.ceil(floor)} MB ({n_frames} frames of {size[1]}x{size[0]})")


#: Where a control group's memory limit is read (cgroup v2, then v1); "max" or an absurd number: no limit.
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_mb() -> float | None:
    """Memory this process may use (MB): the machine's RAM, or its control group's limit where lower; None if unknown.

    Examples
    --------
    >>> machine_mb() is None or machine_mb() > 0
    True
    """
    try:
        total: float | None = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # (no sysconf: not a POSIX system)
        total = None
    for path in CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            total = min(total, float(text)) if total else float(text)
        break
    return total / MB if total else None


def machine_bands(size: tuple[int, int], n_frames: int, analysis_pixels: int, *, banded: bool = True,
                  warn: Callable[[str], None] | None = None, limit_mb: float | None = None) -> int:
    """Bands of rows that keep a merge without ``--memory`` within the machine's memory (:func:`machine_mb`).

    1 for every stack whose whole-picture merge is estimated to fit (the estimate errs on the side of too much:
    2 frames of 8000x6000, 4243 MB estimated, 1617 MB measured); more bands (said through ``warn``) where it
    is not; a stack that even the most bands (``size[0] // MIN_BAND_ROWS``) cannot fit is refused. ``banded``:
    the method can merge in bands (the depth-map method); others merge whole, refused only by the same floor.

    Raises
    ------
    InputError
        Naming the frames' size and the memory the smallest plan needs, before any frame is decoded.

    Examples
    --------
    >>> machine_bands((6000, 8000), 2, 800 * 600, limit_mb=24000), machine_bands((6000, 8000), 2, 800 * 600, limit_mb=2000)
    (1, 4)
    >>> machine_bands((32768, 32768), 2, 800 * 800, limit_mb=8000)
    Traceback (most recent call last):
    ...
    postfocus.errors.InputError: 2 frames of 32768x32768 (1073.7 MP) need at least about 12832 MB of memory; this machine has 8000 MB
    """
    limit = machine_mb() if limit_mb is None else float(limit_mb)
    if limit is None or estimate_mb(size, n_frames, analysis_pixels) <= limit:
        return 1
    most = max(1, size[0] // MIN_BAND_ROWS)
    floor = estimate_mb(size, n_frames, analysis_pixels, most)
    if floor > limit:
        raise InputError(f"{n_frames} frame{'s' if n_frames != 1 else ''} of {size[1]}x{size[0]} "
                         f"({size[0] * size[1] / 1e6:.1f} MP) need at least about {math.ceil(floor)} MB of memory; "
                         f"this machine has {limit:.0f} MB")
    if not banded:
        return 1
    bands = bands_for(size, n_frames, analysis_pixels, limit)
    if warn is not None:
        warn(f"merging in {bands} bands of rows to fit this machine's {limit:.0f} MB of memory "
             "(each band decodes the frames again)")
    return bands


_LIBC: list = []


def give_back_freed() -> None:
    """Hand memory that was freed but stays in the C heap back to the system (glibc's ``malloc_trim``).

    Pass 1 frees each frame's working-size arrays and, at its end, every frame's
    measure and small copy; the C heap keeps the pages of blocks freed below its
    top, so the process's resident memory would grow with the frame count though
    little is in use. Called between the passes (measured at 4K: 543 MB resident at
    the start of pass 2 with 30 frames, 667 MB with 60; 355 and 411 MB with this).
    The pages handed back are faulted in again when pass 2 needs them (about 10,000
    more page faults on a 2048x1536 stack, a few hundredths of a second).
    Does nothing where the C library is not glibc.

    Examples
    --------
    >>> give_back_freed()
    """
    if not _LIBC:
        library = None
        if sys.platform.startswith("linux"):
            try:
                library = ctypes.CDLL("libc.so.6")  # glibc's name (elsewhere: not found, nothing done)
                library.malloc_trim.argtypes = [ctypes.c_size_t]
            except (OSError, AttributeError):
                library = None
        _LIBC.append(library)
    if _LIBC[0] is not None:
        _LIBC[0].malloc_trim(0)


def compact(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``image[t:b, l:r]`` as a contiguous array in ``image``'s own memory (rows moved forward, in order).

    Examples
    --------
    >>> a = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    >>> compact(a.copy(), (1, 1, 3, 2)).tolist() == a[1:3, 1:2].tolist()
    True
    """
    t, l, b, r = box
    if (t, l, b) == (0, 0, image.shape[0]) and r == image.shape[1]:
        return image
    flat = image.reshape(-1)
    row = (r - l) * image.shape[2]
    for y in range(b - t):  # each row goes to where it starts no later than it was: nothing unread is overwritten
        start = ((t + y) * image.shape[1] + l) * image.shape[2]
        flat[y * row:(y + 1) * row] = flat[start:start + row]  # (NumPy copies through a buffer when they overlap)
    return flat[:(b - t) * row].reshape(b - t, r - l, image.shape[2])

