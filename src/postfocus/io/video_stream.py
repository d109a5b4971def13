"""A video stream as PyAV decodes it, for :mod:`postfocus.io.video`: frames in decode order with damaged
packets skipped, their display rotation and bit depth, and FFmpeg's errors as one line.

Rotation: FFmpeg attaches the container's display matrix to every decoded frame; PyAV (18.x) exposes its
rotation as ``VideoFrame.rotation``, the angle in degrees by which the picture must be turned
counter-clockwise to be shown upright. Older files that carry only a ``rotate`` metadata tag (clockwise
degrees) are honoured too; a mirroring display matrix is reported, not applied.
"""

from __future__ import annotations

from typing import Iterator

import av
import numpy as np

__all__ = ["decoded_frames", "frame_bits", "is_attached_picture", "reason", "rotation_of"]


def reason(exc: BaseException) -> str:
    """A short, one-line reason from a PyAV/FFmpeg exception."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def is_attached_picture(stream) -> bool:
    """Whether ``stream`` is a cover picture (an MP4's or MKV's attached picture), not the video."""
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def frame_bits(frame: av.VideoFrame) -> int:
    """Bits per sample of ``frame``'s pixel format (8 for 8-bit video, 10 for 10-bit HEVC, ...)."""
    comps = frame.format.components
    return max((c.bits for c in comps), default=8) if comps else 8


def _display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
    for sd in frame.side_data:
        if "DISPLAYMATRIX" in str(getattr(sd, "type", "")):
            raw = bytes(sd)
            if len(raw) >= 36:
                return np.frombuffer(raw[:36], dtype="<i4").astype(np.float64) / 65536.0
    return None


def rotation_of(frame: av.VideoFrame, stream) -> tuple[int, bool]:
    """(quarter turns counter-clockwise to make the frame upright, mirrored)."""
    angle = 0.0
    try:
        angle = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        angle = 0.0
    mirrored = False
    matrix = _display_matrix(frame)
    if matrix is not None:
        mirrored = matrix[0] * matrix[4] - matrix[1] * matrix[3] < 0
    if angle == 0 and matrix is None:
        tag = (stream.metadata or {}).get("rotate")
        if tag:
            try:
                angle = -float(tag)  # the legacy tag is clockwise
            except ValueError:
                angle = 0.0
    quarter = round(angle / 90.0)
    if abs(angle - 90.0 * quarter) > 1.0:
        quarter = None  # not a multiple of 90 degrees
    return (quarter % 4 if quarter is not None else -1), mirrored


def decoded_frames(container, stream, errors: list[str]) -> Iterator[av.VideoFrame]:
    """Decode ``stream`` in order; a packet that fails to decode is skipped.

    Reasons for skipped packets are appended to ``errors``. A damaged packet at
    the end of a truncated file is the usual case.
    """
    try:
        packets = container.demux(stream)
        for packet in packets:
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError as exc:
                errors.append(reason(exc))
                continue
            yield from frames
    except av.error.FFmpegError as exc:  # the demuxer gave up (cut container)
        errors.append(reason(exc))
        try:
            yield from stream.decode(None)
        except av.error.FFmpegError:
            pass
