"""Depth layers for the forward render: where the slabs lie, with soft edges, and one frame rendered from them.

The check renders at a reduced size. A pixel there that straddles a depth edge
is partly near and partly far; giving it wholly to one layer would draw a hard,
shifted edge that the (equally reduced) frames do not have, and the check
would see a halo that is not there. :func:`soft_slabs` therefore cuts the depth
into slabs at twice the analysis size and averages each slab's mask down: an
edge pixel belongs to both layers in proportion (its colour is shared, as in
layered matting without unmixing). :func:`render_frame` composites them far to
near with :func:`postfocus.synth.optics.render_defocus`, with a background
behind the near slabs as the generator renders it (the farther content extended
under them by pull-push).

References
----------
Hasinoff, S. W., & Kutulakos, K. N. (2007). A layer-based restoration framework for variable-aperture
photography. ICCV.
Kraus, M., & Strengert, M. (2007). Depth-of-field rendering by pyramidal image processing. Computer
Graphics Forum 26(3).
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.check.defocus import DefocusModel
from postfocus.check.glints import interval_difference
from postfocus.colour import gamma_encode
from postfocus.synth import optics

__all__ = ["HIDDEN_BLUR", "HIDDEN_JUMP", "SoftSlabs", "blur_step", "hidden_jump", "hidden_zone", "jump_frames",
           "plan_slabs", "render_closest", "render_frame", "soft_slabs"]

HIDDEN_JUMP = 1.0  # frames: the least depth step behind which content is hidden (as the generator)
HIDDEN_BLUR = 1.0
"""Pixels (of the rendered size): the least parallax between a near surface and what lies behind it for the lens to
see hidden content past the near one's rim (the strip it sees is that wide; below a pixel it is not rendered)."""
# frames: the widest fine slab, so that a step of two frames is told from a surface continuing across slabs
# (the hidden background lies behind steps of more than twice the slab width, see render_frame)
_MAX_WIDTH = 1.0
_REACH_BINS = 4  # groups of steps dilated each by its own largest blur radius
_STEP_SPAN = 3  # px: a depth that rises by more than the hidden jump within this distance hides what lies behind


class SoftSlabs(optics.Slabs):
    """Depth slabs whose masks are fractions (float32 in [0, 1]) rather than yes/no.

    Parameters
    ----------
    masks : dict of int to np.ndarray
        Slab -> float32 (h, w) share of every pixel that the slab covers (slabs with no share left out).

    Attributes
    ----------
    width : float
        Width of the fine slabs in frames (0 when unknown).
    """

    def __init__(self, masks: dict[int, np.ndarray]) -> None:  # noqa: D107 (documented on the class)
        self.width = 0.0  # frames: the fine slabs' width (set by soft_slabs)
        self.boxes = {}
        for k, m in masks.items():
            rows = np.flatnonzero(m.any(axis=1))
            if rows.size == 0:
                continue
            self.shape = m.shape
            cols = np.flatnonzero(m.any(axis=0))
            y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            self.boxes[k] = (y0, y1, x0, x1, np.ascontiguousarray(m[y0:y1, x0:x1], np.float32))


def plan_slabs(depth: np.ndarray, slope: float, *, step_px: float = 0.75, dense: int = 16,
               tails: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Depth slabs for rendering: fine where most pixels lie, coarse over the sparse tails.

    Inside the central 99 % of the depths the slabs are ``step_px / slope``
    frames wide (the blur changes by at most ``step_px`` across one) but at most
    one frame, or wider so that there are at most ``dense``; each tail beyond gets at most
    ``tails`` slabs. Isolated wrong depths thus keep roughly their (wrong)
    depth, which is what the check must see, without a slab per frame.

    Parameters
    ----------
    depth : np.ndarray
        float32 (h, w) depth in frame numbers.
    slope : float
        Largest blur growth (px per frame) at this size.
    step_px, dense, tails
        As above.

    Returns
    -------
    labels : np.ndarray
        int32 (h, w) slab of each pixel, 0 = nearest.
    slab_depth : np.ndarray
        float64 (layers,) mean depth of each slab (NaN: empty).

    Examples
    --------
    >>> labels, depths = plan_slabs(np.array([[0.0, 1.0], [2.0, 3.0]], np.float32), 1.0)
    >>> int(labels.max()) + 1 == len(depths), bool(np.all(np.diff(depths[~np.isnan(depths)]) > 0))
    (True, True)
    """
    lo, hi = float(depth.min()), float(depth.max())
    a, b = (float(v) for v in np.quantile(depth, [0.005, 0.995]))
    width = _dense_width(a, b, slope, step_px, dense)
    edges = list(np.arange(a, b, width)) + [b]
    if a - lo > 1e-3:
        edges = list(np.linspace(lo, a, tails + 1)[:-1]) + edges
    if hi - b > 1e-3:
        edges = edges + list(np.linspace(b, hi, tails + 1)[1:])
    inner = np.unique(np.asarray(edges[1:-1], np.float32))
    labels = np.searchsorted(inner, depth, side="right").astype(np.int32)
    count = inner.size + 1
    n = np.bincount(labels.ravel(), minlength=count)
    total = np.bincount(labels.ravel(), weights=depth.ravel().astype(np.float64), minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return labels, np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _dense_width(a: float, b: float, slope: float, step_px: float = 0.75, dense: int = 16) -> float:
    """Width (frames) of the fine slabs over the central depths ``[a, b]`` (see :func:`plan_slabs`)."""
    return max(min(step_px / max(slope, 1e-6), _MAX_WIDTH), (b - a) / dense, 1e-3)


def soft_slabs(depth: np.ndarray, size: tuple[int, int], slope: float) -> tuple[SoftSlabs, np.ndarray]:
    """Depth slabs at ``size`` with soft edges, from a depth map of any (larger) size.

    Parameters
    ----------
    depth : np.ndarray
        float32 (H, W) depth in frame numbers.
    size : (h, w)
        The analysis size.
    slope : float
        Largest blur growth per frame at the analysis size (see :func:`plan_slabs`).

    Returns
    -------
    slabs : SoftSlabs
    slab_depth : np.ndarray
        float64 (layers,) mean depth of each slab.

    Examples
    --------
    >>> d = np.zeros((8, 8), np.float32); d[:, 3:] = 5.0
    >>> slabs, depths = soft_slabs(d, (4, 4), 1.0)
    >>> [round(float(slabs.mask(k, 0, 4, 0, 4)[0, 1]), 2) for k in sorted(slabs.boxes)]
    [0.5, 0.5]
    """
    h, w = size
    fine = (min(depth.shape[0], 2 * h), min(depth.shape[1], 2 * w))
    d = np.ascontiguousarray(depth, np.float32)
    if d.shape != fine:
        d = cv2.resize(d, (fine[1], fine[0]), interpolation=cv2.INTER_NEAREST)
    labels, slab_depth = plan_slabs(d, slope)  # the blur is applied at the analysis size
    masks = {}
    for k in np.flatnonzero(~np.isnan(slab_depth)):
        m = (labels == k).astype(np.float32)
        masks[int(k)] = m if fine == (h, w) else cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA)
    slabs = SoftSlabs(masks)
    slabs.width = _dense_width(*(float(v) for v in np.quantile(d, [0.005, 0.995])), slope)
    return slabs, slab_depth


def render_closest(premult: np.ndarray, slabs: optics.Slabs, slab_depth: np.ndarray, model: DefocusModel,
                   index: int, kernels: optics.KernelCache, frame: np.ndarray, *, zone: np.ndarray | None = None,
                   window: int = 2, jump: float | np.ndarray | None = None,
                   glint: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frame ``index`` rendered with and without a hidden background; per window the one closer to ``frame``.

    What lies behind a near object is unknown: the pull-push extension of its
    neighbourhood and the near object's own colour (no background) are both
    plausible, and a result must not be blamed for the check's guess. The hidden
    content is a nuisance parameter: each window takes the render that explains
    the frame best (a profile likelihood). Both come from the same blurs
    (:func:`render_frame` with ``plain``). Each render is matched to the frame
    with a per-channel gain (least squares).

    Parameters
    ----------
    premult, slabs, slab_depth, model, index, kernels
        As :func:`render_frame`.
    frame : np.ndarray
        float32 (h, w, 3) the recorded frame, display-encoded.
    zone : np.ndarray, optional
        :func:`hidden_zone`; None: no hidden background anywhere.
    window : int
        Half-size of the window the difference is averaged over.
    jump : float or np.ndarray, optional
        As :func:`render_frame`.
    glint : float, optional
        With ``premult``'s first extra plane marking the clipped pixels of the sharp image: the share of
        clipped light from which a pixel's render is only a lower bound (a highlight brighter than white is
        clipped when sharp and spreads below white, unclipped, when blurred). There only the frame's shortfall
        counts (one-sided), in proportion to the clipped share up to ``glint``.

    Returns
    -------
    linear : np.ndarray
        float32 (h, w, 3 + E) the chosen render in linear light (with the extra planes).
    rendered : np.ndarray
        float32 (h, w, 3) the same display-encoded, before the gain.
    difference : np.ndarray
        float32 (h, w) |gain x rendered - frame|, mean over the channels (one-sided with ``glint``).
    error : np.ndarray
        float32 (h, w) ``difference`` averaged over the window.
    """
    k = 2 * window + 1
    outs = render_frame(premult, slabs, slab_depth, model, index, kernels, hidden=zone is not None, zone=zone,
                        plain=True, jump=jump)
    best = None
    for out in (outs if isinstance(outs, tuple) else (outs,)):
        rendered = gamma_encode(out[..., :3])
        gain = _gain(rendered, frame)
        signed = rendered * gain - frame
        if out.shape[2] > 4:  # a second extra plane: clipped light read from the frames (check/glints.py)
            lit = out[..., 4] > 0
            signed[lit] = interval_difference(out[..., :3][lit][None], out[..., 4][lit][None], gain,
                                              frame[lit][None])[0]
        diff = np.abs(signed).mean(axis=2)
        if glint is not None and out.shape[2] > 3:  # clipped light is a lower bound: only a darker frame contradicts
            near = out[..., 3] > 0.0
            lower = np.minimum(out[..., 3][near] / np.float32(glint), 1.0)
            diff[near] -= lower * np.maximum(-signed[near], 0.0).mean(axis=1)  # |s| - max(-s, 0) = max(s, 0)
        error = cv2.boxFilter(diff, -1, (k, k), borderType=cv2.BORDER_REFLECT)
        if best is None:
            best = [out, rendered, diff, error]
            continue
        closer = error < best[3]
        best = [np.where(closer[..., None] if x.ndim == 3 else closer, x, b)
                for x, b in zip((out, rendered, diff, error), best)]
    return best[0], best[1], best[2], best[3]


def _gain(rendered: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Per-channel exposure factor that brings the rendered frame to the recorded one (least squares)."""
    num = (rendered * frame).reshape(-1, 3).sum(axis=0, dtype=np.float64)
    den = (rendered * rendered).reshape(-1, 3).sum(axis=0, dtype=np.float64)
    return np.clip(num / np.maximum(den, 1e-12), 0.5, 2.0).astype(np.float32)


def hidden_jump(slabs: optics.Slabs, model: DefocusModel | None = None) -> float:
    """Depth step behind which content counts as hidden: in frames without ``model``, in pixels of blur with it.

    Without ``model``: :data:`HIDDEN_JUMP` or two fine slabs' widths (frames). With it: :data:`HIDDEN_BLUR` or
    the parallax two fine slabs' widths make at the model's larger slope (pixels). A surface that continues
    across slabs hides nothing behind its nearer part, and the mean depths of two adjacent slabs lie up to
    two slab widths apart.
    """
    width = 2.0 * float(getattr(slabs, "width", 0.0))
    if model is None:
        return max(HIDDEN_JUMP, width)
    return max(HIDDEN_BLUR, width * max(model.near_slope, model.far_slope))


def _signed(model: DefocusModel, delta: np.ndarray) -> np.ndarray:
    """The blur radius grown since focus, with the side of focus as its sign (the blur at focus is no parallax)."""
    return np.sign(delta) * np.maximum(model.radius(delta) - model.radius(np.zeros(1)), 0.0)


def blur_step(model: DefocusModel, frames: np.ndarray, near: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Parallax (pixels) between depths ``near`` and ``far``: the most their signed blur radii differ in any frame.

    Rays through the aperture's rim see past a near surface's edge onto a strip of what lies behind, as wide
    as the difference of the two depths' signed blur radii (for a thin lens, the aperture times the difference
    of inverse distances, whatever the focus); the calibrated model gives it per frame.

    Examples
    --------
    >>> m = DefocusModel(2.0, 2.0)
    >>> float(blur_step(m, np.arange(10), np.array([3.0]), np.array([4.5]))[0])
    3.0
    """
    near, far = np.asarray(near, np.float64), np.asarray(far, np.float64)
    out = np.zeros(np.broadcast(near, far).shape)
    for f in np.asarray(frames, np.float64):
        np.maximum(out, np.abs(_signed(model, f - near) - _signed(model, f - far)), out=out)
    return out


def jump_frames(model: DefocusModel, frames: np.ndarray, depths: np.ndarray, jump: float) -> np.ndarray:
    """Per depth, how many frames behind it content lies before its parallax exceeds ``jump`` pixels.

    Parameters
    ----------
    model : DefocusModel
        Blur radius per frame distance, in pixels of the rendered size.
    frames : np.ndarray
        The frame numbers of the sweep.
    depths : np.ndarray
        (L,) depths (frames; NaN allowed).
    jump : float
        Pixels of parallax (:func:`hidden_jump`).

    Returns
    -------
    np.ndarray
        float64 (L,) frames (the sweep's length where no step within it reaches ``jump``).
    """
    f = np.asarray(frames, np.float64)
    span = float(f.max() - f.min()) + 1.0
    steps = np.linspace(0.0, span, 257)[1:]
    d = np.nan_to_num(np.asarray(depths, np.float64), nan=float(f.mean()))
    over = blur_step(model, f, d[:, None], d[:, None] + steps[None, :]) > jump
    return np.where(over.any(axis=1), steps[np.argmax(over, axis=1)], span)


def hidden_zone(depth: np.ndarray, model: DefocusModel, frames: np.ndarray, jump: float) -> np.ndarray | None:
    """Where a frame can see content hidden behind a nearer surface: within the blur of a depth step.

    Behind a surface that continues there is nothing hidden; only at a step whose parallax
    (:func:`blur_step`) exceeds ``jump`` pixels within a few pixels (a steep side counts) does a
    lens see past the near side's blurred rim, and only within the largest blur radius the near
    side takes in any frame. A step of a frame is a wide strip where the blur grows fast and
    nothing where it grows slowly: pixels of blur, not frames, say whether it shows.

    Parameters
    ----------
    depth : np.ndarray
        float32 (h, w) depth at the analysis size.
    model : DefocusModel
        Blur radius per frame distance, in pixels of this size.
    frames : np.ndarray
        The frame numbers rendered.
    jump : float
        Parallax (pixels) that reveals content (:func:`hidden_jump` with the model).

    Returns
    -------
    np.ndarray or None
        bool (h, w), or None when the depth has no such step.

    Examples
    --------
    >>> from postfocus.check.defocus import DefocusModel
    >>> d = np.zeros((9, 30), np.float32); d[:, 15:] = 5.0
    >>> zone = hidden_zone(d, DefocusModel(1.0, 1.0), np.arange(6), 1.5)
    >>> bool(zone[4, 15]), bool(zone[4, 0])
    (True, False)
    """
    kernel = np.ones((2 * _STEP_SPAN + 1,) * 2, np.uint8)  # a steep side is a step too
    near = cv2.erode(depth, kernel)
    far = cv2.dilate(depth, kernel)
    step = np.zeros(depth.shape, bool)
    slope = max(model.near_slope, model.far_slope, 1e-6)
    maybe = (far - near) > 0.5 * jump / slope  # only there can the parallax reach it (saves the frames' loop)
    if maybe.any():
        step[maybe] = blur_step(model, frames, near[maybe], far[maybe]) > jump
    if not step.any():
        return None
    f = np.asarray(frames, np.float64)
    d = near[step].astype(np.float64)  # each step's near side: its blurred rim is where the lens sees past it
    reach = np.maximum(model.radius(f.min() - d), model.radius(f.max() - d))
    zone = np.zeros(depth.shape, bool)
    edges = np.unique(np.ceil(np.quantile(reach, np.linspace(0.0, 1.0, _REACH_BINS + 1))))
    which = np.searchsorted(edges, np.ceil(reach), side="left")
    for j, r in enumerate(edges):  # steps grouped by their reach, each group's own (rounded up) radius
        mine = np.zeros(depth.shape, np.uint8)
        mine[step] = which == j
        if mine.any():
            zone |= cv2.distanceTransform(1 - mine, cv2.DIST_L2, 3) <= r + 1
    return zone


def render_frame(premult: np.ndarray, slabs: optics.Slabs, slab_depth: np.ndarray, model: DefocusModel,
                 index: float, kernels: optics.KernelCache | None = None, *, hidden: bool = True,
                 jump: float | np.ndarray | None = None, zone: np.ndarray | None = None,
                 plain: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` as the sharp image and its depth predict it, in linear light.

    A depth map holds only what is seen. Behind a near object a frame focused
    far sees the background through the object's blurred rim; with ``hidden``
    that background is estimated as the generator does it
    (:func:`postfocus.synth.optics.render_defocus` with ``hidden=``): before each
    blurred slab is laid, the content more than ``jump`` frames behind it is
    extended under it from its visible neighbourhood by pull-push (Kraus and
    Strengert 2007). A surface that continues across slabs hides nothing behind
    its nearer part; the means of two adjacent slabs lie up to two slab widths
    apart, so by default ``jump`` is the larger of :data:`HIDDEN_JUMP` and twice
    the slabs' width (:attr:`SoftSlabs.width`). Without it a blurred near object keeps its sharp outline,
    filled with its own colour, and a correct all-in-focus image is contradicted
    all along its occlusion edges.

    Parameters
    ----------
    premult : np.ndarray
        float32 (4 + E, h, w) linear RGB and alpha (:func:`postfocus.synth.optics.premultiply`), then E
        extra planes (the check carries where the sharp image is clipped).
    slabs : optics.Slabs
        The depth slabs of the canvas.
    slab_depth : np.ndarray
        (layers,) depth of each slab in frame numbers (NaN: empty).
    model : DefocusModel
        Blur radius per frame distance, in pixels of this canvas.
    index : float
        The frame number (focal plane).
    kernels : optics.KernelCache, optional
        Shared disc kernels.
    hidden : bool
        Extend the farther content behind each blurred slab (above).
    jump : float or np.ndarray, optional
        Depth step (frames) from which content counts as behind a slab (default above), or one per slab
        (:func:`jump_frames`: a parallax in pixels, the same for every slab, in each one's frames).
    zone : np.ndarray, optional
        bool (h, w): extend hidden content only there (:func:`hidden_zone`: near depth steps); default
        everywhere, as the generator does.
    plain : bool
        With ``hidden``, also return the render without the hidden background (the same blurs).

    Returns
    -------
    np.ndarray
        float32 (h, w, 3 + E) linear light, then ``premult``'s E extra planes rendered alike (with
        ``plain``: a tuple of it and the render without a hidden background).

    References
    ----------
    Hasinoff and Kutulakos (2007), layered defocus; Kraus and Strengert (2007), pull-push (full entries in
    the module's references).
    """
    radii = model.radius(index - np.nan_to_num(np.asarray(slab_depth, np.float64), nan=index))
    if jump is None:
        jump = hidden_jump(slabs)
    if isinstance(slabs, SoftSlabs):  # soft masks blend: never the hard paste of sharp slabs
        # A slab in focus has no blurred rim to see past: nothing is extended under it (as under the hard paste),
        # and the gaps under the nearer slabs stay open for the content right behind each of them.
        sharp = radii < 0.5
        if hidden and sharp.any():
            jump = np.where(sharp, np.inf, np.broadcast_to(np.asarray(jump, np.float64), radii.shape))
        radii = np.maximum(radii, 0.5)
    depths = np.asarray(slab_depth, np.float64) if hidden else None
    return optics.render_defocus(premult, slabs, radii, kernels, hidden=depths, jump=jump, zone=zone,
                                 plain=plain and hidden)
