"""Camera metadata of videos (postfocus.io.video_metadata): PANA atom, ©xyz / ©mak / ©mod, mvhd date.

The MP4 files are encoded here with PyAV; the metadata atoms are then put into
``moov/udta`` by :func:`insert_udta` (the parents' sizes fixed). The PANA atom
follows ExifTool's description of the Lumix layout: the model name at byte
0x0c, the EXIF wrapped as a JPEG APP1 segment at byte 0x4080, and in it a
Panasonic maker note (``Panasonic\\0\\0\\0`` + an IFD) with VideoBurstMode
(0x00bb) and VideoBurstResolution (0x00b3). When exiftool is installed, it
reads the same values from these files (the layout is what ExifTool knows).
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational, ImageFileDirectory_v2

from postfocus.errors import PostfocusWarning
from postfocus.io.open import open_source
from postfocus.io.mp4_boxes import BOX_LIMIT, BoxError, iter_boxes
from postfocus.io.video import VideoSource
from postfocus.io.video_metadata import parse_iso6709, read_video_metadata
from postfocus.pipeline.run import process, stack
from postfocus.result import save_image

from conftest import textured_scene

H, W = 96, 128
LENS = "LEICA DC VARIO-ELMARIT 1:2.8-4.5/8.8-176"
DATE = "2024:05:17 10:11:12"


# ---------------------------------------------------------------------------
# Test files


def encode_clip(path: Path, n: int = 4, metadata: dict[str, str] | None = None) -> Path:
    """A short H.264 MP4 focus sweep (sharp left, then sharp right) written with PyAV."""
    scene = textured_scene(H, W)
    container = av.open(str(path), "w")
    for key, value in (metadata or {}).items():
        container.metadata[key] = value
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.options = {"crf": "12"}
    for k in range(n):
        t = k / (n - 1)
        left = cv2.GaussianBlur(scene, (0, 0), 0.1 + 2.5 * t)
        right = cv2.GaussianBlur(scene, (0, 0), 0.1 + 2.5 * (1 - t))
        frame = np.where(np.arange(W)[None, :, None] < W // 2, left, right)
        pixels = (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def box(kind: bytes, payload: bytes, wide: bool = False) -> bytes:
    if wide:
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    out, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        out.append((kind, pos, size))
        pos += size
    return out


def insert_udta(path: Path, *atoms: bytes) -> Path:
    """Append ``atoms`` to ``moov/udta`` (made when missing), fixing the sizes of udta and moov.

    FFmpeg writes ``moov`` after ``mdat``, so no chunk offset moves.
    """
    data = path.read_bytes()
    boxes = top_boxes(data)
    kinds = [k for k, _, _ in boxes]
    assert kinds.index(b"moov") > kinds.index(b"mdat")
    _, moov_at, moov_size = boxes[kinds.index(b"moov")]
    moov = bytearray(data[moov_at + 8 : moov_at + moov_size])
    pos, udta_at = 0, None
    while pos < len(moov):
        size, kind = struct.unpack(">I4s", moov[pos : pos + 8])
        if kind == b"udta":
            udta_at = pos
        pos += size
    extra = b"".join(atoms)
    if udta_at is None:
        moov += box(b"udta", extra)
    else:
        size = struct.unpack(">I", moov[udta_at : udta_at + 4])[0]
        moov[udta_at + size : udta_at + size] = extra
        moov[udta_at : udta_at + 4] = struct.pack(">I", size + len(extra))
    new = data[:moov_at] + box(b"moov", bytes(moov)) + data[moov_at + moov_size :]
    path.write_bytes(new)
    return path


def maker_note(mode: int, resolution: int, endian: str = "<") -> bytes:
    """A Panasonic maker note: the 12-byte header, then an IFD with VideoBurstMode and VideoBurstResolution."""
    ifd = ImageFileDirectory_v2(b"II*\0\0\0\0\0" if endian == "<" else b"MM\0*\0\0\0\0")
    ifd[0x00BB] = mode
    ifd.tagtype[0x00BB] = 4  # LONG
    ifd[0x00B3] = resolution
    ifd.tagtype[0x00B3] = 3  # SHORT
    ifd[0x0001] = 2  # ImageQuality
    ifd.tagtype[0x0001] = 3
    return b"Panasonic\0\0\0" + ifd.tobytes(0)


def lumix_exif(mode: int = 4, resolution: int = 1, note_endian: str = "<", model: str = "DC-FZ2000") -> bytes:
    ex = Image.Exif()
    ex.endian = "<"
    ex[0x010F] = "Panasonic"
    ex[0x0110] = model
    ex[0x0132] = DATE
    ex[0x8769] = {
        0x829A: IFDRational(1, 125),  # ExposureTime
        0x829D: IFDRational(40, 10),  # FNumber
        0x8827: 200,  # ISO
        0x9003: DATE,
        0xA434: LENS,
        0x927C: maker_note(mode, resolution, note_endian),
    }
    return ex.tobytes()


def pana_atom(exif: bytes, at: int = 0x4080, model: bytes = b"DC-FZ2000", kind: bytes = b"PANA") -> bytes:
    """A PANA atom as ExifTool describes the FZ1000 generation: model at 0x0c, EXIF (as APP1) at 0x4080."""
    payload = bytearray(at)
    payload[0:4] = b"\0\x01\0\0"
    payload[0x0C : 0x0C + len(model)] = model
    payload += b"\xff\xd8\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + b"\0" * 64
    return box(kind, bytes(payload))


def qt_text(kind: bytes, text: str, wide: bool = False) -> bytes:
    raw = text.encode()
    return box(kind, struct.pack(">HH", len(raw), 0x15C7) + raw, wide=wide)


def exif_of(path: Path) -> tuple[Image.Exif, dict, dict]:
    with Image.open(path) as im:
        ex = im.getexif()
        return ex, dict(ex.get_ifd(0x8769)), dict(ex.get_ifd(0x8825))


@pytest.fixture(scope="module")
def lumix(tmp_path_factory) -> Path:
    """A Post Focus video (4K) of a DC-FZ2000 with its PANA atom."""
    path = encode_clip(tmp_path_factory.mktemp("lumix") / "P1000123.MP4")
    return insert_udta(path, pana_atom(lumix_exif()))


@pytest.fixture(scope="module")
def phone(tmp_path_factory) -> Path:
    """A phone-style video: mvhd creation time (written by FFmpeg), ©xyz, ©mak, ©mod."""
    path = encode_clip(tmp_path_factory.mktemp("phone") / "VID_0001.mp4",
                       metadata={"creation_time": "2024-05-17T08:11:12.000000Z"})
    return insert_udta(path, qt_text(b"\xa9xyz", "+35.6586+139.7454+010.500/"), qt_text(b"\xa9mak", "Google"),
                       qt_text(b"\xa9mod", "Pixel 7", wide=True))


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return encode_clip(tmp_path_factory.mktemp("plain") / "plain.mp4")


def no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


# ---------------------------------------------------------------------------
# Reading


def test_pana_atom_gives_camera_exif_and_mode(lumix):
    meta = no_warnings(lambda: read_video_metadata(lumix))
    assert meta.camera == {"make": "Panasonic", "model": "DC-FZ2000", "lens": LENS, "mode": "Post Focus",
                           "resolution": "4K", "date": DATE, "location": None}
    ex = Image.Exif()
    ex.load(meta.exif)
    sub = ex.get_ifd(0x8769)
    assert ex[0x010F] == "Panasonic" and ex[0x0110] == "DC-FZ2000"
    assert float(sub[0x829A]) == pytest.approx(1 / 125) and float(sub[0x829D]) == pytest.approx(4.0)
    assert sub[0x9003] == DATE and sub[0xA434] == LENS and sub[0x8827] == 200
    assert 0x927C not in sub  # the maker note's offsets would not survive the rewrite


def test_video_source_carries_the_metadata(lumix):
    src = VideoSource(lumix)
    assert src.info.camera["mode"] == "Post Focus"
    assert src.info.exif == read_video_metadata(lumix).exif
    assert isinstance(open_source(lumix), VideoSource)


@pytest.mark.parametrize(
    ("mode", "resolution", "note_endian", "at", "kind", "want"),
    [
        (0x408, 4, "<", 0x4080, b"PANA", ("Focus Stacking", "6K")),
        (4, 4, ">", 0x4068, b"PANA", ("Post Focus", "6K")),  # the note in its own byte order
        (1, 1, "<", 0x5000, b"PANA", (None, None)),  # burst off; EXIF found by its signature
        (4, 1, "<", 0x4080, b"LEIC", ("Post Focus", "4K")),
    ],
)
def test_burst_modes_layouts_and_byte_orders(tmp_path, mode, resolution, note_endian, at, kind, want):
    path = encode_clip(tmp_path / "v.mp4", n=3)
    insert_udta(path, pana_atom(lumix_exif(mode, resolution, note_endian), at=at, kind=kind))
    camera = no_warnings(lambda: read_video_metadata(path)).camera
    assert (camera["mode"], camera["resolution"]) == want
    assert camera["model"] == "DC-FZ2000"


def test_phone_location_date_make_model(phone):
    meta = no_warnings(lambda: read_video_metadata(phone))
    assert meta.camera["make"] == "Google" and meta.camera["model"] == "Pixel 7"
    assert meta.camera["mode"] is None and meta.camera["date"] == "2024:05:17 08:11:12"
    assert meta.camera["location"] == pytest.approx([35.6586, 139.7454, 10.5])
    ex = Image.Exif()
    ex.load(meta.exif)
    sub, gps = ex.get_ifd(0x8769), ex.get_ifd(0x8825)
    assert sub[0x9003] == "2024:05:17 08:11:12" and sub[0x9011] == "+00:00"  # mvhd time is UTC
    assert gps[1] == "N" and gps[3] == "E" and gps[5] == b"\x00"
    deg = [float(v) for v in gps[2]]
    assert deg[0] + deg[1] / 60 + deg[2] / 3600 == pytest.approx(35.6586, abs=1e-6)
    assert float(gps[6]) == pytest.approx(10.5)


def test_video_without_atoms_has_no_metadata(plain):
    meta = no_warnings(lambda: read_video_metadata(plain))
    assert meta.exif is None and meta.camera is None and not meta.problems
    src = no_warnings(lambda: VideoSource(plain))
    assert src.info.exif is None and src.info.camera is None


def test_iso6709_forms():
    assert parse_iso6709("+35.6586+139.7454/") == (35.6586, 139.7454)
    assert parse_iso6709("-33.8688+151.2093+058.000/") == (-33.8688, 151.2093, 58.0)
    lat, lon = parse_iso6709("+3539.516-07400.5/")
    assert lat == pytest.approx(35.6586) and lon == pytest.approx(-74.008333, abs=1e-5)
    lat, lon = parse_iso6709("+353930.96+1394443.4/")
    assert lat == pytest.approx(35 + 39 / 60 + 30.96 / 3600) and lon == pytest.approx(139 + 44 / 60 + 43.4 / 3600)
    for bad in ("", "north", "+95.0+10.0/", "+10.0+190.0/", "+1.0/"):
        assert parse_iso6709(bad) is None, bad


# ---------------------------------------------------------------------------
# Damaged atoms: at most a warning, never a crash


def corrupt_cases() -> dict[str, bytes]:
    good = pana_atom(lumix_exif())
    exif = lumix_exif()
    return {
        # A PANA atom claiming more bytes than its udta holds.
        "overlong": struct.pack(">I4s", 1 << 30, b"PANA") + b"\0" * 64,
        # A size below its own header.
        "undersized": struct.pack(">I4s", 4, b"PANA") + b"\0" * 16,
        # A 64-bit size past the end.
        "wide overlong": struct.pack(">I4sQ", 1, b"PANA", 1 << 62) + b"\0" * 32,
        # An APP1 wrapper whose EXIF is cut after 20 bytes.
        "cut exif": box(b"PANA", bytes(0x4080) + b"\xff\xd8\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif[:20]),
        # The EXIF's IFD pointing past its end.
        "bad ifd": box(b"PANA", bytes(0x4080) + b"\xff\xd8\xff\xe1\x01\x00Exif\0\0II*\0\xff\xff\xff\x7f" + bytes(40)),
        # A PANA atom cut in the middle.
        "cut atom": good[: len(good) // 2],
        # A text atom too short for its own length field.
        "short text": box(b"\xa9xyz", b"\x00"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_damaged_atom_is_ignored(tmp_path, case):
    atom = corrupt_cases()[case]
    path = insert_udta(encode_clip(tmp_path / "bad.mp4", n=3), atom)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = read_video_metadata(path)
        src = VideoSource(path)  # FFmpeg reads the frames still
    ours = [w for w in caught if issubclass(w.category, PostfocusWarning)]
    assert len(ours) <= 2 and all("camera metadata" in str(w.message) for w in ours)
    assert all(issubclass(w.category, PostfocusWarning) for w in caught), [str(w.message) for w in caught]
    assert len(src) == 3
    if meta.exif is not None:
        Image.Exif().load(meta.exif)


def test_random_damage_never_raises(tmp_path, lumix):
    data = lumix.read_bytes()
    moov_at = next(pos for kind, pos, _ in top_boxes(data) if kind == b"moov")
    rng = np.random.default_rng(7)
    path = tmp_path / "damaged.mp4"
    for _ in range(60):
        damaged = bytearray(data)
        for at in rng.integers(moov_at, len(data), size=int(rng.integers(1, 6))):
            damaged[at] = int(rng.integers(0, 256))
        cut = int(rng.integers(moov_at, len(data) + 1)) if rng.random() < 0.3 else len(data)
        path.write_bytes(bytes(damaged[:cut]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = read_video_metadata(path)
        assert meta.exif is None or meta.exif.startswith(b"Exif\0\0")


def test_not_an_mp4_gives_nothing(tmp_path):
    path = tmp_path / "x.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(100))
    meta = no_warnings(lambda: read_video_metadata(path))
    assert meta.exif is None and meta.camera is None


# ---------------------------------------------------------------------------
# Into the outputs and into `postfocus info`


def test_stack_of_the_video_carries_the_camera(lumix, tmp_path):
    result = stack(lumix)
    out = result.save(tmp_path / "stack.jpg")
    ex, sub, _ = exif_of(out)
    assert ex[0x010F] == "Panasonic" and ex[0x0110] == "DC-FZ2000"
    assert float(sub[0x829A]) == pytest.approx(1 / 125) and float(sub[0x829D]) == pytest.approx(4.0)
    assert sub[0xA434] == LENS and sub[0x9003] == DATE
    assert ex[0x010E].startswith("postfocus: frames") and ex[0x0112] == 1


def test_processed_stack_outputs_carry_the_camera(phone, tmp_path):
    """Refocus, pop and aperture save through ProcessedStack.info: the manifest keeps the EXIF."""
    ps = process(phone, cache_dir=tmp_path / "cache")
    out = save_image(tmp_path / "frame.tif", ps.read_frame(0), ps.info)
    ex, sub, gps = exif_of(out)
    assert ex[0x010F] == "Google" and ex[0x0110] == "Pixel 7"
    assert sub[0x9003] == "2024:05:17 08:11:12" and gps[1] == "N"


def test_cli_info_shows_the_camera(lumix, plain, cli, tmp_path):
    run = cli("info", lumix, cache=tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    assert "camera: Panasonic DC-FZ2000, Post Focus, 4K" in run.stdout.splitlines()
    run = cli("info", "--json", lumix, cache=tmp_path / "cache")
    camera = json.loads(run.stdout)["camera"]
    assert camera["model"] == "DC-FZ2000" and camera["mode"] == "Post Focus" and camera["lens"] == LENS
    run = cli("info", plain, cache=tmp_path / "cache")
    assert run.returncode == 0 and "camera:" not in run.stdout
    assert json.loads(cli("info", "--json", plain, cache=tmp_path / "cache").stdout).get("camera") is None  # None is left out


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_exiftool_reads_the_test_files_alike(lumix, phone, tmp_path):
    """The synthetic PANA atom is laid out the way ExifTool reads real ones."""
    text = subprocess.run(["exiftool", "-s", "-Model", "-VideoBurstMode", "-VideoBurstResolution", "-LensModel",
                           str(lumix)], capture_output=True, text=True, check=True).stdout
    assert "DC-FZ2000" in text and "Post Focus" in text and "Off or 4K" in text and LENS in text, text
    out = stack(lumix).save(tmp_path / "stack.jpg")
    text = subprocess.run(["exiftool", "-s", "-Make", "-ExposureTime", "-FNumber", "-DateTimeOriginal", str(out)],
                          capture_output=True, text=True, check=True).stdout
    assert "Panasonic" in text and "1/125" in text and "4.0" in text and DATE in text, text
    text = subprocess.run(["exiftool", "-s", "-n", "-GPSLatitude", "-GPSLongitude", str(phone)],
                          capture_output=True, text=True, check=True).stdout
    assert "35.6586" in text and "139.745" in text, text


def test_box_walker_limits():
    data = box(b"free", b"ab") + box(b"wide", b"cd", wide=True) + struct.pack(">I4s", 0, b"rest") + b"xyz"
    assert list(iter_boxes(io.BytesIO(data), 0, len(data))) == [
        (b"free", 8, 10), (b"wide", 26, 28), (b"rest", 36, 39)]
    many = box(b"free", b"") * (BOX_LIMIT + 10)
    assert len(list(iter_boxes(io.BytesIO(many), 0, len(many)))) == BOX_LIMIT
    with pytest.raises(BoxError) as excinfo:
        list(iter_boxes(io.BytesIO(box(b"moov", b"x" * 8)), 0, 12, "file"))
    assert excinfo.value.kind == b"moov" and "claims 16 bytes, 12 are left" in str(excinfo.value)
