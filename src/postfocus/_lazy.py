"""Lazy exports of a package: its public names are imported on first use, not with the package.

``import postfocus.cli`` (every run of the command line) would otherwise import
every module the package's ``__init__`` names, whatever the command needs: the
products, the web viewer's helpers, TIFF and RAW readers. A package lists where
each public name lives and gets a module ``__getattr__`` (PEP 562) that imports
it when it is first asked for (``postfocus.stack``, ``from postfocus import stack``).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> tuple[
        Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` that import ``exports`` on first use.

    Parameters
    ----------
    package : str
        The package's name (for the error message).
    exports : dict
        Public name -> the module that defines it.
    namespace : dict
        The package's ``globals()``; each name is stored there once imported.

    Returns
    -------
    (__getattr__, __dir__)

    Examples
    --------
    >>> get, names = lazy_exports("demo", {"sqrt": "math"}, {})
    >>> get("sqrt")(9.0)
    3.0
    """

    def get(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted(set(namespace) | set(exports))

    module = sys.modules.get(package)
    if module is not None and vars(module) is namespace:
        namespace["__lazy_exports__"] = frozenset(exports)
        module.__class__ = _Package
    return get, names


class _Package(types.ModuleType):
    """A package whose public names stay what they export when a subpackage of the same name is imported.

    Importing a submodule binds it as an attribute of its package: once anything imported the
    subpackage ``postfocus.fuse`` (every stack does), ``postfocus.fuse`` was that module, not the
    function ``fuse`` the package exports, and calling it said "'module' object is not callable".
    The subpackage stays importable by its name (``from postfocus.fuse.depthmap import ...``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if (isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}"
                and name in vars(self).get("__lazy_exports__", ())):
            return  # the import system binding the subpackage over the public name (it is in sys.modules)
        super().__setattr__(name, value)
