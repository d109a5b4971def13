"""The depth order a job's results took, for the app's page and API: which photo was taken as the nearest.

The app processes with the default order (the first photo, by name, nearest) and cannot be told another, so its
depth map, aperture and colour pop take that order on trust (or on ``order="auto"``'s measurement). The wording is
shared with the lasting page (:mod:`postfocus.products.order`): :func:`depth_order` gives the JSON the command
line's ``--json`` gives, with the names and the sentence the page shows beside the depth's tools.
"""

from __future__ import annotations

from postfocus.products.order import depth_order, order_sentence

__all__ = ["depth_order", "order_sentence"]
