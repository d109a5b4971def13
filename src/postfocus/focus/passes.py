"""Whether a stack goes through focus once, or turns back and repeats focus positions, read from its focus volume.

In a sweep through focus once the focus position moves one way, so a pixel's focus curve (its focus measure
frame by frame) has one peak: it rises to the frame focused on its depth and falls beyond (the depth of field
spreads the peak over a few frames, never over two separate ones). A sweep that turns back (a video racking
focus out and back, two brackets in one folder) passes the pixel's depth twice: the curve rises, falls, and
rises again to the same height. :func:`sweep_passes` reads the raw focus measure on a grid of at most
``most`` pixels whose curves have a clear peak (the focus map's test: the top well above the noise floor and
above the mean frame, Pertuz et al. [1]_) and counts the pixels whose curve comes back to :data:`HIGH` of its
top after falling below :data:`LOW` of it: on the real stacks through focus once 0.6-5.4 % of them (the two MP4s included) (noise,
pixels where a near outline's blur crosses a far texture), on stacks made of the same frames forward and back
89-100 %. Above :data:`SHARE` the stack is said to repeat.

The pairs of peaks then say where it turned: a pass back puts the two peaks of a depth at ``t - d`` and
``t + d`` around the turn ``t`` (their sum is constant), a second pass forward at ``p`` and ``p + D`` (their
difference is). Whichever of the two spreads least says which it is.

References
----------
.. [1] S. Pertuz, D. Puig and M. A. Garcia, "Analysis of focus measure operators for shape-from-focus",
   Pattern Recognition 46(5), 2013.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["HIGH", "LOW", "OPENINGS", "SHARE", "SweepPasses", "passes_said", "said_passes", "sweep_passes"]

HIGH = 0.7
"""A frame is sharp at a pixel when its focus measure is at least this share of the pixel's top."""
LOW = 0.35
"""... and out of focus there below this share (half of :data:`HIGH`: a dip that noise does not make)."""
SHARE = 0.25
"""Share of the pixels with a clear peak whose curve comes back after a dip from which the stack is said to
repeat focus positions (through once: at most 0.054 on the real stacks; forward and back: 0.89 and more)."""
OPENINGS = ("the focus turns back at ", "the focus starts again at ")
"""How :func:`passes_said`'s sentence opens (a processed stack's warnings are searched for it:
:func:`postfocus.products.order.depth_order`)."""
_FLOOR = 8.0  # a clear peak: the top at least this many times the stack's noise floor
_MIN_PIXELS = 200  # fewer pixels with a clear peak: nothing is said


@dataclass(frozen=True)
class SweepPasses:
    """How a stack's focus went, as positions among the volume's slices (the used frames).

    Attributes
    ----------
    repeats : bool
        Focus positions come back: the sweep is not one pass through focus.
    share : float
        Share of the pixels with a clear focus peak whose focus curve peaks again after a dip.
    pixels : int
        Pixels with a clear peak that were read.
    back : bool
        The focus turns back (the repeated positions come in reverse order); False: it starts again.
    first, last : int
        The slices that repeat earlier focus positions (``first`` to ``last``, inclusive); -1 when not repeating.
    of_first, of_last : int
        The earlier slices whose focus positions ``first`` and ``last`` repeat.
    again : bool
        Some pixels peak a third time: the focus turns yet again after ``last``.
    """

    repeats: bool
    share: float
    pixels: int
    back: bool = False
    first: int = -1
    last: int = -1
    of_first: int = -1
    of_last: int = -1
    again: bool = False

    def as_dict(self) -> dict:
        """JSON-able fields."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _runs(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For curves ``c`` (N, P) scaled to their top: each pixel's number of peaks (runs of sharp frames separated
    by a dip), and the slice of its first and of its second peak (the second: -1 when there is none)."""
    n, p = c.shape
    seen = np.zeros(p, bool)
    dip = np.zeros(p, bool)
    run = np.zeros(p, np.int32)
    best = np.full((2, p), -1.0, np.float32)
    at = np.full((2, p), -1, np.int64)
    for k in range(n):
        high, low = c[k] >= HIGH, c[k] < LOW
        dip |= low & seen
        start = high & dip & seen
        run += start
        dip &= ~high
        seen |= high
        for r in (0, 1):
            better = seen & (run == r) & (c[k] > best[r])
            best[r] = np.where(better, c[k], best[r])
            at[r] = np.where(better, k, at[r])
    return run + 1, at[0], at[1]


def sweep_passes(volume: np.ndarray, *, most: int = 40000) -> SweepPasses | None:
    """Whether the focus sweep of a stack passes focus positions more than once, and where.

    Parameters
    ----------
    volume : numpy.ndarray
        (N, h, w) raw focus measure of each frame in sweep order (:attr:`StackMaps.volume`; only a grid of at
        most ``most`` pixels is read).
    most : int
        Pixels read at most (a regular grid).

    Returns
    -------
    SweepPasses or None
        None when there are fewer than three frames or fewer than 200 pixels with a clear focus peak.

    References
    ----------
    Pertuz, Puig and Garcia (2013): see the module.

    Examples
    --------
    >>> k = np.arange(9, dtype=np.float32)[:, None, None]
    >>> once = np.exp(-0.5 * (k - np.linspace(1, 7, 400).reshape(20, 20)) ** 2) + 0.01
    >>> sweep_passes(once).repeats
    False
    >>> twice = np.concatenate([once, once[-2::-1]])  # out and back: frames 9-16 repeat 7-0
    >>> p = sweep_passes(twice); (p.repeats, p.back, p.first, p.last, p.of_first, p.of_last)
    (True, True, 9, 16, 7, 0)
    """
    n, h, w = volume.shape
    if n < 3:
        return None
    step = max(1, int(np.ceil(np.sqrt(h * w / most))))
    c = np.asarray(volume[:, step // 2::step, step // 2::step], np.float32).reshape(n, -1)
    top = c.max(0)
    floor = float(np.median(c.min(0))) + 1e-12
    clear = (top > _FLOOR * floor) & (c.mean(0) < 0.5 * top)
    if int(clear.sum()) < _MIN_PIXELS:
        return None
    peaks, one, two = _runs(c[:, clear] / top[clear])
    twice = peaks >= 2
    share = float(twice.mean())
    if share < SHARE:
        return SweepPasses(False, share, int(clear.sum()))
    one, two = one[twice].astype(np.float64), two[twice].astype(np.float64)
    total, gap = one + two, two - one
    spread = lambda v: float(np.median(np.abs(v - np.median(v))))  # noqa: E731
    back = spread(total) <= spread(gap)
    if back:  # slices t + d repeat t - d: from just past the turn to the repeat of the earliest peak
        turn2 = float(np.median(total))
        first = int(np.floor(turn2 / 2.0)) + 1
        last = int(min(n - 1, round(turn2 - one.min())))
        of_first, of_last = int(round(turn2 - first)), int(round(turn2 - last))
    else:  # slices p + D repeat p
        shift = int(round(float(np.median(gap))))
        first, last = shift + int(one.min()), int(min(n - 1, shift + one.max()))
        of_first, of_last = first - shift, last - shift
    again = bool(np.mean(peaks >= 3) >= 0.25 * share)
    if not again:  # (the repeating pass runs to the end; its ends may hold no clear peak)
        last = n - 1
        of_last = int(round(turn2 - last)) if back else last - shift
    first = min(max(first, 1), n - 1)
    return SweepPasses(True, share, int(clear.sum()), back, first, max(last, first), max(of_first, 0),
                       max(of_last, 0), again)


def passes_said(passes: SweepPasses, used: Sequence[int], label: Callable[[int], str]) -> str:
    """A repeating sweep for people, in one line (a warning's text); frames counted from 1 as
    :func:`postfocus.labels.frame_label` counts them.

    Parameters
    ----------
    passes : SweepPasses
        A sweep that repeats (:attr:`SweepPasses.repeats`).
    used : sequence of int
        The frame number of each of the volume's slices.
    label : callable
        ``label(i)``: frame ``i`` (0-based) as people know it.

    Examples
    --------
    >>> p = SweepPasses(True, 0.99, 5000, True, 41, 80, 39, 0)
    >>> passes_said(p, range(81), lambda i: f"f{i:02d}.jpg")  # doctest: +ELLIPSIS
    'the focus turns back at frame 42 (f41.jpg): frames 42-81 repeat the focus positions of frames 40-1; the ...'
    """
    def frame(k: int) -> str:
        i = int(used[k])
        said = label(i)
        return said if said.startswith(f"frame {i + 1}") else f"frame {i + 1} ({said})"

    first, last, of_first, of_last = (int(used[k]) + 1 for k in (passes.first, passes.last, passes.of_first,
                                                                   passes.of_last))
    again = f"; it turns again after frame {last}" if passes.again else ""
    return (f"{OPENINGS[0] if passes.back else OPENINGS[1]}{frame(passes.first)}: frames {first}-{last} repeat the focus positions of "
            f"frames {of_first}-{of_last}{again}; the depth products (depth map, aperture, tap, pop) assume one "
            f"pass through focus, and the merge is less sharp where a depth is in focus in two places "
            f"(a second focus peak at {100 * passes.share:.0f}% of the detail)")


def said_passes(volume: np.ndarray, used: Sequence[int], label: Callable[[int], str],
                warn: Callable[[str], None]) -> SweepPasses | None:
    """:func:`sweep_passes` of a stack's volume, with ``warn(`` :func:`passes_said` ``)`` when the sweep repeats
    focus positions (pass 1's call: ``used`` and ``label`` as :func:`passes_said` takes them)."""
    passes = sweep_passes(volume)
    if passes is not None and passes.repeats:
        warn(passes_said(passes, used, label))
    return passes
