"""postfocus: decide focus after the shot.

The library API mirrors the command line::

    import postfocus
    result = postfocus.stack("my_sweep/")          # all-in-focus, alignment report, focus map
    result.save("all_in_focus.jpg")
    ps = postfocus.process("sweep.mp4")            # align once, keep the work
    postfocus.tap(ps, 640, 360).frame              # tap to refocus
"""

from postfocus._version import __version__
from postfocus.errors import PostfocusError
from postfocus.pipeline import StackResult, analyse, fuse, save_image, stack
from postfocus.refocus import Tap, tap
from postfocus.state import ProcessedStack, merge, process

__all__ = [
    "__version__",
    "PostfocusError",
    "StackResult",
    "ProcessedStack",
    "Tap",
    "analyse",
    "fuse",
    "merge",
    "process",
    "save_image",
    "stack",
    "tap",
]
