"""Open a file the project keeps (a stack folder's manifest, a kept result, the batch's journal) only if it is one.

A name can hold something that is no file: a FIFO blocks an ordinary ``open`` until a writer comes (every later
run waited with it, for good), and a link to ``/dev/zero`` is read until memory runs out. :func:`open_regular`
opens without waiting (``O_NONBLOCK``, which a regular file ignores), optionally without following a link
(``O_NOFOLLOW``), and hands the file back only when its own status says it is a regular file.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

__all__ = ["open_regular"]


def open_regular(path: str | os.PathLike, *, follow: bool = True) -> BinaryIO | None:
    """``path`` opened for reading in binary, or None when what is there is no regular file (a FIFO, a device, a
    folder).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    follow : bool
        Whether a link at ``path`` is followed (False: a link is refused by the system, an OSError).

    Returns
    -------
    BinaryIO or None
        The open file (the caller closes it), or None.

    Raises
    ------
    OSError
        When it cannot be opened (missing, no permission, a link with ``follow=False``).
    ValueError
        For a path with a NUL byte.

    Examples
    --------
    >>> open_regular(os.devnull) is None  # a character device
    True
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")
