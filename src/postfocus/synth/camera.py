"""What a hand-held camera does to a focus sweep: shake, focus breathing,
exposure and white-balance drift, sensor noise and JPEG compression."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Sweep", "degrade", "frame_transform", "jpeg_roundtrip", "random_gains", "random_transforms", "sweep",
           "warp_margin"]


def frame_transform(
    size: tuple[int, int], scale: float = 1.0, angle_deg: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Similarity about the image centre, mapping reference to frame pixel coordinates.

    Parameters
    ----------
    size : tuple[int, int]
        ``(height, width)`` of the frames.
    scale : float
        Magnification (focus breathing), 1 = none.
    angle_deg : float
        Rotation, counter-clockwise on screen.
    shift : tuple[float, float]
        ``(dx, dy)`` translation in pixels.

    Returns
    -------
    np.ndarray
        float64 (3, 3) matrix W with ``frame = W @ reference`` in homogeneous pixels.

    Examples
    --------
    >>> frame_transform((100, 200), shift=(2.0, -1.0))[:2, 2].tolist()
    [2.0, -1.0]
    """
    h, w = size
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    lin = np.array([[c, s], [-s, c]])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = np.array([cx, cy]) + np.asarray(shift, float) - lin @ np.array([cx, cy])
    return m


def random_transforms(
    size: tuple[int, int],
    focus_positions: np.ndarray,
    reference: int,
    shake_px: float,
    rotation_deg: float,
    breathing: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """One transform per frame; the reference frame gets the identity.

    Scale is ``1 + breathing * (p_i - p_ref) / (n - 1)``; rotation and the two
    translation components are uniform in ``±rotation_deg`` and ``±shake_px``.
    The random numbers are drawn whatever the amplitudes, so changing one
    amplitude does not change the others.

    Parameters
    ----------
    size : tuple[int, int]
        ``(height, width)`` of the frames.
    focus_positions : np.ndarray
        Focus position ``p_i`` of every frame, in sweep order.
    reference : int
        The frame that is not moved.
    shake_px : float
        Largest translation in pixels, on each axis.
    rotation_deg : float
        Largest rotation in degrees.
    breathing : float
        Magnification change across the whole sweep (0.04 = 4 %).
    rng : np.random.Generator
        Source of the random numbers.

    Returns
    -------
    list[np.ndarray]
        One float64 (3, 3) matrix per frame, as made by :func:`frame_transform`.
    """
    n = len(focus_positions)
    span = max(float(focus_positions[-1] - focus_positions[0]), 1e-12)
    u = rng.uniform(-1.0, 1.0, size=(n, 3))
    out = []
    for i in range(n):
        if i == reference:
            out.append(np.eye(3))
            continue
        scale = 1.0 + breathing * (focus_positions[i] - focus_positions[reference]) / span
        out.append(frame_transform(size, scale, rotation_deg * u[i, 0], (shake_px * u[i, 1], shake_px * u[i, 2])))
    return out


def random_gains(n: int, reference: int, drift: float, rng: np.random.Generator) -> np.ndarray:
    """Per-frame per-channel gains: exposure in ``1 ± drift`` times a tint of ``± drift/4``.

    The tint has mean 1 over the channels; the reference frame's gain is 1.

    Parameters
    ----------
    n : int
        Number of frames.
    reference : int
        The frame whose gain is 1.
    drift : float
        Largest relative exposure change.
    rng : np.random.Generator
        Source of the random numbers.

    Returns
    -------
    np.ndarray
        float64 (n, 3) gains, one RGB triple per frame.
    """
    u = rng.uniform(-1.0, 1.0, size=(n, 4))
    exposure = 1.0 + drift * u[:, :1]
    tint = 1.0 + 0.25 * drift * u[:, 1:]
    tint /= tint.mean(axis=1, keepdims=True)
    gains = exposure * tint
    gains[reference] = 1.0
    return gains


def warp_margin(transforms: list[np.ndarray], size: tuple[int, int]) -> int:
    """Pixels of reference-geometry padding that every warped frame needs.

    Parameters
    ----------
    transforms : list[np.ndarray]
        (3, 3) matrices from reference to frame pixels, as made by :func:`random_transforms`.
    size : tuple[int, int]
        ``(height, width)`` of the frames.

    Returns
    -------
    int
        Margin in pixels on every side (0 when no frame looks outside the reference).
    """
    h, w = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
    worst = 0.0
    for m in transforms:
        p = np.linalg.solve(m, corners)
        p = p[:2] / p[2]
        worst = max(worst, -p[0].min(), -p[1].min(), p[0].max() - (w - 1), p[1].max() - (h - 1))
    return int(math.ceil(max(worst, 0.0)))


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode a float32 RGB image as JPEG at ``quality`` and decode it again.

    Parameters
    ----------
    image : np.ndarray
        float32 (H, W, 3) RGB in [0, 1] (clipped).
    quality : int
        JPEG quality 1-100.

    Returns
    -------
    np.ndarray
        float32 (H, W, 3) RGB in [0, 1], as a camera's JPEG would hold it.
    """
    bgr = cv2.cvtColor(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    back = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(back, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def degrade(
    canvas: np.ndarray,
    margin: int,
    size: tuple[int, int],
    transform: np.ndarray,
    gain: np.ndarray,
    noise: float,
    jpeg_quality: int | None,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Turn a padded reference-geometry render into a recorded frame.

    Order: forward warp by ``transform`` (bicubic), per-channel gain, Gaussian
    noise of sigma ``noise``, clipping to [0, 1], optional JPEG round trip.

    Parameters
    ----------
    canvas : np.ndarray
        float32 (H + 2 margin, W + 2 margin, 3) render in reference geometry.
    margin : int
        Padding of ``canvas`` on every side (see :func:`warp_margin`).
    size : tuple[int, int]
        ``(height, width)`` of the frame.
    transform : np.ndarray
        (3, 3) matrix from reference to frame pixels.
    gain : np.ndarray
        Per-channel gain (3,).
    noise : float
        Sigma of the Gaussian noise on the [0, 1] scale; 0 for none.
    jpeg_quality : int or None
        JPEG round trip at this quality; None for none.
    rng : np.random.Generator or None
        Source of the noise (may be None when ``noise`` is 0).

    Returns
    -------
    np.ndarray
        float32 (H, W, 3) frame in [0, 1].
    """
    h, w = size
    if np.allclose(transform, np.eye(3), rtol=0, atol=1e-12):
        frame = canvas[margin : margin + h, margin : margin + w].copy()
    else:
        shift = np.array([[1.0, 0.0, -margin], [0.0, 1.0, -margin], [0.0, 0.0, 1.0]])
        frame = cv2.warpPerspective(
            canvas, transform @ shift, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
        )
    frame *= np.asarray(gain, np.float32)
    if noise > 0:
        frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(noise)
    np.clip(frame, 0.0, 1.0, out=frame)
    if jpeg_quality is not None:
        frame = jpeg_roundtrip(frame, jpeg_quality)
    return frame


@dataclass
class Sweep:
    """The camera of a rendered focus sweep: where each frame focuses and how it is moved, lit and padded.

    Attributes
    ----------
    positions : numpy.ndarray
        (N,) focus index of each frame.
    span : float
        N - 1: the farthest focus index.
    transforms : list of numpy.ndarray
        Reference to frame ``i`` pixels (:func:`random_transforms`).
    gains : numpy.ndarray
        (N, 3) per-frame per-channel gains (:func:`random_gains`).
    margin : int
        Pixels rendered around the picture so that every warp and blur finds content.
    noise_rngs : list of numpy.random.Generator
        One noise generator per frame.
    """

    positions: np.ndarray
    span: float
    transforms: list[np.ndarray]
    gains: np.ndarray
    margin: int
    noise_rngs: list


def sweep(size: tuple[int, int], n: int, reference: int, *, max_blur: float, shake_px: float, rotation_deg: float,
          breathing: float, exposure_drift: float, seed: int) -> Sweep:
    """The camera of an ``n``-frame sweep of a ``size`` (H, W) scene; the same seed gives the same camera.

    Parameters
    ----------
    size : tuple of int
        (H, W) of the picture.
    n, reference : int
        Frames, and the one with identity transform and gain.
    max_blur, shake_px, rotation_deg, breathing, exposure_drift : float
        As :func:`postfocus.synth.render_stack`.
    seed : int
        Seed of the shake, gains and noise.

    Returns
    -------
    Sweep

    Examples
    --------
    >>> s = sweep((60, 80), 4, 2, max_blur=3.0, shake_px=2.0, rotation_deg=0.0, breathing=0.0, exposure_drift=0.0, seed=0)
    >>> s.span, len(s.transforms), s.margin >= 6
    (3.0, 4, True)
    """
    positions = np.arange(n, dtype=np.float64)
    geo_rng, gain_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    transforms = random_transforms(size, positions, reference, shake_px, rotation_deg, breathing, geo_rng)
    gains = random_gains(n, reference, exposure_drift, gain_rng)
    margin = warp_margin(transforms, size) + int(math.ceil(max_blur)) + 3
    return Sweep(positions, float(n - 1), transforms, gains, margin, noise_rng.spawn(n))
