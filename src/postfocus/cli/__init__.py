"""The ``postfocus`` command line: a thin face over the library API.

Each command lives in its own module of this package and registers itself on
:data:`main`. Problems the user can fix are printed as one line on stderr with
a non-zero exit; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

from postfocus.cli.start import one_blas_thread

one_blas_thread()  # (before the imports below load NumPy and OpenCV)

from postfocus.cli.common import CommandModules, main  # noqa: E402

# Command modules; each adds the command of its name to ``main`` when imported, which happens when
# that command is run or the commands are listed (a run imports only its own command's module).
COMMAND_MODULES = ["stack", "refocus", "pop", "info", "frames", "demo", "batch", "depth", "aperture", "mesh", "view", "serve",
                   "align", "check", "retouch", "animate", "stereo"]
main.commands = CommandModules(__name__, COMMAND_MODULES)

__all__ = ["main"]
