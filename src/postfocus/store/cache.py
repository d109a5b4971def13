"""The cache folder: where stack folders live, found, checked before any work, written by one process at a time.

A stack folder is made under a hidden temporary name (:class:`PartialFolder`)
whose writer holds a lock inside it, and renamed into place when whole; a
second process asking for the same stack waits on :func:`folder_lock` and
then reuses the first one's work. Temporary folders that a killed process
left behind are removed by the next run (:func:`check_cache`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from postfocus.errors import InputError, OptionError, OutputError, PostfocusError
from postfocus.io.base import FrameSource
from postfocus.io.lock import FileLock, LockHeldError
from postfocus.store.folder import ProcessedStack

__all__ = ["CacheError", "PartialFolder", "cache_root", "check_cache", "find_stack_folders", "folder_lock"]


class CacheError(PostfocusError):
    """The cache folder cannot take a processed stack (not writable, full)."""

def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds stack folders.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Chosen folder; default ``$POSTFOCUS_CACHE``, ``$XDG_CACHE_HOME/postfocus`` or ``~/.cache/postfocus``.

    Returns
    -------
    pathlib.Path
    """
    if cache_dir is not None:  # (5 was pathlib's TypeError, bytes too, a NUL a ValueError from mkdir)
        if isinstance(cache_dir, os.PathLike) and isinstance(os.fspath(cache_dir), bytes):
            cache_dir = os.fspath(cache_dir)  # (a path object of bytes: review18)
        if isinstance(cache_dir, bytes):
            cache_dir = os.fsdecode(cache_dir)
        if not isinstance(cache_dir, (str, os.PathLike)) or "\0" in os.fspath(cache_dir):
            raise OptionError("cache_dir", cache_dir, "must be a folder's path (str or pathlib.Path)")
        return Path(cache_dir)
    if os.environ.get("POSTFOCUS_CACHE"):
        return Path(os.environ["POSTFOCUS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "postfocus"


def find_stack_folders(source: FrameSource, cache_dir: str | os.PathLike | None = None) -> list["ProcessedStack"]:
    """Every readable stack folder made from ``source``'s inputs as they are now (any options).

    Parameters
    ----------
    source : FrameSource
        The inputs.
    cache_dir : str or os.PathLike, optional
        See :func:`cache_root`.

    Returns
    -------
    list of ProcessedStack
        Newest first.
    """
    root = cache_root(cache_dir)
    identity = json.loads(json.dumps(source.identity()))
    found = []
    for manifest in root.glob("*/manifest.json") if root.is_dir() else []:
        try:
            ps = ProcessedStack.open(manifest.parent)
        except InputError:
            continue
        if ps.manifest.get("inputs") == identity:
            found.append(ps)
    return sorted(found, key=lambda ps: ps.manifest.get("created") or "", reverse=True)

# The cache folder: checked before any work, one writer per stack folder, nothing half-written left behind.

PARTIAL_PREFIX = ".partial-"
WRITING = ".writing"


def check_cache(root: Path) -> None:
    """Make sure stack folders can be written under ``root``, before any work is done;
    remove half-written folders that a killed process left (see :class:`PartialFolder`).

    Raises
    ------
    CacheError
        When ``root`` cannot be created or written.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-")  # noqa: SIM115
        probe.close()
    except OSError as exc:
        raise CacheError(f"{root}: cannot keep processed stacks there ({exc.strerror or exc})") from None
    for partial in root.glob(PARTIAL_PREFIX + "*"):
        if not partial.is_dir():  # a file where a stack folder was (swapped out by install): nobody writes it
            partial.unlink(missing_ok=True)
            continue
        lock = FileLock(partial / WRITING)
        try:
            lock.acquire(blocking=False)
        except (LockHeldError, OutputError):
            continue  # another process is writing it (or it is not ours to judge)
        try:
            shutil.rmtree(partial, ignore_errors=True)
        finally:
            lock.release()


def folder_lock(folder: Path) -> FileLock:
    """The lock that lets one process at a time make or repair ``folder`` (others wait, then reuse it)."""
    return FileLock(folder.parent / f".{folder.name}.lock", blocking=True)


def _new_folder(root: Path, prefix: str) -> Path:
    """A new folder ``root/prefix<random>`` with the mode any new folder gets (the umask's; ``tempfile.mkdtemp``
    makes 0700, which a stack folder keeps when renamed into place: a shared cache then serves only its writer)."""
    while True:
        path = root / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


class PartialFolder:
    """A stack folder being written: a hidden temporary folder beside the final one.

    While it exists its writer holds a lock on a file inside it, so
    :func:`check_cache` can tell a folder being written from one left by a
    killed process. :meth:`install` renames it into place (replacing an old
    folder atomically); leaving the ``with`` block on an error removes it.

    Examples
    --------
    >>> with PartialFolder(root) as part:  # doctest: +SKIP
    ...     (part.path / "frames").mkdir()
    ...     part.install(root / key)
    """

    def __init__(self, root: Path):
        self.root = root
        try:
            self.path = _new_folder(root, PARTIAL_PREFIX)
        except OSError as exc:
            raise CacheError(f"{root}: cannot keep processed stacks there ({exc.strerror or exc})") from None
        self._lock = FileLock(self.path / WRITING)
        self._lock.acquire(blocking=False)

    def __enter__(self) -> "PartialFolder":
        return self

    def install(self, folder: Path) -> None:
        """Rename into ``folder``; an existing ``folder`` is swapped out first and then removed."""
        (self.path / WRITING).unlink(missing_ok=True)
        old = None
        if folder.exists():
            old = self.root / f"{PARTIAL_PREFIX}old-{folder.name}-{os.getpid()}"
            os.replace(folder, old)
        os.replace(self.path, folder)
        self.path = folder
        self._lock.release()
        if old is not None:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:  # a file where the stack folder should have been
                old.unlink(missing_ok=True)

    def __exit__(self, kind: type | None, *exc: object) -> None:
        self._lock.release()
        if kind is not None and self.path.name.startswith(PARTIAL_PREFIX):
            shutil.rmtree(self.path, ignore_errors=True)
