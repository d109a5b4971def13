"""Tests for postfocus.io.video and io.video_write: reading sweep videos, writing test videos, extracting frames."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from postfocus.errors import InputError, OutputError, PostfocusWarning
from postfocus.io.images import to_float
from postfocus.io.open import open_source
from postfocus.io.video import VideoSource
from postfocus.io.video_write import encoder_available, extract_frames, write_video

DATA = Path(__file__).parents[1].parent / "shared" / "data"
KEYBOARD_SWEEP = DATA / "keyboard_sweep.mp4"
H, W, N = 160, 240, 12


def texture(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    """A random texture in [0.1, 0.9]: fine grey detail, smooth colour (like photos)."""
    rng = np.random.default_rng(seed)

    def normalised(a: np.ndarray) -> np.ndarray:
        return (a - a.min()) / (a.max() - a.min())

    detail = normalised(cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 1.5))
    colour = normalised(cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 6.0))
    mixed = 0.65 * detail[:, :, None] + 0.35 * colour
    return (0.1 + 0.8 * normalised(mixed)).astype(np.float32)


def frames_sequence(n: int = N) -> list[np.ndarray]:
    """Distinct frames: a moving texture with a brightness ramp over time."""
    base = texture()
    return [np.clip(np.roll(base, 3 * i, axis=1) * (0.8 + 0.02 * i), 0, 1) for i in range(n)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def assert_one_line_error(excinfo, path: Path) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message or path.name in message


@pytest.fixture(scope="module")
def h264_video(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    frames = frames_sequence()
    path = write_video(frames, tmp_path_factory.mktemp("video") / "sweep.mp4", crf=18)
    return path, frames


def test_round_trip_psnr(h264_video):
    path, frames = h264_video
    src = VideoSource(path)
    assert len(src) == N
    info = src.info
    assert info.kind == "video" and info.size == (H, W) and info.bit_depth == 8
    assert info.fps == pytest.approx(30.0)
    assert info.names[0] == "frame 0000" and info.names[-1] == f"frame {N - 1:04d}"
    assert info.paths == [path] and info.grey is False and info.exif is None
    decoded = list(src)
    assert len(decoded) == N
    for got, want in zip(decoded, frames):
        assert got.dtype == np.float32 and got.shape == (H, W, 3)
        assert 0.0 <= got.min() and got.max() <= 1.0
        assert psnr(got, want) > 30


def test_open_source_dispatches_to_video_source(h264_video):
    path, _ = h264_video
    assert isinstance(open_source(path), VideoSource)
    assert isinstance(open_source(str(path)), VideoSource)


def test_iteration_streams_one_frame_at_a_time(h264_video):
    path, _ = h264_video
    src = VideoSource(path)
    frame_bytes = H * W * 3 * 4
    tracemalloc.start()
    try:
        count = 0
        for frame in src:
            count += 1
            del frame
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == N
    assert peak < 4 * frame_bytes  # all frames would be 12 x frame_bytes


def test_read_random_access_matches_iteration(tmp_path):
    frames = frames_sequence()
    path = write_video(frames, tmp_path / "gop.mp4", options={"g": "4", "keyint_min": "4", "sc_threshold": "0"})
    src = VideoSource(path)
    reference = list(src)
    order = [5, 6, 7, 0, 11, 3, 3, 10, 1, 9, 2, 8, 4, -1]
    for i in order:
        np.testing.assert_array_equal(src.read(i), reference[i])
        stored = src.read_pixels(i)  # the same picture as stored: 8-bit, converted by whoever keeps it
        assert stored.dtype == np.uint8
        np.testing.assert_array_equal(stored.astype(np.float32) * np.float32(1 / 255), reference[i])
    with pytest.raises(IndexError):
        src.read(N)
    src.close()


@pytest.mark.skipif(not encoder_available("libx265"), reason="this FFmpeg build has no libx265 encoder")
def test_hevc_10bit_keeps_more_than_256_levels(tmp_path):
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    ramp = 0.05 + 0.9 * (0.75 * x / (W - 1) + 0.25 * y / (H - 1))
    gradient = np.repeat(ramp[:, :, None], 3, axis=2)
    path = write_video([gradient] * 3, tmp_path / "ramp10.mp4", codec="hevc", bit_depth=10)
    src = VideoSource(path)
    assert src.info.bit_depth == 10
    frame = src.read(0)
    assert np.unique(frame[:, :, 1]).size > 256
    assert src.read_pixels(0).dtype == np.uint16
    assert psnr(frame, gradient) > 35
    pngs = extract_frames(src, tmp_path / "frames")
    png = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and np.unique(png[:, :, 1]).size > 256


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_honoured(tmp_path, rotation):
    frame = texture(1)
    frame[:20, :40] = [1.0, 0.0, 0.0]  # red marker in the coded top-left corner
    path = write_video([frame, frame * 0.9], tmp_path / f"rot{rotation}.mp4", rotation=rotation)
    src = VideoSource(path)
    assert src.rotation == rotation
    upright = np.rot90(frame, rotation // 90)
    assert src.info.size == upright.shape[:2]
    got = src.read(0)
    assert got.shape == upright.shape
    assert psnr(got, upright) > 30
    # Cross-check with OpenCV's FFmpeg reader, which applies the display matrix itself.
    ok, bgr = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG).read()
    if ok:
        assert bgr.shape[:2] == got.shape[:2]
        assert psnr(bgr[:, :, ::-1] / 255.0, got) > 35


def test_keyboard_sweep_opens_and_iterates():
    if not KEYBOARD_SWEEP.exists():
        pytest.skip(f"{KEYBOARD_SWEEP} not found")
    src = open_source(KEYBOARD_SWEEP)
    assert isinstance(src, VideoSource)
    assert len(src) == 41
    assert src.info.size == (1080, 1920)
    assert src.info.bit_depth == 8
    count = 0
    for frame in src:
        assert frame.shape == (1080, 1920, 3) and frame.dtype == np.float32
        count += 1
    assert count == 41


def test_variable_frame_rate_uses_decode_order(tmp_path):
    frames = frames_sequence()
    times = np.cumsum([0, 0.01, 0.05, 0.033, 0.2, 0.02, 0.1, 0.033, 0.07, 0.5, 0.01, 0.04])
    path = write_video(frames, tmp_path / "vfr.mp4", times=times)
    src = VideoSource(path)
    assert len(src) == N
    decoded = list(src)
    for got, want in zip(decoded, frames):
        assert psnr(got, want) > 30
    np.testing.assert_array_equal(src.read(7), decoded[7])


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError) as excinfo:
        open_source(path)
    assert_one_line_error(excinfo, path)
    assert "not a video" in str(excinfo.value)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(InputError) as excinfo:
        VideoSource(path)
    assert_one_line_error(excinfo, path)
    assert "empty" in str(excinfo.value)


def _noise_frames(n: int = N) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.random((H, W, 3), dtype=np.float32) for _ in range(n)]


def test_truncated_mp4_with_index_at_end_is_refused(tmp_path):
    whole = write_video(_noise_frames(), tmp_path / "whole.mp4")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])  # the moov index at the end is lost
    with pytest.raises(InputError) as excinfo:
        open_source(cut)
    assert_one_line_error(excinfo, cut)
    assert "cut short" in str(excinfo.value)


def _write_faststart(frames, path: Path) -> Path:
    container = av.open(str(path), "w", options={"movflags": "+faststart"})
    stream = container.add_stream("libx264", rate=Fraction(30))
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    for frame in frames:
        vf = av.VideoFrame.from_ndarray(np.round(frame * 255).astype(np.uint8), format="rgb24")
        for packet in stream.encode(vf):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def test_truncated_mp4_with_index_first_keeps_what_decodes(tmp_path):
    whole = _write_faststart(_noise_frames(), tmp_path / "whole.mp4")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    with pytest.warns(PostfocusWarning, match="truncated") as record:
        src = open_source(cut)
    message = str(record[0].message)
    assert "\n" not in message and cut.name in message
    assert 2 <= len(src) < N
    assert f"{len(src)} of about {N}" in message
    decoded = list(src)
    assert len(decoded) == len(src)
    complete = list(VideoSource(whole))
    for got, want in zip(decoded, complete):
        np.testing.assert_array_equal(got, want)  # the same pictures as in the whole file


def test_audio_only_file(tmp_path):
    path = tmp_path / "sound.m4a"
    container = av.open(str(path), "w")
    stream = container.add_stream("aac", rate=44100)
    stream.layout = "mono"
    for i in range(20):
        samples = np.sin(np.arange(1024, dtype=np.float32) * 0.05 + i)[None, :] * 0.1
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        frame.pts = i * 1024
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    as_mp4 = tmp_path / "sound.mp4"
    as_mp4.write_bytes(path.read_bytes())
    for candidate in (path, as_mp4):
        with pytest.raises(InputError) as excinfo:
            open_source(candidate)
        assert_one_line_error(excinfo, candidate)
        assert "audio only" in str(excinfo.value)


def test_one_frame_video(tmp_path):
    path = write_video([texture()], tmp_path / "one.mp4")
    with pytest.raises(InputError) as excinfo:
        open_source(path)
    assert_one_line_error(excinfo, path)
    assert "at least two frames" in str(excinfo.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as excinfo:
        VideoSource(tmp_path / "nothing.mp4")
    assert_one_line_error(excinfo, tmp_path / "nothing.mp4")


def test_write_video_rejects_odd_size(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video([np.zeros((15, 16, 3), np.float32)] * 2, tmp_path / "odd.mp4")
    assert not (tmp_path / "odd.mp4").exists()


def test_extract_frames_png_and_refuses_overwrite(h264_video, tmp_path):
    path, _ = h264_video
    out = tmp_path / "frames"
    written = extract_frames(path, out)
    assert [p.name for p in written] == [f"frame_{i:04d}.png" for i in range(N)]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in written]  # no temp files left
    reference = VideoSource(path).read(5)
    png = cv2.imread(str(written[5]), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and png.shape == (H, W, 3)
    np.testing.assert_allclose(png[:, :, ::-1] / 255.0, reference, atol=0.5 / 255 + 1e-6)
    with pytest.raises(OutputError) as excinfo:
        extract_frames(path, out)
    assert "\n" not in str(excinfo.value) and str(out) in str(excinfo.value)
    (out / "frame_0099.png").write_bytes(b"left from a longer video")
    (out / "notes.txt").write_text("mine")
    again = extract_frames(path, out, overwrite=True)
    assert len(again) == N
    assert not (out / "frame_0099.png").exists()  # stale frame files go
    assert (out / "notes.txt").read_text() == "mine"  # other files stay


def test_extract_frames_jpg_and_bad_folder(h264_video, tmp_path):
    path, _ = h264_video
    written = extract_frames(VideoSource(path), tmp_path / "jpgs", fmt="jpg")
    assert written[0].name == "frame_0000.jpg" and len(written) == N
    assert cv2.imread(str(written[0])).shape == (H, W, 3)
    with pytest.raises(OutputError):
        extract_frames(path, tmp_path / "missing" / "frames")


def test_decoder_threads_are_set_explicitly_not_from_the_environment(h264_video, monkeypatch):
    from postfocus.io.open import open_source

    path, _ = h264_video
    monkeypatch.setenv("POSTFOCUS_THREADS", "7")  # ignored: threads are an argument
    one = open_source(path, threads=1)
    container, stream = one._open()
    try:
        assert stream.thread_count == 1
    finally:
        container.close()
    default = open_source(path)
    container, stream = default._open()
    try:
        assert stream.thread_count != 7
    finally:
        container.close()
    assert np.array_equal(one.read(2), default.read(2))


def test_the_probe_decoder_serves_the_first_reads(h264_video, monkeypatch):
    """The decoder that checked the file on opening goes on decoding: the first pass's reads and an iteration
    from the start open and decode the video once, not twice, and give the same frames (docs/performance.md,
    ninth session)."""
    import postfocus.io.video as video

    path, _ = h264_video
    reference = [VideoSource(path).read_pixels(i) for i in (0,)] + list(VideoSource(path))
    opened = []
    real_open = video.av.open
    monkeypatch.setattr(video.av, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    src = VideoSource(path)
    assert len(opened) == 1
    for i in range(N):  # in order, as pass 1 reads
        np.testing.assert_array_equal(src.read(i), reference[i + 1])
    assert len(opened) == 1  # nothing opened again
    np.testing.assert_array_equal(src.read_pixels(0), reference[0])  # going back seeks, as before
    src.close()
    opened.clear()
    iterated = VideoSource(path)
    assert [np.array_equal(a, b) for a, b in zip(iterated, reference[1:], strict=True)] == [True] * N
    assert len(opened) == 1
    assert iterated._container is None  # handed over to the iteration, closed with it
    assert len(list(iterated)) == N and len(opened) == 2  # a second iteration opens its own decoder


def test_a_refused_video_leaves_no_decoder_open(tmp_path, monkeypatch):
    """A video refused after its first frame decoded (here: one frame) closes the probe's decoder."""
    import postfocus.io.video as video

    path = write_video(frames_sequence(1), tmp_path / "one.mp4")
    containers = []
    real_open = video.av.open
    monkeypatch.setattr(video.av, "open", lambda *a, **k: containers.append(real_open(*a, **k)) or containers[-1])
    with pytest.raises(InputError):
        VideoSource(path)
    assert len(containers) == 1
    with pytest.raises(Exception):  # closed: PyAV refuses to demux a closed container
        next(iter(containers[0].demux()))


def test_an_mp4_is_probed_without_decoding_a_frame_to_the_same_frames(h264_video, tmp_path):
    """An MP4's boxes name its size, rate and frame count: FFmpeg's probe decodes no frame of it (the stream's
    pixel format stays unknown until the decoder's first frame), and the frames, their number and the rate are
    those of a plain open. Another container (MKV) is probed as before (docs/performance.md, fourteenth
    session)."""
    path, _ = h264_video
    with av.open(str(path)) as plain:
        stream = plain.streams.video[0]
        assert stream.codec_context.format is not None  # what the probe learns when it decodes a frame
        rate = float(stream.average_rate)
        expected = [f.to_ndarray(format="rgb24") for f in plain.decode(stream)]
    src = VideoSource(path)
    container, stream = src._open()
    try:
        assert stream.codec_context.format is None  # no frame decoded by the probe
    finally:
        container.close()
    assert src.info.fps == rate and len(src) == len(expected) == N
    for i, frame in enumerate(expected):
        np.testing.assert_array_equal(src.read_pixels(i), frame)
    assert [np.array_equal(a, b) for a, b in zip(VideoSource(path), map(to_float, expected), strict=True)] == [True] * N
    mkv = write_video(frames_sequence(3), tmp_path / "sweep.mkv")
    container, stream = VideoSource(mkv)._open()
    try:
        assert stream.codec_context.format is not None  # probed by decoding, as before
    finally:
        container.close()
