"""Write test videos and extract the frames of a video as image files.

:func:`write_video` encodes frames with PyAV (H.264 or HEVC, 8 or 10 bits,
display rotation, variable frame rate) for tests and benchmarks;
:func:`extract_frames` writes every frame of a source as a PNG or JPEG file.
Reading videos is :class:`postfocus.io.video.VideoSource`.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import cv2
import numpy as np

from postfocus.errors import OutputError
from postfocus.io.base import FrameSource
from postfocus.io.video import VideoSource
from postfocus.io.video_stream import reason
from postfocus.io.write import atomic_write_bytes, output_folder

__all__ = ["encoder_available", "extract_frames", "write_video"]

_ENCODERS = {"h264": "libx264", "avc": "libx264", "hevc": "libx265", "h265": "libx265"}
_FRAME_FILE = re.compile(r"^frame_\d{4,}\.(png|jpg)$")


def encoder_available(name: str) -> bool:
    """True when PyAV's FFmpeg can encode with ``name`` (e.g. "libx265").

    Parameters
    ----------
    name : str
        An FFmpeg encoder name, or "h264"/"avc"/"hevc"/"h265".

    Returns
    -------
    bool

    Examples
    --------
    >>> encoder_available("libx264")  # doctest: +SKIP
    True
    """
    try:
        av.Codec(_ENCODERS.get(name, name), "w")
    except Exception:
        return False
    return True


def write_video(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    fps: float = 30,
    codec: str = "h264",
    bit_depth: int = 8,
    crf: int = 18,
    rotation: int = 0,
    times: Iterable[float] | None = None,
    options: dict[str, str] | None = None,
    container_format: str | None = None,
) -> Path:
    """Encode float32 RGB frames in [0, 1] as a video (for tests and benchmarks).

    Parameters
    ----------
    frames : Iterable[np.ndarray]
        (H, W, 3) float arrays, all the same even size.
    path : str or os.PathLike
        Output file; the container follows the suffix (.mp4, .mov, .mkv).
    fps : float
        Nominal frame rate.
    codec : str
        "h264" (libx264) or "hevc" (libx265), or an FFmpeg encoder name.
    bit_depth : int
        8 (yuv420p) or 10 (yuv420p10le).
    crf : int
        Constant rate factor; 18 is visually near lossless.
    rotation : int
        Display rotation in degrees counter-clockwise, written as the
        container's display matrix (a reader turns frames by this to show them
        upright; :class:`VideoSource` does).
    times : Iterable[float] or None
        Presentation time of each frame in seconds, for variable frame rate.
    options : dict[str, str] or None
        Extra encoder options, e.g. ``{"g": "4"}`` for a keyframe every 4 frames.
    container_format : str or None
        Container to write (e.g. ``"mp4"``) when the suffix does not say (a temporary file).

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> frames = [np.full((16, 16, 3), v, np.float32) for v in (0.2, 0.8)]
    >>> write_video(frames, "two.mp4")  # doctest: +SKIP
    PosixPath('two.mp4')
    """
    path = Path(path)
    options_extra = options
    encoder = _ENCODERS.get(codec, codec)
    if not encoder_available(encoder):
        raise ValueError(f"encoder {encoder!r} is not available in this FFmpeg build")
    if bit_depth not in (8, 10):
        raise ValueError(f"bit_depth must be 8 or 10, got {bit_depth}")
    pix_fmt = "yuv420p" if bit_depth == 8 else "yuv420p10le"
    formats = {f.name for f in (av.Codec(encoder, "w").video_formats or [])}
    if formats and pix_fmt not in formats:
        raise ValueError(f"encoder {encoder} cannot write {pix_fmt} ({bit_depth}-bit)")
    times = None if times is None else list(times)
    container = av.open(str(path), "w", format=container_format)
    try:
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream(encoder, rate=rate)
        stream.pix_fmt = pix_fmt
        options = {"crf": str(crf)}
        if encoder == "libx265":
            options["x265-params"] = "log-level=error"
        options.update(options_extra or {})
        stream.options = options
        if times is not None:  # fine clock, so irregular times survive the encoder's time base
            stream.time_base = Fraction(1, 90000)
            stream.codec_context.time_base = Fraction(1, 90000)
        if rotation % 360:
            stream.set_display_rotation(int(rotation))
        count = 0
        for i, frame in enumerate(frames):
            frame = np.asarray(frame)
            if frame.ndim == 2:
                frame = np.repeat(frame[:, :, None], 3, axis=2)
            h, w = frame.shape[:2]
            if count == 0:
                if h % 2 or w % 2:
                    raise ValueError(f"frame size {w}x{h} must be even for {pix_fmt}")
                stream.width, stream.height = w, h
            elif (h, w) != (stream.height, stream.width):
                raise ValueError(f"frame {i} is {w}x{h}, expected {stream.width}x{stream.height}")
            clipped = np.clip(frame[:, :, :3].astype(np.float32), 0, 1)
            if bit_depth == 8:
                vf = av.VideoFrame.from_ndarray(np.round(clipped * 255).astype(np.uint8), format="rgb24")
            else:
                vf = av.VideoFrame.from_ndarray(np.round(clipped * 65535).astype(np.uint16), format="rgb48le")
            if times is not None:
                vf.pts = int(round(times[i] * 90000))
                vf.time_base = stream.time_base
            for packet in stream.encode(vf):
                container.mux(packet)
            count += 1
        if count == 0:
            raise ValueError("write_video needs at least one frame")
        for packet in stream.encode(None):
            container.mux(packet)
    except BaseException:
        container.close()
        path.unlink(missing_ok=True)
        raise
    container.close()
    return path


def extract_frames(
    source_or_path: FrameSource | str | os.PathLike,
    out_dir: str | os.PathLike,
    fmt: str = "png",
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write every frame as ``frame_0000.png``, ``frame_0001.png``, ... in ``out_dir``.

    PNG files are 16-bit when the source has more than 8 bits (10-bit video),
    else 8-bit; JPEG ("jpg") files are 8-bit, quality 95. Each file is written
    under a temporary name and renamed, so no half-written frame is left behind.

    Parameters
    ----------
    source_or_path : FrameSource, str or os.PathLike
        A frame source, or a video file (opened as a :class:`VideoSource`).
    out_dir : str or os.PathLike
        Folder for the frames; created if its parent exists.
    fmt : str
        "png" or "jpg".
    overwrite : bool
        Replace the frame files (``frame_NNNN.png`` / ``.jpg``) already in
        ``out_dir``; old ones not rewritten are removed, so the folder then holds
        exactly this source's frames. Other files are never touched.

    Returns
    -------
    list[Path]
        The written paths, in frame order.

    Raises
    ------
    OutputError
        If the folder cannot be made or already holds frame files.

    Examples
    --------
    >>> extract_frames("sweep.mp4", "frames")[:2]  # doctest: +SKIP
    [PosixPath('frames/frame_0000.png'), PosixPath('frames/frame_0001.png')]
    """
    fmt = fmt.lower().lstrip(".")
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in ("png", "jpg"):
        raise OutputError(f"{out_dir}: frame format must be png or jpg, got {fmt!r}")
    source = source_or_path if isinstance(source_or_path, FrameSource) else VideoSource(source_or_path)
    out = output_folder(out_dir)
    existing = sorted(p.name for p in out.iterdir() if p.is_file() and _FRAME_FILE.match(p.name))
    if existing and not overwrite:
        raise OutputError(
            f"{out}: already holds {len(existing)} frame file(s) ({existing[0]} ...); "
            "choose another folder or allow overwriting"
        )
    sixteen = fmt == "png" and source.info.bit_depth > 8
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    written = []
    for i, frame in enumerate(source):
        bgr = np.ascontiguousarray(np.clip(frame, 0, 1)[:, :, ::-1])
        if sixteen:
            pixels = np.round(bgr * 65535).astype(np.uint16)
        else:
            pixels = np.round(bgr * 255).astype(np.uint8)
        target = out / f"frame_{i:04d}.{fmt}"
        ok, encoded = cv2.imencode(f".{fmt}", pixels, params)
        if not ok:
            raise OutputError(f"{target}: cannot write image")
        atomic_write_bytes(target, encoded.tobytes())
        written.append(target)
    stale = set(existing) - {p.name for p in written}
    for name in sorted(stale):  # left from an earlier, longer extraction
        try:
            (out / name).unlink()
        except OSError as exc:
            raise OutputError(f"{out / name}: cannot remove old frame file ({reason(exc)})") from None
    return written
