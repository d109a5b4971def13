"""``postfocus align``: the aligned frames as 16-bit TIFFs, for other tools (like ``align_image_stack -a``)."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars
from postfocus.cli.options import inputs_argument, processing_options
from postfocus.cli.output import (FrameLabels, bits_option, compression_option, default_output, finish, json_option,
                                  size_text, stack_data)
from postfocus.products.aligned import align_frames, check_aligned_target

__all__ = ["align_command"]


@main.command("align")
@inputs_argument
@click.option("-o", "--output", "out_dir", default=None, type=click.Path(path_type=Path),
              help="Folder for the aligned frames (created if its parent exists) "
                   "[default: <input>-aligned next to the input, never over a file].")
@click.option("--format", "fmt", type=click.Choice(["tif", "png"]), default="tif", show_default=True,
              help="File format of the frames.")
@bits_option(16, "Bits per channel.")
@compression_option("TIFF: none, deflate or lzw [default: deflate]; PNG: zlib level 0-9 [default: 6].")
@click.option("--overwrite", is_flag=True, help="Replace files of the same names already in the folder.")
@processing_options
@json_option
@click.pass_context
def align_command(ctx, inputs, out_dir, fmt, bits, compression, overwrite, **params):
    """Write the aligned frames of INPUTS, named after the input frames, in the geometry of every result.

    The frames are cropped to the area every frame covers and matched in
    exposure, as they go into the merge; frames that could not be aligned are
    left out (and named). The work is the processed stack's: after 'stack'
    nothing is aligned again.
    """
    out_dir = out_dir or default_output(inputs, "aligned", "")
    check_aligned_target(out_dir, inputs, suffix=f".{fmt}", bit_depth=bits, compression=compression)
    ps = processed(ctx, inputs, params)
    with progress_bars(is_quiet(ctx)) as progress:
        paths = align_frames(ps, out_dir, suffix=f".{fmt}", bit_depth=bits, compression=compression,
                             overwrite=overwrite, progress=progress)
    label = FrameLabels(ps.names, ps.info.fps)
    left_out = [i for i in range(len(ps.names)) if i not in ps.used]
    err_console.print(f"wrote {len(paths)} aligned frames ({size_text(ps.size)}, {bits}-bit) to {out_dir}"
                      + (f"; left out (not aligned): {label.many(left_out)}" if left_out else ""),
                      markup=False, soft_wrap=True)
    finish([out_dir], **stack_data(ps),
           files=[str(p) for p in paths])
