"""Read focus-sweep videos frame by frame, write test videos, extract frames.

Cameras such as the Panasonic Lumix FZ2000 record a focus sweep ("post focus")
as a short MP4. :class:`VideoSource` decodes such a file with PyAV one frame at
a time, in decode order (so variable frame rate needs no timestamp arithmetic),
and hands out upright float32 RGB frames in [0, 1].

Rotation: FFmpeg attaches the container's display matrix to every decoded
frame; PyAV (18.x) exposes its rotation as ``VideoFrame.rotation``, the angle in
degrees by which the picture must be turned counter-clockwise to be shown
upright. Frames are turned by ``np.rot90(frame, rotation // 90)``, which matches
what OpenCV's FFmpeg backend shows with auto-rotation. Older files that carry
only a ``rotate`` metadata tag (clockwise degrees) are honoured too. Mirroring
in a display matrix is not applied (a warning says so).
"""

from __future__ import annotations

import os
import re
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

from postfocus.errors import InputError, OutputError, PostfocusWarning
from postfocus.io.base import FrameSource, SourceInfo, fit_size, looks_like_mp4
from postfocus.io.images import to_float
from postfocus.io.write import atomic_write_bytes, output_folder

__all__ = ["VideoSource", "encoder_available", "extract_frames", "write_video"]

_ENCODERS = {"h264": "libx264", "avc": "libx264", "hevc": "libx265", "h265": "libx265"}
_FRAME_FILE = re.compile(r"^frame_\d{4,}\.(png|jpg)$")


def _reason(exc: BaseException) -> str:
    """A short, one-line reason from a PyAV/FFmpeg exception."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _is_attached_picture(stream) -> bool:
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def _bits(frame: av.VideoFrame) -> int:
    comps = frame.format.components
    return max((c.bits for c in comps), default=8) if comps else 8


def _display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
    for sd in frame.side_data:
        if "DISPLAYMATRIX" in str(getattr(sd, "type", "")):
            raw = bytes(sd)
            if len(raw) >= 36:
                return np.frombuffer(raw[:36], dtype="<i4").astype(np.float64) / 65536.0
    return None


def _rotation_of(frame: av.VideoFrame, stream) -> tuple[int, bool]:
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


def _decoded_frames(container, stream, errors: list[str]) -> Iterator[av.VideoFrame]:
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
                errors.append(_reason(exc))
                continue
            yield from frames
    except av.error.FFmpegError as exc:  # the demuxer gave up (cut container)
        errors.append(_reason(exc))
        try:
            yield from stream.decode(None)
        except av.error.FFmpegError:
            pass


class VideoSource(FrameSource):
    """Frames of a video file, decoded one at a time with PyAV.

    The file is checked when the source is created: it must hold a video
    stream with at least two decodable frames. A truncated file keeps the frames
    that decode, with a :class:`~postfocus.errors.PostfocusWarning`.

    Parameters
    ----------
    path : str or os.PathLike
        A video file (MP4, MOV, MKV, MTS, ...).

    Raises
    ------
    InputError
        Naming the file when it is not a usable video.

    Examples
    --------
    >>> src = VideoSource("sweep.mp4")  # doctest: +SKIP
    >>> len(src), src.info.size, src.info.fps  # doctest: +SKIP
    (41, (1080, 1920), 30.0)
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads  # decoder threads (None: FFmpeg's choice)
        self._container = None  # for read(): opened on first use
        self._stream = None
        self._frames_iter: Iterator[av.VideoFrame] | None = None
        self._pos = 0  # index of the frame self._frames_iter yields next
        self._cached: tuple[int, av.VideoFrame] | None = None
        self._keyframes: dict[int, int] = {}  # frame index -> pts, keyframes seen
        self._pts_index: dict[int, int] = {}  # pts -> frame index, all frames seen
        self._probe()

    # -- opening -----------------------------------------------------------
    def _open(self):
        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            if looks_like_mp4(self.path):
                raise InputError(
                    f"{self.path}: cannot be read as a video ({_reason(exc)}); the file may be cut short "
                    "(an MP4/MOV whose index was never written cannot be read)"
                ) from None
            raise InputError(f"{self.path}: not a video file, or one FFmpeg cannot read ({_reason(exc)})") from None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open ({_reason(exc)})") from None
        streams = [s for s in container.streams.video if not _is_attached_picture(s)]
        if not streams:
            has_audio = bool(container.streams.audio)
            container.close()
            if has_audio:
                raise InputError(f"{self.path}: holds audio only, no video stream")
            raise InputError(f"{self.path}: holds no video stream")
        stream = streams[0]
        if stream.codec_context is None:
            container.close()
            raise InputError(f"{self.path}: no decoder for its video codec")
        stream.thread_type = "SLICE" if getattr(self, "_damaged", False) else "AUTO"
        if self.threads:
            stream.thread_count = int(self.threads)
        return container, stream

    def _probe(self) -> None:
        path = self.path
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{path}: empty file (0 bytes), not a video")
        self._damaged = False
        container, stream = self._open()
        try:
            codec = stream.codec_context.name
            entries = []
            try:
                entries = list(stream.index_entries)
            except (AttributeError, av.error.FFmpegError):
                pass
            cut = any(e.pos >= 0 and e.pos + e.size > size for e in entries)
            header_count = int(stream.frames or 0)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else None
            duration = None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            if cut:
                self._damaged = True
                stream.thread_type = "SLICE"  # frame threads drop frames around a damaged packet
            errors: list[str] = []
            first = None
            count = 0
            counting = cut or header_count <= 0
            for frame in _decoded_frames(container, stream, errors):
                if first is None:
                    first = frame
                count += 1
                if not counting:
                    break
        finally:
            container.close()
        if first is None:
            why = f" ({errors[0]})" if errors else ""
            raise InputError(f"{path}: no decodable video frames in its {codec} stream{why}")
        n = count if counting else header_count
        expected = header_count
        if expected <= 0 and duration and fps:
            expected = int(round(duration * fps))
        if counting and (cut or errors or (expected and n < expected - 1)):
            self._damaged = True
            if n >= 2:
                total = f" of about {expected}" if expected > n else ""
                warnings.warn(
                    f"{path}: file seems truncated or damaged; using the {n}{total} frames that could be decoded",
                    PostfocusWarning,
                    stacklevel=3,
                )
        if n < 2:
            if self._damaged and expected > 1:
                raise InputError(
                    f"{path}: truncated or damaged, only {n} of {expected} frames could be decoded; "
                    "a stack needs at least two"
                )
            raise InputError(f"{path}: a stack needs at least two frames, the video has {n}")
        quarter, mirrored = _rotation_of(first, stream)
        if quarter < 0:
            warnings.warn(f"{path}: display rotation {first.rotation} degrees is not a multiple of 90; ignored",
                          PostfocusWarning, stacklevel=3)
            quarter = 0
        if mirrored:
            warnings.warn(f"{path}: the display matrix mirrors the picture; mirroring is not applied",
                          PostfocusWarning, stacklevel=3)
        self._quarter = quarter
        self._bits = _bits(first)
        self._count = n
        h, w = first.height, first.width
        if quarter % 2:
            h, w = w, h
        self.info = SourceInfo(
            kind="video",
            names=[f"frame {i:04d}" for i in range(n)],
            height=h,
            width=w,
            bit_depth=8 if self._bits <= 8 else self._bits,
            grey=False,
            exif=None,
            icc=None,
            paths=[path],
            fps=fps,
        )

    @property
    def rotation(self) -> int:
        """Degrees (0, 90, 180, 270) the coded frames are turned counter-clockwise."""
        return 90 * self._quarter

    # -- decoding ----------------------------------------------------------
    def _convert(self, frame: av.VideoFrame, stored: bool = False) -> np.ndarray:
        out = frame.to_ndarray(format="rgb48le" if self._bits > 8 else "rgb24")
        if not stored:
            out = to_float(out)
        if self._quarter:
            out = np.ascontiguousarray(np.rot90(out, self._quarter))
        if out.shape[:2] != self.info.size:
            out = fit_size(out, self.info.height, self.info.width)
        return out

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[np.ndarray]:
        """Decode the frames in order, holding one frame in memory at a time."""
        container, stream = self._open()
        errors: list[str] = []
        i = 0
        try:
            for frame in _decoded_frames(container, stream, errors):
                if i >= self._count:
                    break
                yield self._convert(frame)
                i += 1
        finally:
            container.close()
        if i < self._count:
            why = f" ({errors[-1]})" if errors else ""
            raise InputError(f"{self.path}: only {i} of {self._count} frames could be decoded{why}")

    def _restart(self, key_index: int | None = None) -> None:
        """Position the read() decoder at the start, or at a known keyframe."""
        self._frames_iter = None
        if key_index is not None and self._container is not None:
            try:
                self._container.seek(self._keyframes[key_index], stream=self._stream, backward=True)
                self._stream.codec_context.flush_buffers()
                self._pos = None  # unknown until the first frame's pts is looked up
                self._frames_iter = _decoded_frames(self._container, self._stream, [])
                return
            except av.error.FFmpegError:
                pass
        if self._container is not None:
            self._container.close()
            self._container = None
        self._container, self._stream = self._open()
        self._pos = 0
        self._frames_iter = _decoded_frames(self._container, self._stream, [])

    def _next_frame(self) -> tuple[int, av.VideoFrame]:
        try:
            frame = next(self._frames_iter)
        except StopIteration:
            raise InputError(f"{self.path}: ended after {self._pos} of {self._count} frames") from None
        if self._pos is None:  # just sought: find where we are from the timestamp
            if frame.pts is None or frame.pts not in self._pts_index:
                self._restart()
                return self._next_frame()
            self._pos = self._pts_index[frame.pts]
        index = self._pos
        self._pos += 1
        if frame.pts is not None:
            self._pts_index[frame.pts] = index
            if frame.key_frame:
                self._keyframes[index] = frame.pts
        return index, frame

    def read(self, index: int) -> np.ndarray:
        """Decode frame ``index``; reading frames in order decodes each once.

        Examples
        --------
        >>> VideoSource("sweep.mp4").read(3).shape  # doctest: +SKIP
        (1080, 1920, 3)
        """
        return to_float(self.read_pixels(index))

    def read_pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as uint8 RGB (uint16 for 10-bit and deeper video)."""
        n = self._count
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"frame {index} out of range (video has {n})")
        if self._cached is not None and self._cached[0] == index:
            return self._convert(self._cached[1], stored=True)
        key = max((k for k in self._keyframes if k <= index), default=None)
        if self._frames_iter is None or self._pos is None or index < self._pos:
            self._restart(key)
        elif key is not None and key > self._pos:
            self._restart(key)  # skip ahead to a keyframe instead of decoding through
        while True:
            i, frame = self._next_frame()
            if i == index:
                self._cached = (i, frame)
                return self._convert(frame, stored=True)
            if i > index:  # a seek overshot: start again from the beginning
                self._keyframes = {k: v for k, v in self._keyframes.items() if k <= index and k != key}
                self._restart()

    def close(self) -> None:
        """Release the decoder used by :meth:`read`."""
        self._frames_iter = None
        self._cached = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


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
    container = av.open(str(path), "w")
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
            raise OutputError(f"{out / name}: cannot remove old frame file ({_reason(exc)})") from None
    return written
