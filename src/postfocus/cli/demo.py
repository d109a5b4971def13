"""``postfocus demo``: stack the bundled sample and say where the result is."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click

from postfocus.cli.common import err_console, is_quiet, main, progress_bars
from postfocus.cli.output import finish, frames_data, json_option, size_data, unique_path
from postfocus.io.base import natural_key
from postfocus.io.write import check_output_path
from postfocus.pipeline.run import stack

__all__ = ["DEMO_OUTPUT", "demo_command", "sample_frames"]

DEMO_OUTPUT = Path("postfocus-demo.jpg")
"""Where ``postfocus demo`` writes, in the current folder (``postfocus-demo-1.jpg`` ... when taken)."""


def sample_frames() -> list[Path]:
    """Paths of the bundled sample stack (a handheld macro of a ring, Apache-2.0)."""
    folder = Path(str(files("postfocus") / "data" / "ring"))
    return sorted((p for p in folder.iterdir() if p.suffix == ".jpg"), key=lambda p: natural_key(p.name))


@main.command("demo")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help=f"Where to write the all-in-focus result [default: {DEMO_OUTPUT} in the current folder, "
                   "never over a file].")
@json_option
@click.pass_context
def demo_command(ctx, output):
    """Stack the bundled sample (6 handheld frames of a ring) into an all-in-focus JPEG."""
    frames = sample_frames()
    if output is not None:  # refused before the stacking, not after it
        check_output_path(output)
    err_console.print(f"stacking the bundled sample: {len(frames)} frames of a ring, shot handheld")
    with progress_bars(is_quiet(ctx)) as progress:
        result = stack(frames, progress=progress)
    path = result.save(output or unique_path(DEMO_OUTPUT)).resolve()
    err_console.print(f"all-in-focus result written to {path}", markup=False, soft_wrap=True)
    finish([path], size=size_data(result.image.shape[:2]),
           frames=frames_data(result.info.names, used=result.used, merged=result.merged, reference=result.reference))
