"""The retouching edits of a processed stack: a list of brush strokes and masks, kept beside it.

An edit says *where* (a brush stroke in output pixels, or a mask image) and
*from what* (a frame number, ``"sharpest"``, a fusion method, or ``"result"``
for the untouched all-in-focus image, i.e. undo). The list is stored in the
stack folder, never in its pictures, so the untouched result is always there::

    edits/edits.json        {"format": 1, "size": [H, W], "edits": [...], "masks": {name: [size, crc32]},
                             "check": crc32 of the edits}
    edits/edits.prev.json   the list before the last change (what a damaged edits.json is healed from)
    edits/mask-<crc>.png    8-bit grey masks of mask edits, named by their content

Files are written atomically under the folder's lock
(:func:`~postfocus.store.folder_lock`). The edits keep their own checksums,
not the manifest's: a damaged edits file must not make the whole stack be
processed again. :func:`load_edits` says what is wrong (a
:class:`~postfocus.errors.PostfocusWarning`), heals from the previous list,
or leaves the edits out; it never fails.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from postfocus.errors import OptionError, PostfocusWarning, shown
from postfocus.io.write import atomic_write_bytes, atomic_write_json
from postfocus.options import METHODS, is_number, is_whole
from postfocus.store import ProcessedStack, file_record, folder_lock

__all__ = [
    "EDITS_FORMAT",
    "MAX_BRUSH_WORK",
    "MAX_EDITS",
    "MAX_POINTS",
    "MAX_TOTAL_POINTS",
    "NAMED_SOURCES",
    "Edit",
    "check_source",
    "discard_unkept_masks",
    "edits_version",
    "load_edits",
    "mask_edit",
    "parse_edits",
    "save_edits",
]

EDITS_FORMAT = 1
MAX_EDITS = 1000
"""Most edits one stack keeps."""
MAX_POINTS = 4000
"""Most points in one brush stroke."""
MAX_TOTAL_POINTS = 100_000
"""Most points in all strokes together."""
MAX_BRUSH_WORK = 1000
"""Most pixels all strokes together have a brush evaluate (each segment its box, as
:func:`postfocus.products.retouch.stroke_mask` paints it), in pictures' areas: a stroke as the page
records it (a point each quarter radius) evaluates each pixel it covers about 7 times, so this is some
140 coverings of the whole picture (several minutes of painting at 24 MP). Points alone did not bound
the work: 100,000 points far apart with a wide brush each reach the whole picture (130 s for a 320x240
picture, hours at 24 MP)."""
NAMED_SOURCES = ("sharpest", "result", *METHODS)
"""Sources other than a frame number."""
_MASK_NAME = re.compile(r"mask-[0-9a-f]{8}\.png")


@dataclass(frozen=True)
class Edit:
    """One retouching edit.

    Attributes
    ----------
    kind : str
        ``"stroke"`` (a brush stroke: ``points``, ``radius``, ``hardness``) or
        ``"mask"`` (a mask image in the edits folder: ``mask``, ``feather``).
    source : int or str
        A frame number, ``"sharpest"``, a fusion method or ``"result"``.
    opacity : float
        0..1, how much of the source replaces the picture under the brush.
    points : tuple of (x, y)
        The stroke's path in output pixels (pixel centres at ``i + 0.5``).
    radius : float
        Brush radius in output pixels.
    hardness : float
        0..1: share of the radius at full strength; the rest fades out.
    mask : str
        File name of the mask (mask edits).
    feather : float
        Gaussian blur (sigma, pixels) of the mask's edge (mask edits).
    """

    kind: str
    source: int | str
    opacity: float = 1.0
    points: tuple = field(default=())
    radius: float = 0.0
    hardness: float = 1.0
    mask: str = ""
    feather: float = 0.0

    def to_json(self) -> dict:
        """The edit as stored (only the fields of its kind)."""
        out: dict[str, Any] = {"kind": self.kind, "source": self.source, "opacity": self.opacity}
        if self.kind == "stroke":
            out.update(points=[list(p) for p in self.points], radius=self.radius, hardness=self.hardness)
        else:
            out.update(mask=self.mask, feather=self.feather)
        return out


def check_source(source: object, used: Sequence[int]) -> int | str:
    """A valid source: a kept frame number or one of :data:`NAMED_SOURCES`.

    Raises
    ------
    OptionError
        For ``source``.

    Examples
    --------
    >>> check_source("pyramid", [0, 1]), check_source(1, [0, 1])
    ('pyramid', 1)
    """
    if isinstance(source, str) and source in NAMED_SOURCES:
        return source
    if is_whole(source):  # (not 10**400: no frame, and 10**5000 had no text for this message, a ValueError)
        if int(source) in used:
            return int(source)
        raise OptionError("source", int(source), f"frame {shown(int(source))} is not in this stack (frames kept: "
                                                 f"{', '.join(map(str, used))}; counted from 0)")
    raise OptionError("source", source, f"use a frame number or one of {', '.join(NAMED_SOURCES)}")


def _number(value: object, what: str, lo: float, hi: float) -> float:
    # (is_number: an int a float cannot hold, a radius of 10**400 from JSON, was an OverflowError, a 500)
    if not isinstance(value, (int, float)) or not is_number(value) or not math.isfinite(value):
        raise OptionError(what, value, "must be a finite number")
    if not lo <= value <= hi:
        raise OptionError(what, value, f"must be from {lo:g} to {hi:g}")
    return float(value)


def parse_edits(items: object, size: tuple[int, int], used: Sequence[int], masks: Sequence[str] = ()) -> list[Edit]:
    """Validate an edit list from JSON (a file, the web app): bounded, finite, inside the picture.

    Parameters
    ----------
    items : list of dict
        As :meth:`Edit.to_json` writes them.
    size : (H, W)
        The stack's output size.
    used : sequence of int
        Frames kept.
    masks : sequence of str
        Mask names that exist (for mask edits).

    Returns
    -------
    list of Edit

    Raises
    ------
    OptionError
        Naming the first edit that is wrong (``edits``).
    """
    if not isinstance(items, list):
        raise OptionError("edits", type(items).__name__, "must be a list of edits")
    if len(items) > MAX_EDITS:
        raise OptionError("edits", len(items), f"at most {MAX_EDITS} edits")
    h, w = size
    total, work, out = 0, 0.0, []
    for k, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise OptionError("edit", item, "must be an object")
            kind = item.get("kind")
            source = check_source(item.get("source"), used)
            opacity = _number(item.get("opacity", 1.0), "opacity", 0.0, 1.0)
            if kind == "stroke":
                radius = _number(item.get("radius"), "radius", 0.5, float(max(h, w)))
                hardness = _number(item.get("hardness", 1.0), "hardness", 0.0, 1.0)
                points = item.get("points")
                if not isinstance(points, list) or not 1 <= len(points) <= MAX_POINTS:
                    raise OptionError("points", type(points).__name__, f"must be a list of 1 to {MAX_POINTS} [x, y]")
                total += len(points)
                if total > MAX_TOTAL_POINTS:
                    raise OptionError("points", total, f"at most {MAX_TOTAL_POINTS} points in all strokes")
                pts = []
                for p in points:
                    if not isinstance(p, list) or len(p) != 2:
                        raise OptionError("points", p, "each point must be [x, y]")
                    pts.append((_number(p[0], "x", -radius, w + radius), _number(p[1], "y", -radius, h + radius)))
                out.append(Edit("stroke", source, opacity, tuple(pts), radius, hardness))
                work += _brush_work(pts, radius, size)
                if work > MAX_BRUSH_WORK * h * w:
                    raise OptionError("strokes", round(work / (h * w)), "reach over the picture's area that many "
                                      f"times (at most {MAX_BRUSH_WORK}); paint with fewer or shorter strokes")
            elif kind == "mask":
                name = item.get("mask")
                if not isinstance(name, str) or not _MASK_NAME.fullmatch(name) or name not in masks:
                    raise OptionError("mask", name, "is not a mask of this stack's edits")
                feather = _number(item.get("feather", 0.0), "feather", 0.0, float(max(h, w)))
                out.append(Edit("mask", source, opacity, mask=name, feather=feather))
            else:
                raise OptionError("kind", kind, "must be 'stroke' or 'mask'")
        except OptionError as exc:
            raise OptionError("edits", k, f"edit {k}: {exc.param} {shown(exc.value)} {exc.reason}") from None
    return out


def _brush_work(points: Sequence[tuple[float, float]], radius: float, size: tuple[int, int]) -> float:
    """Pixels a stroke's brush evaluates: the boxes of its segments (grown by ``radius``) within the picture.

    Examples
    --------
    >>> _brush_work([(10.0, 10.0), (20.0, 10.0)], 2.0, (100, 100))  # one segment: columns 8-22, rows 8-12
    75.0
    """
    h, w = size
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    p, q = (pts[:-1], pts[1:]) if len(pts) > 1 else (pts, pts)
    lo, hi = np.minimum(p, q), np.maximum(p, q)
    x0, y0 = np.maximum(0, np.floor(lo[:, 0] - radius)), np.maximum(0, np.floor(lo[:, 1] - radius))
    x1, y1 = np.minimum(w, np.ceil(hi[:, 0] + radius) + 1), np.minimum(h, np.ceil(hi[:, 1] + radius) + 1)
    return float(np.sum(np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)))


def _check(edits: list[dict]) -> int:
    return zlib.crc32(json.dumps(edits, sort_keys=True, separators=(",", ":")).encode())


def edits_version(edits: Sequence[Edit]) -> str:
    """A short name for an edit list's content (outputs made from it are cached under it); '' when empty.

    Examples
    --------
    >>> edits_version([])
    ''
    """
    return f"{_check([e.to_json() for e in edits]):08x}" if edits else ""


def _folder(ps: ProcessedStack) -> Path:
    return Path(ps.folder) / "edits"


def mask_edit(ps: ProcessedStack, mask: np.ndarray, *, source: int | str, opacity: float = 1.0,
              feather: float = 0.0) -> Edit:
    """Keep ``mask`` in the stack's edits folder (by content) and make its edit (not yet in the list).

    Parameters
    ----------
    ps : ProcessedStack
    mask : numpy.ndarray
        (H, W) in [0, 1] (float) or 0..255 (uint8), the stack's output size.
    source, opacity, feather
        As for :class:`Edit`.

    Returns
    -------
    Edit
    """
    from postfocus.products.retouch import as_mask

    opacity = _number(opacity, "opacity", 0.0, 1.0)  # before the mask is kept: a bad edit leaves nothing behind
    feather = _number(feather, "feather", 0.0, float(max(ps.size)))
    pixels = np.round(as_mask(mask, ps.size) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", pixels)
    payload = data.tobytes()
    name = f"mask-{zlib.crc32(payload):08x}.png"
    folder = _folder(ps)
    with folder_lock(Path(ps.folder)):
        folder.mkdir(exist_ok=True)
        if not (folder / name).is_file() or (folder / name).read_bytes() != payload:
            atomic_write_bytes(folder / name, payload)
    edit = Edit("mask", check_source(source, ps.used), opacity, mask=name, feather=float(feather))
    parse_edits([edit.to_json()], ps.size, ps.used, [name])  # the same checks as a stored list
    return edit


def _read(path: Path, ps: ProcessedStack) -> list[Edit]:
    """The edits in ``path``; ValueError saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot be read ({exc})") from None
    except RecursionError:
        raise ValueError("cannot be read (it nests too deep)") from None
    if not isinstance(data, dict) or data.get("format") != EDITS_FORMAT:
        raise ValueError("is not a postfocus edits file of this version")
    if data.get("size") != list(ps.size):
        raise ValueError(f"is for pictures of {data.get('size')}, not {list(ps.size)}")
    items = data.get("edits")
    if not isinstance(items, list) or _check(items) != data.get("check"):
        raise ValueError("has changed since it was written (checksum)")
    masks = data.get("masks") if isinstance(data.get("masks"), dict) else {}
    for name, record in masks.items():
        mask_path = path.parent / name
        if not _MASK_NAME.fullmatch(name) or not mask_path.is_file() or file_record(mask_path.read_bytes()) != record:
            raise ValueError(f"its mask {name} is missing or damaged")
    try:
        return parse_edits(items, ps.size, ps.used, list(masks))
    except OptionError as exc:
        raise ValueError(str(exc)) from None


def load_edits(ps: ProcessedStack) -> list[Edit]:
    """The stack's stored edits ([] when it has none).

    A damaged list is reported (:class:`~postfocus.errors.PostfocusWarning`)
    and healed: replaced by the list before the last change when that one is
    whole, else moved aside to ``edits.damaged.json`` and left out.

    Returns
    -------
    list of Edit
    """
    folder = _folder(ps)
    path, prev = folder / "edits.json", folder / "edits.prev.json"
    if not path.exists():
        return []
    try:
        return _read(path, ps)
    except ValueError as exc:
        problem = f"{path}: {exc}"
    with folder_lock(Path(ps.folder)):
        try:  # another process may have healed it meanwhile
            return _read(path, ps)
        except ValueError:
            pass
        try:
            edits = _read(prev, ps) if prev.exists() else None
        except ValueError:
            edits = None
        try:
            shutil.copyfile(path, folder / "edits.damaged.json")
        except OSError:
            pass  # unreadable: nothing to keep
        if edits is not None:
            shutil.copyfile(prev, folder / ".edits.restore")
            (folder / ".edits.restore").replace(path)
            warnings.warn(f"{problem}; restored the edits before the last change ({len(edits)})", PostfocusWarning,
                          stacklevel=2)
            return edits
        path.unlink(missing_ok=True)
        warnings.warn(f"{problem}; the edits are left out (kept as edits.damaged.json), the untouched result is used",
                      PostfocusWarning, stacklevel=2)
        return []


def save_edits(ps: ProcessedStack, edits: Sequence[Edit]) -> str:
    """Replace the stack's edit list (atomically, under the folder lock); the old one becomes the previous list.

    Parameters
    ----------
    ps : ProcessedStack
    edits : sequence of Edit
        The whole list; [] leaves the untouched result. Mask edits must name
        masks made by :func:`mask_edit`.

    Returns
    -------
    str
        :func:`edits_version` of the list.
    """
    folder = _folder(ps)
    items = [e.to_json() for e in edits]
    names = sorted({e.mask for e in edits if e.kind == "mask"})
    with folder_lock(Path(ps.folder)):
        folder.mkdir(exist_ok=True)
        masks = {}
        for name in names:
            try:
                masks[name] = file_record((folder / name).read_bytes())
            except OSError:
                raise OptionError("mask", name, "is not a mask of this stack's edits") from None
        path = folder / "edits.json"
        try:
            _read(path, ps)
            shutil.copyfile(path, folder / ".edits.prev")
            (folder / ".edits.prev").replace(folder / "edits.prev.json")
        except ValueError:
            pass  # no list yet, or a damaged one: the previous list stays the last whole one
        atomic_write_json(path, {"format": EDITS_FORMAT, "size": list(ps.size), "edits": items, "masks": masks,
                                 "check": _check(items)})
        _prune(folder)
    return edits_version(edits)


def discard_unkept_masks(ps: ProcessedStack) -> None:
    """Remove the masks :func:`mask_edit` kept for edits that were applied but not saved in the edit list."""
    folder = _folder(ps)
    if folder.is_dir():
        with folder_lock(Path(ps.folder)):
            _prune(folder)


def _prune(folder: Path) -> None:
    """Delete the masks neither the edit list nor the previous list names (under the folder lock)."""
    keep = set(_mask_names(folder / "edits.json")) | set(_mask_names(folder / "edits.prev.json"))
    for old in folder.glob("mask-*.png"):
        if old.name not in keep:
            old.unlink(missing_ok=True)


def _mask_names(path: Path) -> list[str]:
    try:
        return list(json.loads(path.read_text(encoding="utf-8")).get("masks", {}))
    except (OSError, ValueError, AttributeError, RecursionError):
        return []
