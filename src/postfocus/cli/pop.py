"""``postfocus pop``: colour pop, the tapped subject keeps its colour."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.cli.common import err_console, main, processed
from postfocus.cli.options import check_distinct, inputs_argument, output_option, processing_options, quality_option
from postfocus.colour import to_grey
from postfocus.io.write import check_output_path, write_image
from postfocus.options import DEFAULT_METHOD
from postfocus.products.pop import colour_pop, pop_mask
from postfocus.products.refocus import parse_point, tap
from postfocus.result import save_image

__all__ = ["pop_command"]


@main.command("pop")
@inputs_argument
@click.option("--at", "at", required=True, metavar="X,Y", help="Subject that keeps its colour: pixels or 40%,55%.")
@output_option()
@click.option("--tolerance", type=click.FloatRange(0, None), default=1.0, show_default=True,
              help="Depth tolerance in frames on either side of the tapped subject.")
@click.option("--mask", "mask_out", type=click.Path(path_type=Path), default=None, help="Also write the mask (PNG).")
@quality_option()
@processing_options
@click.pass_context
def pop_command(ctx, inputs, at, output, tolerance, mask_out, quality, **params):
    """Colour pop: the tapped subject keeps its colour, everything else turns grey."""
    check_distinct({"-o": output, "--mask": mask_out})
    check_output_path(output)
    if mask_out:
        check_output_path(mask_out)
    ps = processed(ctx, inputs, params)
    check_output_path(output, ps.info.paths)
    if mask_out:
        check_output_path(mask_out, ps.info.paths)
    answer = tap(ps, *parse_point(at, ps.size))
    err_console.print(answer.describe())
    image = ps.all_in_focus(DEFAULT_METHOD)
    mask = pop_mask(ps.focus_index, answer.position, to_grey(image), tolerance=tolerance)
    save_image(output, colour_pop(image, mask), ps.info, quality=quality)
    if mask_out:
        write_image(mask_out, mask, grey=True)
    click.echo(str(output))
