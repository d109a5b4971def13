"""The depth order a stack's products took, for people: which photo was taken as the nearest.

Nothing a processed stack holds says which way its focus swept unless the order was measured (``order="auto"``,
:mod:`postfocus.focus.direction`); otherwise its depth map, aperture and colour pop take the stated or default order
on trust. The command line says so once when ``--order`` is left at its default
(:func:`postfocus.cli.output.order_said`); :func:`depth_order` is the same for the web app
(:mod:`postfocus.web.order`) and the lasting page (:func:`postfocus.viewer.export.viewer_data`): the JSON the
command line's ``--json`` gives, with the names and the sentence shown beside the depth's tools.
"""

from __future__ import annotations

from typing import Sequence

from postfocus.focus.passes import OPENINGS
from postfocus.labels import frame_label
from postfocus.store import ProcessedStack

__all__ = ["depth_order", "order_sentence", "turns_said"]


def depth_order(stack: ProcessedStack, names: Sequence[str], *, stated: bool = False,
                command: str = "depth") -> dict:
    """The depth order of ``stack``'s products.

    Parameters
    ----------
    stack : :class:`postfocus.store.ProcessedStack`
        The processed stack.
    names : sequence of str
        Its frames' names as people know them (``"frame 0000"`` for a video's frames).
    stated : bool
        The order was given by the user (a command line's ``--order``), not left at its default. An order
        measured (``"auto"``) is assumed when its evidence was too weak to decide, stated or not.
    command : str
        The command the sentence names for changing the order (``"view"`` on a page ``postfocus view`` made,
        so that making it again is what the reader is told).

    Returns
    -------
    dict
        ``near_to_far`` and ``assumed`` (as ``postfocus depth --json`` gives them), ``nearest`` and ``farthest``
        (the end frames as people name them) and ``said`` (:func:`order_sentence`).
    """
    direction = stack.manifest.get("direction") if isinstance(stack.manifest.get("direction"), dict) else {}
    if stack.options.order == "auto":
        assumed = direction.get("source") in (None, "assumed")
    else:
        assumed = not stated
    near_to_far = bool(stack.near_to_far)
    fps = stack.info.fps
    first, last = frame_label(names, 0, fps=fps), frame_label(names, len(names) - 1, fps=fps)
    nearest, farthest = (first, last) if near_to_far else (last, first)
    return {"near_to_far": near_to_far, "assumed": assumed, "nearest": nearest, "farthest": farthest,
            "said": order_sentence(nearest, farthest, near_to_far=near_to_far, assumed=assumed,
                                   stated=stack.options.order != "auto" and stated, command=command)}


def order_sentence(nearest: str, farthest: str, *, near_to_far: bool, assumed: bool, stated: bool = False,
                   command: str = "depth") -> str:
    """The order for people, in one line, with the way to change it when it was assumed.

    ``stated``: an order not assumed was given by the user rather than measured; ``command``: the postfocus
    command the way to change it names.

    Examples
    --------
    >>> order_sentence("IMG_1.jpg", "IMG_9.jpg", near_to_far=True, assumed=True)  # doctest: +ELLIPSIS
    'Depth order assumed: IMG_1.jpg is the nearest; if IMG_9.jpg is, near and far are swapped here (...).'
    >>> order_sentence("IMG_9.jpg", "IMG_1.jpg", near_to_far=False, assumed=False)
    'Depth order measured: IMG_9.jpg is the nearest.'
    >>> order_sentence("IMG_1.jpg", "IMG_9.jpg", near_to_far=False, assumed=True, command="view")  # doctest: +ELLIPSIS
    '... swapped here (postfocus view --order near-to-far).'
    >>> order_sentence("IMG_1.jpg", "IMG_9.jpg", near_to_far=True, assumed=False, stated=True)
    'Depth order given: IMG_1.jpg is the nearest.'
    """
    if not assumed:
        return f"Depth order {'given' if stated else 'measured'}: {nearest} is the nearest."
    flip = "far-to-near" if near_to_far else "near-to-far"
    return (f"Depth order assumed: {nearest} is the nearest; if {farthest} is, near and far are swapped here "
            f"(postfocus {command} --order {flip}).")


def turns_said(stack: ProcessedStack) -> str | None:
    """The warning a processed stack was made with when its sweep turns back through focus or starts again
    (:func:`postfocus.focus.passes.passes_said`: its frame index is then no depth, whichever way the focus went);
    None for a sweep through focus once (or a stack made before the check)."""
    said = stack.manifest.get("warnings") or []
    return next((w for w in said if isinstance(w, str) and w.startswith(OPENINGS)), None)
