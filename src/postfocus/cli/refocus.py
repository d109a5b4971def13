"""``postfocus refocus``: the frame that is sharpest at a tapped point."""

from __future__ import annotations

import click

from postfocus.cli.common import err_console, main, processed, root_threads
from postfocus.cli.options import inputs_argument, output_option, processing_options, quality_option
from postfocus.cli.output import (FrameLabels, bits_option, compression_option, default_output, default_suffix,
                                  finish, json_option, stack_data, tap_data)
from postfocus.io.encoding import check_encoding
from postfocus.io.write import check_output_path
from postfocus.products.refocus import parse_point, tap

__all__ = ["refocus_command"]


@main.command("refocus")
@inputs_argument
@click.option("--at", "at", required=True, metavar="X,Y", help="Point to bring into focus: pixels or 40%,55%.")
@output_option("Image to write.", "<input>-refocus-<x>-<y>.jpg")
@quality_option(help_text="JPEG quality (a JPEG of a JPEG stack is its cached frame as is, with its EXIF).")
@bits_option()
@compression_option()
@processing_options
@json_option
@click.pass_context
def refocus_command(ctx, inputs, at, output, quality, bits, compression, **params):
    """Write the frame that is sharpest at a point (tap to refocus).

    X,Y are pixels of the output geometry shared by all results of this input.
    The file carries that frame's EXIF; its description says which frame it is.
    """
    check_encoding(output or f"refocus{default_suffix(bits, compression)}", bits, compression)
    if output is not None:
        check_output_path(output)
    ps = processed(ctx, inputs, params)
    answer = tap(ps, *parse_point(at, ps.size), threads=root_threads(ctx))
    label = FrameLabels(ps.names, ps.info.fps)
    err_console.print(answer.describe(label), markup=False, soft_wrap=True)
    if output is None:
        output = default_output(inputs, f"refocus-{answer.x:.0f}-{answer.y:.0f}", default_suffix(bits, compression))
    name = ps.names[answer.frame]
    description = (f"postfocus: {name}, the frame sharpest at {answer.x:.0f},{answer.y:.0f} "
                   f"(index {answer.frame} of {len(ps.names)} frames)")
    path = ps.save_frame(answer.frame, output, quality=quality, bit_depth=bits, compression=compression,
                         description=description)
    finish([path], **stack_data(ps),
           tap=tap_data(answer))

