"""glibc's heap settings for the command-line process (``mallopt``).

Process settings, not the library's: the command line makes them for the one
process it runs. :func:`one_malloc_arena` lets every thread share one arena
(all commands); :func:`small_frame_heap` fixes the heap's mapping and trim
thresholds for stacks of sub-megapixel frames (``stack``). Neither does
anything where the C library is not glibc, nor when the user already set the
matching glibc setting, as a ``MALLOC_*`` variable or in ``GLIBC_TUNABLES``
(:func:`_user_set`). Measured in docs/performance.md ("Small stacks, tenth
session").
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from typing import Mapping

__all__ = ["SMALL_FRAME_PIXELS", "one_malloc_arena", "small_frame_heap"]


def one_malloc_arena() -> None:
    """Let every thread allocate from one glibc arena (as MALLOC_ARENA_MAX=1 would).

    The decoding and alignment threads otherwise each get an arena of their
    own that keeps freed memory: measured on the 30-frame 4K sweep, a peak of
    970-1040 MB against 850-870 MB with one arena, in the same time. No effect
    (and no harm) where the C library is not glibc, or when the environment
    already sets MALLOC_ARENA_MAX (or ``glibc.malloc.arena_max`` in GLIBC_TUNABLES)
    to a count glibc takes: an empty or zero one it ignores, and one arena is set.
    """
    if _user_set("ARENA_MAX"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(ctypes.c_int(-8), ctypes.c_int(1))  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


#: Frames up to this many pixels get :func:`small_frame_heap`'s fixed heap thresholds: a float32
#: RGB frame of 1 MP is 12 MB, under the 16 MB mapping threshold, so the frame-sized arrays of
#: such a stack come from the heap. Larger frames keep glibc's sliding thresholds.
SMALL_FRAME_PIXELS = 1_000_000
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 16 << 20, 32 << 20


def small_frame_heap(size: tuple[int, int]) -> bool:
    """Keep freed memory in the C heap between a small stack's frames (glibc's ``mallopt``).

    glibc hands the top of its heap back to the system once more than a sliding
    threshold (a few MB for sub-megapixel frames) is free there, and the next
    frame's arrays fault the pages in again. With frames of at most
    :data:`SMALL_FRAME_PIXELS`, a fixed mapping threshold of 16 MB and trim
    threshold of 32 MB are set instead: measured on beetle (28 x 750x500) and
    sub1mp (40 x 800x450) in docs/performance.md, "Small stacks, tenth
    session", about 0.1 s less CPU in the same peak memory. Larger frames are
    left alone: at 4K a frame-sized array (24 MB) is above a 16 MB mapping
    threshold and would be mapped afresh every time (measured 0.8 s slower on
    the 30-frame 4K sweep, "Small stacks, seventh session").

    Parameters
    ----------
    size : tuple of int
        The frames' (height, width).

    Returns
    -------
    bool
        True when the thresholds were set; False for larger frames, a C library that
        is not glibc, or when the environment already sets one of glibc's heap
        settings (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
        ``MALLOC_TOP_PAD_``, or their ``glibc.malloc.*`` names in ``GLIBC_TUNABLES``).

    Examples
    --------
    >>> small_frame_heap((2160, 3840))  # 4K frames: glibc's own thresholds stay
    False
    """
    if size[0] * size[1] > SMALL_FRAME_PIXELS or not sys.platform.startswith("linux"):
        return False
    if any(_user_set(name) for name in ("MMAP_THRESHOLD", "TRIM_THRESHOLD", "TOP_PAD")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        # M_MMAP_THRESHOLD (-3) first: setting either fixes both (glibc stops sliding them).
        done = libc.mallopt(ctypes.c_int(-3), ctypes.c_int(_MMAP_THRESHOLD))
        done = done and libc.mallopt(ctypes.c_int(-1), ctypes.c_int(_TRIM_THRESHOLD))  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False
    return bool(done)


def _user_set(name: str, *, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``environ`` sets glibc's malloc setting ``name`` (e.g. ``"ARENA_MAX"``): as its variable
    (``MALLOC_ARENA_MAX``; the thresholds' names end in ``_``) or as a tunable in ``GLIBC_TUNABLES``
    (``glibc.malloc.arena_max=4:...``, which glibc reads as well).

    Examples
    --------
    >>> env = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.malloc.trim_threshold=131072"}
    >>> _user_set("TRIM_THRESHOLD", environ=env), _user_set("MMAP_THRESHOLD", environ=env)
    (True, False)
    >>> _user_set("ARENA_MAX", environ={"MALLOC_ARENA_MAX": "2"})
    True

    glibc's arena count is at least 1: it ignores an empty or zero ``arena_max``, which is then unset (measured
    with glibc 2.36: 9 arenas for 8 threads, as with none). An empty threshold is 0 to glibc, a setting:

    >>> _user_set("ARENA_MAX", environ={"MALLOC_ARENA_MAX": ""}), _user_set("TOP_PAD", environ={"MALLOC_TOP_PAD_": ""})
    (False, True)
    """
    variable = f"MALLOC_{name}" if name == "ARENA_MAX" else f"MALLOC_{name}_"
    tunable = f"glibc.malloc.{name.lower()}"
    values = [environ[variable]] if variable in environ else []
    for part in environ.get("GLIBC_TUNABLES", "").split(":"):
        key, _, value = part.partition("=")
        if key.strip() == tunable:
            values.append(value)
    return any(name != "ARENA_MAX" or _glibc_number(value) != 0 for value in values)


def _glibc_number(text: str) -> int:
    """The number glibc reads from a setting's text (its ``_dl_strtoul``: leading digits, ``0x`` hex, ``0``
    octal; 0 when there are none).

    Examples
    --------
    >>> _glibc_number("4"), _glibc_number(""), _glibc_number("0x10"), _glibc_number("010"), _glibc_number("two")
    (4, 0, 16, 8, 0)
    """
    found = re.match(r"[ \t]*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    return 0 if found is None else int(found.group(1), 0 if found.group(1)[:2].lower() == "0x"
                                        else 8 if found.group(1).startswith("0") else 10)
