"""Test scenes: a sharp image and a normalised depth map in [0, 1] (0 = near).

Depth here is in inverse-distance (dioptric) units: the thin-lens circle of
confusion grows linearly with it, and a plane in space is a linear function of
the pixel coordinates. The photographs come from ``skimage.data``.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.errors import PostfocusError
from postfocus.synth.halo_scenes import HALO_SCENES, grass, pins

__all__ = ["SCENES", "fill_disparity", "scene"]

SCENES = ("motorcycle", "steps", "ramp", "occluder", "flat") + HALO_SCENES
_DEFAULT_SIZE = (480, 640)


def _photo(name: str) -> np.ndarray:
    """A ``skimage.data`` picture as float32 RGB in [0, 1]."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - scikit-image is a test dependency
        raise PostfocusError("synthetic scenes need scikit-image (pip install scikit-image)") from exc
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3].astype(np.float32) / 255.0


def _tint(grey: np.ndarray, colour: tuple[float, float, float]) -> np.ndarray:
    return np.clip(grey[..., :1] * np.asarray(colour, np.float32), 0.0, 1.0).astype(np.float32)


def _fit(img: np.ndarray, size: tuple[int, int], interpolation: int | None = None) -> np.ndarray:
    """Centre-crop ``img`` to the aspect ratio of ``size`` and resize to it."""
    h, w = img.shape[:2]
    th, tw = size
    if h * tw > w * th:  # too tall
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    img = img[y0 : y0 + ch, x0 : x0 + cw]
    if interpolation is None:
        interpolation = cv2.INTER_AREA if th < ch else cv2.INTER_CUBIC
    out = cv2.resize(img, (tw, th), interpolation=interpolation)
    return np.clip(out, 0.0, 1.0).astype(np.float32) if out.ndim == 3 else out.astype(np.float32)


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return ((x - lo) / max(hi - lo, 1e-12)).astype(np.float32)


def fill_disparity(disp: np.ndarray) -> np.ndarray:
    """Inpaint invalid (inf, NaN, <= 0) disparities, occlusion-aware.

    Invalid stereo pixels are mostly occluded background, so each is given the
    smaller (farther) of the nearest valid disparities to its left and right on
    the same row; the filled pixels are then smoothed with a 5x5 median.

    Parameters
    ----------
    disp : np.ndarray
        (H, W) disparity map.

    Returns
    -------
    np.ndarray
        float32 (H, W) disparity with every pixel finite and positive.

    Examples
    --------
    >>> fill_disparity(np.array([[4.0, np.inf, 2.0]])).tolist()
    [[4.0, 2.0, 2.0]]
    """
    disp = np.asarray(disp, np.float32)
    valid = np.isfinite(disp) & (disp > 0)
    if not valid.any():
        raise PostfocusError("disparity map has no valid pixel")
    h, w = disp.shape
    cols = np.arange(w)
    left = np.maximum.accumulate(np.where(valid, cols, -1), axis=1)
    right = np.minimum.accumulate(np.where(valid, cols, w)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(h)[:, None]
    big = np.float32(np.inf)
    from_left = np.where(left >= 0, disp[rows, np.clip(left, 0, w - 1)], big)
    from_right = np.where(right < w, disp[rows, np.clip(right, 0, w - 1)], big)
    filled = np.minimum(from_left, from_right)
    filled = np.where(np.isfinite(filled), filled, np.median(disp[valid])).astype(np.float32)
    out = np.where(valid, disp, filled).astype(np.float32)
    smooth = cv2.medianBlur(out, 5)
    return np.where(valid, out, smooth).astype(np.float32)


def _plane(size: tuple[int, int], angle_deg: float) -> np.ndarray:
    """Depth01 of a tilted plane; it recedes along ``angle_deg`` (0 = to the right, 90 = up)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(angle_deg)
    return _normalise((xx - w / 2) * np.cos(a) - (yy - h / 2) * np.sin(a))


def _texture_on_plane(texture: np.ndarray, depth01: np.ndarray, far_ratio: float = 2.0) -> np.ndarray:
    """Map ``texture`` onto the plane of ``depth01`` with perspective foreshortening.

    Inverse distance is ``1 - depth01 * (1 - 1/far_ratio)``; texture coordinates
    are image coordinates divided by it (a homography), sampled at 2x and box
    filtered down to limit aliasing. The texture repeats by reflection.
    """
    h, w = depth01.shape
    th, tw = texture.shape[:2]
    up = cv2.resize(depth01, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    inv = 1.0 - up * (1.0 - 1.0 / far_ratio)
    yy, xx = np.mgrid[0 : 2 * h, 0 : 2 * w].astype(np.float32)
    xx = (xx + 0.5) / 2 - 0.5 - (w - 1) / 2
    yy = (yy + 0.5) / 2 - 0.5 - (h - 1) / 2
    scale = 0.9 * min(tw / w, th / h)
    map_x = ((tw - 1) / 2 + xx * scale / inv).astype(np.float32)
    map_y = ((th - 1) / 2 + yy * scale / inv).astype(np.float32)
    big = cv2.remap(texture, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA), 0.0, 1.0).astype(np.float32)


def _motorcycle(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    left, _, disp = data.stereo_motorcycle()
    img = left.astype(np.float32) / 255.0
    disp = fill_disparity(disp)
    size = size or img.shape[:2]
    img = _fit(img, size)
    disp = _fit(disp, size, cv2.INTER_AREA if size[0] < left.shape[0] else cv2.INTER_LINEAR)
    lo, hi = np.percentile(disp, [0.5, 99.5])
    depth = np.clip((hi - disp) / max(hi - lo, 1e-6), 0.0, 1.0)  # big disparity = near
    return img, depth.astype(np.float32)


def _steps(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = size or _DEFAULT_SIZE
    img = _fit(_photo("astronaut"), (h, w))
    depth = np.ones((h, w), np.float32)
    cards = [
        (_photo("coffee"), 0.75),
        (_photo("chelsea")[30:260, 60:400], 0.5),
        (_photo("immunohistochemistry"), 0.25),
        (_tint(_photo("gravel"), (0.95, 0.8, 0.6)), 0.0),
    ]
    ch, cw = int(0.46 * h), int(0.42 * w)
    for k, (photo, d) in enumerate(cards):
        jy, jx = rng.uniform(-0.03, 0.03, 2)
        y0 = int(round((0.04 + 0.16 * k + jy) * h))
        x0 = int(round((0.03 + 0.17 * k + jx) * w))
        y0, x0 = max(0, y0), max(0, x0)
        y1, x1 = min(h, y0 + ch), min(w, x0 + cw)
        img[y0:y1, x0:x1] = _fit(photo, (y1 - y0, x1 - x0))
        depth[y0:y1, x0:x1] = d
    return img, depth


def _ramp(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    size = size or _DEFAULT_SIZE
    depth = _plane(size, 90.0 + rng.uniform(-15.0, 15.0))  # ground receding upwards
    texture = _tint(_photo("gravel"), (0.95, 0.82, 0.62))
    return _texture_on_plane(texture, depth), depth


def _flat(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = size or _DEFAULT_SIZE
    depth = _plane((h, w), 0.0 + rng.uniform(-15.0, 15.0))  # wall receding to the right
    img = _texture_on_plane(_tint(_photo("gravel"), (0.78, 0.8, 0.84)), depth)
    cy, cx = (0.5 + rng.uniform(-0.05, 0.05)) * h, (0.5 + rng.uniform(-0.05, 0.05)) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ay, ax = 0.22 * h, 0.2 * w
    inside = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1.0
    shade = 1.0 + 0.02 * (xx - cx) / ax  # gentle illumination gradient, no texture
    paint = np.asarray((0.42, 0.56, 0.68), np.float32) * shade[..., None]
    img[inside] = paint[inside]
    return img, depth


def _occluder(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = size or _DEFAULT_SIZE
    background = _fit(_photo("immunohistochemistry"), (h, w))
    img = (0.03 + 0.6 * background).astype(np.float32)
    depth = np.ones((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # thin bright bar, nearly vertical
    tilt = np.deg2rad(rng.uniform(-8.0, 8.0))
    bx = (0.7 + rng.uniform(-0.03, 0.03)) * w
    half = max(1.5, w / 90)
    dist = np.abs((xx - bx) * np.cos(tilt) + (yy - h / 2) * np.sin(tilt))
    bar = (dist <= half) & (yy >= 0.08 * h) & (yy <= 0.92 * h)
    img[bar] = (0.98, 0.97, 0.92)
    depth[bar] = 0.0
    # disc with a black-and-white checker: strong edges and texture
    cy, cx = (0.5 + rng.uniform(-0.04, 0.04)) * h, (0.3 + rng.uniform(-0.03, 0.03)) * w
    radius = 0.22 * min(h, w)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    cell = max(3.0, radius / 4)
    checker = ((np.floor((xx - cx) / cell) + np.floor((yy - cy) / cell)) % 2).astype(np.float32)
    img[disc] = (0.04 + 0.92 * checker[disc])[:, None]
    depth[disc] = 0.0
    return img, depth


_BUILDERS = {
    "motorcycle": _motorcycle,
    "steps": _steps,
    "ramp": _ramp,
    "occluder": _occluder,
    "flat": _flat,
    "pins": pins,
    "grass": grass,
}


def scene(name: str, size: tuple[int, int] | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sharp image and normalised depth of a named test scene.

    Parameters
    ----------
    name : str
        One of ``SCENES``: ``'motorcycle'`` (Middlebury stereo pair, depth
        from its disparity), ``'steps'`` (photos on five fronto-parallel cards
        with sharp occlusion edges), ``'ramp'`` (gravel on a tilted ground
        plane), ``'occluder'`` (bright bar and checker disc, near, over a far
        textured background) or ``'flat'`` (a textureless ellipse painted on
        tilted gravel ground; its depth continues the plane); the halo scenes
        ``'pins'`` and ``'grass'`` (see :mod:`postfocus.synth.halo_scenes`).
    size : tuple[int, int] or None
        ``(height, width)``; default the photo's own size for
        ``'motorcycle'`` (500 x 741) and 480 x 640 otherwise.
    seed : int
        Jitters the layout (positions, tilt angles).

    Returns
    -------
    image : np.ndarray
        float32 (H, W, 3) RGB in [0, 1].
    depth01 : np.ndarray
        float32 (H, W) in [0, 1], 0 = near, linear in inverse distance.

    Examples
    --------
    >>> img, depth = scene("steps", size=(120, 160))
    >>> img.shape, sorted(np.unique(depth).tolist())
    ((120, 160, 3), [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise PostfocusError(f"unknown scene {name!r}; choose one of {', '.join(SCENES)}")
    if size is not None:
        if len(size) != 2 or min(int(size[0]), int(size[1])) < 16:
            raise PostfocusError(f"scene size must be (height, width) of at least 16 pixels, got {size!r}")
        size = (int(size[0]), int(size[1]))
    img, depth = builder(size, np.random.default_rng(seed))
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(np.clip(depth, 0.0, 1.0), np.float32)
