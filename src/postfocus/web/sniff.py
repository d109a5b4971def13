"""What an uploaded file is, from its first bytes (never from its name), and the files recognised only to be refused.

:func:`sniff` tells the photos and videos the app reads (JPEG, PNG, TIFF; MP4, MOV, MKV, AVI, MPEG-TS) from
what it does not; :func:`refusal` words the refusal of a file recognised as something the app does not read:
HEIF photos, and Canon CR3 RAW photos, which are ISO BMFF files like an MP4 (brand ``crx``) and were refused as
videos FFmpeg cannot read (fixes23).
"""

from __future__ import annotations

from dataclasses import dataclass

from postfocus.io.base import looks_like_mp4

__all__ = ["CR3_BRANDS", "HEIF_BRANDS", "Sniffed", "refusal", "sniff"]

HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"mif1", b"msf1", b"avif", b"avis"}
CR3_BRANDS = {b"crx "}
"""Major brands of Canon's CR3 RAW files (ISO BMFF; LibRaw decodes them from version 0.20)."""


@dataclass
class Sniffed:
    kind: str  # "image", "video", or a kind refused: "heif", "raw"
    suffix: str  # stored file's suffix
    format: str  # what the bytes say, e.g. "JPEG"


def sniff(head: bytes) -> Sniffed | None:
    """What a file is, from its first bytes; None when it is nothing postfocus reads.

    Parameters
    ----------
    head : bytes
        The file's first bytes (up to :data:`postfocus.web.upload.SNIFF_BYTES`).

    Returns
    -------
    Sniffed or None
        Kind ("image", "video", or "heif" for HEIF photos and "raw" for Canon CR3 photos, which are refused),
        the suffix to store the file under, and the format found.

    Examples
    --------
    >>> sniff(b"\\xff\\xd8\\xff\\xe0" + bytes(12)).suffix
    '.jpg'
    >>> sniff(b"\\0\\0\\0\\x18ftypcrx \\0\\0\\0\\x01").format
    'CR3'
    >>> sniff(b"hello world") is None
    True
    """
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", ".jpg", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", ".png", "PNG")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return Sniffed("image", ".tif", "TIFF")
    if looks_like_mp4(head):
        if head[4:8] != b"ftyp":
            return Sniffed("video", ".mov", "MOV")
        if len(head) >= 12:  # the brand tells HEIF and CR3 photos from MP4 and MOV
            brand = head[8:12]
            if brand in HEIF_BRANDS:
                return Sniffed("heif", "", "HEIF")
            if brand in CR3_BRANDS:
                return Sniffed("raw", "", "CR3")
            return Sniffed("video", ".mov" if brand == b"qt  " else ".mp4", "MP4/MOV")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", ".mkv", "Matroska")
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return Sniffed("video", ".avi", "AVI")
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return Sniffed("video", ".mts", "MPEG-TS")
    if len(head) > 196 and head[4] == 0x47 and head[196] == 0x47:
        return Sniffed("video", ".m2ts", "MPEG-TS")
    return None


def refusal(found: Sniffed | None, name: str) -> str | None:
    """The one-line refusal of a file ``found`` to be a kind the app recognises but does not read, or None.

    Examples
    --------
    >>> refusal(sniff(b"\\0\\0\\0\\x18ftypcrx \\0\\0\\0\\x01"), "IMG_1.CR3")[:36]
    'IMG_1.CR3: a Canon CR3 RAW photo, wh'
    """
    if found is None:
        return None
    if found.kind == "heif":
        return f"{name}: HEIC/HEIF photos cannot be read yet; export them as JPEG (or TIFF) and try again."
    if found.kind == "raw":
        return (f"{name}: a Canon CR3 RAW photo, which the web app does not read; export the photos as JPEG, PNG or "
                "TIFF and try again, or stack the CR3 files with 'postfocus stack' (LibRaw reads them).")
    return None
