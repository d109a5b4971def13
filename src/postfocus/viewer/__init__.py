"""The self-contained interactive page: one HTML file a person can keep.

``viewer.js`` is the one viewer module (plain JavaScript, no build step); the
exported page inlines it with its CSS and data, and the local web app serves
the same file. :func:`export_page` writes the page of a processed stack.
"""

from __future__ import annotations

from postfocus.viewer.export import export_page, viewer_data
from postfocus.viewer.tapmap import TapMap, stack_tap_map, tap_map

__all__ = ["export_page", "viewer_data", "TapMap", "tap_map", "stack_tap_map"]
