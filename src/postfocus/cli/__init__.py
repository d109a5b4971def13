"""The ``postfocus`` command line: a thin face over the library API.

Each command lives in its own module of this package and registers itself on
:data:`main`. Problems the user can fix are printed as one line on stderr with
a non-zero exit; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

import importlib

from postfocus.cli.common import main

# Command modules; each adds its commands to ``main`` when imported.
COMMAND_MODULES = ["stack", "refocus", "pop", "info", "frames", "demo", "batch", "depth", "aperture", "mesh", "view", "serve",
                   "align", "check", "retouch", "animate", "stereo"]
for _name in COMMAND_MODULES:
    importlib.import_module(f"postfocus.cli.{_name}")

__all__ = ["main"]
