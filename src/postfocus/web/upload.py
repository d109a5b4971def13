"""Receive uploads safely: stream to disk under generated names, check by content.

The multipart body is parsed as it arrives (python-multipart's streaming
parser) and each file goes straight into the job's ``in/`` folder as
``000.jpg``, ``001.jpg`` ... The suffix comes from the file's first bytes, never
from its name. Counting stops the upload as soon as the body passes the size
limit, so nothing past the limit is ever written, and nothing is written
anywhere but the job folder (no temporary spool files elsewhere).

An upload counts only when its closing boundary arrived: a body cut off
before it (the connection dropped, or a client that sent only part) is refused,
and the caller removes the job folder with whatever was written.

After the upload, each file is checked by decoding its header: Pillow for
photos, PyAV for a video.

:func:`json_body` reads the app's small JSON request bodies the same careful
way: counted as they arrive (at most :data:`MAX_JSON_BYTES`) and parsed so that
no body, however nested, ends in anything but a clear refusal.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import json
import re
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from postfocus.errors import PostfocusError
from postfocus.web.sniff import HEIF_BRANDS, Sniffed, refusal, sniff
from postfocus.web.store import JobFolder, display_name

__all__ = ["DISK_FULL", "HEIF_BRANDS", "MAX_FIELDS", "MAX_FIELD_BYTES", "MAX_FILES", "MAX_JSON_BYTES",
           "MAX_PHOTO_MEGAPIXELS", "NO_SPACE", "SNIFF_BYTES", "SUPPORTED", "Sniffed", "UploadError", "UploadReceiver", "check_upload", "humanize",
           "json_body", "sniff", "too_large"]

SNIFF_BYTES = 512
MAX_FILES = 2000
MAX_FIELD_BYTES = 1024
MAX_FIELDS = 16  # text fields of distinct names (each held in memory; the page sends none, a title at most)
MAX_JSON_BYTES = 64 * 1024
MAX_PHOTO_MEGAPIXELS = 110
"""Largest photo the app takes (a 102 MP medium-format camera's passes; a PNG of 12000x12000 zeros, 0.4 MB on
disk, was taken and decoded at full size by the job: fixes23). ``postfocus stack`` has no such limit."""

NO_SPACE = "Not enough free disk space for this upload."
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the errors of a write that NO_SPACE answers (a 507)
SUPPORTED = "JPEG, PNG or TIFF photos, or one MP4, MOV, MKV, AVI or MTS video"


class UploadError(Exception):
    """An upload (or other request body) that is refused, with the HTTP status and a message for people."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.field: str = ""
        self.filename: str | None = None
        self.head = bytearray()
        self.data = bytearray()  # small text fields only
        self.handle: BinaryIO | None = None
        self.path: Path | None = None
        self.size = 0
        self.sniffed: Sniffed | None = None


class UploadReceiver:
    """Parses one multipart body into a job's ``in/`` folder.

    Attributes after :meth:`receive`: ``files`` (list of dicts with ``name``,
    ``file``, ``size``, ``kind``, ``format``), ``fields`` (small text fields)
    and ``received`` (bytes of body read, also while it is being read).
    """

    def __init__(self, job: JobFolder, limit_bytes: int, limit_text: str):
        self.job = job
        self.limit = limit_bytes
        self.limit_text = limit_text
        self.files: list[dict] = []
        self.fields: dict[str, str] = {}
        self.received = 0
        self._complete = False  # the closing boundary arrived
        self._part = _Part()
        self._hname = b""
        self._hvalue = b""

    # python-multipart callbacks (synchronous; each write is one small chunk)
    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_end(self) -> None:
        self._complete = True

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _on_header_end(self) -> None:
        self._part.headers[self._hname.lower()] = self._hvalue
        self._hname = self._hvalue = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get(b"content-disposition", b""))
        self._part.field = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if len(self.files) >= MAX_FILES:
                raise UploadError(400, f"Too many files in one upload (at most {MAX_FILES}).")
            self._part.filename = options[b"filename"].decode("utf-8", "replace")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        chunk = data[start:end]
        if part.filename is None:
            if len(part.data) + len(chunk) > MAX_FIELD_BYTES:
                raise UploadError(400, f"Form field {part.field!r} is too long for a text field (over {MAX_FIELD_BYTES} "
                                       "bytes); a file must be sent with its file name.")
            part.data.extend(chunk)
            return
        part.size += len(chunk)
        if part.handle is None:
            part.head.extend(chunk)
            if len(part.head) >= SNIFF_BYTES:
                self._open(part)
        else:
            part.handle.write(chunk)

    def _open(self, part: _Part) -> None:
        """Decide the type from the first bytes and open the stored file."""
        index = len(self.files)
        name = display_name(part.filename, f"file {index + 1}")
        head = bytes(part.head)
        found = sniff(head)
        if not head:
            raise UploadError(400, f"{name}: the file is empty.")
        refused = refusal(found, name)  # (HEIF; a Canon CR3 was refused as a video FFmpeg cannot read: fixes23)
        if refused:
            raise UploadError(415, refused)
        if found is None:
            raise UploadError(415, f"{name}: this is not a photo or video postfocus can read ({SUPPORTED}).")
        part.sniffed = found
        part.path = self.job.input_path(index, found.suffix)
        part.handle = open(part.path, "xb")  # noqa: SIM115 (closed in _on_part_end / close)
        part.handle.write(head)
        part.head = bytearray()

    def _on_part_end(self) -> None:
        part = self._part
        if part.filename is None:
            if part.field and part.field not in self.fields and len(self.fields) >= MAX_FIELDS:  # (2 GB held: review20)
                raise UploadError(400, f"Too many form fields in one upload (at most {MAX_FIELDS}).")
            if part.field:
                self.fields[part.field] = part.data.decode("utf-8", "replace")
            return
        if part.filename == "" and part.size == 0:
            return  # an empty file input
        if part.handle is None:
            self._open(part)
        assert part.handle is not None and part.path is not None and part.sniffed is not None
        part.handle.close()
        part.handle = None
        index = len(self.files)
        self.files.append({
            "name": display_name(part.filename, f"file {index + 1}"),
            "file": f"in/{part.path.name}",
            "size": part.size,
            "kind": part.sniffed.kind,
            "format": part.sniffed.format,
        })

    def close(self) -> None:
        if self._part.handle is not None:
            self._part.handle.close()
            self._part.handle = None

    async def receive(self, content_type: str, stream: AsyncIterator[bytes]) -> None:
        """Parse the whole body; raises UploadError (413 past the limit)."""
        kind, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise UploadError(400, "Expected the photos as a multipart/form-data upload.")
        try:
            parser = MultipartParser(boundary, {  # refuses a boundary over 256 bytes (FormParserError)
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            })
            async for chunk in stream:
                self.received += len(chunk)
                if self.received > self.limit:
                    raise UploadError(413, too_large(self.limit_text))
                parser.write(chunk)
            parser.finalize()
        except FormParserError as exc:
            raise UploadError(400, f"The upload could not be read ({exc}).") from None
        except OSError as exc:  # (a disk filled since the free-space check: a 500 and a traceback; review20)
            if exc.errno not in DISK_FULL:
                raise
            raise UploadError(507, NO_SPACE) from None
        finally:
            self.close()
        if not self._complete:
            raise UploadError(400, "The upload was cut off before its end (the connection dropped?); "
                                   "nothing was kept. Send the files again.")


async def json_body(content_length: str | None, stream: AsyncIterator[bytes], limit: int = MAX_JSON_BYTES) -> Any:
    """A small JSON request body, read with a size limit and parsed defensively.

    Parameters
    ----------
    content_length : str or None
        The request's Content-Length header, if any.
    stream : AsyncIterator[bytes]
        The request body as it arrives.
    limit : int
        Largest body accepted, in bytes; reading stops as soon as it is passed.

    Returns
    -------
    Any
        The parsed JSON value.

    Raises
    ------
    UploadError
        413 for a body over ``limit``.
    ValueError
        For a body that is not JSON, or nests too deep to parse.
    """
    refused = UploadError(413, f"The request body is too large (at most {limit // 1024} KB).")
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise refused
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > limit:
            raise refused
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("the request body nests too deep") from None


def too_large(limit_text: str) -> str:
    """The message (str) for an upload past the size limit; ``limit_text`` as people read it, e.g. "2 GB"."""
    return (f"The upload is larger than this server accepts ({limit_text}). "
            "Send fewer or smaller files, or start the server with a larger --max-upload-mb.")


def drop_repeats(job: JobFolder, files: list[dict]) -> tuple[list[dict], list[str]]:
    """``files`` without a photo uploaded again (the same bytes as an earlier one: two shots never are), its stored
    file deleted, and the warning that names them; the command line leaves a photo named twice out the same way
    (``io/open.py``). It was stacked as one more frame, "9 of 9 frames used", without a word."""
    sizes = collections.Counter(item["size"] for item in files if item["kind"] != "video")
    seen: dict[tuple[int, str], str] = {}
    kept, again = [], []
    for item in files:  # a photo is read only where two photos have one size; a video never is
        path, name = job.folder / item["file"], item["name"]
        if item["kind"] == "video":
            kept.append(item)
            continue
        key = (item["size"], _digest(path) if sizes[item["size"]] > 1 else "")
        first = seen.get(key)
        if first is None:
            seen[key] = name
            kept.append(item)
        else:
            again.append(name if name == first else f"{name} (= {first})")
            path.unlink(missing_ok=True)
    named = ", ".join(again[:5]) + (", ..." if len(again) > 5 else "")
    return kept, [f"left out {len(again)} photo(s) uploaded twice: {named}"] if again else []


def _digest(path: Path) -> str:
    """SHA-256 of the file ``path``, read a block at a time (a 1 GB upload was read whole into the server's
    memory to compare it)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_upload(job: JobFolder, files: list[dict]) -> None:
    """Check the received files by decoding their headers.

    Parameters
    ----------
    job : JobFolder
        The job the files were stored in.
    files : list[dict]
        :attr:`UploadReceiver.files`.

    Raises
    ------
    UploadError
        400 for a wrong mix or count of files, 413 for a photo of over :data:`MAX_PHOTO_MEGAPIXELS`, 415 for a
        file that cannot be read.
    """
    if not files:
        raise UploadError(400, "No files were uploaded: choose the photos of a focus sweep, or one video.")
    videos = [f for f in files if f["kind"] == "video"]
    if videos and len(files) > 1:
        raise UploadError(400, "Upload either one video or several photos, not both or several videos.")
    if not videos and len(files) < 2:
        raise UploadError(
            400, f"{files[0]['name']}: a focus stack needs at least two photos taken at different focus distances."
        )
    for item in files:
        path = job.folder / item["file"]
        try:
            if item["kind"] == "video":
                _check_video(path)
            else:
                _check_image(path, item["format"], item["name"])
        except PostfocusError as exc:
            raise UploadError(415, humanize(str(exc), job, files)) from None


def _check_image(path: Path, expected: str, name: str) -> None:
    from PIL import Image

    from postfocus.errors import InputError
    from postfocus.io.images import read_header
    _check_pixels(name, _pillow_size(path))  # (before anything decodes it)
    header = read_header(path)
    _check_pixels(name, (header.width, header.height))  # (a TIFF only tifffile reads)
    with Image.open(path) as im:
        fmt = im.format
    if fmt != expected and not (expected in ("TIFF", "JPEG") and fmt == "MPO"):
        raise InputError(f"{path}: not a valid {expected} file")
    if expected == "TIFF" and _first_image_is_a_preview(path):  # (its 160x120 preview was stacked: review20)
        raise InputError(f"{path}: a camera RAW photo (DNG, NEF, ARW ...), whose first image is only a preview; "
                         "upload JPEG, PNG or TIFF photos made from it, or stack RAW files with 'postfocus stack'")
    if header.width < 16 or header.height < 16:
        raise InputError(f"{path}: too small ({header.width}x{header.height}) to be a photo of a stack")


def _pillow_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of the photo ``path`` as Pillow reads it from the header (no pixel decoded); (0, 0) when Pillow
    cannot open it (:func:`~postfocus.io.images.read_header` says why), None when Pillow calls it a decompression bomb
    (over twice ``Image.MAX_IMAGE_PIXELS``)."""
    import warnings

    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except Image.DecompressionBombError:
        return None
    except Exception:  # noqa: BLE001 (UnidentifiedImageError, a cut header: refused with read_header's message)
        return (0, 0)


def _check_pixels(name: str, size: tuple[int, int] | None) -> None:
    """UploadError 413 for a photo of more than :data:`MAX_PHOTO_MEGAPIXELS` (``size`` None: more than Pillow opens)."""
    if size is not None and size[0] * size[1] <= MAX_PHOTO_MEGAPIXELS * 1_000_000:
        return
    said = "more pixels than Pillow opens" if size is None else f"{size[0]}x{size[1]} ({_over(size[0] * size[1])} MP)"
    raise UploadError(413, f"{name}: a photo of {said}; this server takes photos of up to {MAX_PHOTO_MEGAPIXELS} "
                           "megapixels: make them smaller, or stack them with 'postfocus stack'.")


def _over(pixels: int) -> str:
    """Megapixels of a photo over the limit, with as many decimals as it takes to read as more than the limit.

    >>> _over(110_400_000), _over(11000 * 10001), _over(110_000_001), _over(144_000_000)
    ('110.4', '110.01', '110.000001', '144.0')
    """
    for places in range(1, 7):
        if float(said := f"{pixels / 1e6:.{places}f}") > MAX_PHOTO_MEGAPIXELS:
            return said
    return f"{pixels / 1e6:.6f}"


def _first_image_is_a_preview(path: Path) -> bool:
    """Whether the TIFF ``path`` is laid out as camera RAW files are: a DNG, or a first image of reduced resolution
    (NewSubfileType bit 0), the sensor's lying in a SubIFD."""
    import tifffile
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages.first.tags
            return 50706 in tags or int(getattr(tags.get(254), "value", 0)) & 1 == 1
    except Exception:  # noqa: BLE001 (a TIFF tifffile cannot read, Pillow could: judged by Pillow alone, as before)
        return False


def _check_video(path: Path) -> None:
    from postfocus.io.video import VideoSource

    source = VideoSource(path)
    source.close()


def humanize(message: str, job: JobFolder, files: list[dict]) -> str:
    """Put the names people uploaded in place of the generated file names in a message.

    One pass over the message, so a replacement is never replaced again.

    Parameters
    ----------
    message : str
        A message naming stored files (``in/000.jpg``, full paths ...).
    job : JobFolder
        The job the files belong to.
    files : list[dict]
        The job's inputs (``file`` and ``name`` of each).

    Returns
    -------
    str
    """
    names: dict[str, str] = {}
    for item in files:
        stored = job.folder / item["file"]
        for key in (str(stored.resolve()), str(stored), item["file"], stored.name):
            names.setdefault(key, item["name"])
    if not names:
        return message
    alternatives = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w])")
    return pattern.sub(lambda m: names[m.group(0)], message)
