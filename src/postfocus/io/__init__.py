"""Frames in and results out.

Every frame that postfocus works on is a ``float32`` array of shape ``(H, W, 3)``
with RGB values in ``[0, 1]``, whatever the file held (8- or 16-bit, grey or
colour, JPEG, PNG, TIFF, RAW or a video frame). A :class:`FrameSource` yields
such frames one at a time, so a stack never has to sit in memory whole.
"""

from postfocus.io.sources import FrameSource, SourceInfo, open_source
from postfocus.io.write import write_image

__all__ = ["FrameSource", "SourceInfo", "open_source", "write_image"]
