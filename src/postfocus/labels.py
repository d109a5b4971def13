"""How a frame is named to people, the same on the command line, in the app and on the saved page.

A photo's frame is its file's name (``pcb_003.jpg``), as the user named it; its number is added, counted from 1,
only where the name does not tell it apart (two photos of the same name from two folders:
``IMG_0001.jpg (frame 3)``). A video's frames have no names of their own (the library calls them ``frame 0002``):
one is said by its number and its time in the video (``frame 3 (0.08 s)``). JSON, the Python API and the options
that take frames (``--range``, ``--reference``) keep 0-based indexes.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["frame_label", "frame_labels", "frame_time", "is_named"]


def frame_label(names: Sequence[str], index: int, *, fps: float | None = None) -> str:
    """Frame ``index`` (0-based) of a stack whose frames are ``names``, as people read it.

    Parameters
    ----------
    names : sequence of str
        The stack's frame names (file names; ``frame 0000``, ``frame 0001`` ... for a video's frames).
    index : int
        The frame, counted from 0.
    fps : float, optional
        A video's frame rate (its frames are said with their time).

    Returns
    -------
    str

    Examples
    --------
    >>> frame_label(["a.jpg", "b.jpg", "c.jpg"], 2)
    'c.jpg'
    >>> frame_label(["IMG_1.jpg", "IMG_2.jpg", "IMG_1.jpg"], 2)
    'IMG_1.jpg (frame 3)'
    >>> frame_label(["frame 0000", "frame 0001"], 1, fps=25)
    'frame 2 (0.04 s)'
    >>> frame_label(["a.jpg"], 4)
    'frame 5'
    """
    name = names[index] if 0 <= index < len(names) else None
    if not is_named(name, index):  # a video's frame: its time says more than its number
        return f"frame {index + 1}" + (f" ({frame_time(index, fps)})" if fps else "")
    if sum(1 for other in names if other == name) > 1:
        return f"{name} (frame {index + 1})"
    return name


def frame_labels(names: Sequence[str], indexes: Sequence[int], *, fps: float | None = None) -> str:
    """Several frames, as :func:`frame_label` names each, joined by commas.

    Examples
    --------
    >>> frame_labels(["a.jpg", "b.jpg", "c.jpg"], [0, 2])
    'a.jpg, c.jpg'
    """
    return ", ".join(frame_label(names, i, fps=fps) for i in indexes)


def frame_time(index: int, fps: float) -> str:
    """A video frame's time, as :func:`frame_label` says it (the viewer page shows the same words).

    Examples
    --------
    >>> frame_time(2, 25)
    '0.08 s'
    """
    return f"{index / fps:.2f} s"


def is_named(name: str | None, index: int) -> bool:
    """Whether frame ``index`` has a name of its own: not a video's or an array's (``frame 0002``), said by number.

    Examples
    --------
    >>> is_named("pcb_003.jpg", 2), is_named("frame 0002", 2)
    (True, False)
    """
    return bool(name) and name != f"frame {index:04d}"
