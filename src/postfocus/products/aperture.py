"""Change the aperture after the shot: shallow depth of field from depth + all-in-focus.

The lens model
--------------
Depth is in frame units of the sweep (0 = nearest frame). A thin lens focused
at depth ``focus`` blurs a point at depth ``d`` into a disc (circle of
confusion) whose radius grows linearly with the distance in focus position::

    radius_px = blur_px * |d - focus|

(focus positions of a sweep are evenly spaced in inverse distance, where the
thin-lens blur is linear). ``blur_px`` is the radius in pixels per frame of
depth distance. An f-number sets it through a virtual lens whose blur across
the **scene's depths** (``span`` frames: the depth map's 1st to 99th
percentile, at least one frame, :func:`~postfocus.products.depth.depth_range`)
is 4 % of the image's long edge at f/1.4 and shrinks as 1/N::

    blur_px = 0.04 * long_edge * (1.4 / f_number) / span

so f/2.8 gives half the blur of f/1.4 and f/16 a small fraction of it,
independent of the image size, the number of frames and the part of the sweep
the scene fills: a macro subject in depths 1.8-4.6 of a 41-frame sweep is
blurred as much at f/1.4 as a scene that fills all 41 frames.
:func:`f_number_lens` is this lens for a depth map; the Python API
(:func:`aperture`), ``postfocus aperture --f-number``, the focus pulls of
``animate --f-number`` and the web app all use it.

Rendering
---------
The scene is cut into depth layers spaced so the blur radius changes by at most
half a pixel from one to the next (at most :data:`MAX_LAYERS`; each pixel is
shared by its two nearest layers so smooth slopes do not band). Layers are
composited (:mod:`postfocus.products.layers`, which works only where a layer is) far to near in linear light (display gamma 2.2 undone), each blurred
with an anti-aliased disc (pillbox) kernel of its radius, with premultiplied
alpha:

* a layer's alpha is blurred with its colour, so a blurred foreground spreads
  over what lies behind it, while a sharp foreground is pasted on its own
  pixels only and never bleeds into the blurred background around it;
* the blurred background leaves a partly empty margin behind the near object
  it surrounds; dividing the result by the accumulated alpha fills it with the
  background's own colours (a normalised convolution), so there is neither a
  dark rim (missing light) nor a bright one (light counted twice). What the
  near object hid is unknown, so a blurred near object stays opaque on its own
  footprint instead of showing an invented background through its edge;
* in linear light a bright highlight spreads into a bright disc (bokeh);
  ``highlights`` > 0 boosts near-white pixels first, as if they had been brighter
  than the sensor could record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from postfocus.colour import gamma_decode, gamma_encode
from postfocus.errors import OptionError, PostfocusError
from postfocus.options import check_threads, is_number
from postfocus.pipeline.analyse import Progress
from postfocus.products.layers import (
    MAX_LAYERS,
    LayerPlan,
    by_strips,
    composite_layers,
    disc_blur,
    disc_kernel,
    plan_layers,
    with_ones,
)
from postfocus.products.tap_read import SHARE, TRUSTED, depth_reading, tap_focus
from postfocus.store import ProcessedStack

__all__ = [
    "FULL_SPAN_BLUR",
    "MAX_LAYERS",
    "PRESETS",
    "REFERENCE_F_NUMBER",
    "TRUSTED",
    "ApertureResult",
    "LayerPlan",
    "Lens",
    "aperture",
    "blur_from_f_number",
    "disc_blur",
    "disc_kernel",
    "f_number_lens",
    "focus_at",
    "plan_layers",
    "preset_focus",
    "render_aperture",
]

FULL_SPAN_BLUR = 0.04  # blur radius across the scene's depths at f/1.4, as a share of the long edge
REFERENCE_F_NUMBER = 1.4
PRESETS = ("near", "far", "all")


def blur_from_f_number(f_number: float, size: tuple[int, int], span: float) -> float:
    """Blur radius in pixels per frame of depth distance for an f-number (see the module's lens model).

    Examples
    --------
    >>> round(blur_from_f_number(2.8, (240, 320), 7.0), 3)
    0.914
    """
    _check_f_number(f_number)
    return FULL_SPAN_BLUR * max(size) * (REFERENCE_F_NUMBER / float(f_number)) / max(float(span), 1e-6)


@dataclass(frozen=True)
class Lens:
    """An f-number's lens over a scene (see the module's lens model).

    Attributes
    ----------
    focus : float
        Depth focused at, in frames.
    blur_px : float
        Blur radius in pixels per frame of depth distance.
    largest_blur_px : float
        Blur radius at the scene's depth farthest from the focus.
    scene : tuple of float
        The scene's depths (near, far) in frames, at least one frame apart.
    long_edge : int
        Long edge of the picture the blur is for, in pixels.
    f_number : float
        The f-number.
    """

    focus: float
    blur_px: float
    largest_blur_px: float
    scene: tuple[float, float]
    long_edge: int
    f_number: float


def f_number_lens(depth: np.ndarray, frames: int, focus: float, f_number: float, *,
                  size: tuple[int, int] | None = None) -> Lens:
    """The lens of a render at f/``f_number`` focused at depth ``focus``: its blur set over the scene's depths.

    Parameters
    ----------
    depth : numpy.ndarray
        Depth map in frames (0 = the nearest frame), any size.
    frames : int
        Frames of the sweep.
    focus : float
        Depth focused at, in frames.
    f_number : float
        The f-number (above 0).
    size : tuple of int, optional
        (height, width) of the picture rendered (default: the depth map's): the blur scales with its long edge.

    Returns
    -------
    Lens

    Raises
    ------
    OptionError
        For an f-number that is not a number above 0.

    Examples
    --------
    >>> d = np.linspace(1.8, 4.6, 1000, dtype=np.float32).reshape(10, 100)
    >>> lens = f_number_lens(d, 41, 1.8, 1.4, size=(360, 640))
    >>> round(lens.blur_px, 2), round(lens.largest_blur_px, 1)
    (9.33, 25.9)
    """
    from postfocus.products.depth import depth_range

    _check_f_number(f_number)
    size = tuple(np.shape(depth)[:2]) if size is None else size
    lo, hi = depth_range(depth, frames)  # at least one frame apart
    blur = blur_from_f_number(f_number, size, hi - lo)  # type: ignore[arg-type]
    largest = blur * max(hi - focus, focus - lo, 0.0)
    return Lens(focus=float(focus), blur_px=float(blur), largest_blur_px=float(largest), scene=(lo, hi),
                long_edge=int(max(size)), f_number=float(f_number))


def _check_f_number(f_number: float) -> None:
    if not is_number(f_number) or not math.isfinite(f_number) or f_number <= 0:
        raise OptionError("f_number", f_number, "must be a number above 0 (e.g. 1.4, 2.8, 8)")


def _check_inputs(image: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    depth = np.asarray(depth)
    if image.ndim != 3 or image.shape[2] != 3:
        raise PostfocusError(f"image must be RGB (H, W, 3), got shape {image.shape}")
    if depth.ndim != 2:
        raise PostfocusError(f"depth map must be (H, W), got shape {depth.shape}")
    if depth.shape != image.shape[:2]:
        raise PostfocusError(
            f"depth map is {depth.shape[1]}x{depth.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}; "
            "they must be the same size"
        )
    if not np.isfinite(depth).all():
        raise PostfocusError("depth map has NaN or infinite values")
    return image.astype(np.float32, copy=False), depth.astype(np.float32, copy=False)


def focus_at(
    depth: np.ndarray,
    x: float,
    y: float,
    confidence: np.ndarray | None = None,
    radius: int | None = None,
) -> float:
    """Depth to focus at when the user taps (x, y): a confidence-weighted median around the point.

    A window with no pixel of at least :data:`TRUSTED` confidence (a plain area the depth map filled) takes the
    plain median: what the fill says there, as a plain tap reads it (tapgrid18). Weighted by confidences of
    0.00-0.04 it was decided by whichever pixel's noise was largest, up to 2.7 frames from the fill.

    Raises PostfocusError for a point outside the depth map.

    Examples
    --------
    >>> d = np.zeros((10, 10), np.float32); d[:, 5:] = 3.5
    >>> focus_at(d, 8, 2)
    3.5
    """
    h, w = depth.shape[:2]
    if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < w and 0 <= y < h):
        raise PostfocusError(f"point {x:g},{y:g} is outside the image ({w}x{h}; X from 0 to {w - 1}, Y from 0 to {h - 1})")
    r = max(1, int(round(SHARE * max(h, w)))) if radius is None else int(radius)
    return depth_reading(depth, int(x), int(y), r, confidence)  # (the one window reading of a tap: tap_read)


def preset_focus(depth: np.ndarray, preset: str, confidence: np.ndarray | None = None) -> float | None:
    """Focus depth of a selective-focus preset: 'near' subject, 'far' background, 'all' (None: no blur)."""
    if preset not in PRESETS:
        raise PostfocusError(f"preset {preset!r}: choose one of {', '.join(PRESETS)}")
    if preset == "all":
        return None
    values = np.asarray(depth, np.float32)
    if confidence is not None and float((confidence > 0.5).mean()) > 0.05:
        values = values[confidence > 0.5]
    return float(np.percentile(values, 3 if preset == "near" else 97))



def render_aperture(
    image: np.ndarray,
    depth: np.ndarray,
    focus: float | tuple[float, float],
    *,
    f_number: float | None = None,
    blur_px: float | None = None,
    span: float | None = None,
    confidence: np.ndarray | None = None,
    highlights: float = 0.0,
    max_layers: int = MAX_LAYERS,
    progress: Progress | None = None,
) -> np.ndarray:
    """Render a shallow depth of field from an all-in-focus image and its depth map.

    Parameters
    ----------
    image : float32 (H, W, 3) all-in-focus image in [0, 1] (display-encoded).
    depth : float32 (H, W) depth in frame units (0 = nearest frame), same size.
    focus : depth to focus at (frame units, any value, e.g. 3.4), or an (x, y)
        point to focus on (its depth is read from the map).
    f_number : virtual aperture (see the module's lens model); or
    blur_px : blur radius in pixels per frame of depth distance.
    span : frames across the scene's depths, for ``f_number`` (default: the
        1st to 99th percentile of ``depth``, at least 1, as :func:`f_number_lens`).
    confidence : optional (H, W) confidence, used when ``focus`` is a point.
    highlights : boost of near-white pixels before blurring (0 = none, 1 = up to 4x).
    max_layers : upper bound on depth layers.
    progress : optional ``progress(stage, done, total)``, called once per strip of rows rendered (stage ``"aperture"``).

    Returns
    -------
    float32 (H, W, 3) image in [0, 1].

    Examples
    --------
    >>> img = np.random.default_rng(0).random((32, 48, 3)).astype(np.float32)
    >>> d = np.tile(np.linspace(0, 7, 48, dtype=np.float32), (32, 1))
    >>> out = render_aperture(img, d, 3.5, blur_px=1.0)
    >>> out.shape
    (32, 48, 3)
    """
    image, depth = _check_inputs(image, depth)
    if (f_number is None) == (blur_px is None):
        raise PostfocusError("give either an f-number or a blur radius (px per frame of depth), not both or neither")
    if isinstance(focus, (tuple, list)):
        if len(focus) != 2:
            raise PostfocusError(f"focus point {focus!r}: expected (x, y)")
        focus = focus_at(depth, float(focus[0]), float(focus[1]), confidence)
    focus = float(focus)
    if not math.isfinite(focus):
        raise PostfocusError(f"focus depth {focus}: must be a finite number of frames")
    if f_number is not None:
        if span is None:
            lo, hi = np.percentile(depth, (1.0, 99.0))  # the scene's depths (depth_range without the sweep's ends)
            span = max(float(hi - lo), 1.0)
        blur_px = blur_from_f_number(f_number, depth.shape, span)
    assert blur_px is not None
    if not math.isfinite(blur_px) or blur_px < 0:
        raise PostfocusError(f"blur {blur_px}: must be a finite number of pixels >= 0")
    if not math.isfinite(highlights) or highlights < 0:
        raise PostfocusError(f"highlights {highlights}: must be >= 0")
    if blur_px * max(abs(float(depth.max()) - focus), abs(float(depth.min()) - focus)) < 0.5:
        return np.clip(image, 0, 1).astype(np.float32)

    h, w = depth.shape
    plan = plan_layers(depth, focus, blur_px, max_layers=max_layers)
    u = (depth - np.float32(focus)) / np.float32(plan.step) - np.float32(plan.first)  # layer coordinate, 0 = nearest
    del depth
    radii = [blur_px * abs(plan.depth_of(k, focus) - focus) for k in range(plan.count)]
    rgb1 = np.empty((h, w, 4), np.float32)  # linear light and a channel of ones (the layers' alpha)
    by_strips(lambda y0, y1: with_ones(_linear(image[y0:y1], highlights), rgb1[y0:y1]), h)
    acc = composite_layers(rgb1, u, radii, progress=progress)
    del rgb1, u
    out = np.empty((h, w, 3), np.float32)

    def finish(y0: int, y1: int) -> None:
        out[y0:y1] = gamma_encode(acc[y0:y1, :, :3] / np.maximum(acc[y0:y1, :, 3:4], np.float32(1e-6)))

    by_strips(finish, h)
    return out


def _linear(image: np.ndarray, highlights: float) -> np.ndarray:
    """Display-encoded colours to linear light; near-white boosted by ``highlights`` (as if clipped)."""
    linear = gamma_decode(image)
    if highlights > 0:
        luma = linear @ np.asarray([0.2126, 0.7152, 0.0722], np.float32)
        knee = np.clip((luma - 0.6) / 0.4, 0.0, 1.0)
        linear = linear * (1.0 + 3.0 * highlights * knee * knee)[..., None]
    return linear


@dataclass
class ApertureResult:
    image: np.ndarray = field(repr=False)  # (printed, the focus and blur say it)
    focus: float | None
    blur_px: float
    depth: object = field(repr=False)  # DepthResult

    @property
    def largest_blur_px(self) -> float:
        """Blur radius in pixels at the scene's depth farthest from the focus; 0 with everything in focus.

        The scene's depths are its depth map's 1st to 99th percentile
        (:func:`~postfocus.products.depth.depth_range`), over which an f-number's blur
        is set (:func:`f_number_lens`); with ``blur_px`` it is that blur times the
        same distance.
        """
        from postfocus.products.depth import depth_range

        if self.focus is None:
            return 0.0
        lo, hi = depth_range(self.depth.depth, self.depth.frames)  # type: ignore[attr-defined]
        return float(self.blur_px * max(hi - self.focus, self.focus - lo, 0.0))


def aperture(
    stack: ProcessedStack,
    *,
    focus_at_point: tuple[float, float] | None = None,
    focus_depth: float | None = None,
    preset: str | None = None,
    f_number: float | None = None,
    blur_px: float | None = None,
    highlights: float = 0.0,
    progress: Progress | None = None,
    threads: int | None = None,
) -> ApertureResult:
    """Shallow depth of field for a processed stack: depth map, focus choice, render.

    Exactly one of ``focus_at_point`` (x, y output pixels; read as a tap there reads the depth map,
    :func:`~postfocus.products.tap_read.tap_focus`), ``focus_depth``
    (frame units) or ``preset`` ('near', 'far', 'all') chooses the focus;
    ``f_number`` sets the blur over the scene's depths (:func:`f_number_lens`),
    ``blur_px`` in pixels per frame of depth distance.
    ``progress(stage, done, total)`` hears of the all-in-focus image (when
    not cached yet), the depth map and each strip of rows of the render. The
    depth map is kept in the stack folder by the first call and read by the
    next ones (:func:`postfocus.products.depth_cache.stack_depth`). ``threads``
    is the thread budget of the all-in-focus image and the depth map when
    they are made (None: the machine's cores).

    Examples
    --------
    >>> from postfocus import process
    >>> out = aperture(process("sweep.mp4"), focus_at_point=(640, 360), f_number=2)  # doctest: +SKIP
    """
    from postfocus.products.depth_cache import stack_depth

    chosen = sum(v is not None for v in (focus_at_point, focus_depth, preset))
    if chosen != 1:
        raise PostfocusError("choose the focus with exactly one of focus_at_point (a point), focus_depth or preset")
    if preset is not None and preset not in PRESETS:
        raise PostfocusError(f"preset {preset!r}: choose one of {', '.join(PRESETS)}")
    if preset != "all" and (f_number is None) == (blur_px is None):
        raise PostfocusError("give either an f-number or a blur radius (px per frame of depth), not both or neither")
    if f_number is not None:
        _check_f_number(f_number)
    threads = check_threads(threads)  # (refused before the all-in-focus image is made)
    for name, value in (("focus_depth", focus_depth), ("blur_px", blur_px), ("highlights", highlights)):
        if value is not None and not is_number(value):  # (a string was a ValueError or TypeError)
            raise OptionError(name, value, "must be a number")
    if focus_at_point is not None:
        h, w = stack.size
        if not (isinstance(focus_at_point, (tuple, list)) and len(focus_at_point) == 2
                and all(is_number(v) for v in focus_at_point)):
            raise OptionError("focus_at_point", focus_at_point, "must be a point (x, y) in pixels")
        x, y = focus_at_point
        if not (0 <= x < w and 0 <= y < h):
            raise PostfocusError(f"point {float(x):g},{float(y):g} is outside the image ({w}x{h})")
    image = stack.all_in_focus(progress=progress, threads=threads)
    if progress:
        progress("depth map", 0, 1)
    result = stack_depth(stack, image=image, threads=threads)
    if progress:
        progress("depth map", 1, 1)
    if preset is not None:
        focus = preset_focus(result.depth, preset, result.confidence)
    elif focus_at_point is not None:  # as a tap there reads this depth: the page names the same frame
        focus = tap_focus(stack, focus_at_point[0], focus_at_point[1], result.frames, threads=threads)
    else:
        focus = float(focus_depth)  # type: ignore[arg-type]
    if focus is None:
        return ApertureResult(image=image, focus=None, blur_px=0.0, depth=result)
    if f_number is not None:
        blur_px = f_number_lens(result.depth, result.frames, focus, f_number, size=result.size).blur_px
    out = render_aperture(image, result.depth, focus, blur_px=blur_px, highlights=highlights, progress=progress)
    return ApertureResult(image=out, focus=focus, blur_px=float(blur_px), depth=result)
