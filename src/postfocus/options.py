"""What a stack is made with: one validated options type shared by every stage and face.

:class:`StackOptions` is the single description of how a stack is aligned,
analysed and merged. The library functions (:func:`postfocus.stack`,
:func:`postfocus.process`), the command line, the web app and the batch runner
all build one and pass it on; nothing downstream re-validates or re-defaults.

Options split in three groups:

- *processing* options change the aligned frames and the maps kept in a stack
  folder (``align``, ``reference``, ``motion``, ``refine_flow``, ``prefer``,
  ``align_size``, ``analysis_size``): they make the folder's key
  (:meth:`StackOptions.processing`);
- *merge* options choose what is made from the kept work (``method``,
  ``frame_range``, ``crop``);
- *resource* options change how, never what (``memory_mb``, ``threads``).

Errors name the field (``OptionError("reference", 12, ...)``); each face maps
field names to its own spelling (``--reference``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from dataclasses import dataclass
from typing import Any

from postfocus.errors import OptionError

__all__ = [
    "ALIGN_MODELS",
    "DEFAULT_METHOD",
    "MAX_THREADS",
    "METHODS",
    "MOTION_MODES",
    "ORDERS",
    "PREFER",
    "StackOptions",
    "check_memory_mb",
    "check_threads",
    "is_number",
    "is_whole",
    "parse_range",
    "resolve",
]

METHODS = ("depthmap", "pyramid")
"""Fusion methods: ``depthmap`` blends frames by a regularised focus-index map,
``pyramid`` picks the most contrasted Laplacian-pyramid coefficient per scale."""
DEFAULT_METHOD = "depthmap"
ALIGN_MODELS = ("similarity", "affine", "homography", "rigid", "translation", "none")
"""Motion models for alignment; ``none`` for registered (tripod) stacks."""
MOTION_MODES = ("auto", "off")
"""``auto`` finds subjects that moved during the sweep; ``off`` treats the scene as still."""
ORDERS = ("auto", "near-to-far", "far-to-near")
"""Which frame is focused nearest: measured at the stack's occlusion edges (``auto``,
:mod:`postfocus.focus.direction`), or stated: the first (``near-to-far``) or the last (``far-to-near``)."""
PREFER = ("none", "front", "back")
"""Which of two clear focus peaks a pixel takes: the stronger, the nearer or the farther."""

_PROCESSING = ("align", "reference", "motion", "refine_flow", "prefer", "align_size", "analysis_size", "order")


def _choice(param: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(param, value, f"choose one of {', '.join(choices)}")


def is_whole(value: object) -> bool:
    """Whether ``value`` is a whole number: an int or a NumPy integer (``np.argmax``'s), not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> is_whole(3), is_whole(np.int64(3)), is_whole(True), is_whole(3.0)
    (True, True, False, False)

    An int beyond any float (``10**400``) is no count, size or position postfocus can use: every one of them
    meets a float (a scale, a coordinate) and was an OverflowError there.

    >>> is_whole(10**308), is_whole(10**400)
    (True, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and _float_holds(value)


def is_number(value: object) -> bool:
    """Whether ``value`` is a real number (an int, a float or a NumPy one), not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> is_number(2.8), is_number(np.float32(2.8)), is_number(False), is_number("2.8")
    (True, True, False, False)
    >>> is_number(10**400)  # (a float cannot hold it: an OverflowError wherever it was used)
    False
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and _float_holds(value)


def _float_holds(value: numbers.Real) -> bool:
    """Whether ``float(value)`` is a float (an int of more than about 308 digits is an OverflowError)."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _positive_int(param: str, value: object, least: int) -> int:
    if not is_whole(value) or value < least:
        raise OptionError(param, value, f"must be a whole number of at least {least}")
    return int(value)  # (a NumPy integer as int: the options go into JSON, the cache key and the manifest)


def check_memory_mb(memory_mb: object) -> int | float | None:
    """``memory_mb`` as :class:`StackOptions` takes it (None, or a number of megabytes above 0), for the calls
    that take a memory budget beside the options (:meth:`postfocus.store.ProcessedStack.merge`).

    Parameters
    ----------
    memory_mb : object
        The value given.

    Returns
    -------
    int, float or None
        ``memory_mb`` (a NumPy number as a plain float), or None.

    Raises
    ------
    OptionError
        For 0, a negative number, NaN, a bool or a string.

    Examples
    --------
    >>> check_memory_mb(512), check_memory_mb(None)
    (512, None)
    """
    if memory_mb is None:
        return None
    if not is_number(memory_mb) or not memory_mb > 0:
        raise OptionError("memory_mb", memory_mb, "must be a positive number of megabytes")
    return memory_mb if isinstance(memory_mb, (int, float)) else float(memory_mb)  # (a NumPy number: a plain one)


MAX_THREADS = 256
"""Largest thread budget (as ``postfocus --threads``): OpenCV starts as many threads as it is given (a budget
of a million spawned threads until the system refused, one error line each; 10**12 was a ValueError)."""


def check_threads(threads: object) -> int | None:
    """``threads`` as :class:`StackOptions` takes it (None, or a whole number from 1 to :data:`MAX_THREADS`), for
    the calls that take a thread budget beside the options (:meth:`postfocus.store.ProcessedStack.merge`).

    Parameters
    ----------
    threads : object
        The value given.

    Returns
    -------
    int or None
        ``threads`` as an int (a NumPy integer too), or None.

    Raises
    ------
    OptionError
        For 0, a negative number, more than :data:`MAX_THREADS`, a fraction, a bool or a string.

    Examples
    --------
    >>> check_threads(2), check_threads(None)
    (2, None)
    """
    if threads is None:
        return None
    if is_whole(threads) and threads > MAX_THREADS:
        raise OptionError("threads", threads, f"must be a whole number from 1 to {MAX_THREADS}")
    return _positive_int("threads", threads, 1)


@dataclass(frozen=True)
class StackOptions:
    """How a stack is aligned, analysed and merged (validated on creation).

    Parameters
    ----------
    method : str
        Fusion method, one of :data:`METHODS`.
    align : str
        Motion model, one of :data:`ALIGN_MODELS`: ``similarity`` (shift,
        rotation, scale: handheld with focus breathing) ... ``none`` (tripod).
    reference : int or None
        Frame whose geometry every output takes (None: the middle frame).
    crop : bool
        Crop outputs to the area every frame covers.
    frame_range : tuple of int or None
        Merge only frames ``(A, B)``, inclusive (None: every usable frame).
    motion : str
        One of :data:`MOTION_MODES`.
    refine_flow : bool
        Also register frames densely (optical flow) for local parallax.
    prefer : str
        One of :data:`PREFER` (see :func:`postfocus.focus.map.focus_index_map`).
    align_size, analysis_size : int
        Long edge (px) at which frames are aligned and focus is analysed.
    memory_mb : float or None
        Aim to stay under this much memory (MB): the depth-map merge then
        runs in bands of rows (:mod:`postfocus.pipeline.memory`).
    threads : int or None
        Threads for image processing and decoding (None: all cores).
    order : str
        One of :data:`ORDERS`: the sweep's direction stated (``near-to-far``, the
        default: frame 0 is the nearest focus, as cameras record a sweep) or measured
        from the frames' occlusion edges (``auto``; it costs a few tenths of a
        second of CPU and decides only where the evidence is strong).

    Raises
    ------
    OptionError
        Naming the field whose value cannot be used.

    Examples
    --------
    >>> StackOptions(method="pyramid").replace(frame_range=(2, 5)).frame_range
    (2, 5)
    >>> StackOptions(align="sideways")
    Traceback (most recent call last):
    ...
    postfocus.errors.OptionError: align='sideways': choose one of similarity, affine, homography, rigid, translation, none
    """

    method: str = DEFAULT_METHOD
    align: str = "similarity"
    reference: int | None = None
    crop: bool = True
    frame_range: tuple[int, int] | None = None
    motion: str = "auto"
    refine_flow: bool = False
    prefer: str = "none"
    align_size: int = 1600
    analysis_size: int = 800
    memory_mb: float | None = None
    threads: int | None = None
    order: str = "near-to-far"

    def __post_init__(self) -> None:
        _choice("method", self.method, METHODS)
        _choice("align", self.align, ALIGN_MODELS)
        _choice("motion", self.motion, MOTION_MODES)
        _choice("prefer", self.prefer, PREFER)
        _choice("order", self.order, ORDERS)
        if self.reference is not None:
            object.__setattr__(self, "reference", _positive_int("reference", self.reference, 0))
        if self.frame_range is not None:
            rng = self.frame_range
            if not isinstance(rng, (tuple, list)) or len(rng) != 2 or not all(is_whole(v) for v in rng):
                raise OptionError("frame_range", rng, "expected two frame numbers (A, B)")
            if not 0 <= rng[0] <= rng[1]:
                raise OptionError("frame_range", rng, "frames must satisfy 0 <= A <= B")
            object.__setattr__(self, "frame_range", (int(rng[0]), int(rng[1])))
        for name, least in (("align_size", 16), ("analysis_size", 16)):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name), least))
        object.__setattr__(self, "memory_mb", check_memory_mb(self.memory_mb))
        if self.threads is not None:
            object.__setattr__(self, "threads", check_threads(self.threads))
        for name in ("crop", "refine_flow"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(name, getattr(self, name), "must be True or False")

    def replace(self, **changes: Any) -> "StackOptions":
        """A copy with some fields changed (validated again); OptionError for a name that is no field."""
        known = [f.name for f in dataclasses.fields(self)]
        for name in changes:
            if name not in known:  # (was a TypeError: "__init__() got an unexpected keyword argument")
                raise OptionError(name, changes[name], f"not an option; the options are {', '.join(known)}")
        return dataclasses.replace(self, **changes)

    def check_frames(self, n: int) -> None:
        """Refuse a ``reference`` or ``frame_range`` beyond a stack of ``n`` frames.

        Raises
        ------
        OptionError
        """
        if self.reference is not None and self.reference >= n:
            raise OptionError("reference", self.reference, f"must be a frame number from 0 to {n - 1}")
        if self.frame_range is not None and self.frame_range[1] >= n:
            raise OptionError("frame_range", self.frame_range, f"frames must satisfy 0 <= A <= B <= {n - 1}")

    def processing(self) -> dict[str, Any]:
        """The options that change a stack folder's contents (its key)."""
        return {name: getattr(self, name) for name in _PROCESSING}

    def cache_key(self, identity: Any, version: int) -> str:
        """Key of the stack folder for inputs of this ``identity`` (see :meth:`FrameSource.identity`).

        Parameters
        ----------
        identity : object
            JSON-able identity of the inputs (paths, sizes, modification times).
        version : int
            Stack folder format version: a new format never reuses old folders.

        Returns
        -------
        str
            20 hex digits.
        """
        blob = json.dumps({"format": version, "inputs": identity, "options": self.processing()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


def parse_range(text: str | None, n: int | None = None) -> tuple[int, int] | None:
    """Parse ``"A:B"`` (inclusive frame numbers; either side may be empty) into ``(A, B)``.

    Parameters
    ----------
    text : str or None
        The range as typed; None gives None.
    n : int, optional
        Frames in the stack: an empty ``B`` is the last frame, and frames
        beyond ``n - 1`` are refused.

    Raises
    ------
    OptionError
        For ``frame_range``.

    Examples
    --------
    >>> parse_range("3:", 10)
    (3, 9)
    """
    if text is None:
        return None
    try:
        a, b = text.split(":")
        lo = int(a) if a.strip() else 0
        if b.strip():
            hi = int(b)
        elif n is not None:
            hi = n - 1
        else:
            raise ValueError
    except ValueError:
        raise OptionError("frame_range", text, "expected A:B with frame numbers, e.g. 3:12") from None
    last = "" if n is None else f" <= {n - 1}"
    if not (0 <= lo <= hi) or (n is not None and hi >= n):
        raise OptionError("frame_range", text, f"frames must satisfy 0 <= A <= B{last}")
    return lo, hi


def resolve(options: StackOptions | None, changes: dict[str, Any], n_frames: int | None = None) -> StackOptions:
    """``options`` (default :class:`StackOptions`) with keyword ``changes``; a ``"A:B"`` range is parsed.

    The library functions take a :class:`StackOptions` and/or its fields as
    keywords; this settles both into one.

    Examples
    --------
    >>> resolve(None, {"method": "pyramid", "frame_range": "2:4"}).frame_range
    (2, 4)

    Raises
    ------
    OptionError
        For ``options`` that is not a :class:`StackOptions`, a change that is no field or a value it refuses.
    """
    if options is not None and not isinstance(options, StackOptions):  # (a dict was an AttributeError)
        raise OptionError("options", type(options).__name__, "must be a StackOptions; or give its fields as keywords")
    if isinstance(changes.get("frame_range"), str):
        changes = {**changes, "frame_range": parse_range(changes["frame_range"], n_frames)}
    base = options or StackOptions()
    return base.replace(**changes) if changes else base
