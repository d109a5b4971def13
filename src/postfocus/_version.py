"""The installed version of postfocus (``0.0.0+unknown`` in a source tree that was never installed).

Read from the installed distribution's metadata file on the import path, as
:func:`importlib.metadata.version` finds it; importlib.metadata itself (which
loads the ``email`` package: about 20 ms of every command's start-up) only
when no such file is found.
"""

import os
import sys

__all__ = ["__version__"]


def _metadata_version() -> str | None:
    """``Version:`` of the first ``postfocus-*.dist-info/METADATA`` (or ``.egg-info/PKG-INFO``) on ``sys.path``."""
    for entry in sys.path:
        folder = entry or "."
        try:
            with os.scandir(folder) as listing:
                names = sorted(e.name for e in listing if e.name.lower().startswith("postfocus-")
                               and e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name, "METADATA" if name.endswith(".dist-info") else "PKG-INFO")
            try:
                with open(path, encoding="utf-8") as fh:
                    for line in fh:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
                        if not line.strip():  # the end of the headers
                            break
            except OSError:
                continue
    return None


def _version() -> str:
    found = _metadata_version()
    if found:
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("postfocus")
    except PackageNotFoundError:  # running from a source tree without install
        return "0.0.0+unknown"


__version__ = _version()
