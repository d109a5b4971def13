"""Atomic writes held back: written whole now, renamed into place only once the work they belong to is done.

The command line writes its output on a second thread while the stack folder's last files are written
(:mod:`postfocus.pipeline.finish`). If the folder's write then fails or the run is interrupted (Ctrl+C),
the command exits non-zero saying no output was written, and the output must be as it was. Within a
:class:`HeldWrites` block, :func:`~postfocus.io.write.atomic_write` in that thread writes its temporary file
whole (``.<name>.<random><suffix>.part``, its lock held) but does not rename it: :meth:`HeldWrites.commit`
does, :meth:`HeldWrites.discard` removes it. A process killed in between leaves a temporary file whose lock
is free, which the next write of the same name removes, as for any write.

Examples
--------
>>> held = HeldWrites()  # doctest: +SKIP
>>> with held:  # doctest: +SKIP
...     atomic_write_text("out.txt", "done")  # out.txt not there yet
>>> held.commit()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from postfocus.errors import OutputError

__all__ = ["HeldWrites", "held_writes"]

_HELD = threading.local()


def held_writes() -> "HeldWrites | None":
    """Where the calling thread's atomic writes are held (inside a :class:`HeldWrites` block), else None."""
    return getattr(_HELD, "writes", None)


class HeldWrites:
    """Collects the atomic writes made in its ``with`` blocks (in the thread that enters it), unrenamed.

    Each held write is ``(fd, temporary path, path)``: the temporary file's descriptor keeps its lock.
    """

    def __init__(self) -> None:
        self._writes: list[tuple[int, Path, Path]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "HeldWrites":
        _HELD.writes = self
        return self

    def __exit__(self, *exc: object) -> None:
        _HELD.writes = None

    def append(self, write: tuple[int, Path, Path]) -> None:
        """Hold a whole temporary file (called by :func:`~postfocus.io.write.atomic_write`)."""
        with self._lock:
            self._writes.append(write)

    def _take(self) -> list[tuple[int, Path, Path]]:
        with self._lock:
            writes, self._writes = self._writes, []
        return writes

    def commit(self) -> None:
        """Rename every held file into place, in the order written.

        Raises
        ------
        OutputError
            When a rename fails (the files not renamed are removed).
        """
        writes = self._take()
        try:
            while writes:
                fd, tmp, path = writes[0]
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
                os.close(writes.pop(0)[0])
        finally:
            _discard(writes)

    def discard(self) -> None:
        """Remove every held file: the paths stay as they were."""
        _discard(self._take())


def _discard(writes: list[tuple[int, Path, Path]]) -> None:
    for fd, tmp, _ in writes:
        Path(tmp).unlink(missing_ok=True)
        os.close(fd)
