"""Render a focus sweep of a scene with a thin-lens camera, and the oracle
composite that selects, per pixel, the frame focused nearest the true depth."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from postfocus.colour import gamma_decode, gamma_encode
from postfocus.errors import PostfocusError
from postfocus.pipeline.threads import usable_cores
from postfocus.synth import camera, optics

__all__ = ["SyntheticStack", "oracle_composite", "render_stack"]


@dataclass
class SyntheticStack:
    """A rendered focus sweep and the truth behind it.

    Attributes
    ----------
    frames : list[np.ndarray]
        What the camera recorded (after shake, breathing, exposure drift,
        noise and JPEG), float32 (H, W, 3) each.
    sharp : np.ndarray
        Ground-truth all-in-focus image in reference geometry, no noise.
    depth : np.ndarray
        float32 (H, W) true focus index per pixel, reference geometry.
    transforms : list[np.ndarray]
        W_i, float64 (3, 3), mapping reference to frame i pixels.
    gains : np.ndarray
        (N, 3) per-frame per-channel gain applied to the encoded values.
    focus_positions : np.ndarray
        (N,) focus index of each frame's focal plane.
    reference : int
        Index of the frame whose transform and gain are identity.
    clean_frames : list[np.ndarray]
        Each frame's defocus render in reference geometry, before any camera
        degradation.
    max_blur : float
        Circle-of-confusion radius (px) of the farthest mismatch.
    """

    frames: list[np.ndarray]
    sharp: np.ndarray
    depth: np.ndarray
    transforms: list[np.ndarray]
    gains: np.ndarray
    focus_positions: np.ndarray
    reference: int
    clean_frames: list[np.ndarray]
    max_blur: float = field(default=0.0)

    def blur_radius(self, i: int) -> np.ndarray:
        """True circle-of-confusion radius (px) of every reference pixel in frame ``i``.

        Parameters
        ----------
        i : int
            Frame number.

        Returns
        -------
        np.ndarray
            float32 (H, W) radii in pixels, reference geometry.

        Examples
        --------
        >>> from postfocus.synth import render_stack, scene
        >>> s = render_stack(*scene("steps", (64, 96)), 4)
        >>> float(s.blur_radius(0).max()) <= s.max_blur
        True
        """
        span = max(float(self.focus_positions[-1] - self.focus_positions[0]), 1e-12)
        return (self.max_blur * np.abs(self.depth - self.focus_positions[i]) / span).astype(np.float32)


def _check_image(sharp: np.ndarray) -> np.ndarray:
    sharp = np.asarray(sharp)
    if sharp.ndim != 3 or sharp.shape[2] != 3 or min(sharp.shape[:2]) < 2:
        raise PostfocusError(f"sharp image must be (H, W, 3), got shape {sharp.shape}")
    if not np.issubdtype(sharp.dtype, np.floating):
        raise PostfocusError(f"sharp image must be float in [0, 1], got {sharp.dtype}")
    if not np.isfinite(sharp).all():
        raise PostfocusError("sharp image has NaN or infinite values")
    return np.clip(sharp, 0.0, 1.0).astype(np.float32)


def _check_depth(depth01: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    depth01 = np.asarray(depth01, np.float32)
    if depth01.shape != shape:
        raise PostfocusError(f"depth map has shape {depth01.shape}, image is {shape}")
    if not np.isfinite(depth01).all():
        raise PostfocusError("depth map has NaN or infinite values")
    if depth01.min() < -1e-3 or depth01.max() > 1 + 1e-3:
        raise PostfocusError(f"depth map must lie in [0, 1], got [{depth01.min():.3g}, {depth01.max():.3g}]")
    return np.clip(depth01, 0.0, 1.0)


def render_stack(
    sharp: np.ndarray,
    depth01: np.ndarray,
    n_frames: int = 8,
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
    hidden: bool = False,
    highlights: np.ndarray | None = None,
) -> SyntheticStack:
    """Render the focus sweep a camera would record of a scene.

    Frame i focuses at index ``i``; a pixel at index depth ``d = depth01 * (n - 1)``
    is blurred by a disc of radius ``max_blur * |d - i| / (n - 1)`` px, computed
    on ``layers`` depth slabs composited far to near in linear light. Then each
    frame is warped by W_i, scaled by its gains, given noise, clipped and
    optionally JPEG-compressed. The same seed gives the same stack.

    Parameters
    ----------
    sharp : np.ndarray
        Float (H, W, 3) all-in-focus RGB in [0, 1].
    depth01 : np.ndarray
        (H, W) normalised depth in [0, 1], 0 = near.
    n_frames : int
        Number of frames, at least 2.
    max_blur : float
        Blur radius in px between the nearest depth and the farthest focus.
    reference : int or None
        Frame with identity transform and gain; default ``n_frames // 2``.
    shake_px : float
        Translation of each frame, uniform in ±shake_px on both axes.
    rotation_deg : float
        Rotation of each frame, uniform in ±rotation_deg.
    breathing : float
        Magnification change across the whole sweep (0.04 = 4 %).
    exposure_drift : float
        Gain of each frame uniform in 1 ± drift, plus a tint of ± drift/4.
    noise : float
        Sigma of Gaussian sensor noise on the [0, 1] scale.
    jpeg_quality : int or None
        JPEG round trip at this quality (1-100); None for none.
    seed : int
        Seed of the random shake, gains and noise.
    layers : int
        Number of depth slabs.
    hidden : bool
        Render a background behind near objects (the farther content extended
        under them where it lies more than a frame behind,
        :func:`~postfocus.synth.optics.render_defocus`): a blurred
        near object then shows the background through its rim, as through a
        real lens, and a stacker that takes the background from the frames
        focused far meets the near object's glow there (halos). The slabs then
        overlap by up to a frame of depth (``optics.Slabs(overlap=)``), so a surface
        continuing across slabs covers its own seams and shows nothing behind
        them. Without it a blurred near object keeps its sharp outline, filled
        with its own colour.
    highlights : np.ndarray, optional
        float32 (H, W) factor (>= 1) on the scene's linear light: pixels brighter
        than white (a specular glint), clipped in the frames that show them sharp
        and spread below white, unclipped, in the ones that blur them. ``sharp``
        of the result is what a camera records in focus (clipped at white).

    Returns
    -------
    SyntheticStack
        The recorded frames and the truth behind them.

    Examples
    --------
    >>> from postfocus.synth import scene
    >>> img, depth01 = scene("steps", size=(120, 160))
    >>> stack = render_stack(img, depth01, 6, shake_px=3.0, noise=0.01)
    >>> len(stack.frames), stack.frames[0].dtype, stack.reference
    (6, dtype('float32'), 3)
    """
    sharp = _check_image(sharp)
    h, w = sharp.shape[:2]
    depth01 = _check_depth(depth01, (h, w))
    n = int(n_frames)
    if n < 2:
        raise PostfocusError(f"a focus sweep needs at least 2 frames, got {n_frames}")
    ref = n // 2 if reference is None else int(reference)
    if not 0 <= ref < n:
        raise PostfocusError(f"reference frame {reference} is outside 0..{n - 1}")
    if int(layers) < 1:
        raise PostfocusError(f"layers must be at least 1, got {layers}")
    for name, value in (("max_blur", max_blur), ("shake_px", shake_px), ("rotation_deg", rotation_deg),
                        ("noise", noise), ("exposure_drift", exposure_drift)):
        if not (math.isfinite(value) and value >= 0):
            raise PostfocusError(f"{name} must be a finite number >= 0, got {value}")
    if exposure_drift >= 1:
        raise PostfocusError(f"exposure_drift must be below 1, got {exposure_drift}")
    if not (math.isfinite(breathing) and abs(breathing) < 0.5):
        raise PostfocusError(f"breathing must be within ±0.5, got {breathing}")
    if jpeg_quality is not None and not 1 <= int(jpeg_quality) <= 100:
        raise PostfocusError(f"jpeg_quality must be 1-100, got {jpeg_quality}")

    cam = camera.sweep((h, w), n, ref, max_blur=max_blur, shake_px=shake_px, rotation_deg=rotation_deg,
                       breathing=breathing, exposure_drift=exposure_drift, seed=seed)
    positions, span, transforms, gains, margin = cam.positions, cam.span, cam.transforms, cam.gains, cam.margin
    pad = ((margin, margin), (margin, margin))
    depth_index = (depth01 * np.float32(span)).astype(np.float32)
    labels, slab_depth = optics.slab_labels(np.pad(depth_index, pad, mode="reflect"), span, int(layers))
    # with a hidden background each slab also covers the nearer slabs within a frame (render_defocus's jump), at least
    # one: a surface continuing across slabs covers its own seams, and only a real depth step shows what lies behind
    slabs = optics.Slabs(labels, int(layers), overlap=max(1, int(int(layers) / span)) if hidden and span > 0 else 0)
    linear = gamma_decode(np.pad(sharp, pad + ((0, 0),), mode="reflect"))
    if highlights is not None:
        factor = np.asarray(highlights, np.float32)
        if factor.shape != (h, w) or not np.isfinite(factor).all() or factor.min() < 1.0:
            raise PostfocusError(f"highlights must be a finite (H, W) factor >= 1, got shape {factor.shape}")
        linear = linear * np.pad(factor, pad, mode="reflect")[..., None]
        sharp = gamma_encode(gamma_decode(sharp) * factor[..., None])  # in focus, clipped at white
    premult = optics.premultiply(linear)
    kernels = optics.KernelCache()

    noise_rngs = cam.noise_rngs

    def one_frame(i: int) -> tuple[np.ndarray, np.ndarray]:
        radii = max_blur * np.abs(slab_depth - positions[i]) / span
        canvas = gamma_encode(optics.render_defocus(premult, slabs, radii, kernels,
                                                    hidden=slab_depth if hidden else None))
        clean = canvas[margin : margin + h, margin : margin + w].copy()
        frame = camera.degrade(canvas, margin, (h, w), transforms[i], gains[i], noise, jpeg_quality, noise_rngs[i])
        return clean, frame

    # numpy and OpenCV release the GIL, so frames render in parallel threads
    workers = max(1, min(n, usable_cores()))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one_frame, range(n)))
    clean = [c for c, _ in results]
    frames = [f for _, f in results]

    return SyntheticStack(
        frames=frames,
        sharp=sharp,
        depth=depth_index,
        transforms=transforms,
        gains=gains,
        focus_positions=positions,
        reference=ref,
        clean_frames=clean,
        max_blur=float(max_blur),
    )


def oracle_composite(stack: SyntheticStack) -> np.ndarray:
    """The best a per-pixel frame selection can do, knowing the truth.

    Each pixel is taken from the frame whose focus position is nearest the true
    depth, aligned back to the reference with the true transform and divided by
    the true gain. Where that frame does not cover the pixel (shake moved it
    out of view), the next-nearest frame that does is used.

    Parameters
    ----------
    stack : SyntheticStack
        A rendered stack.

    Returns
    -------
    np.ndarray
        float32 (H, W, 3) composite in [0, 1].

    Examples
    --------
    >>> from postfocus.synth import psnr, scene
    >>> stack = render_stack(*scene("ramp", size=(120, 160)), 6)
    >>> psnr(oracle_composite(stack), stack.sharp) > psnr(stack.frames[0], stack.sharp)
    True
    """
    h, w = stack.depth.shape
    n = len(stack.frames)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    ones = np.ones((h, w), np.float32)
    cost = np.empty((n, h, w), np.float32)
    aligned = []
    for i, frame in enumerate(stack.frames):
        m = stack.transforms[i]
        img = cv2.warpPerspective(frame, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        cover = cv2.warpPerspective(ones, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        aligned.append(img / np.asarray(stack.gains[i], np.float32))
        cost[i] = np.abs(stack.depth - np.float32(stack.focus_positions[i])) + np.where(cover > 0.999, 0, 1e6)
    best = np.argmin(cost, axis=0)
    out = np.zeros((h, w, 3), np.float32)
    for i in range(n):
        sel = best == i
        out[sel] = aligned[i][sel]
    return np.clip(out, 0.0, 1.0)
