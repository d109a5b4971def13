"""Frames in and results out.

Every frame that postfocus works on is a ``float32`` array of shape ``(H, W, 3)``
with RGB values in ``[0, 1]``, whatever the file held (8- or 16-bit, grey or
colour, JPEG, PNG, TIFF, RAW or a video frame). A :class:`FrameSource` yields
such frames one at a time, so a stack never has to sit in memory whole.

Modules, each importing only those before it:

``base``          the source model (:class:`FrameSource`, :class:`SourceInfo`) and the
                  rules about input files (suffixes, folder listing, sizes, MP4 sniffing)
``metadata``      EXIF, colour profile, TIFF and PNG metadata of result images
``encoding``      bit depth and compression of results; metadata into a JPEG as it is
``held``          atomic writes held back until the work they belong to is done
``write``         atomic writes and result images with metadata
``images``        still images (JPEG, PNG, TIFF) and :class:`ImageFilesSource`
``arrays``        frames in memory (:class:`ArraySource`)
``mp4_boxes``     the boxes of MP4/MOV files: a bounded walker, ``mvhd`` and ``udta``
``video_metadata`` camera metadata of MP4/MOV files (PANA atom, ``©xyz``, ``mvhd``)
``raw_metadata``  the EXIF of camera RAW files
``raw``           camera RAW files (:class:`RawFilesSource`)
``video``         videos (:class:`VideoSource`)
``video_write``   writing test videos, extracting frames
``open``          :func:`open_source`, which picks the source for what the user named
"""

from typing import TYPE_CHECKING

from postfocus._lazy import lazy_exports

# Imported on first use (postfocus._lazy): reading JPEGs need not load the TIFF, RAW and video readers.
_EXPORTS = {
    "ArraySource": "postfocus.io.arrays",
    "atomic_write": "postfocus.io.write",
    "check_output_path": "postfocus.io.write",
    "FrameSource": "postfocus.io.base",
    "ImageFilesSource": "postfocus.io.images",
    "natural_key": "postfocus.io.base",
    "open_source": "postfocus.io.open",
    "read_image": "postfocus.io.images",
    "SourceInfo": "postfocus.io.base",
    "write_image": "postfocus.io.write",
}

if TYPE_CHECKING:  # what type checkers and editors see
    from postfocus.io.arrays import ArraySource
    from postfocus.io.base import FrameSource, SourceInfo, natural_key
    from postfocus.io.images import ImageFilesSource, read_image
    from postfocus.io.open import open_source
    from postfocus.io.write import atomic_write, check_output_path, write_image

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "ArraySource",
    "FrameSource",
    "ImageFilesSource",
    "SourceInfo",
    "atomic_write",
    "check_output_path",
    "natural_key",
    "open_source",
    "read_image",
    "write_image",
]
