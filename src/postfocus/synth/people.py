"""Focus sweeps with people in them: a figure walking across, an arm moving slowly.

The moving subjects the detection must not miss (issue 15): a textured
figure at about the depth of a textured background, sharp in only a handful
of the sweep's frames and blurred in the rest, moving a few pixels per frame
(:func:`walker_stack`), and a standing figure that raises one arm slowly
(:func:`arm_stack`). Both are rendered with
:func:`~postfocus.synth.motion.render_sequence` (thin-lens defocus per frame
of that frame's own instant, then the hand-held camera model), so
``sharp_frames[k]`` is the truth of instant ``k`` and ``figure_masks[k]`` the
figure's silhouette at that instant.

The figure is drawn from a few limbs (head, torso, two legs, two arms) at 4x
and box-filtered down, so it moves by sub-pixel steps with soft edges. The
scene behind is a light, finely textured plaza (a gravel wall receding
slightly) with a near static object in one corner, so the sweep spans a real
depth range.

Examples
--------
>>> from postfocus.synth.people import walker_stack
>>> st = walker_stack((90, 120), 6, step_px=2.0)  # doctest: +SKIP
>>> len(st.figure_masks), st.moving.any()  # doctest: +SKIP
(6, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from postfocus.synth.motion import MovingStack, render_sequence
from postfocus.synth.scenes import _fit, _photo, _plane, _texture_on_plane, _tint

__all__ = ["PeopleStack", "arm_stack", "figure_mask", "walker_stack"]

_SUPER = 4  # supersampling of the drawn silhouette


@dataclass
class PeopleStack(MovingStack):
    """A :class:`~postfocus.synth.motion.MovingStack` with the figure's silhouette at every instant.

    Attributes
    ----------
    figure_masks : list[np.ndarray]
        float32 (H, W) coverage in [0, 1] of the figure at every instant.
    figure_depth : float
        Focus index (frame) at which the figure is sharp.
    """

    figure_masks: list[np.ndarray] = field(default_factory=list)
    figure_depth: float = 0.0


def figure_mask(size: tuple[int, int], feet: tuple[float, float], height: float, *,
                stride: float = 0.0, arm: float | None = None) -> np.ndarray:
    """Coverage of a standing or walking figure: float32 (H, W) in [0, 1].

    Parameters
    ----------
    size : tuple[int, int]
        ``(H, W)`` of the picture.
    feet : tuple[float, float]
        ``(y, x)`` of the point between the feet (px, sub-pixel).
    height : float
        Height of the figure (px).
    stride : float
        Leg swing angle in radians (positive: the front leg forward); the arms
        swing the other way at half the angle.
    arm : float or None
        If given, the right arm's angle from hanging down (radians, raised
        forwards and up), overriding the swing.

    Returns
    -------
    np.ndarray
        float32 (H, W): the fraction of each pixel the figure covers.
    """
    h, w = size
    s = _SUPER
    canvas = np.zeros((h * s, w * s), np.uint8)
    fy, fx = feet
    u = height * s  # one figure height in supersampled px

    def pt(y: float, x: float) -> tuple[int, int]:
        return int(round((fx * s + x * u))), int(round((fy * s - y * u)))

    hip, shoulder = (0.5, 0.0), (0.8, 0.0)
    limb_w, leg_len, arm_len = max(1, int(round(0.075 * u))), 0.5, 0.36
    for sign in (1.0, -1.0):  # legs
        a = sign * stride
        end = (hip[0] - leg_len * np.cos(a), hip[1] + leg_len * np.sin(a))
        cv2.line(canvas, pt(*hip), pt(*end), 255, limb_w + 1, cv2.LINE_8)
    for k, sign in enumerate((1.0, -1.0)):  # arms
        a = -0.5 * sign * stride if arm is None or k == 1 else arm
        end = (shoulder[0] - arm_len * np.cos(a), shoulder[1] + arm_len * np.sin(a))
        cv2.line(canvas, pt(*shoulder), pt(*end), 255, max(1, int(round(0.055 * u))), cv2.LINE_8)
    torso_c = pt(0.66, 0.0)
    cv2.ellipse(canvas, torso_c, (int(0.1 * u), int(0.18 * u)), 0, 0, 360, 255, -1)
    cv2.ellipse(canvas, pt(0.91, 0.0), (int(0.055 * u), int(0.07 * u)), 0, 0, 360, 255, -1)
    return cv2.resize(canvas.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)


def _background(size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A light plaza wall (depth 0.93-1.0), a near static object; and the coat texture."""
    h, w = size
    depth = 0.93 + 0.07 * _plane((h, w), 0.0 + rng.uniform(-10, 10))
    img = _texture_on_plane(_tint(_photo("gravel"), (1.0, 0.97, 0.9)), depth)
    img = np.clip(0.35 + 0.75 * img, 0, 1).astype(np.float32)  # light stone with bright grains
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    near = ((yy - 0.9 * h) / (0.22 * h)) ** 2 + ((xx - 0.08 * w) / (0.1 * w)) ** 2 <= 1.0
    img[near] = _fit(_photo("coffee"), (h, w))[near]
    depth[near] = 0.1
    coat = _tint(_fit(_photo("grass"), (h, w)), (0.55, 0.32, 0.28))  # dark red, finely textured
    return img.astype(np.float32), depth.astype(np.float32), coat.astype(np.float32)


def _composite(base: np.ndarray, depth: np.ndarray, coat: np.ndarray, alpha: np.ndarray,
               offset: tuple[float, float], figure_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """The figure (coat texture moving with it) over the scene, and the depth where it covers."""
    h, w = alpha.shape
    m = np.float32([[1, 0, offset[1]], [0, 1, offset[0]]])
    tex = cv2.warpAffine(coat, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    img = base * (1 - alpha[..., None]) + np.clip(tex, 0, 1) * alpha[..., None]
    d = np.where(alpha > 0.5, np.float32(figure_depth), depth)
    return img.astype(np.float32), d.astype(np.float32)


def _sweep(size: tuple[int, int], n: int, pose: Callable[[int], tuple[np.ndarray, tuple[float, float]]], salt: int,
           sharp_at: float | None, max_blur: float, seed: int, camera_options: dict) -> PeopleStack:
    """Render a sweep of the figure in ``pose(i)`` (coverage, coat texture offset) over the plaza."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, salt]))
    base, depth, coat = _background(size, rng)
    focus = float(n - 4 if sharp_at is None else sharp_at)
    sharps, depths, masks = [], [], []
    for i in range(n):
        alpha, offset = pose(i)
        img, d = _composite(base, depth, coat, alpha, offset, focus / max(n - 1, 1))
        sharps.append(img)
        depths.append(d)
        masks.append(alpha)
    st = render_sequence(sharps, depths, max_blur=max_blur, seed=seed, **camera_options)
    return PeopleStack(**vars(st), figure_masks=masks, figure_depth=focus)


def walker_stack(size: tuple[int, int] = (240, 360), n_frames: int = 40, *, step_px: float = 3.5,
                 sharp_at: float | None = None, height: float = 0.62, max_blur: float = 14.0, seed: int = 0,
                 **camera_options) -> PeopleStack:
    """A figure walking left to right across a plaza, at about the depth of the wall behind it.

    Parameters
    ----------
    size : tuple[int, int]
        ``(H, W)``.
    n_frames : int
        Frames of the sweep (near to far).
    step_px : float
        Walking speed, px per frame (the legs and arms swing with it).
    sharp_at : float or None
        Frame the figure is focused in; default ``n_frames - 4`` (with the
        default ``max_blur`` over 40 frames it is sharp, blur radius under one
        pixel, in about 5 frames).
    height : float
        Figure height as a fraction of ``H``.
    max_blur : float
        As for :func:`~postfocus.synth.render_stack`.
    seed : int
        Layout and camera.
    **camera_options
        Passed to :func:`~postfocus.synth.motion.render_sequence`.

    Returns
    -------
    PeopleStack
    """
    h, w = size
    n, tall = int(n_frames), height * h
    x0 = 0.5 * w - step_px * (n - 1) * 0.5

    def pose(i: int) -> tuple[np.ndarray, tuple[float, float]]:
        x = x0 + step_px * i
        phase = 2 * np.pi * (x - x0) / (0.9 * tall)  # one stride cycle per 0.9 figure heights
        return figure_mask((h, w), (0.92 * h, x), tall, stride=0.35 * np.sin(phase)), (0.0, x - x0)

    return _sweep(size, n, pose, 23, sharp_at, max_blur, seed, camera_options)


def arm_stack(size: tuple[int, int] = (240, 360), n_frames: int = 40, *, raise_deg: float = 60.0,
              sharp_at: float | None = None, height: float = 0.7, max_blur: float = 14.0, seed: int = 0,
              **camera_options) -> PeopleStack:
    """A figure standing still that raises its right arm slowly (as to look at a phone).

    Parameters
    ----------
    raise_deg : float
        How far the arm turns over the sweep, evenly (its hand moves about
        ``0.36 * height * raise_deg * pi / 180 / (n_frames - 1)`` px a frame).
    size, n_frames, sharp_at, height, max_blur, seed, **camera_options
        As for :func:`walker_stack`.

    Returns
    -------
    PeopleStack
    """
    h, w = size
    n, tall = int(n_frames), height * h

    def pose(i: int) -> tuple[np.ndarray, tuple[float, float]]:
        a = np.deg2rad(10.0 + raise_deg * i / max(n - 1, 1))
        return figure_mask((h, w), (0.95 * h, 0.55 * w), tall, stride=0.12, arm=a), (0.0, 0.0)

    return _sweep(size, n, pose, 29, sharp_at, max_blur, seed, camera_options)
