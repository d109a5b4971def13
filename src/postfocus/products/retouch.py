"""Retouching: paint parts of the all-in-focus picture from a source frame, another fusion, or back to the result.

No automatic stack is right at every pixel; a halo or a ghost is painted away
by copying, with a soft brush, from the aligned frame that has that spot right
(as in Zerene Stacker's and Helicon Focus's retouching). The aligned frames of
a processed stack are in the result's geometry and exposure (the gain of each
frame is applied before it is cached), so a frame's pixels drop into the
result as they are: under a fully opaque, hard brush the retouched pixels
*are* the frame's.

Sources: a frame number; ``"sharpest"`` (for each painted region, the frame
whose focus measure under the mask is highest, from the stack's focus volume);
a fusion method (``"pyramid"``, ``"depthmap"``: fused from the aligned frames
on demand and kept in the stack folder); ``"result"``, the untouched
all-in-focus picture (painting with it undoes). Each edit is blended as
``out = out * (1 - a) + source * a`` with ``a = mask * opacity``, in order.

A brush stroke's mask is a function of the distance ``d`` from each pixel
centre to the stroke's path: 1 within ``hardness * radius``, falling to 0 at
``radius`` with a smoothstep; the web app draws its preview with the same
function (``web/static/retouch.js``).

References
----------
Zerene Systems, "Retouching", Zerene Stacker documentation (2023), https://zerenesystems.com/cms/stacker/docs/retouching
Helicon Soft, "Retouching", Helicon Focus documentation (2023), https://www.heliconsoft.com/focus/help/english/HeliconFocus.html
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from postfocus.errors import InputError, OptionError
from postfocus.io.images import read_image
from postfocus.options import DEFAULT_METHOD, METHODS, is_number
from postfocus.products.edits import Edit, check_source, load_edits
from postfocus.store import ProcessedStack, folder_lock

__all__ = [
    "apply_edits",
    "as_mask",
    "brush_falloff",
    "read_mask",
    "replay",
    "resolve_sources",
    "retouch",
    "retouched",
    "sharpest_under",
    "stroke_mask",
]

_EMPTY = 1.0 / 512  # mask values below this change no 8-bit or 16-bit pixel visibly: outside a region


def as_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask as float32 (H, W) in [0, 1]: bool, uint8 (0..255), uint16 (0..65535) or float (clipped).

    A colour mask counts by its mean. ``OptionError`` (``mask``) when its size is not ``size`` or it is not finite.

    Examples
    --------
    >>> as_mask(np.array([[0, 255]], np.uint8), (1, 2)).tolist()
    [[0.0, 1.0]]
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf":  # (a complex mask was taken by its real part, a string one a ValueError)
        raise OptionError("mask", str(mask.dtype), "values of this type cannot be a mask; use bool, uint8, uint16 or "
                                                   "float")
    if mask.ndim == 3:
        mask = mask.mean(axis=2) if mask.dtype.kind == "f" else mask.astype(np.float32).mean(axis=2) / (
            65535.0 if mask.dtype == np.uint16 else 255.0 if mask.dtype == np.uint8 else 1.0)
    if mask.ndim != 2 or mask.shape != tuple(size):
        shape = "x".join(map(str, mask.shape[::-1])) if mask.ndim == 2 else str(mask.shape)
        raise OptionError("mask", shape, f"is not the size of the stack's pictures ({size[1]}x{size[0]})")
    if mask.dtype == np.bool_:
        return mask.astype(np.float32)
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) / 255.0
    if mask.dtype == np.uint16:
        return mask.astype(np.float32) / 65535.0
    out = mask.astype(np.float32)
    if not np.isfinite(out).all():
        raise OptionError("mask", "not finite", "holds NaN or infinite values")
    return np.clip(out, 0.0, 1.0)


def read_mask(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A mask image (white: retouch, black: keep; grey: partly) as float32 (H, W) in [0, 1].

    Raises
    ------
    InputError
        The file cannot be read as an image.
    OptionError
        ``mask``: its size is not ``size``.
    """
    # Decoded as the frames are (io.images: libpng's and libjpeg's complaints said by postfocus, in one line,
    # not printed on stderr as OpenCV's readers did); a colour mask counts by its mean (as_mask).
    try:
        pixels = read_image(path, stored=True) if Path(path).is_file() else None
    except InputError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise InputError(f"{path}: cannot read this mask ({reason}; a PNG, JPEG or TIFF image, white where to "
                         "retouch)") from None
    if pixels is None:
        raise InputError(f"{path}: cannot read this mask (a PNG, JPEG or TIFF image, white where to retouch)")
    try:
        return as_mask(pixels, size)
    except OptionError as exc:
        raise OptionError("mask", f"{path} ({exc.value})", exc.reason) from None


def brush_falloff(distance: np.ndarray, radius: float, hardness: float) -> np.ndarray:
    """Brush strength at ``distance`` from the stroke's path: 1 inside ``hardness * radius``, 0 from ``radius`` on.

    Between, a smoothstep over at least one pixel (a hard brush still has an anti-aliased edge).

    Examples
    --------
    >>> brush_falloff(np.array([0.0, 5.0, 10.0]), 10.0, 0.0).round(3).tolist()
    [1.0, 0.5, 0.0]
    """
    ramp = max(radius * (1.0 - hardness), 1.0)
    t = np.clip((radius - np.asarray(distance, np.float64)) / ramp, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def stroke_mask(edit: Edit, size: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """A brush stroke's mask over its bounding box: ``(mask, y0, x0)``, float32, empty when outside the picture.

    Distances are exact (to each segment of the path, from pixel centres at ``i + 0.5``).
    """
    h, w = size
    pts = np.asarray(edit.points, np.float64).reshape(-1, 2)
    r = float(edit.radius)
    x0, y0 = max(0, int(np.floor(pts[:, 0].min() - r))), max(0, int(np.floor(pts[:, 1].min() - r)))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max() + r)) + 1), min(h, int(np.ceil(pts[:, 1].max() + r)) + 1)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.float32), 0, 0
    dist = np.full((y1 - y0, x1 - x0), np.inf)
    segments = zip(pts, pts[1:]) if len(pts) > 1 else [(pts[0], pts[0])]
    for p, q in segments:
        sx0 = max(x0, int(np.floor(min(p[0], q[0]) - r)))
        sx1 = min(x1, int(np.ceil(max(p[0], q[0]) + r)) + 1)
        sy0 = max(y0, int(np.floor(min(p[1], q[1]) - r)))
        sy1 = min(y1, int(np.ceil(max(p[1], q[1]) + r)) + 1)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        xs = np.arange(sx0, sx1, dtype=np.float64)[None, :] + 0.5
        ys = np.arange(sy0, sy1, dtype=np.float64)[:, None] + 0.5
        d = q - p
        length2 = float(d @ d)
        t = 0.0 if length2 == 0 else np.clip(((xs - p[0]) * d[0] + (ys - p[1]) * d[1]) / length2, 0.0, 1.0)
        seg = np.hypot(xs - (p[0] + t * d[0]), ys - (p[1] + t * d[1]))
        view = dist[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
        np.minimum(view, seg, out=view)
    return brush_falloff(dist, r, float(edit.hardness)), y0, x0


def sharpest_under(ps: ProcessedStack, mask: np.ndarray, y0: int = 0, x0: int = 0) -> int:
    """The frame whose focus measure, weighted by ``mask`` (placed at ``y0, x0``), is highest.

    Read from the stack's focus volume (analysis size), as a tap reads it over a window.
    """
    volume = ps.maps.volume
    n, mh, mw = volume.shape
    h, w = ps.size
    sy, sx = mh / h, mw / w
    mh0, mw0 = int(np.floor(y0 * sy)), int(np.floor(x0 * sx))
    mh1 = min(mh, max(mh0 + 1, int(np.ceil((y0 + mask.shape[0]) * sy))))
    mw1 = min(mw, max(mw0 + 1, int(np.ceil((x0 + mask.shape[1]) * sx))))
    mh0, mw0 = min(mh0, mh1 - 1), min(mw0, mw1 - 1)
    weights = cv2.resize(mask.astype(np.float32), (mw1 - mw0, mh1 - mh0), interpolation=cv2.INTER_AREA)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    scores = np.tensordot(np.asarray(volume[:, mh0:mh1, mw0:mw1], np.float32), weights, axes=([1, 2], [0, 1]))
    return int(ps.used[int(np.argmax(scores))])


def _fused(ps: ProcessedStack, method: str) -> np.ndarray:
    """The all-in-focus picture of ``method`` as kept in the folder (fused from the aligned frames and kept the
    first time): always the file's pixels, so that a replay gives the same picture every time."""
    path = ps.all_in_focus_path(method)
    if not path.exists():
        with folder_lock(Path(ps.folder)):
            if not path.exists():
                ps.all_in_focus(method)
    return read_image(path)


class _Sources:
    """The pictures edits copy from, read when first needed (at most two frames held at once)."""

    def __init__(self, ps: ProcessedStack, method: str, result: np.ndarray | None):
        self.ps, self.method = ps, method
        self._result = result
        self._pictures: OrderedDict[int | str, np.ndarray] = OrderedDict()

    def result(self) -> np.ndarray:
        if self._result is None:
            self._result = _fused(self.ps, self.method)
        return self._result

    def picture(self, source: int | str) -> np.ndarray:
        if source == "result" or source == self.method:
            return self.result()
        if source in self._pictures:
            self._pictures.move_to_end(source)
            return self._pictures[source]
        if isinstance(source, str):
            picture = _fused(self.ps, source)
        else:
            picture = self.ps.read_frame(source)
        self._pictures[source] = picture
        while sum(isinstance(k, int) for k in self._pictures) > 2:
            oldest = next(k for k in self._pictures if isinstance(k, int))
            del self._pictures[oldest]
        return picture


def _regions(edit: Edit, ps: ProcessedStack, mask: np.ndarray | None) -> Iterator[tuple[np.ndarray, int, int]]:
    """``(mask crop, y0, x0)`` of each region an edit paints: a stroke is one; a mask, one per connected part
    when its source is ``"sharpest"`` (each part takes its own sharpest frame), else one."""
    if edit.kind == "stroke":
        crop, y0, x0 = stroke_mask(edit, ps.size)
        if crop.size and crop.max() >= _EMPTY:
            yield crop, y0, x0
        return
    inside = (mask >= _EMPTY).astype(np.uint8)
    if edit.source != "sharpest":
        ys, xs = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
        if ys.size:
            yield mask[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1], int(ys[0]), int(xs[0])
        return
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=8)
    for k in range(1, count):
        x, y, bw, bh = (int(v) for v in stats[k, :4])
        part = np.where(labels[y:y + bh, x:x + bw] == k, mask[y:y + bh, x:x + bw], 0.0).astype(np.float32)
        yield part, y, x


def _edit_mask(ps: ProcessedStack, edit: Edit) -> np.ndarray | None:
    if edit.kind != "mask":
        return None
    mask = read_mask(Path(ps.folder) / "edits" / edit.mask, ps.size)
    if edit.feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), edit.feather)
    return mask


def _paint(image: np.ndarray, source: np.ndarray, mask: np.ndarray, y0: int, x0: int, opacity: float) -> None:
    y1, x1 = y0 + mask.shape[0], x0 + mask.shape[1]
    a = (mask * np.float32(opacity))[..., None]
    under = image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = under + (source[y0:y1, x0:x1] - under) * a
    full = a[..., 0] >= 1.0  # exactly the source where it is fully painted (no rounding in the blend)
    image[y0:y1, x0:x1][full] = source[y0:y1, x0:x1][full]


def _apply(ps: ProcessedStack, image: np.ndarray, edits: Sequence[Edit], sources: _Sources,
           masks: dict[int, np.ndarray] | None = None) -> list[list[int | str]]:
    used = []
    for k, edit in enumerate(edits):
        mask = masks[k] if masks and k in masks else _edit_mask(ps, edit)
        chosen: list[int | str] = []
        for crop, y0, x0 in _regions(edit, ps, mask):
            source = sharpest_under(ps, crop, y0, x0) if edit.source == "sharpest" else edit.source
            chosen.append(source)
            _paint(image, sources.picture(source), crop, y0, x0, edit.opacity)
        used.append(chosen)
    return used


def retouch(ps: ProcessedStack, mask: np.ndarray, *, source: int | str, opacity: float = 1.0,
            feather: float = 0.0, base: np.ndarray | None = None, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Paint the all-in-focus picture (or ``base``) from ``source`` where ``mask`` says.

    Parameters
    ----------
    ps : ProcessedStack
        From :func:`postfocus.process`.
    mask : numpy.ndarray
        (H, W) in the stack's output size: bool, uint8, uint16 or float in [0, 1] (see :func:`as_mask`).
    source : int or str
        A kept frame number; ``"sharpest"`` (per connected region of the mask, the frame sharpest under it);
        a fusion method (``"pyramid"``, ``"depthmap"``); ``"result"`` (the untouched picture: undo).
    opacity : float
        0..1.
    feather : float
        Gaussian blur (sigma, pixels) of the mask's edge; 0 to the picture's long edge.
    base : numpy.ndarray, optional
        Float (H, W, 3) in [0, 1], finite, to paint on (default: the all-in-focus picture of ``method``); not changed.
    method : str
        Fusion method of the all-in-focus picture (also what ``"result"`` means).

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3).

    Raises
    ------
    OptionError
        ``ps`` (not a processed stack), ``mask`` (size), ``source``, ``opacity``, ``feather``, ``base``,
        ``method``.

    Examples
    --------
    >>> ps = process("pcb/")  # doctest: +SKIP
    >>> fixed = retouch(ps, read_mask("halo.png", ps.size), source=4, feather=3)  # doctest: +SKIP
    """
    if not isinstance(ps, ProcessedStack):  # (a folder's path was an AttributeError from deep inside)
        raise OptionError("ps", ps, "not a processed stack; open one with postfocus.process(...) first")
    if method not in METHODS:
        raise OptionError("method", method, f"use one of {', '.join(METHODS)}")
    source = check_source(source, ps.used)
    # (a string or None was a TypeError; a feather of 1e5 px asked OpenCV for a kernel of 800,001 taps a side,
    # 10 GB for a 300x200 picture, and 1e9 was OpenCV's assertion: the long edge blurs any mask to its mean)
    for name, value, top in (("opacity", opacity, 1.0), ("feather", feather, float(max(ps.size)))):
        if not is_number(value) or not math.isfinite(value) or not 0 <= value <= top:
            raise OptionError(name, value, f"must be a number from 0 to {top:g}"
                              + ("" if name == "opacity" else " (pixels: the picture's long edge)"))
    mask = as_mask(mask, ps.size)
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), float(feather))
    sources = _Sources(ps, method, None)
    image = np.array(sources.result() if base is None else _base(base, ps.size), np.float32, copy=True)
    _apply(ps, image, [Edit("mask", source, float(opacity), mask="(array)", feather=float(feather))], sources,
           masks={0: mask})
    return image


def _base(base: object, size: tuple[int, int]) -> np.ndarray:
    """``retouch``'s ``base``: a finite float RGB picture of the stack's size (a grey, RGBA, smaller or string one was
    NumPy's broadcasting ValueError while painting; a uint8 one was painted on as values of 0 to 255)."""
    picture = np.asarray(base)
    if picture.dtype.kind != "f":
        raise OptionError("base", str(picture.dtype), "must be a float picture in [0, 1] (as retouch returns it)")
    if picture.shape != (*size, 3):
        raise OptionError("base", "x".join(map(str, picture.shape)),
                          f"must be an RGB picture of the stack's size ({size[0]}x{size[1]}x3, rows first)")
    if not np.isfinite(picture).all():
        raise OptionError("base", "not finite", "holds NaN or infinite values")
    return picture


def apply_edits(ps: ProcessedStack, edits: Sequence[Edit], *, method: str = DEFAULT_METHOD) -> np.ndarray:
    """The all-in-focus picture of ``method`` with ``edits`` replayed in order, at full resolution.

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3); the untouched picture when ``edits`` is empty.
    """
    return replay(ps, edits, method=method)[0]


def replay(ps: ProcessedStack, edits: Sequence[Edit], *,
           method: str = DEFAULT_METHOD) -> tuple[np.ndarray, list[list[int | str]]]:
    """:func:`apply_edits`, and what each edit copied from per region (as :func:`resolve_sources` says)."""
    sources = _Sources(ps, method, None)
    image = np.array(sources.result(), np.float32, copy=True)
    return image, _apply(ps, image, edits, sources)


def resolve_sources(ps: ProcessedStack, edits: Sequence[Edit]) -> list[list[int | str]]:
    """What each edit copies from, per region (``"sharpest"`` resolved to frame numbers), without painting."""
    out = []
    for edit in edits:
        regions = _regions(edit, ps, _edit_mask(ps, edit))
        out.append([sharpest_under(ps, c, y, x) if edit.source == "sharpest" else edit.source for c, y, x in regions])
    return out


def retouched(ps: ProcessedStack, method: str = DEFAULT_METHOD) -> np.ndarray:
    """The all-in-focus picture with the stack's stored edits (:func:`~postfocus.products.edits.load_edits`)."""
    edits = load_edits(ps)
    return apply_edits(ps, edits, method=method) if edits else _fused(ps, method)
