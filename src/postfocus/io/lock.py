"""An advisory lock file, so that two postfocus processes never share a folder.

:class:`FileLock` guards a folder (a batch's results folder, the web app's data
folder) with ``flock`` on a lock file inside it. The lock is tied to the open
file, so the operating system releases it when the process ends, however it
ends: a lock file left behind by a killed process does not block the next one.

On systems without ``fcntl`` (Windows) the lock does nothing. ``flock`` on a
network file system (NFS, SMB) depends on the server, so the lock is only
reliable between processes on the same machine.

Examples
--------
>>> with FileLock("stacked/.postfocus-batch.lock", held="another batch writes here"):  # doctest: +SKIP
...     pass
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Any

from postfocus.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileLock", "LockHeldError"]

POLL_SECONDS = 0.05
"""How often a blocking :meth:`FileLock.acquire` with a timeout tries again."""


class LockHeldError(OutputError):
    """Another process holds the lock (raised by :meth:`FileLock.acquire`)."""


class FileLock:
    """An exclusive advisory lock on ``path``, as a context manager or by hand.

    Parameters
    ----------
    path : str or os.PathLike
        The lock file; created if missing (its folder must exist) and left in
        place after release.
    held : str, optional
        What the error says when another process holds the lock, after the
        lock file's folder: ``"{folder}: {held}"``. Say who holds it and what
        to do.
    blocking : bool, default False
        How ``with FileLock(...)`` acquires: False fails at once when the lock
        is held, True waits for it.
    timeout : float, optional
        With ``blocking``, wait at most this many seconds (default: for ever).

    Raises
    ------
    LockHeldError
        From :meth:`acquire` (and ``with``) when another process holds the lock.

    Examples
    --------
    >>> lock = FileLock(tmp / "server.lock", held="another server uses this folder")  # doctest: +SKIP
    >>> lock.acquire()  # doctest: +SKIP
    >>> FileLock(tmp / "server.lock").acquire()  # doctest: +SKIP
    Traceback (most recent call last):
    LockHeldError: /tmp/...: server.lock is held by another process
    >>> lock.release()  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        held: str | None = None,
        blocking: bool = False,
        timeout: float | None = None,
    ):
        self.path = Path(path)
        self.held = held or f"{self.path.name} is held by another process"
        self.blocking = blocking
        self.timeout = timeout
        self._fh: IO[str] | None = None

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._fh is not None

    def acquire(self, blocking: bool | None = None, timeout: float | None = None) -> None:
        """Take the lock.

        Parameters
        ----------
        blocking : bool, optional
            Wait while another process holds it (default: the constructor's).
        timeout : float, optional
            With ``blocking``, give up after this many seconds (default: the
            constructor's; None waits for ever).

        Raises
        ------
        LockHeldError
            When another process holds the lock (at once, or after ``timeout``).
        OutputError
            When the lock file cannot be opened.
        """
        if fcntl is None or self._fh is not None:  # no advisory locks here, or held already
            return
        blocking = self.blocking if blocking is None else blocking
        timeout = self.timeout if timeout is None else timeout
        try:
            fh = open(self.path, "a+")  # noqa: SIM115 - held open until release()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot open the lock file ({exc.strerror or exc})") from None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    if blocking and deadline is None:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                    else:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking or time.monotonic() >= deadline:
                        raise
                    time.sleep(POLL_SECONDS)
        except OSError:
            fh.close()
            raise LockHeldError(f"{self.path.parent}: {self.held}") from None
        self._fh = fh

    def release(self) -> None:
        """Let go of the lock; does nothing when it is not held."""
        fh, self._fh = self._fh, None  # not held any more before the lock is let go (another thread may take it)
        if fh is None:
            return
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        finally:
            fh.close()

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
