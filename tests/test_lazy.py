"""Lazy package exports (postfocus._lazy): names import on first use, the command line loads what it needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import postfocus
from postfocus._lazy import lazy_exports


def test_every_public_name_resolves_to_its_module_object():
    from postfocus.pipeline.run import stack
    from postfocus.store import ProcessedStack

    assert postfocus.stack is stack and postfocus.ProcessedStack is ProcessedStack
    assert all(getattr(postfocus, name) is not None for name in postfocus.__all__)
    assert set(postfocus.__all__) <= set(dir(postfocus))
    from postfocus.io import open_source, read_image  # the same for postfocus.io

    assert callable(open_source) and callable(read_image)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        postfocus.nonexistent  # noqa: B018
    get, _ = lazy_exports("demo", {"sqrt": "math"}, {})
    with pytest.raises(AttributeError):
        get("cos")


def test_importing_the_package_or_the_cli_loads_no_tiff_reader_or_pipeline_early():
    code = ("import sys, postfocus; a = 'postfocus.pipeline.run' in sys.modules; "
            "import postfocus.cli.stack; print(a, 'tifffile' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_the_cli_imports_a_command_module_when_that_command_is_asked_for():
    code = ("import sys; from postfocus.cli import main, COMMAND_MODULES; "
            "before = 'postfocus.cli.serve' in sys.modules; main.commands['stack']; "
            "print(before, 'postfocus.cli.stack' in sys.modules, 'postfocus.cli.serve' in sys.modules, "
            "sorted(main.commands) == sorted(COMMAND_MODULES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "False", "True"]
