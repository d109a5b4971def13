"""Focus sweeps of scenes that do not stand still: flames, moving objects, parallax.

The static generator (:func:`postfocus.synth.render_stack`) renders one scene
through the whole sweep. Here the scene may change from frame to frame: frame
``i`` is the thin-lens render of *its own* sharp image and depth, focused at
index ``i``, then shaken, exposed, noised and compressed with the same camera
model. Each frame's sharp content is kept: in a moving region the best a
stacker can do is to show one instant, and ``sharp_frames[k]`` is the truth
for instant ``k``.

Three kinds of change:

* :func:`flame_stack`: a region at one depth whose texture is new in every
  frame (flames, water, foliage in wind);
* :func:`mover_stack`: a textured object that moves a few pixels per frame;
* :func:`parallax_stack`: a static scene seen from a slightly moving camera:
  content shifts in proportion to its depth (handheld close-ups).

Examples
--------
>>> from postfocus.synth.motion import flame_stack
>>> st = flame_stack("steps", (120, 160), 6)
>>> len(st.sharp_frames), st.moving.dtype
(6, dtype('bool'))
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from postfocus.colour import gamma_decode, gamma_encode
from postfocus.errors import PostfocusError
from postfocus.pipeline.threads import usable_cores
from postfocus.synth import camera, optics
from postfocus.synth.render import SyntheticStack, _check_depth, _check_image
from postfocus.synth.scenes import scene

__all__ = ["MovingStack", "render_sequence", "flame_texture", "flame_stack", "mover_stack", "parallax_stack"]


@dataclass
class MovingStack(SyntheticStack):
    """A rendered sweep of a changing scene and the truth of every instant.

    Besides the fields of :class:`~postfocus.synth.SyntheticStack` (``sharp``
    and ``depth`` are those of the reference instant):

    Attributes
    ----------
    sharp_frames : list[np.ndarray]
        float32 (H, W, 3) sharp content of every frame's instant, reference
        geometry ("the best single instant" ground truth).
    depth_frames : list[np.ndarray]
        float32 (H, W) true focus index of every instant.
    moving : np.ndarray
        bool (H, W) pixels whose sharp content changes during the sweep.
    """

    sharp_frames: list[np.ndarray] = field(default_factory=list)
    depth_frames: list[np.ndarray] = field(default_factory=list)
    moving: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))

    def best_instant(self, mask: np.ndarray, image: np.ndarray) -> tuple[int, float]:
        """The instant whose sharp content ``image`` matches best inside ``mask``.

        Parameters
        ----------
        mask : np.ndarray
            bool (H, W): the pixels compared.
        image : np.ndarray
            (H, W, 3) image in reference geometry, e.g. a fusion result.

        Returns
        -------
        tuple[int, float]
            The frame of that instant and the PSNR in dB.
        """
        from postfocus.synth.metrics import psnr

        scores = [psnr(image, s, mask) for s in self.sharp_frames]
        k = int(np.argmax(scores))
        return k, float(scores[k])


def render_sequence(
    sharps: Sequence[np.ndarray],
    depths: Sequence[np.ndarray],
    *,
    max_blur: float = 6.0,
    reference: int | None = None,
    shake_px: float = 0.0,
    rotation_deg: float = 0.0,
    breathing: float = 0.0,
    exposure_drift: float = 0.0,
    noise: float = 0.0,
    jpeg_quality: int | None = None,
    seed: int = 0,
    layers: int = 24,
) -> MovingStack:
    """Render frame ``i`` of a focus sweep from scene ``i`` (``sharps[i]``, ``depths[i]``).

    The camera (focus positions, shake, gains, noise, JPEG) is exactly that of
    :func:`postfocus.synth.render_stack` with the same arguments and seed; with
    the same scene in every frame the frames are those of ``render_stack``.

    Parameters
    ----------
    sharps : Sequence[np.ndarray]
        One float (H, W, 3) sharp image per frame.
    depths : Sequence[np.ndarray]
        One (H, W) normalised depth in [0, 1] per frame (0 = near).

    Returns
    -------
    MovingStack
        The recorded frames and the truth of every instant.

    Other Parameters
    ----------------
    max_blur, shake_px, rotation_deg, breathing, exposure_drift, noise : float
        As for :func:`postfocus.synth.render_stack`.
    reference, jpeg_quality : int or None
        As for :func:`postfocus.synth.render_stack`.
    seed, layers : int
        As for :func:`postfocus.synth.render_stack`.
    """
    n = len(sharps)
    if n < 2 or len(depths) != n:
        raise PostfocusError(f"need at least 2 frames and one depth per frame, got {n} images, {len(depths)} depths")
    sharps = [_check_image(s) for s in sharps]
    h, w = sharps[0].shape[:2]
    if any(s.shape[:2] != (h, w) for s in sharps):
        raise PostfocusError("every frame's sharp image must have the same size")
    depths = [_check_depth(d, (h, w)) for d in depths]
    ref = n // 2 if reference is None else int(reference)
    if not 0 <= ref < n:
        raise PostfocusError(f"reference frame {reference} is outside 0..{n - 1}")
    positions = np.arange(n, dtype=np.float64)
    span = float(n - 1)
    geo_rng, gain_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    transforms = camera.random_transforms((h, w), positions, ref, shake_px, rotation_deg, breathing, geo_rng)
    gains = camera.random_gains(n, ref, exposure_drift, gain_rng)
    margin = camera.warp_margin(transforms, (h, w)) + int(math.ceil(max_blur)) + 3
    pad = ((margin, margin), (margin, margin))
    kernels = optics.KernelCache()
    noise_rngs = noise_rng.spawn(n)

    def one_frame(i: int) -> tuple[np.ndarray, np.ndarray]:
        depth_index = (depths[i] * np.float32(span)).astype(np.float32)
        labels, slab_depth = optics.slab_labels(np.pad(depth_index, pad, mode="reflect"), span, int(layers))
        slabs = optics.Slabs(labels, int(layers))
        premult = optics.premultiply(gamma_decode(np.pad(sharps[i], pad + ((0, 0),), mode="reflect")))
        radii = max_blur * np.abs(slab_depth - positions[i]) / span
        canvas = gamma_encode(optics.render_defocus(premult, slabs, radii, kernels))
        clean = canvas[margin : margin + h, margin : margin + w].copy()
        frame = camera.degrade(canvas, margin, (h, w), transforms[i], gains[i], noise, jpeg_quality, noise_rngs[i])
        return clean, frame

    workers = max(1, min(n, usable_cores()))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one_frame, range(n)))
    moving = np.zeros((h, w), bool)
    for s, d in zip(sharps[1:], depths[1:]):
        moving |= (np.abs(s - sharps[0]).max(axis=2) > 1e-6) | (np.abs(d - depths[0]) > 1e-6)
    return MovingStack(
        frames=[f for _, f in results],
        sharp=sharps[ref],
        depth=(depths[ref] * np.float32(span)).astype(np.float32),
        transforms=transforms,
        gains=gains,
        focus_positions=positions,
        reference=ref,
        clean_frames=[c for c, _ in results],
        max_blur=float(max_blur),
        sharp_frames=sharps,
        depth_frames=[(d * np.float32(span)).astype(np.float32) for d in depths],
        moving=moving,
    )


def flame_texture(size: tuple[int, int], rng: np.random.Generator, grain: float = 2.5) -> np.ndarray:
    """A fresh flame-like texture: warm, high-contrast, upward-streaked random structure.

    Parameters
    ----------
    size : tuple[int, int]
        ``(height, width)``.
    rng : np.random.Generator
        Random generator (a new draw gives an unrelated texture).
    grain : float
        Gaussian sigma (px) of the finest structure.

    Returns
    -------
    np.ndarray
        float32 (H, W, 3) RGB in [0, 1].
    """
    h, w = size
    fine = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), grain, sigmaY=2.5 * grain)
    coarse = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 4 * grain, sigmaY=8 * grain)
    t = fine / (fine.std() + 1e-6) * 0.55 + coarse / (coarse.std() + 1e-6) * 0.45
    t = 1.0 / (1.0 + np.exp(-1.6 * t))  # 0..1, most values mid
    r = np.clip(0.25 + 1.1 * t, 0, 1)
    g = np.clip(-0.25 + 1.15 * t, 0, 1)
    b = np.clip(-0.7 + 1.2 * t, 0, 1)
    return np.dstack([r, g, b]).astype(np.float32)


def _ellipse(size: tuple[int, int], centre: tuple[float, float], axes: tuple[float, float]) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return ((yy - centre[0]) / axes[0]) ** 2 + ((xx - centre[1]) / axes[1]) ** 2 <= 1.0


def flame_stack(
    name: str = "steps",
    size: tuple[int, int] = (320, 480),
    n_frames: int = 8,
    *,
    region: tuple[float, float, float, float] = (0.79, 0.18, 0.13, 0.11),
    region_depth: float | None = None,
    seed: int = 0,
    **camera_options,
) -> MovingStack:
    """A static scene with a flame: an elliptic region at one depth, new texture every frame.

    Parameters
    ----------
    name : str
        Static scene (see :func:`postfocus.synth.scene`).
    size : tuple[int, int]
        ``(height, width)``.
    n_frames : int
        Frames of the sweep.
    region : tuple[float, float, float, float]
        (centre y, centre x, half-height, half-width) of the flame, in
        fractions of the image height and width (the default lies in front of
        the far background of ``'steps'``, clear of its cards).
    region_depth : float or None
        Normalised depth of the flame (0 = near); default: the focal plane of
        the middle frame ``round((n - 1) / 2)``.
    seed : int
        Scene layout, flame textures and camera.
    **camera_options
        Passed to :func:`render_sequence` (shake_px, noise, ...).

    Returns
    -------
    MovingStack
        ``moving`` is the flame's ellipse.
    """
    base, depth = scene(name, size, seed=seed)
    h, w = base.shape[:2]
    cy, cx, ay, ax = region
    inside = _ellipse((h, w), (cy * h, cx * w), (ay * h, ax * w))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    sharps, depths = [], []
    if region_depth is None:
        region_depth = round((int(n_frames) - 1) / 2) / max(int(n_frames) - 1, 1)
    d = depth.copy()
    d[inside] = region_depth
    for _ in range(int(n_frames)):
        img = base.copy()
        img[inside] = flame_texture((h, w), rng)[inside]
        sharps.append(img)
        depths.append(d)
    return render_sequence(sharps, depths, seed=seed, **camera_options)


def mover_stack(
    name: str = "steps",
    size: tuple[int, int] = (320, 480),
    n_frames: int = 8,
    *,
    start: tuple[float, float] = (0.55, 0.35),
    radius: float = 0.12,
    step_px: tuple[float, float] = (0.0, 3.0),
    object_depth: float = 0.5,
    seed: int = 0,
    **camera_options,
) -> MovingStack:
    """A static scene with a textured disc that moves ``step_px`` (dy, dx) pixels per frame.

    Parameters
    ----------
    start : tuple[float, float]
        Centre (y, x) of the disc in frame 0, fractions of height and width.
    radius : float
        Disc radius, fraction of the shorter side.
    step_px : tuple[float, float]
        Motion per frame in pixels (dy, dx).
    object_depth : float
        Normalised depth of the disc.
    seed : int
        Scene layout and camera.

    Returns
    -------
    MovingStack
        ``moving`` is the area the disc sweeps over.

    Other Parameters
    ----------------
    name, size, n_frames, **camera_options
        As for :func:`flame_stack`.
    """
    base, depth = scene(name, size, seed=seed)
    h, w = base.shape[:2]
    r = radius * min(h, w)
    from skimage import data

    pattern = cv2.resize(data.coffee(), (int(2 * r) + 8, int(2 * r) + 8), interpolation=cv2.INTER_AREA)
    pattern = pattern.astype(np.float32) / 255.0
    ph, pw = pattern.shape[:2]
    sharps, depths = [], []
    for i in range(int(n_frames)):
        cy = start[0] * h + step_px[0] * i
        cx = start[1] * w + step_px[1] * i
        # the object's own texture moves with it (sub-pixel: warp the pattern)
        m = np.float32([[1, 0, cx - (pw - 1) / 2], [0, 1, cy - (ph - 1) / 2]])
        tex = cv2.warpAffine(pattern, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        inside = _ellipse((h, w), (cy, cx), (r, r))
        img = base.copy()
        img[inside] = np.clip(tex[inside], 0, 1)
        d = depth.copy()
        d[inside] = object_depth
        sharps.append(img)
        depths.append(d)
    return render_sequence(sharps, depths, seed=seed, **camera_options)


def parallax_stack(
    name: str = "steps",
    size: tuple[int, int] = (320, 480),
    n_frames: int = 8,
    *,
    parallax_px: float = 2.0,
    seed: int = 0,
    **camera_options,
) -> MovingStack:
    """A static scene seen from a camera that moves between frames: depth-dependent shifts.

    Content at normalised depth ``d`` in frame ``i`` is shifted by
    ``parallax_px * u_i * (d - 0.5)`` with ``u_i`` uniform in [-1, 1]² (the
    reference frame has none): a global alignment can absorb the mean shift,
    not the differences between near and far (local parallax). Backward
    warping with the target's depth approximates occlusions.

    Parameters
    ----------
    parallax_px : float
        Scale of the shifts: content at depth ``d`` moves by up to
        ``parallax_px * |d - 0.5|`` pixels on each axis.
    seed : int
        Scene layout, camera motion and camera.

    Returns
    -------
    MovingStack
        ``moving`` marks where the content shifts by more than 0.25 px.

    Other Parameters
    ----------------
    name, size, n_frames, **camera_options
        As for :func:`flame_stack`.
    """
    base, depth = scene(name, size, seed=seed)
    h, w = base.shape[:2]
    n = int(n_frames)
    ref = camera_options.get("reference")
    ref = n // 2 if ref is None else int(ref)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    u = rng.uniform(-1.0, 1.0, size=(n, 2))
    u[ref] = 0.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sharps, depths = [], []
    for i in range(n):
        d = depth
        for _ in range(2):  # fixed point: the displacement of the content that lands here
            dx = np.float32(parallax_px * u[i, 0]) * (d - np.float32(0.5))
            dy = np.float32(parallax_px * u[i, 1]) * (d - np.float32(0.5))
            d = cv2.remap(depth, xx - dx, yy - dy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
        img = cv2.remap(base, xx - dx, yy - dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        sharps.append(np.clip(img, 0, 1))
        depths.append(d)
    out = render_sequence(sharps, depths, seed=seed, **camera_options)
    span = np.abs(u).max() * parallax_px * np.abs(depth - 0.5)
    out.moving = span > 0.25
    return out
