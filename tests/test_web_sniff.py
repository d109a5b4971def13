"""What an upload is, from its first bytes (:mod:`postfocus.web.sniff`)."""

from __future__ import annotations

import struct

import pytest

from postfocus.web.sniff import refusal, sniff

#: The first bytes of a Canon CR3 (an ISO BMFF file: its ftyp box, major brand ``crx ``, then the moov box).
CR3_HEAD = struct.pack(">I", 24) + b"ftypcrx " + struct.pack(">I", 1) + b"crx isom" + struct.pack(">I", 8) + b"moov"


def test_a_canon_cr3_is_a_raw_photo_not_a_video():
    """A CR3 is an ISO BMFF file like an MP4; it was sniffed as one and refused as a video FFmpeg cannot read
    (review20). It is a RAW photo, refused as such, with the way on."""
    found = sniff(CR3_HEAD + bytes(400))
    assert (found.kind, found.format) == ("raw", "CR3")
    said = refusal(found, "IMG_0001.CR3")
    assert said.startswith("IMG_0001.CR3: a Canon CR3 RAW photo") and "postfocus stack" in said
    assert "video" not in said and "\n" not in said


@pytest.mark.parametrize("brand, kind", [(b"isom", "video"), (b"qt  ", "video"), (b"heic", "heif")])
def test_other_iso_bmff_brands_are_what_they_were(brand, kind):
    head = struct.pack(">I", 24) + b"ftyp" + brand + bytes(400)
    assert sniff(head).kind == kind
    assert (refusal(sniff(head), "x") is None) == (kind == "video")
