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


def test_fuse_stays_the_function_after_the_fuse_subpackage_is_imported():
    # postfocus.fuse is a public function and the name of a subpackage: importing the subpackage (any
    # stack does) made postfocus.fuse the module ("'module' object is not callable").
    code = ("import postfocus; postfocus.stack; import postfocus.fuse.relight; "
            "from postfocus.fuse.depthmap import DepthmapFusion; from postfocus.pipeline.merge import fuse; "
            "a = postfocus.fuse is fuse; from postfocus import *; "
            "print(a, fuse is postfocus.pipeline.merge.fuse, callable(postfocus.fuse))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True"]


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


def test_plain_lines_to_a_pipe_are_what_rich_would_print(capsys):
    import io

    from rich.console import Console

    from postfocus.cli.common import _ErrConsole

    lines = ["merged 28 of 28 frames (depthmap), 740x492; reference frame 15 (a[1]/[bold]b[/].jpg)",
             "x" * 300 + " moved: 0.0% of the image :smile:"]
    for line in lines:
        rich_out = io.StringIO()
        Console(file=rich_out, highlight=False, emoji=False).print(line, markup=False, soft_wrap=True)
        console = _ErrConsole()
        console.print(line, markup=False, soft_wrap=True)
        assert capsys.readouterr().err == rich_out.getvalue()
        assert console._console is None  # Rich was not needed
    console = _ErrConsole()
    console.print("[bold]styled[/]")  # anything else goes through Rich
    assert console._console is not None and capsys.readouterr().err == "styled\n"


@pytest.mark.parametrize("flags", [["-q"], []], ids=["quiet", "progress"])
def test_a_stack_to_a_pipe_does_not_load_rich(tmp_path, flags):
    from postfocus.synth import render_stack, scene

    image, depth = scene("steps", (48, 64), seed=1)
    folder = tmp_path / "frames"
    folder.mkdir()
    import cv2

    for i, frame in enumerate(render_stack(image, depth, 3, max_blur=2.0, seed=1).frames):
        cv2.imwrite(str(folder / f"f{i}.png"), (frame[..., ::-1] * 255).astype("uint8"))
    code = ("import sys; from postfocus.cli import main; "
            f"sys.argv = ['postfocus', *{flags!r}, 'stack', {str(folder)!r}, '-o', {str(tmp_path / 'out.jpg')!r}, '--no-cache']\n"
            "try: main(prog_name='postfocus')\nexcept SystemExit as e: assert not e.code, e.code\n"
            "print('rich.console' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split()[-1] == "False" and "merged 3 of 3 frames" in run.stderr
