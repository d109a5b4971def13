"""Align handheld frames: shake, rotation, focus breathing, exposure drift.

Neighbouring frames of a focus sweep differ little in blur, so each frame is
matched to its neighbour (enhanced-correlation maximisation, coarse to fine,
with a feature-matching fallback) and the pairwise transforms are chained to
the reference frame. Blurred frames at the ends of a sweep would never match
the reference directly; their neighbours do.

A transform ``W`` is a 3x3 matrix mapping *reference* pixel coordinates to
*frame* pixel coordinates; ``warp_to_reference`` applies it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

MODELS = ("translation", "rigid", "similarity", "affine", "homography")
_ECC_MOTION = {
    "translation": cv2.MOTION_TRANSLATION,
    "rigid": cv2.MOTION_EUCLIDEAN,
    "similarity": cv2.MOTION_AFFINE,  # solved as affine, then projected
    "affine": cv2.MOTION_AFFINE,
    "homography": cv2.MOTION_HOMOGRAPHY,
}
# A neighbour-to-neighbour step larger than these is not a handheld sweep.
MAX_STEP_SCALE = 0.08
MAX_STEP_ROTATION_DEG = 6.0
MAX_STEP_SHIFT_FRACTION = 0.12
MIN_CORRELATION = 0.6
GAMMA = 2.2  # encoding of 8-bit frames, for exposure comparisons in linear light
ECC_MAX_SIZE = 450  # long edge of the finest level the global correlation match uses (the tile refinement then works at full working size; 900 gave the same corner errors on 1080p generated sweeps, 17 % slower)


@dataclass
class PairMatch:
    """How frame ``b`` maps onto its neighbour ``a``: coords in a -> coords in b."""

    matrix: np.ndarray
    correlation: float
    method: str
    ok: bool
    reason: str = ""


@dataclass
class FrameAlignment:
    """Per-frame alignment report.

    ``matrix`` maps reference pixel coordinates to this frame's coordinates;
    ``gain`` is the per-channel factor that matches its exposure and white
    balance to the reference; ``correlation`` is the match score to its
    neighbour (1 = perfect); ``used`` is False for a frame left out.
    """

    index: int
    name: str
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))
    gain: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    correlation: float = 1.0
    method: str = "reference"
    used: bool = True
    note: str = ""

    @property
    def shift(self) -> tuple[float, float]:
        """Translation part (dx, dy) of the matrix, in pixels."""
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))

    @property
    def rotation_deg(self) -> float:
        return float(np.degrees(np.arctan2(self.matrix[1, 0] - self.matrix[0, 1], self.matrix[0, 0] + self.matrix[1, 1])))

    @classmethod
    def from_dict(cls, data: dict) -> "FrameAlignment":
        """The report written by :meth:`as_dict` (as kept in a stack folder's manifest)."""
        return cls(int(data["index"]), data["name"], matrix=np.asarray(data["matrix"], np.float64),
                   gain=np.asarray(data["gain"], np.float32), correlation=float(data["correlation"]),
                   method=data["method"], used=bool(data["used"]), note=data.get("note", ""))

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "used": self.used,
            "method": self.method,
            "correlation": round(self.correlation, 5),
            "scale": round(self.scale, 6),
            "rotation_deg": round(self.rotation_deg, 4),
            "shift_px": [round(v, 3) for v in self.shift],
            "gain": [round(float(g), 5) for g in self.gain],
            "matrix": [[float(v) for v in row] for row in self.matrix],
            "note": self.note,
        }


def scaling(s: float) -> np.ndarray:
    """3x3 matrix that scales pixel coordinates by ``s``."""
    return np.diag([s, s, 1.0])


def rescale_matrix(matrix: np.ndarray, s: float) -> np.ndarray:
    """Express a transform given in one resolution in a resolution ``s`` times larger."""
    return scaling(s) @ matrix @ scaling(1.0 / s)


def project_to_similarity(matrix: np.ndarray) -> np.ndarray:
    """Nearest similarity (rotation, uniform scale, shift) to an affine matrix."""
    a = 0.5 * (matrix[0, 0] + matrix[1, 1])
    b = 0.5 * (matrix[1, 0] - matrix[0, 1])
    out = np.eye(3)
    out[:2, :2] = [[a, -b], [b, a]]
    out[:2, 2] = matrix[:2, 2]
    return out


def to_grey(image: np.ndarray) -> np.ndarray:
    """Luma of a float RGB image as float32."""
    if image.ndim == 2:
        return image.astype(np.float32, copy=False)
    return cv2.cvtColor(image.astype(np.float32, copy=False), cv2.COLOR_RGB2GRAY)


def _plausible(matrix: np.ndarray, size: tuple[int, int]) -> str:
    h, w = size
    lin = matrix[:2, :2]
    scale = np.sqrt(abs(np.linalg.det(lin)))
    rot = np.degrees(np.arctan2(lin[1, 0] - lin[0, 1], lin[0, 0] + lin[1, 1]))
    centre = np.array([w / 2, h / 2, 1.0])
    moved = matrix @ centre
    moved = moved[:2] / moved[2]
    shift = np.hypot(*(moved - centre[:2]))
    if not np.all(np.isfinite(matrix)):
        return "diverged"
    if abs(scale - 1) > MAX_STEP_SCALE:
        return f"scale step {scale:.3f} too large"
    if abs(rot) > MAX_STEP_ROTATION_DEG:
        return f"rotation step {rot:.1f} deg too large"
    if shift > MAX_STEP_SHIFT_FRACTION * max(h, w):
        return f"shift {shift:.0f} px too large"
    if matrix.shape == (3, 3) and abs(matrix[2, 0]) + abs(matrix[2, 1]) > 1e-3:
        return "perspective too strong"
    return ""


def _pyramid(grey: np.ndarray, min_size: int = 96) -> list[np.ndarray]:
    levels = [grey]
    while min(levels[-1].shape) // 2 >= min_size:
        levels.append(cv2.pyrDown(levels[-1]))
    return levels


def ecc_match(
    template: np.ndarray,
    moving: np.ndarray,
    model: str = "similarity",
    init: np.ndarray | None = None,
    iterations: int = 60,
    eps: float = 1e-5,
) -> tuple[np.ndarray, float]:
    """Coarse-to-fine enhanced-correlation match of ``moving`` onto ``template``.

    Parameters
    ----------
    template, moving : float32 grey images of the same size.
    model : one of MODELS.
    init : starting 3x3 transform (template coords -> moving coords).

    Returns
    -------
    (3x3 matrix template coords -> moving coords, correlation in [-1, 1]).
    Raises cv2.error when the match diverges.

    Examples
    --------
    >>> m, rho = ecc_match(a, b, "similarity")  # doctest: +SKIP
    """
    motion = _ECC_MOTION[model]
    pyr_t, pyr_m = _pyramid(template), _pyramid(moving)
    # Levels finer than ``ECC_MAX_SIZE`` add little: the tile refinement works at full working size.
    skip = 0
    while skip < len(pyr_t) - 1 and max(pyr_t[skip].shape) > ECC_MAX_SIZE:
        skip += 1
    pyr_t, pyr_m = pyr_t[skip:], pyr_m[skip:]
    n = len(pyr_t)
    matrix = np.eye(3) if init is None else init.copy()
    matrix = rescale_matrix(matrix, 0.5 ** (n - 1 + skip))
    rho = 0.0
    for level in range(n - 1, -1, -1):
        t, m = pyr_t[level], pyr_m[level]
        warp = matrix.astype(np.float32) if motion == cv2.MOTION_HOMOGRAPHY else matrix[:2].astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations if level else iterations // 2 + 10, eps)
        rho, warp = cv2.findTransformECC(t, m, warp, motion, criteria, None, 5)
        matrix = np.eye(3)
        matrix[: warp.shape[0]] = warp
        if model == "similarity":
            matrix = project_to_similarity(matrix)
        if level:
            matrix = rescale_matrix(matrix, 2.0)
    return rescale_matrix(matrix, 2.0**skip), float(rho)


def feature_match(template: np.ndarray, moving: np.ndarray, model: str = "similarity") -> np.ndarray | None:
    """Transform template -> moving from SIFT matches and RANSAC, or None."""
    sift = cv2.SIFT_create(nfeatures=3000)
    t8 = np.clip(template * 255, 0, 255).astype(np.uint8)
    m8 = np.clip(moving * 255, 0, 255).astype(np.uint8)
    kt, dt = sift.detectAndCompute(t8, None)
    km, dm = sift.detectAndCompute(m8, None)
    if dt is None or dm is None or len(kt) < 8 or len(km) < 8:
        return None
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(dt, dm, k=2)
    good = [m for m, n in (p for p in matches if len(p) == 2) if m.distance < 0.75 * n.distance]
    if len(good) < 8:
        return None
    pt = np.float32([kt[m.queryIdx].pt for m in good])
    pm = np.float32([km[m.trainIdx].pt for m in good])
    if model == "homography":
        matrix, inliers = cv2.findHomography(pt, pm, cv2.RANSAC, 2.0)
    elif model == "affine":
        a, inliers = cv2.estimateAffine2D(pt, pm, method=cv2.RANSAC, ransacReprojThreshold=2.0)
        matrix = None if a is None else np.vstack([a, [0, 0, 1]])
    else:
        a, inliers = cv2.estimateAffinePartial2D(pt, pm, method=cv2.RANSAC, ransacReprojThreshold=2.0)
        matrix = None if a is None else np.vstack([a, [0, 0, 1]])
    if matrix is None or inliers is None or int(inliers.sum()) < 8:
        return None
    return matrix


def tile_shifts(
    template: np.ndarray, aligned: np.ndarray, tile: int, iterations: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Residual shift of every textured tile of ``aligned`` against ``template``.

    Pure translation is estimated per tile by Lucas-Kanade iterations, all
    tiles at once. For a symmetric blur kernel the best translation is
    unbiased, whereas a global scale would trade misregistration for apparent
    sharpness; fitting the global model to these local shifts keeps defocus
    from posing as breathing.

    Returns
    -------
    (points (K, 2) tile centres, shifts (K, 2)): content of ``template`` at
    ``p`` sits at ``p + shift`` in ``aligned``.
    """
    h, w = template.shape
    margin = max(2, tile // 4)
    ny, nx = (h - 2 * margin) // tile, (w - 2 * margin) // tile
    if ny < 1 or nx < 1:
        return np.zeros((0, 2)), np.zeros((0, 2))
    y0, x0 = margin, margin
    y1, x1 = y0 + ny * tile, x0 + nx * tile
    t = cv2.GaussianBlur(template, (0, 0), 1.0)
    a = cv2.GaussianBlur(aligned, (0, 0), 1.0)
    ix = cv2.Sobel(t, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)[y0:y1, x0:x1]
    iy = cv2.Sobel(t, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)[y0:y1, x0:x1]
    t = t[y0:y1, x0:x1]

    def tile_sum(img: np.ndarray) -> np.ndarray:
        # INTER_AREA at an integer factor is the exact block mean (and runs on OpenCV's threads).
        return cv2.resize(img, (nx, ny), interpolation=cv2.INTER_AREA).astype(np.float64) * (tile * tile)

    def expand(values: np.ndarray) -> np.ndarray:
        """Per-tile values to a per-pixel map (piecewise constant)."""
        return cv2.resize(values.astype(np.float32), (nx * tile, ny * tile), interpolation=cv2.INTER_NEAREST)

    def zero_mean(img: np.ndarray) -> np.ndarray:
        """Subtract each tile's mean: a per-tile brightness offset is not a shift."""
        return img - expand(cv2.resize(img, (nx, ny), interpolation=cv2.INTER_AREA))

    ix, iy = zero_mean(ix), zero_mean(iy)
    sxx, sxy, syy = tile_sum(ix * ix), tile_sum(ix * iy), tile_sum(iy * iy)
    trace, det = sxx + syy, sxx * syy - sxy * sxy
    lam_min = 0.5 * (trace - np.sqrt(np.maximum((sxx - syy) ** 2 + 4 * sxy * sxy, 0)))
    valid = lam_min > max(1e-6 * tile * tile, 0.05 * float(np.median(lam_min)))
    safe_det = np.where(valid, det, 1.0)
    d = np.zeros((ny, nx, 2))
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    for _ in range(iterations):
        shifted = cv2.remap(a, expand(d[..., 0]) + xs, expand(d[..., 1]) + ys, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
        # The gradients are zero-mean in every tile, so a tile's brightness offset drops out here.
        err = shifted - t
        bx, by = tile_sum(ix * err), tile_sum(iy * err)
        step_x = -(syy * bx - sxy * by) / safe_det
        step_y = -(sxx * by - sxy * bx) / safe_det
        step = np.where(valid[..., None], np.stack([step_x, step_y], axis=-1), 0.0)
        step = np.clip(step, -1.0, 1.0)
        d += step
        if np.abs(step).max(initial=0) < 0.004:
            break
    valid &= (np.abs(d) < tile / 4).all(axis=-1)
    cy, cx = np.mgrid[0:ny, 0:nx]
    points = np.stack([x0 + (cx + 0.5) * tile, y0 + (cy + 0.5) * tile], axis=-1)[valid]
    return points.reshape(-1, 2).astype(np.float64), d[valid].reshape(-1, 2)


def _fit_once(src: np.ndarray, dst: np.ndarray, model: str) -> np.ndarray | None:
    if model == "translation":
        out = np.eye(3)
        out[:2, 2] = np.median(dst - src, axis=0)
        return out
    s32, d32 = src.astype(np.float32), dst.astype(np.float32)
    if model == "homography":
        matrix, _ = cv2.findHomography(s32, d32, 0)
        return matrix
    if model == "affine":
        a, _ = cv2.estimateAffine2D(s32, d32, method=cv2.LMEDS, refineIters=30)
    else:
        a, _ = cv2.estimateAffinePartial2D(s32, d32, method=cv2.LMEDS, refineIters=30)
    if a is None:
        return None
    out = np.vstack([a, [0, 0, 1]])
    if model == "rigid":
        out[:2, :2] /= np.sqrt(abs(np.linalg.det(out[:2, :2])))
    return out


def fit_model(points: np.ndarray, targets: np.ndarray, model: str, rounds: int = 3) -> np.ndarray | None:
    """Robust fit of a ``model`` transform taking points to targets.

    Tiles whose shift disagrees with the fit (an occlusion edge, a moving
    leaf) are trimmed and the fit is repeated on the rest.
    """
    keep = np.ones(len(points), bool)
    matrix = None
    for _ in range(rounds):
        if keep.sum() < 6:
            break
        matrix = _fit_once(points[keep], targets[keep], model)
        if matrix is None:
            return None
        pred = cv2.perspectiveTransform(points[None].astype(np.float64), matrix)[0]
        resid = np.hypot(*(pred - targets).T)
        limit = max(3.0 * float(np.median(resid[keep])), 0.03)
        new_keep = resid <= limit
        if (new_keep == keep).all():
            break
        keep = new_keep
    return matrix


def refine_with_tiles(
    template: np.ndarray, moving: np.ndarray, matrix: np.ndarray, model: str, rounds: int = 2
) -> np.ndarray:
    """Refine a transform (template coords -> moving coords) from local tile shifts.

    Examples
    --------
    >>> m = refine_with_tiles(a, b, m, "similarity")  # doctest: +SKIP
    """
    h, w = template.shape
    tile = int(np.clip(min(h, w) // 10, 16, 32))
    for _ in range(rounds):
        aligned = warp_to_reference(moving, matrix, (h, w))
        points, shifts = tile_shifts(template, aligned, tile)
        correction = fit_model(points, points + shifts, model)
        if correction is None or _plausible(correction, (h, w)):
            break
        matrix = matrix @ correction
        # Another round only when this one moved the picture noticeably (measured: a second
        # round changes the corner error by <= 0.02 px on the generated stacks, and costs 40 %
        # of the alignment time at 4K).
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        moved = cv2.perspectiveTransform(corners[None], correction)[0] - corners
        if np.abs(moved).max() < 0.5:
            break
    return matrix


def coarse_shift(template: np.ndarray, moving: np.ndarray, size: int = 256) -> np.ndarray:
    """Translation (3x3, template coords -> moving coords) found by phase correlation at low resolution.

    A start for the correlation match: periodic detail (a checkerboard, a
    keyboard, a sensor grid) has correlation peaks one period apart, and a
    match started at zero shift can settle on the wrong one when the hand
    moved more than half a period. The whole-image phase correlation picks the
    global peak.

    Examples
    --------
    >>> coarse_shift(a, b)  # doctest: +SKIP
    """
    h, w = template.shape[:2]
    f = min(1.0, size / max(h, w))
    small = (lambda im: cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)) if f < 1 else (lambda im: im)
    t, m = small(template).astype(np.float32), small(moving).astype(np.float32)
    window = cv2.createHanningWindow((t.shape[1], t.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(t, m, window)
    out = np.eye(3)
    if response > 0.05 and np.isfinite(dx) and np.isfinite(dy):
        out[0, 2], out[1, 2] = dx / f, dy / f
    return out


def match_pair(template: np.ndarray, moving: np.ndarray, model: str = "similarity") -> PairMatch:
    """Match neighbouring frames; fall back to features when correlation fails.

    Parameters
    ----------
    template, moving : float32 grey images (already reduced to working size).

    Returns
    -------
    PairMatch with the transform template coords -> moving coords.
    """
    size = template.shape[:2]
    reason = ""
    try:
        matrix, rho = ecc_match(template, moving, model, init=coarse_shift(template, moving))
        if model != "translation" and not _plausible(matrix, size):
            matrix = refine_with_tiles(template, moving, matrix, model)
        reason = _plausible(matrix, size)
        if not reason and rho >= MIN_CORRELATION:
            return PairMatch(matrix, rho, "ecc", True)
        reason = reason or f"correlation {rho:.2f} too low"
    except cv2.error:
        reason = "correlation match diverged"
    init = feature_match(template, moving, model)
    if init is not None and not _plausible(init, size):
        try:
            matrix, rho = ecc_match(template, moving, model, init=init)
            if not _plausible(matrix, size) and rho >= MIN_CORRELATION:
                return PairMatch(matrix, rho, "features+ecc", True)
        except cv2.error:
            pass
        return PairMatch(init, 0.0, "features", True)
    return PairMatch(np.eye(3), 0.0, "none", False, reason)


def warp_to_reference(
    frame: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int] | None = None,
    border: int = cv2.BORDER_REFLECT,
    interpolation: int = cv2.INTER_LINEAR,
    region: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Resample ``frame`` into reference geometry with transform ``matrix``.

    Parameters
    ----------
    frame : image in its own geometry.
    matrix : 3x3 reference coords -> frame coords.
    size : (height, width) of the output; default the frame's.
    interpolation : OpenCV interpolation; cubic keeps fine detail for outputs.
    region : (top, left, bottom, right) of the reference geometry to produce
        (default: all of ``size``); the same pixels as cropping the full warp.

    Returns
    -------
    The aligned image (or region of it), same dtype.

    Examples
    --------
    >>> shift = np.array([[1.0, 0, 2], [0, 1, 0], [0, 0, 1]])
    >>> warp_to_reference(np.arange(12, dtype=np.float32).reshape(3, 4), shift, region=(0, 0, 1, 2)).tolist()
    [[2.0, 3.0]]
    """
    h, w = size or frame.shape[:2]
    if region is not None:
        top, left, bottom, right = region
        if np.allclose(matrix, np.eye(3)) and bottom <= frame.shape[0] and right <= frame.shape[1]:
            return frame[top:bottom, left:right].copy()
        matrix = matrix @ np.array([[1.0, 0.0, left], [0.0, 1.0, top], [0.0, 0.0, 1.0]])
        h, w = bottom - top, right - left
    flags = interpolation | cv2.WARP_INVERSE_MAP
    if np.allclose(matrix, np.eye(3)) and (h, w) == frame.shape[:2]:
        return frame
    if abs(matrix[2, 0]) + abs(matrix[2, 1]) > 1e-12:
        return cv2.warpPerspective(frame, matrix, (w, h), flags=flags, borderMode=border)
    return cv2.warpAffine(frame, matrix[:2], (w, h), flags=flags, borderMode=border)


def valid_mask(matrix: np.ndarray, frame_size: tuple[int, int], size: tuple[int, int] | None = None) -> np.ndarray:
    """Where, in reference geometry, the frame has real pixels (uint8 0/1)."""
    ones = np.ones(frame_size, np.uint8)
    h, w = size or frame_size
    flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    if abs(matrix[2, 0]) + abs(matrix[2, 1]) > 1e-12:
        return cv2.warpPerspective(ones, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.warpAffine(ones, matrix[:2], (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def channel_gain(template: np.ndarray, moving: np.ndarray, mask: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """Per-channel factor that brings ``moving`` to the exposure of ``template``.

    Means are compared in linear light over ``mask``: defocus spreads light
    but keeps its total, so frames of different focus compare fairly there
    (in gamma-encoded values a blurred high-contrast edge would look brighter).
    The factor returned applies to encoded values (a power-law gamma turns a
    linear gain g into g ** (1 / gamma)).
    """
    m = mask.astype(bool)
    if m.sum() < 16:
        return np.ones(3, np.float32)
    t = np.power(np.clip(template[m], 0, 1), gamma).reshape(-1, template.shape[2]).mean(axis=0)
    v = np.power(np.clip(moving[m], 0, 1), gamma).reshape(-1, moving.shape[2]).mean(axis=0)
    gain = np.where(v > 1e-6, t / np.maximum(v, 1e-6), 1.0) ** (1.0 / gamma)
    return np.clip(gain, 0.25, 4.0).astype(np.float32)


def common_area(masks_or_matrices: list[np.ndarray], frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Largest axis-aligned rectangle (top, left, bottom, right) every frame covers.

    Parameters
    ----------
    masks_or_matrices : 3x3 transforms reference -> frame of the used frames.
    frame_size : (height, width) of the frames and of the reference.
    """
    h, w = frame_size
    top, left, bottom, right = 0.0, 0.0, float(h), float(w)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    for matrix in masks_or_matrices:
        inv = np.linalg.inv(matrix)
        pts = cv2.perspectiveTransform(corners[None], inv)[0]  # frame corners in reference coords
        xs, ys = pts[:, 0], pts[:, 1]
        left = max(left, xs[0], xs[3])
        right = min(right, xs[1], xs[2])
        top = max(top, ys[0], ys[1])
        bottom = min(bottom, ys[2], ys[3])
    t, l = int(np.ceil(top)), int(np.ceil(left))
    b, r = int(np.floor(bottom)), int(np.floor(right))
    if b - t < h // 4 or r - l < w // 4:
        return 0, 0, h, w
    return t, l, b, r


class SweepAligner:
    """Align a sweep streamed in file order, one small frame at a time.

    Feed every frame with :meth:`add` (grey and colour at working resolution),
    then :meth:`finish` returns one :class:`FrameAlignment` per frame, with
    transforms at full resolution. Neighbour matches run in a background
    thread while the caller goes on (``background=False``: in the caller's
    thread); at most a few small frames wait for their match.

    Examples
    --------
    >>> aligner = SweepAligner(names, reference=3, model="similarity", scale=0.5)  # doctest: +SKIP
    >>> for i, frame in enumerate(source): aligner.add(i, small_grey, small_rgb)  # doctest: +SKIP
    >>> report, reference = aligner.finish()  # doctest: +SKIP
    """

    #: Frames received but not yet matched, beyond which :meth:`add` waits (bounds memory).
    MAX_WAITING = 3

    def __init__(self, names: list[str], reference: int, model: str = "similarity", scale: float = 1.0,
                 background: bool = True, workers: int = 2):
        if model not in MODELS:
            raise ValueError(f"unknown alignment model {model!r}; choose one of {', '.join(MODELS)}")
        self.names = names
        self.reference = reference
        self.model = model
        self.scale = scale
        self._last: tuple[int, np.ndarray, np.ndarray] | None = None
        self._last_linked = False
        # First frame of a chain that did not match the frame after it: if the frame after
        # that matches it instead, the middle one was the odd frame out, not this one.
        self._orphan: tuple[int, np.ndarray, np.ndarray] | None = None
        self._links: list[tuple[int, int, np.ndarray, np.ndarray, float, str]] = []
        self._dropped: dict[int, str] = {}
        # Frames waiting to be linked, each with the match against the frame received before it,
        # started as soon as both were there (the usual case: that frame becomes the last kept).
        self._waiting: list[tuple[tuple[int, np.ndarray, np.ndarray], int | None, Future | None]] = []
        self._received: tuple[int, np.ndarray, np.ndarray] | None = None
        self._pool = None
        if background:
            # ``workers`` matches at once (one on a single-thread budget, beside the caller).
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="postfocus-align")

    def _pair(self, a: tuple[int, np.ndarray, np.ndarray], b: tuple[int, np.ndarray, np.ndarray]):
        """Match frame ``b`` to frame ``a``; with the exposure gain between them when they match."""
        match = match_pair(a[1], b[1], self.model)
        gain = self._gain(a[2], b[2], match, b[1].shape[1]) if match.ok else None
        return match, gain

    #: Long edge (px) at which neighbours' exposures are compared: means need no detail.
    GAIN_SIZE = 400

    @staticmethod
    def _gain(last_small: np.ndarray, small: np.ndarray, match: PairMatch, work_width: int) -> np.ndarray:
        """Exposure gain between neighbours, from their frames kept in linear light at :attr:`GAIN_SIZE`
        (``match`` is at the working size, ``work_width`` pixels wide)."""
        size = small.shape[:2]
        matrix = rescale_matrix(match.matrix, size[1] / work_width)
        aligned = warp_to_reference(small, matrix, size)
        border = max(3, int(0.04 * max(size)))  # blur spreads light across the edge of the overlap
        mask = cv2.erode(valid_mask(matrix, size), np.ones((border, border), np.uint8))
        linear_gain = channel_gain(last_small, aligned, mask, gamma=1.0)
        return (linear_gain ** np.float32(1 / GAMMA)).astype(np.float32)

    def add(self, index: int, grey: np.ndarray, colour: np.ndarray) -> None:
        """Take frame ``index``; its match to the frame before it starts now (in the background).

        Only the grey frame and a small copy of ``colour`` (for exposure) are kept.
        """
        h, w = colour.shape[:2]
        # Shrunk in linear light: defocus moves light around but keeps its total, so means of
        # linear values compare frames focused differently fairly, at any size.
        linear = np.power(np.clip(colour, 0, 1), np.float32(GAMMA), dtype=np.float32)
        f = min(1.0, self.GAIN_SIZE / max(h, w))
        if f < 1.0:
            linear = cv2.resize(linear, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        frame = (index, grey, linear)
        before = self._received
        job = None
        if before is not None and self._pool is not None:
            job = self._pool.submit(self._pair, before, frame)
        elif before is not None:  # in the caller's thread: a future that is already done
            job = Future()
            job.set_result(self._pair(before, frame))
        self._waiting.append((frame, None if before is None else before[0], job))
        self._received = frame
        self._link(block=len(self._waiting) > self.MAX_WAITING)

    def _link(self, block: bool) -> None:
        """Link waiting frames in order, as far as their matches are done (all of them with ``block``)."""
        while self._waiting:
            frame, before, job = self._waiting[0]
            if not block and job is not None and not job.done():
                return
            self._waiting.pop(0)
            index, grey, colour = frame
            if self._last is None:
                self._last = frame
                self._last_linked = False
                continue
            last_index, last_grey, last_colour = self._last
            if before == last_index and job is not None:
                match, gain = job.result()
            else:  # the frame before this one was left out: match against the last one kept
                match, gain = self._pair(self._last, frame)
            if not match.ok and not self._last_linked and self._orphan is not None:
                retry, retry_gain = self._pair(self._orphan, frame)
                if retry.ok:  # the orphan and this frame match: the frame between them is the odd one
                    self._dropped.pop(self._orphan[0], None)
                    self._dropped[last_index] = f"cannot be aligned with {self.names[index]} ({match.reason})"
                    last_index, last_grey, last_colour = self._orphan
                    match, gain = retry, retry_gain
            self._orphan = None
            if match.ok:
                self._links.append((last_index, index, match.matrix, gain, match.correlation, match.method))
                self._last = frame
                self._last_linked = True
            elif not self._last_linked:
                # The chain has only its first frame so far: take it for the odd frame out, unless
                # the next frame matches it (see above).
                self._dropped[last_index] = f"cannot be aligned with {self.names[index]} ({match.reason})"
                self._orphan = self._last
                self._last = frame
            else:
                self._dropped[index] = f"cannot be aligned with {self.names[last_index]} ({match.reason})"

    def close(self) -> None:
        """Stop the background thread (:meth:`finish` does this too)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def finish(self) -> tuple[list[FrameAlignment], int]:
        """Wait for the last matches and chain them to the reference frame.

        Returns
        -------
        report : list of FrameAlignment
            One per frame, matrices relative to the reference.
        reference : int
            The reference frame: the one asked for, or the linked frame
            nearest to it when it could not be linked.
        """
        try:
            self._link(block=True)
        finally:
            self.close()
        self._received = None
        n = len(self.names)
        report = [FrameAlignment(i, self.names[i]) for i in range(n)]
        for i, why in self._dropped.items():
            report[i].used = False
            report[i].method = "none"
            report[i].correlation = 0.0
            report[i].note = why
        chain = [self._links[0][0]] + [link[1] for link in self._links] if self._links else []
        if not chain:
            for r in report:
                r.used = r.index == (self._last[0] if self._last else self.reference)
            return report, self.reference
        used = set(chain)
        for i in range(n):
            if i not in used and report[i].used:
                report[i].used = False
                report[i].method = "none"
                report[i].note = report[i].note or "not linked to the other frames"
        ref = self.reference if self.reference in used else min(chain, key=lambda i: abs(i - self.reference))
        pos = chain.index(ref)
        full = 1.0 / self.scale
        report[ref].matrix = np.eye(3)
        report[ref].gain = np.ones(3, np.float32)
        report[ref].method = "reference"
        for k in range(pos, len(chain) - 1):  # frames after the reference
            a, b, matrix, gain, rho, method = self._links[k]
            report[b].matrix = rescale_matrix(matrix, full) @ report[a].matrix
            report[b].gain = (report[a].gain * gain).astype(np.float32)
            report[b].correlation, report[b].method = rho, method
        for k in range(pos - 1, -1, -1):  # frames before the reference
            a, b, matrix, gain, rho, method = self._links[k]
            report[a].matrix = np.linalg.inv(rescale_matrix(matrix, full)) @ report[b].matrix
            report[a].gain = (report[b].gain / gain).astype(np.float32)
            report[a].correlation, report[a].method = rho, method
        for r in report:
            r.matrix = r.matrix / r.matrix[2, 2]
        return report, ref
