"""Read focus-sweep videos frame by frame (writing them: :mod:`postfocus.io.video_write`).

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

import itertools
import os
import warnings
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from postfocus.errors import InputError, PostfocusWarning
from postfocus.io.base import FrameSource, SourceInfo, fit_size, looks_like_mp4
from postfocus.io.images import to_float
from postfocus.io.video_metadata import read_video_metadata
from postfocus.io.video_stream import decoded_frames, frame_bits, is_attached_picture, reason, rotation_of

__all__ = ["VideoSource"]

#: How an MP4/MOV is opened: its boxes name the stream's size, rates and frame count, so FFmpeg's probe
#: (``avformat_find_stream_info``) is asked to decode no frame (``skip_frame`` for that probe only: the
#: decoder that reads the frames is made afresh from the stream's parameters). The probe decoded the first
#: frame on one thread, which the decoder then decoded again: 53-77 ms of CPU at 4K, 3-12 ms without, the
#: same frames (docs/performance.md, "fourteenth session"). Other containers (MKV, MTS, ...) may name some
#: of these only in the coded frames: opened as before.
_BOXED = {"options": {"skip_frame": "all"}}


class VideoSource(FrameSource):
    """Frames of a video file, decoded one at a time with PyAV.

    The file is checked when the source is created: it must hold a video
    stream with at least two decodable frames (``min_frames``). A truncated file keeps the frames
    that decode, with a :class:`~postfocus.errors.PostfocusWarning`.

    The camera metadata an MP4/MOV file carries (Panasonic's PANA atom,
    ``©xyz`` / ``©mak`` / ``©mod``, the ``mvhd`` date) is read at the same time
    into ``info.exif`` and ``info.camera`` (:mod:`postfocus.io.video_metadata`).

    Parameters
    ----------
    path : str or os.PathLike
        A video file (MP4, MOV, MKV, MTS, ...).
    threads : int or None
        Decoder threads; None leaves the choice to FFmpeg.
    min_frames : int
        Decodable frames the video must have (2, a stack; 1 for ``postfocus frames``, which only writes
        them out).

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

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, min_frames: int = 2):
        self.path = Path(path)
        self._min_frames = min_frames
        self.threads = threads  # decoder threads (None: FFmpeg's choice)
        self._container = None  # for read(): opened on first use
        self._stream = None
        self._frames_iter: Iterator[av.VideoFrame] | None = None
        self._pos = 0  # index of the frame self._frames_iter yields next
        self._cached: tuple[int, av.VideoFrame] | None = None
        self._keyframes: dict[int, int] = {}  # frame index -> pts, keyframes seen
        self._pts_index: dict[int, int] = {}  # pts -> frame index, all frames seen
        self._scratch = None  # a DecodedScratch once keep_decoded() was called
        self._probe_errors: list[str] = []  # packets the probe's decoder skipped (when it is kept)
        self._boxes: bool | None = None  # an MP4/MOV (see _BOXED), once looked at
        self._probe()

    # -- opening -----------------------------------------------------------
    def _open(self):
        if self._boxes is None:
            self._boxes = looks_like_mp4(self.path)
        try:
            container = av.open(str(self.path), metadata_errors="ignore", **(_BOXED if self._boxes else {}))
        except av.error.FFmpegError as exc:
            if looks_like_mp4(self.path):
                raise InputError(
                    f"{self.path}: cannot be read as a video ({reason(exc)}); the file may be cut short "
                    "(an MP4/MOV whose index was never written cannot be read)"
                ) from None
            raise InputError(f"{self.path}: not a video file, or one FFmpeg cannot read ({reason(exc)})") from None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open ({reason(exc)})") from None
        streams = [s for s in container.streams.video if not is_attached_picture(s)]
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
        try:
            self._check()
        except BaseException:  # (an InputError, or a warning turned into an error)
            self._release_decoder()
            raise

    def _keep_decoder(self, container, stream, frames: Iterator[av.VideoFrame], errors: list[str]) -> None:
        """Keep the probe's open decoder, its first frame included in ``frames``, for the first
        :meth:`read_pixels` or :meth:`__iter__`: opening a 4K H.264 stream and decoding its first frame
        (about 0.3 s of CPU, before any other work can start) is done once, not twice
        (docs/performance.md, ninth session)."""
        self._container, self._stream = container, stream
        self._frames_iter, self._pos, self._probe_errors = frames, 0, errors

    def _check(self) -> None:
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
            decoded = decoded_frames(container, stream, errors)
            for frame in decoded:
                if first is None:
                    first = frame
                count += 1
                if not counting:
                    break
            if first is not None and not counting:  # the decoder goes on from here (the first read needs no
                self._keep_decoder(container, stream, itertools.chain((first,), decoded), errors)  # 2nd open)
        finally:
            if self._container is None:
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
            if n >= self._min_frames:
                total = f" of about {expected}" if expected > n else ""
                warnings.warn(
                    f"{path}: file seems truncated or damaged; using the {n}{total} frames that could be decoded",
                    PostfocusWarning,
                    stacklevel=4,
                )
        if n < self._min_frames:
            if self._damaged and expected > 1:
                raise InputError(
                    f"{path}: truncated or damaged, only {n} of {expected} frames could be decoded; "
                    "a stack needs at least two"
                )
            raise InputError(f"{path}: a stack needs at least two frames, the video has {n}")
        quarter, mirrored = rotation_of(first, stream)
        if quarter < 0:
            warnings.warn(f"{path}: display rotation {first.rotation} degrees is not a multiple of 90; ignored",
                          PostfocusWarning, stacklevel=4)
            quarter = 0
        if mirrored:
            warnings.warn(f"{path}: the display matrix mirrors the picture; mirroring is not applied",
                          PostfocusWarning, stacklevel=4)
        self._quarter = quarter
        self._bits = frame_bits(first)
        self._count = n
        h, w = first.height, first.width
        if quarter % 2:
            h, w = w, h
        meta = read_video_metadata(path)  # never raises; warns about a damaged atom
        self.info = SourceInfo(
            kind="video",
            names=[f"frame {i:04d}" for i in range(n)],
            height=h,
            width=w,
            bit_depth=8 if self._bits <= 8 else self._bits,
            grey=False,
            exif=meta.exif,
            icc=None,
            paths=[path],
            fps=fps,
            camera=meta.camera,
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

    def _stored(self, frame: av.VideoFrame) -> np.ndarray:  # (a method: the scratch holds no reference back)
        return self._convert(frame, stored=True)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[np.ndarray]:
        """Decode the frames in order, holding one frame in memory at a time."""
        if self._frames_iter is not None and self._pos == 0:  # the probe's decoder, nothing read from it yet
            container, frames, errors = self._container, self._frames_iter, self._probe_errors
            self._container = self._stream = self._frames_iter = None
        else:
            container, stream = self._open()
            errors: list[str] = []
            frames = decoded_frames(container, stream, errors)
        i = 0
        try:
            for frame in frames:
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
                self._frames_iter = decoded_frames(self._container, self._stream, [])
                return
            except av.error.FFmpegError:
                pass
        if self._container is not None:
            self._container.close()
            self._container = None
        self._container, self._stream = self._open()
        self._pos = 0
        self._frames_iter = decoded_frames(self._container, self._stream, [])

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
        """Decode frame ``index``; reading frames in order decodes each once (see :meth:`FrameSource.read`).

        Examples
        --------
        >>> VideoSource("sweep.mp4").read(3).shape  # doctest: +SKIP
        (1080, 1920, 3)
        """
        return to_float(self.read_pixels(index))

    def read_pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as uint8 RGB (uint16 for 10-bit and deeper video).

        Parameters
        ----------
        index : int
            Frame number; negative numbers count from the end.

        Returns
        -------
        np.ndarray
            (H, W, 3) uint8 or uint16, upright.

        Raises
        ------
        IndexError
            When there is no frame ``index``.
        InputError
            When the video ends before it.
        """
        n = self._count
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"frame {index} out of range (video has {n})")
        if self._cached is not None and self._cached[0] == index:
            if self._scratch is not None:
                self._scratch.drop(index)
            return self._convert(self._cached[1], stored=True)
        kept = self._scratch.get(index) if self._scratch is not None else None
        if kept is not None:
            return self._convert(kept, stored=True)
        key = max((k for k in self._keyframes if k <= index), default=None)
        if self._frames_iter is None or self._pos is None or index < self._pos:
            self._restart(key)
        elif key is not None and key > self._pos:
            self._restart(key)  # skip ahead to a keyframe instead of decoding through
        while True:
            i, frame = self._next_frame()
            if self._scratch is not None:  # (kept when the pixels are the same; the first frame tells)
                self._scratch.put(i, frame, convert=self._stored)
            if i == index:
                pixels = self._convert(frame, stored=True)
                if self._scratch is not None and self._scratch.complete:  # the decoder's frame pools (several
                    self._release_decoder()  # 4K frames with frame threads) go: every frame is read from the file
                else:
                    self._cached = (i, frame)
                return pixels
            if i > index:  # a seek overshot: start again from the beginning
                self._keyframes = {k: v for k, v in self._keyframes.items() if k <= index and k != key}
                self._restart()

    def keep_decoded(self, *, directory: str | os.PathLike | None = None) -> bool:
        """Keep every frame :meth:`read_pixels` decodes in a scratch file (:mod:`postfocus.io.video_scratch`):
        read again (the pipeline's second pass), a frame is rebuilt from its decoded planes, not decoded again.

        Parameters
        ----------
        directory : str or os.PathLike, optional
            Where the unnamed scratch file is made (default: the system's temporary folder).

        Returns
        -------
        bool
            Whether this call started keeping them (False: they were kept already); whoever started it
            ends it with :meth:`drop_decoded` (or :meth:`close`).
        """
        if self._scratch is not None:
            return False
        from postfocus.io.video_scratch import DecodedScratch  # (PyAV is loaded already)
        self._scratch = DecodedScratch(self._count, directory=directory)
        return True

    def drop_decoded(self) -> None:
        """Stop keeping decoded frames: the scratch file goes now with the frames it still holds (those never
        read again, e.g. outside a merged range); the decoder stays open and frames are decoded when read."""
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    def _release_decoder(self) -> None:
        self._frames_iter = None
        self._cached = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def close(self) -> None:
        """Release the decoder used by :meth:`read` (and the frames :meth:`keep_decoded` kept)."""
        self._release_decoder()
        self.drop_decoded()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
