"""The installed version of postfocus (``0.0.0+unknown`` in a source tree that was never installed)."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("postfocus")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
