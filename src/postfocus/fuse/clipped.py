"""Clipped highlights' light, recovered from the frames where they are defocused.

A specular highlight can be many times brighter than white: in the frame
focused on it the camera clips it, and its light is unknown. Defocus moves
light but neither makes nor loses it (the point-spread function sums to one,
Pentland [1]_; the same property the exposure gains use): in a frame focused
``|j - d|`` frames away the highlight's light is spread over a disc of radius
``c |j - d|``. Were the spread light below white everywhere, the sums of the
frame ``j`` and of the highlight's own frame ``k`` over a region ``R``
holding the disc would differ by exactly what ``k`` clipped. A bright
highlight's bloom, though, often stays clipped at its core in every frame
(on the rendered pins, 80-99 % of it), so the light is read from the bloom's
unclipped flanks instead: frame ``j`` is modelled from the sharp composite
(the nearer layers' spill over the farther ones,
:func:`~postfocus.fuse.occlusion.occluder_cover`) plus the missing light
``E`` spread by the frame's disc, and ``E`` is fitted by least squares over
the blocks of ``R`` the frame does not clip. The excess is given to the
highlight's pixels evenly (only its total matters for the spill it makes in
other frames; the real light is concentrated in the brightest part, so the
fit, which sees the bloom's edge, reads somewhat less than the truth).

The frames are kept as block sums (:class:`ClippedLight`), per frame, over
the area they are seen in, so the sums of any region of whole blocks are at
hand when every frame is in.

References
----------
.. [1] A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987
   (the defocus blur as a normalised disc, radius linear in the focus distance).
.. [2] P. E. Debevec and J. Malik, "Recovering high dynamic range radiance maps from
   photographs", SIGGRAPH 1997 (light beyond the sensor's range read from other exposures
   of it; here the other "exposure" is the defocus spreading it).
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.fuse.occlusion import _disc, occluder_cover

__all__ = ["ClippedLight"]

Rect = tuple[int, int, int, int]


class ClippedLight:
    """Block sums of each frame over a box, and the light of clipped highlights recovered from them.

    Parameters
    ----------
    box : tuple of int
        (top, left, bottom, right) of the area the frames are folded in, in the frames' pixels.
    block : int
        Block size (px) of the sums: regions are measured in whole blocks.
    clipped : float
        Linear light from which a pixel is taken as clipped. The frames come with their exposure gains applied
        to the stored (encoded, saturating) values, so a pixel the camera clipped reads ``gain ** 2.2`` of
        white: 0.85 takes in gains down to 0.93.

    Examples
    --------
    >>> light = ClippedLight((0, 0, 8, 8), block=4)
    >>> light.add(0.0, np.full((8, 8, 3), 0.5, np.float32), (0, 0, 8, 8))
    >>> light.sums[0.0][0][..., 0].tolist()
    [[8.0, 8.0], [8.0, 8.0]]
    """

    #: Share of a highlight's spread light that must fall on unclipped blocks of a frame to read its light.
    SEEN = 0.1

    def __init__(self, box: Rect, *, block: int = 4, clipped: float = 0.85):
        t, l, b, r = box
        self.block, self.clipped = int(block), float(clipped)
        self.origin = (t // self.block * self.block, l // self.block * self.block)
        self.shape = (-(-b // self.block) - t // self.block, -(-r // self.block) - l // self.block)
        #: per frame position: (block sums of the three channels and of the pixels seen, blocks with a clipped pixel)
        self.sums: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, position: float, linear: np.ndarray, rect: Rect) -> None:
        """Fold ``linear`` (float32 (h, w, 3), linear light of the frame's part ``rect``) into the frame's sums."""
        f, (oy, ox) = self.block, self.origin
        it, il, ib, ir = rect
        y0, x0 = (it - oy) // f, (il - ox) // f
        y1, x1 = -(-(ib - oy) // f), -(-(ir - ox) // f)
        top, left = it - oy - y0 * f, il - ox - x0 * f
        padded = np.zeros(((y1 - y0) * f, (x1 - x0) * f, 4), np.float32)
        padded[top:top + ib - it, left:left + ir - il, :3] = linear
        padded[top:top + ib - it, left:left + ir - il, 3] = 1.0
        blocks = padded.reshape(y1 - y0, f, x1 - x0, f, 4)
        if position not in self.sums:
            self.sums[position] = (np.zeros(self.shape + (4,), np.float32), np.zeros(self.shape, bool))
        sums, clip = self.sums[position]
        sums[y0:y1, x0:x1] += blocks.sum(axis=(1, 3))
        clip[y0:y1, x0:x1] |= blocks[..., :3].max(axis=(1, 3, 4)) >= self.clipped

    def recover(self, colour: np.ndarray, rank: np.ndarray, origin: tuple[int, int], slope: float, *,
                near_to_far: bool = True) -> np.ndarray:
        """Give the clipped highlights of ``colour`` their light, in place; the pixels whose light was recovered.

        Parameters
        ----------
        colour : numpy.ndarray
            float32 (h, w, c >= 3) linear light of the sharp composite over an area whose top-left pixel is
            ``origin`` in the frames; its first three planes are raised where a highlight's light is found.
        rank : numpy.ndarray
            float32 (h, w) focus index of the same area, in positions of the folded frames.
        origin : tuple of int
            (top, left) of the area in the frames.
        slope : float
            Blur growth, px of disc radius a frame.
        near_to_far : bool
            Frame 0 is the nearest focus (False: the last frame is).

        Returns
        -------
        numpy.ndarray
            bool (h, w): the clipped pixels whose light is now known.
        """
        f = self.block
        h, w = rank.shape
        done = np.zeros((h, w), bool)
        mask = (colour[..., :3].max(axis=2) >= self.clipped).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        positions = np.array(sorted(self.sums), np.float64)
        if count < 2 or positions.size < 2:
            return done
        by = (np.arange(h) + origin[0] - self.origin[0]) // f  # the area's rows and columns in blocks
        bx = (np.arange(w) + origin[1] - self.origin[1]) // f
        gh, gw = self.shape
        for n in range(1, count):
            x, y, cw, ch, size = stats[n]
            if by[y] < 0 or bx[x] < 0 or by[y + ch - 1] >= gh or bx[x + cw - 1] >= gw:
                continue  # not wholly in the frames' sums
            inside = labels[y:y + ch, x:x + cw] == n
            depth = float(np.median(rank[y:y + ch, x:x + cw][inside]))
            own = float(positions[np.argmin(np.abs(positions - depth))])
            if abs(own - depth) > 1.0:
                continue
            reach = int(np.ceil(slope * float(np.abs(positions - depth).max()))) + 2 * f
            t, l = max(0, y - reach), max(0, x - reach)
            crop = (slice(t, min(h, y + ch + reach)), slice(l, min(w, x + cw + reach)))
            highlight = labels[crop] == n
            excess = self._excess(highlight, colour[crop][..., :3], rank[crop], by[crop[0]], bx[crop[1]],
                                  depth, positions, slope, near_to_far)
            if excess is None:
                continue
            colour[y:y + ch, x:x + cw, :3][inside] += (excess / size).astype(np.float32)
            done[y:y + ch, x:x + cw] |= inside
        return done

    def _excess(self, highlight: np.ndarray, colour: np.ndarray, rank: np.ndarray, by: np.ndarray, bx: np.ndarray,
                depth: float, positions: np.ndarray, slope: float, near_to_far: bool) -> np.ndarray | None:
        """The light (per channel) the ``highlight`` lost to clipping; None when no frame shows enough of it.

        ``highlight`` (bool), ``colour`` (linear) and ``rank`` cover a crop whose rows and columns lie in the
        blocks ``by``, ``bx``. Each frame ``j`` at least a frame from the highlight is modelled from the
        composite as the nearer layers' spill over the farther ones
        (:func:`~postfocus.fuse.occlusion.occluder_cover`), and the highlight's missing light ``E`` as spread
        by the frame's disc (``m``: the disc-blurred highlight, sum 1). In the blocks of the region the disc
        reaches that the frame does not clip, ``F_j - model_j = E m`` (least squares, per channel). The frame
        where the most of ``m`` falls in such blocks is used, if at least :attr:`SEEN` of it does.
        """
        f, (gh, gw) = self.block, self.shape
        small = np.zeros((gh, gw), np.uint8)
        ys, xs = np.nonzero(highlight)
        small[by[ys], bx[xs]] = 1
        valid = ((by >= 0) & (by < gh))[:, None] & ((bx >= 0) & (bx < gw))[None, :]
        flat = (np.clip(by, 0, gh - 1)[:, None] * gw + np.clip(bx, 0, gw - 1)[None, :])[valid]
        size = float(highlight.sum())

        def blocks(image: np.ndarray) -> np.ndarray:
            """Block sums of a crop's plane(s), (gh * gw, planes)."""
            image = image.reshape(image.shape[0], image.shape[1], -1)
            return np.stack([np.bincount(flat, image[..., c][valid], gh * gw) for c in range(image.shape[2])], 1)

        best = None
        for j in positions:
            if abs(j - depth) < 1.0:
                continue
            radius = slope * abs(j - depth)
            grow = int(np.ceil(radius / f)) + 1
            region = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)).astype(bool)
            sums_j, clip_j = self.sums[float(j)]
            ring = (region & ~clip_j).ravel()
            full = sums_j[..., 3].ravel()
            ring &= full >= 0.99 * np.bincount(flat, None, gh * gw)  # wholly seen blocks only
            if not ring.any():
                continue
            m = blocks(cv2.filter2D(highlight.astype(np.float32) / size, -1, _disc(radius),
                                    borderType=cv2.BORDER_CONSTANT))[:, 0]
            shown = float(m[ring].sum())
            if shown < self.SEEN or (best is not None and shown <= best[0]):
                continue
            near = rank < np.float32(j - 1.0) if near_to_far else rank > np.float32(j + 1.0)
            cover, spill = occluder_cover(rank, float(j), slope, colour=np.where(near[..., None], colour, 0.0),
                                          near_to_far=near_to_far)
            model = blocks(spill + (1.0 - cover)[..., None] * np.where(near[..., None], 0.0, colour))
            residual = sums_j[..., :3].reshape(-1, 3)[ring] - model[ring]
            weight = m[ring]
            best = (shown, np.maximum(weight @ residual / float(weight @ weight), 0.0))
        return None if best is None else best[1]

