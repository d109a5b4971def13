"""Write short animations (a focus pull, a wiggle) as MP4, GIF or WebP, atomically.

MP4 is H.264 through PyAV (:func:`postfocus.io.video_write.write_video`),
GIF and animated WebP through Pillow, whose encoders store a run of frames alike
once, shown as long (libwebp: alike within its lossy tolerance; GIF: identical):
:func:`stored_frames` reads back how many a file holds. Every file is written under a temporary
name and renamed (:func:`postfocus.io.write.atomic_write`), so a failed or
interrupted write never leaves a half-written animation under the name asked for.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from postfocus.errors import OutputError, PostfocusError
from postfocus.io.write import atomic_write, atomic_write_bytes

__all__ = ["ANIMATION_FORMATS", "MAX_FPS", "MIN_FPS", "stored_frames", "write_animation", "write_gif"]

ANIMATION_FORMATS = (".mp4", ".gif", ".webp")
MIN_FPS, MAX_FPS = 0.01, 120.0
"""Frame rates an animation may have: a frame shown at most 100 s (a GIF holds 655.35 s, and 0.001 fps was an
OverflowError writing it)."""
_GIF_MOST_MS = 655_350  # a GIF frame's delay is 16 bits of hundredths of a second


def _uint8(frame: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(frame, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _pillow_frames(frames: Iterable[np.ndarray], palette: bool) -> list:
    """Pillow images of the frames; with ``palette``, all on one 255-colour palette made from the first,
    middle and last frames (no colour flicker from frame to frame, and a smaller file)."""
    from PIL import Image

    out = [Image.fromarray(_uint8(frame)[..., :3]) for frame in frames]
    if not out:
        raise PostfocusError("an animation needs at least one frame")
    if not palette:
        return out
    picks = [out[i] for i in sorted({0, len(out) // 2, len(out) - 1})]
    sample = Image.new("RGB", (picks[0].width, picks[0].height * len(picks)))
    for k, im in enumerate(picks):
        sample.paste(im, (0, k * im.height))
    shared = sample.quantize(colors=255, dither=Image.Dither.NONE)
    return [im.quantize(palette=shared, dither=Image.Dither.NONE) for im in out]


def write_gif(path: str | os.PathLike, frames: Iterable[np.ndarray], *, duration_ms: float = 80,
              loop: bool = True) -> Path:
    """A GIF of float32 RGB frames in [0, 1] (one adaptive 255-colour palette for all frames).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.gif`` to write.
    frames : iterable of numpy.ndarray
        (H, W, 3) float arrays in [0, 1], all the same size.
    duration_ms : float
        Time each frame is shown (GIF stores hundredths of a second).
    loop : bool
        Play forever (else once).

    Returns
    -------
    pathlib.Path
    """
    if not (isinstance(duration_ms, (int, float)) and not isinstance(duration_ms, bool)
            and 0 <= duration_ms <= _GIF_MOST_MS):  # (longer was Pillow's OverflowError: "int too big to convert")
        raise PostfocusError(f"a GIF shows a frame from 0 to {_GIF_MOST_MS} ms, not {duration_ms!r:.30}")
    ims = _pillow_frames(frames, palette=True)
    buf = io.BytesIO()
    extra = {"loop": 0} if loop else {}
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=int(round(duration_ms)),
                disposal=1, **extra)
    return atomic_write_bytes(path, buf.getvalue())


def write_animation(path: str | os.PathLike, frames: Iterable[np.ndarray], *, fps: float, quality: int = 80,
                    loop: bool = True) -> Path:
    """Write float32 RGB frames in [0, 1] as an MP4 (H.264), GIF or animated WebP, by the path's suffix.

    Parameters
    ----------
    path : str or os.PathLike
        ``.mp4``, ``.gif`` or ``.webp``.
    frames : iterable of numpy.ndarray
        (H, W, 3) float arrays in [0, 1], all the same size (even for MP4). MP4
        frames are encoded as they come; GIF and WebP frames are kept (8-bit) until the end.
    fps : float
        Frames per second.
    quality : int
        WebP quality (1-100); MP4 takes a matching constant rate factor.
    loop : bool
        GIF and WebP play forever (else once); an MP4 plays once (a player loops it).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        For another suffix.
    PostfocusError
        For no frames or a bad frame rate.

    Examples
    --------
    >>> frames = [np.full((16, 16, 3), v, np.float32) for v in (0.2, 0.8)]
    >>> write_animation("two.gif", frames, fps=10)  # doctest: +SKIP
    PosixPath('two.gif')
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_FORMATS:
        raise OutputError(f"{path}: unknown animation format '{path.suffix}'; use {', '.join(ANIMATION_FORMATS)}")
    if not (isinstance(fps, (int, float)) and MIN_FPS <= fps <= MAX_FPS):
        raise PostfocusError(f"frame rate {fps}: use {MIN_FPS:g} to {MAX_FPS:g} frames per second")
    if suffix == ".gif":
        return write_gif(path, frames, duration_ms=1000.0 / fps, loop=loop)
    if suffix == ".webp":
        ims = _pillow_frames(frames, palette=False)
        buf = io.BytesIO()
        ims[0].save(buf, format="WEBP", save_all=True, append_images=ims[1:], duration=int(round(1000.0 / fps)),
                    loop=0 if loop else 1, quality=int(quality), method=4)
        return atomic_write_bytes(path, buf.getvalue())
    from postfocus.io.video_write import write_video

    crf = int(round(np.interp(quality, [1, 100], [40, 14])))

    def write(tmp: Path) -> None:
        try:
            write_video(frames, tmp, fps=fps, crf=crf, container_format="mp4")
        except ValueError as exc:
            raise PostfocusError(f"{path}: {exc}") from None

    return atomic_write(path, write)


def stored_frames(path: str | os.PathLike) -> int | None:
    """How many frames a GIF or animated WebP file holds (None for another file, or one that cannot be read).

    Fewer than were written when neighbours are alike: the encoders keep such a run once, shown for the
    run's whole time (the playback is the same).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.gif`` or ``.webp`` file.

    Returns
    -------
    int or None

    Examples
    --------
    >>> stored_frames("no-such.webp") is None
    True
    """
    if Path(path).suffix.lower() not in (".gif", ".webp"):
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except (OSError, ValueError, SyntaxError):
        return None
