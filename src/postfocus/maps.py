"""The maps of a stack: focus index, confidence, focus volume and motion, in one geometry.

Pass 1 (:mod:`postfocus.pipeline.analyse`) measures every frame at the
analysis size (long edge about 800 px) and turns the measures into these maps.
One type carries them everywhere: the in-memory result of
:func:`postfocus.stack`, the stack folder of :func:`postfocus.process`, and
every product that reads depth (refocus, pop, depth, aperture, mesh, page).

Geometry
--------
The maps cover ``size`` full-resolution pixels. Pass 1 makes them in the
reference frame's geometry; :meth:`StackMaps.crop` cuts them to the output
geometry (the area every frame covers), which is what results and stack
folders hold. A full-resolution pixel ``(x, y)`` sits at map pixel
``(x * w / W, y * h / H)`` (:meth:`StackMaps.to_map`). Cut maps remember where they were cut
(:class:`MapPlace`), so pass 2 upscales them onto the same full-resolution pixels as the uncut maps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from postfocus.motion import region_frames

__all__ = ["SLOPE_RANGE", "MapPlace", "MapsView", "StackMaps", "known_slope"]


class MapPlace(NamedTuple):
    """Where maps cut by :meth:`StackMaps.crop` sit in the maps they were cut from.

    The cut starts at map pixel ``map_origin`` and full-resolution pixel ``origin``; both are whole
    numbers, but the map grid's scale ``shape / size`` is not, so a map pixel's centre does not fall at
    the same full-resolution place in the cut maps' own grid (``cut / (b - t)``) as in the uncut maps'
    (up to half a map pixel, a full-resolution pixel or two at the analysis size).
    :func:`~postfocus.fuse.base.region_grid` upscales by the uncut grid.

    Attributes
    ----------
    shape : tuple of int
        (h, w) of the uncut maps.
    size : tuple of int
        (H, W) full-resolution pixels of the uncut maps.
    origin : tuple of int
        (top, left) of the cut, full-resolution pixels of the uncut geometry.
    map_origin : tuple of int
        (top, left) of the cut, map pixels of the uncut maps.
    cut : tuple of int
        (h, w) of the cut maps (the place is theirs only while their shape is this).
    """

    shape: tuple[int, int]
    size: tuple[int, int]
    origin: tuple[int, int]
    map_origin: tuple[int, int]
    cut: tuple[int, int]

    @classmethod
    def from_list(cls, value: object) -> "MapPlace | None":
        """The place as a manifest keeps it (five pairs of whole numbers); None for anything else, and for a place
        no cut can have (a hand-edited manifest's: ``Infinity`` was an OverflowError in every run, a cut before or
        past the uncut maps upscaled the maps from elsewhere; review21).

        Examples
        --------
        >>> MapPlace.from_list([[30, 40], [120, 160], [8, 4], [2, 1], [20, 30]]).cut
        (20, 30)
        >>> MapPlace.from_list([[30, 40], [120, 160], [8, 4], [12, 1], [20, 30]]) is None  # rows 12 to 32 of 30
        True
        """
        if not (isinstance(value, (list, tuple)) and len(value) == 5
                and all(isinstance(p, (list, tuple)) and len(p) == 2 and all(map(_side, p)) for p in value)):
            return None
        place = cls(*(tuple(p) for p in value))
        fits = all(place.shape[k] >= place.map_origin[k] + place.cut[k] and place.size[k] > place.origin[k]
                   and min(place.shape[k], place.size[k], place.cut[k]) > 0 for k in (0, 1))
        return place if fits else None


_MAX_SIDE = 1 << 20  # (as a stack folder's manifest: postfocus.store.records.MAX_SIDE)


def _side(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SIDE


SLOPE_RANGE = (1e-3, 1e3)
"""Blur growths, map pixels a frame, a kept slope may have (:func:`~postfocus.fuse.occlusion.defocus_slope` measures
0.05 to 6.9: ratios 0.03 to 0.97 of the peak 1 to 4 frames away, or its fallback 1)."""


def known_slope(value: object) -> float | None:
    """A kept :attr:`StackMaps.blur_slope` (e.g. a manifest's): a number in :data:`SLOPE_RANGE`, else None (measured
    again; 1e308 was a ZeroDivisionError and 10**400 a TypeError in every merge: review21).

    Examples
    --------
    >>> known_slope(1.5), known_slope(None), known_slope("2"), known_slope(True), known_slope(1e308)
    (1.5, None, None, None, None)
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    low, high = SLOPE_RANGE
    return float(value) if low <= value <= high else None  # (NaN compares False; a long int compares exactly)


@dataclass
class StackMaps:
    """Per-pixel maps of a stack at analysis resolution.

    Attributes
    ----------
    focus_index : numpy.ndarray
        float32 (h, w) frame number in focus per pixel (sub-frame).
    confidence : numpy.ndarray
        float32 (h, w) confidence of ``focus_index`` in [0, 1].
    volume : numpy.ndarray
        (len(used), h, w) focus measure of each used frame (float32 in
        memory; float16, divided by its maximum, in a stack folder).
    used : list of int
        Frame numbers of ``volume``'s slices: the frames that could be aligned.
    size : tuple of int
        (H, W) full-resolution pixels the maps cover.
    motion : numpy.ndarray or None
        float32 (h, w) motion mask in [0, 1] (None: motion not detected);
        see :mod:`postfocus.motion`.
    motion_share : float
        Fraction of the picture whose content moved during the sweep.
    place : MapPlace or None
        Where these maps were cut from larger ones (:meth:`crop`); None: uncut, or not known (a stack
        folder written before the fifteenth session).
    blur_slope : float or None
        The blur growth (map px a used frame) of the occlusion-safe index, once pass 2 has measured it on the
        uncut maps (:func:`~postfocus.fuse.occlusion.occlusion_aware_index`); a stack folder keeps it, so its
        merges use the same, not one measured again on its cut, float16 volume. None: not measured yet.
    guide : numpy.ndarray or None
        float32 (h, w) grey sharpest-frame composite the map was made with (:attr:`Analysis.guide`): the
        background solver reads its blur growth against it (:func:`~postfocus.fuse.occlusion.solver_growth`).
        None: not kept (a stack folder's maps).
    """

    focus_index: np.ndarray
    confidence: np.ndarray
    volume: np.ndarray
    used: list[int]
    size: tuple[int, int]
    motion: np.ndarray | None = None
    motion_share: float = 0.0
    place: MapPlace | None = None
    blur_slope: float | None = None
    guide: np.ndarray | None = None

    @property
    def grid_place(self) -> MapPlace | None:
        """:attr:`place` while it describes these maps (the same shape as when cut), else None."""
        return self.place if self.place is not None and tuple(self.place.cut) == self.shape else None

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the maps."""
        return tuple(self.focus_index.shape[:2])  # type: ignore[return-value]

    def map_grid(self) -> tuple[tuple[float, float], tuple[int, int], tuple[int, int]]:
        """``((sx, sy), (ox, oy), (mx, my))``: full-resolution pixel ``x`` sits at map coordinate ``(x + ox) * sx - mx``
        (``y`` likewise); a reader that rounds to a map pixel rounds ``(x + ox) * sx`` and then subtracts ``mx``.

        Cut maps (:attr:`grid_place`) answer the uncut maps' grid and the cut's origins, so every reader (taps,
        :meth:`upscale`) finds a pixel where the uncut maps had it (``postfocus stack``'s merge,
        :func:`~postfocus.fuse.base.region_grid`); maps without a place their own grid (origins 0).

        Examples
        --------
        >>> m = StackMaps(np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32), np.zeros((1, 2, 4)), [0], (20, 40))
        >>> m.map_grid()
        ((0.1, 0.1), (0, 0), (0, 0))
        >>> m.place = MapPlace((8, 9), (80, 90), (13, 21), (1, 2), (2, 4))
        >>> m.map_grid()
        ((0.1, 0.1), (21, 13), (2, 1))
        """
        place = self.grid_place
        if place is None:
            (h, w), (H, W) = self.shape, self.size
            return (w / W, h / H), (0, 0), (0, 0)
        (ph, pw), (PH, PW), (oy, ox), (my, mx) = place.shape, place.size, place.origin, place.map_origin
        return (pw / PW, ph / PH), (ox, oy), (mx, my)

    def to_map(self, x: float, y: float) -> tuple[float, float]:
        """Full-resolution pixel coordinates -> map coordinates (:meth:`map_grid`).

        Examples
        --------
        >>> m = StackMaps(np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32), np.zeros((1, 2, 4)), [0], (20, 40))
        >>> m.to_map(10, 10)
        (1.0, 1.0)
        """
        if self.grid_place is None:  # (today's arithmetic, to the bit)
            (h, w), (H, W) = self.shape, self.size
            return x * w / W, y * h / H
        (sx, sy), (ox, oy), (mx, my) = self.map_grid()
        return (x + ox) * sx - mx, (y + oy) * sy - my

    def slices(self, frames: Sequence[int]) -> np.ndarray:
        """float32 (len(frames), h, w) focus volume of some used frames (by frame number)."""
        position = {f: k for k, f in enumerate(self.used)}
        return np.asarray(self.volume[[position[f] for f in frames]], np.float32)

    def motion_frames(self, frames: Sequence[int] | None = None) -> tuple[np.ndarray, dict[int, int]]:
        """Region labels of the motion mask and the one frame (of ``frames``) each moving region shows.

        Parameters
        ----------
        frames : sequence of int, optional
            Candidate frames (default: every used frame).

        Returns
        -------
        labels : numpy.ndarray
            int32 (h, w) region labels, 0 where nothing moved.
        choice : dict
            ``{label: frame}``, see :func:`postfocus.motion.region_frames`.
        """
        frames = list(self.used if frames is None else frames)
        # Nothing moved (the usual case): no region, and no float32 copy of the volume's slices to vote with.
        if self.motion is None or not (np.asarray(self.motion) > 0).any():
            return np.zeros(self.shape, np.int32), {}
        position = {f: k for k, f in enumerate(self.used)}  # (slice by slice: no float32 copy of the whole volume)
        return region_frames(self.motion, [self.volume[position[f]] for f in frames], frames)

    def crop(self, box: tuple[int, int, int, int], scale: float) -> "StackMaps":
        """The maps of a full-resolution ``box`` (top, left, bottom, right) of their geometry.

        Parameters
        ----------
        box : tuple of int
            Rectangle in full-resolution pixels of ``size``.
        scale : float
            Map pixels per full-resolution pixel (the analysis scale).

        Returns
        -------
        StackMaps
            Covering ``box``; its arrays are views of these (no copy: at 4K a
            copy of the focus volume alone is about 40 MB at the end of a run).
        """
        t, l, b, r = box
        mt, ml = int(round(t * scale)), int(round(l * scale))
        mb, mr = max(mt + 1, int(round(b * scale))), max(ml + 1, int(round(r * scale)))

        def cut(a: np.ndarray | None, axis0: bool = False) -> np.ndarray | None:
            if a is None:
                return None
            return a[:, mt:mb, ml:mr] if axis0 else a[mt:mb, ml:mr]

        base = self.grid_place  # (a cut of a cut is placed in the first maps)
        if base is None:
            place = MapPlace(self.shape, tuple(self.size), (t, l), (mt, ml), (mb - mt, mr - ml))
        else:
            (ot, ol), (pt, pl) = base.origin, base.map_origin
            place = MapPlace(base.shape, base.size, (ot + t, ol + l), (pt + mt, pl + ml), (mb - mt, mr - ml))
        return replace(self, focus_index=cut(self.focus_index), confidence=cut(self.confidence),
                       volume=cut(self.volume, axis0=True), motion=cut(self.motion), guide=cut(self.guide), size=(b - t, r - l),
                       place=place)

    def upscale(self, values: np.ndarray) -> np.ndarray:
        """A map (h, w) resized bilinearly to the full-resolution ``size``; cut maps on the uncut maps' grid
        (:attr:`grid_place`, as pass 2 upscales them), others by a plain resize."""
        from postfocus.fuse.base import region_grid, upscale_region  # (fuse reads this module's types)

        H, W = self.size
        small = np.asarray(values, np.float32)
        place = self.grid_place if small.shape[:2] == self.shape else None
        if place is None:
            return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        return upscale_region(small, (H, W), grid=region_grid(self.shape, (H, W), (0, 0, H, W), place))


class MapsView:
    """The maps of a result or a stack folder as attributes: ``focus_index``, ``confidence``, ... of ``maps``.

    Mixed into :class:`~postfocus.result.StackResult` and
    :class:`~postfocus.store.ProcessedStack`, so both answer the same names
    with the same meaning (output geometry, analysis size).
    """

    maps: StackMaps

    @property
    def focus_index(self) -> np.ndarray:
        """float32 (h, w) frame number in focus per pixel (sub-frame)."""
        return self.maps.focus_index

    @property
    def confidence(self) -> np.ndarray:
        """float32 (h, w) confidence of :attr:`focus_index` in [0, 1]."""
        return self.maps.confidence

    @property
    def volume(self) -> np.ndarray:
        """(len(used), h, w) focus measure of each used frame."""
        return self.maps.volume

    @property
    def motion(self) -> np.ndarray | None:
        """float32 (h, w) motion mask in [0, 1], or None (made with ``motion="off"``)."""
        return self.maps.motion

    @property
    def motion_share(self) -> float:
        """Fraction of the picture whose content moved during the sweep."""
        return self.maps.motion_share
