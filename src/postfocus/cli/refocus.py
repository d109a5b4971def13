"""``postfocus refocus``: the frame that is sharpest at a tapped point."""

from __future__ import annotations

import shutil

import click

from postfocus.cli.common import err_console, main, processed
from postfocus.cli.options import inputs_argument, output_option, processing_options, quality_option
from postfocus.io.write import atomic_write, check_output_path
from postfocus.products.refocus import parse_point, tap
from postfocus.result import save_image

__all__ = ["refocus_command"]


@main.command("refocus")
@inputs_argument
@click.option("--at", "at", required=True, metavar="X,Y", help="Point to bring into focus: pixels or 40%,55%.")
@output_option()
@quality_option()
@processing_options
@click.pass_context
def refocus_command(ctx, inputs, at, output, quality, **params):
    """Write the frame that is sharpest at a point (tap to refocus).

    X,Y are pixels of the output geometry shared by all results of this input.
    """
    ps = processed(ctx, inputs, params)
    check_output_path(output, ps.info.paths)
    answer = tap(ps, *parse_point(at, ps.size))
    err_console.print(answer.describe())
    cached = ps.frame_path(answer.frame)
    if cached.suffix.lower() == output.suffix.lower() and output.suffix.lower() in (".jpg", ".jpeg"):
        atomic_write(output, lambda p: shutil.copyfile(cached, p))
    else:
        save_image(output, ps.read_frame(answer.frame), ps.info, quality=quality)
    click.echo(str(output))
