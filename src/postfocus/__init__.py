"""postfocus: decide focus after the shot.

The library API mirrors the command line::

    import postfocus
    result = postfocus.stack("my_sweep/")          # all-in-focus, alignment report, maps
    result.save("all_in_focus.jpg")
    ps = postfocus.process("sweep.mp4")            # align once, keep the work
    postfocus.tap(ps, 640, 360).frame              # tap to refocus
    postfocus.align_frames(ps, "aligned/")         # the aligned frames as 16-bit TIFFs
    postfocus.retouch(ps, mask, source=4)          # paint a halo away from frame 4

Options are one validated type, :class:`StackOptions`; every function also
takes its fields as keywords (``postfocus.stack(folder, method="pyramid")``).
"""

from typing import TYPE_CHECKING

from postfocus._lazy import lazy_exports

# Imported on first use (postfocus._lazy): the command line imports only what its command needs.
_EXPORTS = {
    "__version__": "postfocus._version",
    "align_frames": "postfocus.products.aligned",
    "analyse": "postfocus.pipeline.analyse",
    "Analysis": "postfocus.pipeline.analyse",
    "fuse": "postfocus.pipeline.merge",
    "merge": "postfocus.store",
    "OptionError": "postfocus.errors",
    "PostfocusError": "postfocus.errors",
    "process": "postfocus.pipeline.run",
    "retouch": "postfocus.products.retouch",
    "ProcessedStack": "postfocus.store",
    "save_image": "postfocus.result",
    "stack": "postfocus.pipeline.run",
    "StackMaps": "postfocus.maps",
    "StackOptions": "postfocus.options",
    "StackResult": "postfocus.result",
    "Tap": "postfocus.products.refocus",
    "tap": "postfocus.products.refocus",
}

if TYPE_CHECKING:  # what type checkers and editors see
    from postfocus._version import __version__
    from postfocus.errors import OptionError, PostfocusError
    from postfocus.maps import StackMaps
    from postfocus.options import StackOptions
    from postfocus.pipeline.analyse import Analysis, analyse
    from postfocus.pipeline.merge import fuse
    from postfocus.pipeline.run import process, stack
    from postfocus.products.aligned import align_frames
    from postfocus.products.refocus import Tap, tap
    from postfocus.products.retouch import retouch
    from postfocus.result import StackResult, save_image
    from postfocus.store import ProcessedStack, merge

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "__version__",
    "Analysis",
    "OptionError",
    "PostfocusError",
    "ProcessedStack",
    "StackMaps",
    "StackOptions",
    "StackResult",
    "Tap",
    "align_frames",
    "analyse",
    "fuse",
    "merge",
    "process",
    "retouch",
    "save_image",
    "stack",
    "tap",
]
