"""Scenes built to show halos: high-contrast near edges in front of a far background.

Halos are where focus stacking fails on real photographs: the blurred light of
a near object spreads over the far background in the frames focused far, so a
fusion that takes the background from those frames inherits a glow (a bright
fringe, or a dark ring around a bright object), and one that switches frames
abruptly there leaves flecks and stair steps. These scenes reproduce the
cases seen on real stacks:

- ``"pins"``: specular gold pins (thin, bright, saturating highlights) near the
  camera in front of a dark, finely textured circuit board far behind (the
  ``pcb`` stack's pin tips);
- ``"grass"``: dark blades and a leaf near the camera in front of a bright,
  textured far background (grass or a flower before a sunny wall or plaza).

The renderer (:func:`postfocus.synth.render_stack`) has no background behind
a near object: where a near object is blurred, its own footprint is filled
with its own blurred colour. A near structure much thinner than the blur
would therefore stay visible, sharp-edged, in the frames focused far, which a
real lens does not do; the structures here are kept at least about twice as
wide as the blur radius of the renders they are meant for (``max_blur`` up to
2.5 % of the image width).

Both return a sharp image and a depth map in [0, 1] (0 = near), like
:func:`postfocus.synth.scenes.scene`, which serves them by name.
"""

from __future__ import annotations


import cv2
import numpy as np

from postfocus.colour import gamma_decode, gamma_encode
from postfocus.synth import camera, optics
from postfocus.synth.render import SyntheticStack

__all__ = ["HALO_SCENES", "grass", "halo_layers", "pins", "render_layered"]

HALO_SCENES = ("pins", "grass")


def _texture(name: str, size: tuple[int, int]) -> np.ndarray:
    """A grey ``skimage.data`` texture, float32 (H, W) in [0, 1], resized (reflected tiles) to ``size``."""
    from skimage import data

    tex = getattr(data, name)().astype(np.float32) / 255.0
    h, w = size
    reps = (-(-h // tex.shape[0]), -(-w // tex.shape[1]))
    tiled = np.block([[tex[:: 1 - 2 * (i % 2), :: 1 - 2 * (j % 2)] for j in range(reps[1])] for i in range(reps[0])])
    return np.ascontiguousarray(tiled[:h, :w])


def _pins_layers(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The layers of :func:`pins` (see :func:`halo_layers`)."""
    h, w = size or (480, 640)
    board = _texture("gravel", (h, w))
    board = 0.04 + 0.3 * (board - board.min()) / max(float(np.ptp(board)), 1e-6)
    back = board[..., None] * np.asarray((0.55, 0.85, 0.6), np.float32)  # dark green solder mask
    img = np.zeros((h, w, 3), np.float32)
    depth = np.ones((h, w), np.float32)
    alpha = np.zeros((h, w), np.float32)
    boost = np.ones((h, w), np.float32)
    grain = _texture("grass", (h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    count = 5
    for k in range(count):
        cx = (k + 0.5 + rng.uniform(-0.15, 0.15)) * w / count
        half = max(3.0, w * rng.uniform(0.012, 0.022))
        top = h * rng.uniform(0.15, 0.45)
        u = (xx - cx) / half  # -1..1 across the pin
        tip = np.where(yy < top + half, ((yy - top - half) / half) ** 2, 0.0)
        inside = (u * u + tip <= 1.0) & (yy >= top)
        nz = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))  # cylinder normal towards the camera
        diffuse = 0.25 + 0.6 * nz
        specular = np.clip(1.0 - np.abs(u + 0.3) / 0.25, 0.0, 1.0) ** 2  # a stripe left of centre
        tone = diffuse * (0.85 + 0.3 * grain)
        pin = np.stack([tone * 1.0, tone * 0.78, tone * 0.3], axis=-1) + 0.9 * specular[..., None]
        img[inside] = np.clip(pin[inside], 0.0, 1.0)
        depth[inside] = 0.0 if k % 2 == 0 else 0.12
        alpha[inside] = 1.0
        boost[inside] = (1.0 + 7.0 * specular)[inside]  # a specular highlight is far brighter than white
    return back, img, alpha, depth, boost


def _grass_layers(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The layers of :func:`grass` (see :func:`halo_layers`)."""
    h, w = size or (480, 640)
    wall = _texture("brick", (h, w))
    wall = 0.62 + 0.36 * (wall - wall.min()) / max(float(np.ptp(wall)), 1e-6)
    back = wall[..., None] * np.asarray((1.0, 0.96, 0.88), np.float32)  # a sunlit wall
    img = np.zeros((h, w, 3), np.float32)
    depth = np.ones((h, w), np.float32)
    grain = _texture("grass", (h, w))
    mask = np.zeros((h, w), np.uint8)
    for k in range(4):  # broad blades (wider than the blur, see the module notes) rising from the bottom edge
        x0 = (k + 0.5 + rng.uniform(-0.2, 0.2)) * w / 4
        bend = rng.uniform(-0.2, 0.2) * w
        height = rng.uniform(0.5, 0.85) * h
        thick = int(max(3, round(w * rng.uniform(0.035, 0.05))))
        t = np.linspace(0.0, 1.0, 60)
        pts = np.stack([x0 + bend * t * t, h - 1 - height * t], axis=1)
        cv2.polylines(mask, [np.round(pts * 4).astype(np.int32)], False, 1, thickness=thick, lineType=cv2.LINE_8,
                      shift=2)
    cy, cx = rng.uniform(0.2, 0.3) * h, rng.uniform(0.55, 0.75) * w
    cv2.ellipse(mask, (int(cx), int(cy)), (int(0.14 * w), int(0.07 * h)), float(rng.uniform(-30, 30)), 0, 360, 1, -1)
    near = mask.astype(bool)
    leaf = 0.04 + 0.16 * grain
    img[near] = np.stack([leaf * 0.6, leaf * 1.0, leaf * 0.35], axis=-1)[near]
    depth[near] = 0.0
    return back, img, near.astype(np.float32), depth, np.ones((h, w), np.float32)


_LAYERS = {"pins": _pins_layers, "grass": _grass_layers}


def halo_layers(name: str, size: tuple[int, int] | None = None, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The two layers of a halo scene: a whole far background and the near objects over it.

    Parameters
    ----------
    name : str
        One of :data:`HALO_SCENES`.
    size : tuple of int, optional
        (height, width); default 480 x 640.
    seed : int
        Jitters the layout.

    Returns
    -------
    background, near, alpha, depth01, boost : numpy.ndarray
        float32 (H, W, 3) far background (complete, also behind the near
        objects), float32 (H, W, 3) near objects' colour, float32 (H, W)
        their coverage, float32 (H, W) depth in [0, 1] of what is seen (the
        near objects' where they cover, else 1), float32 (H, W) factor on the
        near objects' linear light (above 1 on specular highlights, which a
        camera clips to white when sharp and which bloom into bright discs
        when blurred).
    """
    return _LAYERS[name](size, np.random.default_rng(seed))


def _flatten(back: np.ndarray, near: np.ndarray, alpha: np.ndarray, depth: np.ndarray,
             boost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    lit = near if boost is None else gamma_encode(np.clip(gamma_decode(near) * boost[..., None], 0.0, 1.0))
    image = back * (1.0 - alpha[..., None]) + lit * alpha[..., None]
    return np.clip(image, 0.0, 1.0).astype(np.float32), depth


def pins(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Specular gold pins near the camera over a dark green textured board far behind.

    Each pin is a vertical cylinder with a rounded tip: Lambertian gold
    shading across its width plus a specular stripe that reaches white, and
    a fine grain; pins stand at two near depths.

    Parameters
    ----------
    size : tuple of int or None
        (height, width); default 480 x 640.
    rng : numpy.random.Generator
        Jitters the pins' positions, widths and lengths.

    Returns
    -------
    image, depth01 : numpy.ndarray
        float32 (H, W, 3) RGB in [0, 1] and float32 (H, W) depth in [0, 1].
    """
    return _flatten(*_pins_layers(size, rng))


def grass(size: tuple[int, int] | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dark blades and a leaf near the camera over a bright textured background far behind.

    Parameters
    ----------
    size : tuple of int or None
        (height, width); default 480 x 640.
    rng : numpy.random.Generator
        Jitters the blades' paths and widths and the leaf's place.

    Returns
    -------
    image, depth01 : numpy.ndarray
        float32 (H, W, 3) RGB in [0, 1] and float32 (H, W) depth in [0, 1].
    """
    return _flatten(*_grass_layers(size, rng))


def render_layered(name: str, n_frames: int = 10, *, size: tuple[int, int] | None = None, max_blur: float = 8.0,
                   seed: int = 0, shake_px: float = 0.0, rotation_deg: float = 0.0, breathing: float = 0.0,
                   exposure_drift: float = 0.0, noise: float = 0.0, jpeg_quality: int | None = None) -> SyntheticStack:
    """A focus sweep of a halo scene with the far background present behind the near objects.

    Like :func:`postfocus.synth.render_stack` (same thin-lens disc blur in
    linear light, same camera: shake, breathing, exposure, noise, JPEG), but
    the scene is two layers: frame ``i`` is
    ``blur_b(B) * (1 - blur_n(alpha)) + blur_n(N * alpha)`` with ``blur_b``,
    ``blur_n`` the discs of the background's and the near objects' defocus in
    that frame (Porter-Duff "over" of defocused layers, as in Barsky and
    Kosloff's layered depth-of-field). Where a near object is blurred, the
    background behind it shows through, as through a real lens; a one-layer
    render can only fill that place with the object's own colour.

    Parameters
    ----------
    name : str
        One of :data:`HALO_SCENES`.
    n_frames, size, max_blur, seed, shake_px, rotation_deg, breathing, exposure_drift, noise, jpeg_quality
        As :func:`postfocus.synth.render_stack`.

    Returns
    -------
    SyntheticStack
        ``sharp`` is the near objects over the background, ``depth`` the
        depth of what is seen, in frames.

    References
    ----------
    B. A. Barsky and T. J. Kosloff, "Algorithms for rendering depth of field
    effects in computer graphics", WSEAS ICC 2008 (layered depth of field).

    Examples
    --------
    >>> st = render_layered("pins", 4, size=(64, 96), max_blur=4.0)
    >>> len(st.frames), st.sharp.shape
    (4, (64, 96, 3))
    """
    back, near, alpha, depth01, boost = halo_layers(name, size, seed)
    h, w = depth01.shape
    n = int(n_frames)
    ref = n // 2
    cam = camera.sweep((h, w), n, ref, max_blur=max_blur, shake_px=shake_px, rotation_deg=rotation_deg,
                       breathing=breathing, exposure_drift=exposure_drift, seed=seed)
    positions, span, transforms, gains, margin = cam.positions, cam.span, cam.transforms, cam.gains, cam.margin
    pad = ((margin, margin), (margin, margin))
    depth = np.pad(depth01 * np.float32(span), pad, mode="reflect")
    back_lin = gamma_decode(np.pad(back, pad + ((0, 0),), mode="reflect"))
    a = np.pad(alpha, pad, mode="reflect")
    lit = gamma_decode(near) * boost[..., None]  # linear light, highlights above white
    near_lin = np.pad(lit, pad + ((0, 0),), mode="reflect") * a[..., None]
    near_depths = sorted({round(float(v), 4) for v in np.unique(depth[a > 0.5])}, reverse=True)
    back_depth = float(span)  # the background is one far plane
    kernels = optics.KernelCache()
    noise_rngs = cam.noise_rngs
    frames, clean = [], []
    for i in range(n):
        acc = _disc(back_lin, max_blur * abs(back_depth - positions[i]) / span, kernels)
        for d in near_depths:  # far to near
            sel = (np.abs(depth - d) < 1e-3) & (a > 0)
            layer_a = np.where(sel, a, 0.0).astype(np.float32)
            layer_c = np.where(sel[..., None], near_lin, 0.0).astype(np.float32)
            r = max_blur * abs(d - positions[i]) / span
            acc = acc * (1.0 - _disc(layer_a, r, kernels))[..., None] + _disc(layer_c, r, kernels)
        canvas = gamma_encode(np.clip(acc, 0.0, None))
        clean.append(canvas[margin:margin + h, margin:margin + w].copy())
        frames.append(camera.degrade(canvas, margin, (h, w), transforms[i], gains[i], noise, jpeg_quality,
                                     noise_rngs[i]))
    sharp, _ = _flatten(back, near, alpha, depth01, boost)
    return SyntheticStack(frames=frames, sharp=sharp, depth=(depth01 * np.float32(span)).astype(np.float32),
                          transforms=transforms, gains=gains, focus_positions=positions, reference=ref,
                          clean_frames=clean, max_blur=float(max_blur))


def _disc(image: np.ndarray, radius: float, kernels: optics.KernelCache) -> np.ndarray:
    """Disc (pillbox) blur of ``radius`` px, edges reflected; below half a pixel the image itself."""
    if radius < 0.5:
        return image.astype(np.float32)
    return cv2.filter2D(image.astype(np.float32), -1, kernels.get(radius), borderType=cv2.BORDER_REFLECT_101)
