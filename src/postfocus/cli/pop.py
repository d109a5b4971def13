"""``postfocus pop``: colour pop, the tapped subject keeps its colour."""

from __future__ import annotations

import math
from pathlib import Path

import click

from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars, root_threads
from postfocus.cli.options import check_distinct, inputs_argument, output_option, processing_options, quality_option
from postfocus.cli.output import (FrameLabels, bits_option, compression_option, default_output, default_suffix,
                                  finish, json_option, stack_data, tap_data)
from postfocus.errors import OptionError
from postfocus.io.encoding import check_encoding
from postfocus.io.write import check_output_path, write_image
from postfocus.products.pop import pop
from postfocus.products.refocus import parse_point
from postfocus.result import save_image

__all__ = ["LARGE_SHARE", "kept_colour_text", "pop_command"]

LARGE_SHARE = 0.6
"""Above this share of the picture in colour, ``pop`` suggests a smaller ``--tolerance``."""


def kept_colour_text(share: float, tolerance: float) -> str:
    """What ``pop`` says of the share that kept its colour, with a smaller tolerance to try when that is most of it.

    Examples
    --------
    >>> kept_colour_text(0.12, 1.0)
    'kept colour on 12 % of the picture'
    >>> kept_colour_text(0.77, 1.0).split("; ")[0]
    'kept colour on 77 % of the picture: most of it lies within 1 frame of that depth'
    >>> kept_colour_text(0.77, 1.0).split("; ")[1]
    'a smaller --tolerance (e.g. 0.5) keeps the colour to the subject'
    """
    text = f"kept colour on {100 * share:.0f} % of the picture"
    if share > LARGE_SHARE and tolerance > 0:
        text += (f": most of it lies within {tolerance:g} frame{'' if tolerance == 1 else 's'} of that depth; "
                 f"a smaller --tolerance (e.g. {tolerance / 2:g}) keeps the colour to the subject")
    return text


@main.command("pop")
@inputs_argument
@click.option("--at", "at", required=True, metavar="X,Y", help="Subject that keeps its colour: pixels or 40%,55%.")
@output_option("Image to write.", "<input>-pop-<x>-<y>.jpg")
@click.option("--tolerance", type=click.FloatRange(0, None), default=1.0, show_default=True,
              help="Depth tolerance in frames on either side of the tapped subject.")
@click.option("--mask", "mask_out", type=click.Path(path_type=Path), default=None, help="Also write the mask (PNG).")
@quality_option()
@bits_option()
@compression_option()
@processing_options
@json_option
@click.pass_context
def pop_command(ctx, inputs, at, output, tolerance, mask_out, quality, bits, compression, **params):
    """Colour pop: the tapped subject keeps its colour, everything else turns grey.

    Says how much of the picture kept its colour; when that is most of it, a
    smaller --tolerance keeps the colour to the subject.
    """
    if not math.isfinite(tolerance):  # FloatRange lets nan and inf through
        raise OptionError("tolerance", tolerance, "must be a number of frames >= 0")
    check_distinct({"-o": output, "--mask": mask_out})
    check_encoding(output or f"pop{default_suffix(bits, compression)}", bits, compression)
    if output is not None:
        check_output_path(output)
    if mask_out:
        check_output_path(mask_out)
    ps = processed(ctx, inputs, params)
    for path in (output, mask_out):
        if path is not None:
            check_output_path(path, ps.info.paths)
    x, y = parse_point(at, ps.size)
    with progress_bars(is_quiet(ctx)) as progress:
        result = pop(ps, x, y, tolerance=tolerance, progress=progress, threads=root_threads(ctx))
    err_console.print(result.tap.describe(FrameLabels(ps.names, ps.info.fps)), markup=False, soft_wrap=True)
    err_console.print(kept_colour_text(result.share, tolerance), markup=False, soft_wrap=True)
    if output is None:
        output = default_output(inputs, f"pop-{x:.0f}-{y:.0f}", default_suffix(bits, compression))
        check_distinct({"-o": output, "--mask": mask_out})
    written = [save_image(output, result.image, ps.info, quality=quality, bit_depth=bits, compression=compression)]
    if mask_out:
        written.append(write_image(mask_out, result.mask, grey=True))
    finish(written, **stack_data(ps),
           tap=tap_data(result.tap), kept_colour=round(result.share, 4))
