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
the whole depth range of the sweep (``span`` frames) is 4 % of the image's
long edge at f/1.4 and shrinks as 1/N::

    blur_px = 0.04 * long_edge * (1.4 / f_number) / span

so f/2.8 gives half the blur of f/1.4 and f/16 a small fraction of it,
independent of the image size and the number of frames.

Rendering
---------
The scene is cut into depth layers spaced so the blur radius changes by at most
about a pixel from one to the next (at most :data:`MAX_LAYERS`; each pixel is
shared by its two nearest layers so smooth slopes do not band). Layers are
composited far to near in linear light (display gamma 2.2 undone), each blurred
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from postfocus.colour import gamma_decode, gamma_encode
from postfocus.errors import PostfocusError
from postfocus.pipeline.analyse import Progress
from postfocus.store import ProcessedStack

__all__ = ["FULL_SPAN_BLUR", "GAMMA", "MAX_LAYERS", "PRESETS", "REFERENCE_F_NUMBER", "ApertureResult", "LayerPlan",
           "aperture", "blur_from_f_number", "disc_blur", "disc_kernel", "focus_at", "plan_layers",
           "preset_focus", "render_aperture"]

__all__ = [
    "FULL_SPAN_BLUR",
    "MAX_LAYERS",
    "PRESETS",
    "REFERENCE_F_NUMBER",
    "ApertureResult",
    "LayerPlan",
    "aperture",
    "blur_from_f_number",
    "disc_blur",
    "disc_kernel",
    "focus_at",
    "plan_layers",
    "preset_focus",
    "render_aperture",
]

FULL_SPAN_BLUR = 0.04  # blur radius across the whole depth range at f/1.4, as a share of the long edge
REFERENCE_F_NUMBER = 1.4
MAX_LAYERS = 64
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


def _check_f_number(f_number: float) -> None:
    if not isinstance(f_number, (int, float)) or not math.isfinite(f_number) or f_number <= 0:
        raise PostfocusError(f"f-number {f_number}: must be a number above 0 (e.g. 1.4, 2.8, 8)")


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
    r = max(1, int(round(0.006 * max(h, w)))) if radius is None else int(radius)
    cx, cy = int(x), int(y)
    y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r + 1), max(0, cx - r), min(w, cx + r + 1)
    values = np.asarray(depth[y0:y1, x0:x1], np.float64).ravel()
    weights = np.ones_like(values) if confidence is None else np.asarray(confidence[y0:y1, x0:x1], np.float64).ravel()
    if weights.sum() <= 1e-9:
        weights = np.ones_like(values)
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


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


# --------------------------------------------------------------------------
# Kernels and fills


def disc_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """Pillbox kernel of ``radius`` px: each tap is the share of its pixel inside the disc; sums to 1.

    Examples
    --------
    >>> k = disc_kernel(3.0)
    >>> k.shape, round(float(k.sum()), 6)
    ((7, 7), 1.0)
    """
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    half = int(math.ceil(radius - 0.5))
    n = 2 * half + 1
    t = (np.arange(n * supersample) + 0.5) / supersample - n / 2.0
    yy, xx = np.meshgrid(t, t, indexing="ij")
    inside = (xx * xx + yy * yy <= radius * radius).astype(np.float32)
    k = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


class _KernelCache:
    def __init__(self) -> None:
        self.kernels: dict[int, np.ndarray] = {}

    def get(self, radius: float) -> np.ndarray:
        key = int(round(radius * 16))
        if key not in self.kernels:
            self.kernels[key] = disc_kernel(key / 16.0)
        return self.kernels[key]


def _blur_scale(radius: float) -> int:
    """Down-sampling factor of a disc blur of ``radius`` px (the disc keeps at least 4 px at that scale)."""
    return max(1, int(radius // 4))


def disc_blur(image: np.ndarray, radius: float, kernels: _KernelCache | None = None) -> np.ndarray:
    """Blur with a disc of ``radius`` px; large discs are applied at reduced resolution."""
    kernels = kernels or _KernelCache()
    if radius < 0.5:
        return image
    s = _blur_scale(radius)
    if s == 1:
        return cv2.filter2D(image, -1, kernels.get(radius), borderType=cv2.BORDER_REFLECT_101)
    h, w = image.shape[:2]
    sw, sh = max(1, round(w / s)), max(1, round(h / s))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    # Box down-sampling and bilinear up-sampling add blur; shrink the disc so the total stays right.
    r_small = math.sqrt(max(radius * radius - s * s * 0.5, 0.25)) / s
    small = cv2.filter2D(small, -1, kernels.get(r_small), borderType=cv2.BORDER_REFLECT_101)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(image.shape)


# --------------------------------------------------------------------------
# Rendering


@dataclass
class LayerPlan:
    """Depth layers of a render: layer k sits at depth ``focus + (k + first) * step``."""

    step: float
    first: int
    count: int

    def depth_of(self, k: int, focus: float) -> float:
        return focus + (k + self.first) * self.step


def plan_layers(depth: np.ndarray, focus: float, blur_px: float, step_px: float = 0.5,
                max_layers: int = MAX_LAYERS) -> LayerPlan:
    """Layers spaced so the blur changes by about ``step_px`` between neighbours; one lies at ``focus``."""
    lo, hi = float(depth.min()), float(depth.max())
    extent = max(hi - lo, 1e-6)
    step = max(step_px / max(blur_px, 1e-9), extent / max(max_layers - 2, 1))
    first = int(math.floor((lo - focus) / step))
    last = int(math.ceil((hi - focus) / step))
    return LayerPlan(step=step, first=first, count=last - first + 1)


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
    span : frames across the whole depth range, for ``f_number`` (default: the
        range of ``depth``, at least 1).
    confidence : optional (H, W) confidence, used when ``focus`` is a point.
    highlights : boost of near-white pixels before blurring (0 = none, 1 = up to 4x).
    max_layers : upper bound on depth layers.
    progress : optional ``progress(stage, done, total)``, called once per depth layer (stage ``"aperture"``).

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
            span = max(float(depth.max() - depth.min()), 1.0)
        blur_px = blur_from_f_number(f_number, depth.shape, span)
    assert blur_px is not None
    if not math.isfinite(blur_px) or blur_px < 0:
        raise PostfocusError(f"blur {blur_px}: must be a finite number of pixels >= 0")
    if not math.isfinite(highlights) or highlights < 0:
        raise PostfocusError(f"highlights {highlights}: must be >= 0")
    if blur_px * float(np.abs(depth - focus).max()) < 0.5:
        return np.clip(image, 0, 1).astype(np.float32)

    linear = gamma_decode(image)
    if highlights > 0:
        luma = linear @ np.asarray([0.2126, 0.7152, 0.0722], np.float32)
        knee = np.clip((luma - 0.6) / 0.4, 0.0, 1.0)
        linear = linear * (1.0 + 3.0 * highlights * knee * knee)[..., None]

    plan = plan_layers(depth, focus, blur_px, max_layers=max_layers)
    u = (depth - np.float32(focus)) / np.float32(plan.step) - np.float32(plan.first)  # layer coordinate, 0 = nearest
    del depth
    radii = [blur_px * abs(plan.depth_of(k, focus) - focus) for k in range(plan.count)]
    acc = _composite(linear, u, radii, progress)
    out = acc[..., :3] / np.maximum(acc[..., 3:4], np.float32(1e-6))
    return gamma_encode(out)


def _occupied(u: np.ndarray, count: int) -> list[int]:
    """Layers holding some pixel: a pixel at coordinate u belongs to layers floor(u) and floor(u) + 1."""
    below = np.clip(np.floor(u), 0, count - 1).astype(np.int32)
    frac = u - below
    hits = np.bincount(below[frac < 1.0 - 1e-4], minlength=count)[:count]  # |u - k| < 1 for k = floor(u)
    above = below[frac > 1e-4] + 1  # |u - (k + 1)| < 1
    hits[: count] += np.bincount(np.minimum(above, count), minlength=count + 1)[:count]
    return [k for k in range(count) if hits[k]]


TILE = 64  # px; layers are cut to the tiles they touch


def _tile_ranges(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest layer coordinate in each TILE x TILE tile (edge tiles padded with their edge)."""
    h, w = u.shape
    th, tw = -(-h // TILE), -(-w // TILE)
    padded = np.pad(u, ((0, th * TILE - h), (0, tw * TILE - w)), mode="edge").reshape(th, TILE, tw, TILE)
    return padded.min(axis=(1, 3)), padded.max(axis=(1, 3))


def _merge_boxes(boxes: list[list[int]]) -> list[list[int]]:
    """Merge overlapping boxes (y0, y1, x0, x1) until none overlap."""
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                    boxes[i] = [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _layer_boxes(lo: np.ndarray, hi: np.ndarray, k: int, pad: int, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Disjoint boxes (y0, y1, x0, x1) in pixels holding every pixel of layer k and the reach of its blur.

    The tiles the layer touches are grown by ``pad`` px (its blur's reach) and split into
    connected groups; groups whose bounding boxes overlap are merged, so each box holds all
    of the layer's content that can reach it and the boxes can be blurred and composited
    one by one.
    """
    touched = ((lo < k + 1) & (hi > k - 1)).astype(np.uint8)
    grow = -(-pad // TILE)
    touched = cv2.dilate(touched, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(touched, connectivity=8)
    boxes = [[int(y), int(y + bh), int(x), int(x + bw)] for x, y, bw, bh, _ in stats[1:count]]
    h, w = shape
    return [(y0 * TILE, min(h, y1 * TILE), x0 * TILE, min(w, x1 * TILE)) for y0, y1, x0, x1 in _merge_boxes(boxes)]


def _blurred_layer(linear: np.ndarray, u: np.ndarray, k: int, radius: float, box: tuple[int, int, int, int],
                   kernels: _KernelCache) -> np.ndarray:
    """Premultiplied RGBA of layer k inside ``box``, blurred with its disc."""
    y0, y1, x0, x1 = box
    own = np.subtract(u[y0:y1, x0:x1], np.float32(k))
    np.abs(own, out=own)
    np.subtract(np.float32(1.0), own, out=own)
    np.maximum(own, np.float32(0.0), out=own)
    layer = np.empty((y1 - y0, x1 - x0, 4), np.float32)
    np.multiply(linear[y0:y1, x0:x1], own[..., None], out=layer[..., :3])
    layer[..., 3] = own
    return disc_blur(layer, radius, kernels)


def _composite(linear: np.ndarray, u: np.ndarray, radii: list[float], progress: Progress | None) -> np.ndarray:
    """Blur the occupied layers (two threads) and composite them far to near over premultiplied alpha.

    Each layer is cut to boxes around the tiles it touches, grown by its blur's reach: the
    layer is zero elsewhere, so the blur and the compositing there would change nothing.
    """
    h, w = u.shape
    occupied = sorted(_occupied(u, len(radii)), reverse=True)  # far to near
    lo, hi = _tile_ranges(u)
    kernels = _KernelCache()
    jobs = []
    for k in occupied:
        pad = int(math.ceil(radii[k])) + 2 * _blur_scale(radii[k]) + 2
        jobs += [(k, box) for box in _layer_boxes(lo, hi, k, pad, (h, w))]
    acc = np.zeros((h, w, 4), np.float32)
    ahead = 3
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [pool.submit(_blurred_layer, linear, u, k, radii[k], box, kernels) for k, box in jobs[:ahead]]
        for i, (k, (y0, y1, x0, x1)) in enumerate(jobs):
            blurred = pending.pop(0).result()
            if i + ahead < len(jobs):
                k2, box2 = jobs[i + ahead]
                pending.append(pool.submit(_blurred_layer, linear, u, k2, radii[k2], box2, kernels))
            window = acc[y0:y1, x0:x1]
            window *= 1.0 - blurred[..., 3:4]
            window += blurred
            if progress and (i + 1 == len(jobs) or jobs[i + 1][0] != k):
                progress("aperture", occupied.index(k) + 1, len(occupied))
    return acc


@dataclass
class ApertureResult:
    image: np.ndarray
    focus: float | None
    blur_px: float
    depth: object  # DepthResult


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
) -> ApertureResult:
    """Shallow depth of field for a processed stack: depth map, focus choice, render.

    Exactly one of ``focus_at_point`` (x, y output pixels), ``focus_depth``
    (frame units) or ``preset`` ('near', 'far', 'all') chooses the focus.
    ``progress(stage, done, total)`` hears of the all-in-focus image (when
    not cached yet), the depth map and each depth layer of the render.

    Examples
    --------
    >>> from postfocus import process
    >>> out = aperture(process("sweep.mp4"), focus_at_point=(640, 360), f_number=2)  # doctest: +SKIP
    """
    from postfocus.products.depth import depth_map

    chosen = sum(v is not None for v in (focus_at_point, focus_depth, preset))
    if chosen != 1:
        raise PostfocusError("choose the focus with exactly one of focus_at_point (a point), focus_depth or preset")
    if preset is not None and preset not in PRESETS:
        raise PostfocusError(f"preset {preset!r}: choose one of {', '.join(PRESETS)}")
    if preset != "all" and (f_number is None) == (blur_px is None):
        raise PostfocusError("give either an f-number or a blur radius (px per frame of depth), not both or neither")
    if f_number is not None:
        _check_f_number(f_number)
    if focus_at_point is not None:
        h, w = stack.size
        x, y = focus_at_point
        if not (0 <= x < w and 0 <= y < h):
            raise PostfocusError(f"point {x:g},{y:g} is outside the image ({w}x{h})")
    image = stack.all_in_focus(progress=progress)
    if progress:
        progress("depth map", 0, 1)
    result = depth_map(stack, image=image)
    if progress:
        progress("depth map", 1, 1)
    if preset is not None:
        focus = preset_focus(result.depth, preset, result.confidence)
    elif focus_at_point is not None:
        focus = focus_at(result.depth, focus_at_point[0], focus_at_point[1], result.confidence)
    else:
        focus = float(focus_depth)  # type: ignore[arg-type]
    if focus is None:
        return ApertureResult(image=image, focus=None, blur_px=0.0, depth=result)
    span = max(result.frames - 1, 1)
    if f_number is not None:
        blur_px = blur_from_f_number(f_number, result.size, span)
    out = render_aperture(image, result.depth, focus, blur_px=blur_px, highlights=highlights, progress=progress)
    return ApertureResult(image=out, focus=focus, blur_px=float(blur_px), depth=result)
