"""``postfocus depth``: a depth map from a focus sweep."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars, root_threads
from postfocus.cli.options import check_distinct, output_option, processing_options
from postfocus.cli.output import (FrameLabels, default_output, finish, json_option, order_said, size_text,
                                  stack_data)
from postfocus.errors import OutputError
from postfocus.pipeline.threads import helper_threads, in_background
from postfocus.products.depth import (
    DepthResult,
    check_output,
    depth_range,
    write_confidence,
    write_depth_npy,
    write_depth_png,
    write_depth_preview,
)
from postfocus.products.depth_cache import stack_depth
from postfocus.products.depth_png import depth_png_bytes

__all__ = ["depth_command"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@main.command("depth")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option("Depth map: 16-bit PNG, 0 = nearest frame, 65535 = farthest (or .npy for float frames).",
               "<input>-depth.png")
@click.option("--confidence", "confidence_out", type=click.Path(path_type=Path), default=None,
              help="Also write the confidence (8-bit grey PNG, white = sure).")
@click.option("--npy", "npy_out", type=click.Path(path_type=Path), default=None,
              help="Also write the depth as float32 frame numbers (.npy).")
@click.option("--preview", "preview_out", type=click.Path(path_type=Path), default=None,
              help="Also write a colourised preview (near = red, far = blue), over the scene's own depth range.")
@processing_options
@json_option
@click.pass_context
def depth_command(ctx, inputs, output, confidence_out, npy_out, preview_out, **params):
    """Depth map of a focus sweep in frame units, with sub-frame precision.

    The PNG holds 0 for the nearest frame and 65535 for the farthest; its text
    chunks say how many frames that spans (frame = value / 65535 * (N - 1)).
    """
    # Check every output before any work.
    output = output or default_output(inputs, "depth", ".png")
    check_distinct({"-o": output, "--confidence": confidence_out, "--npy": npy_out, "--preview": preview_out})
    check_output(output, (".png", ".npy"))
    if confidence_out:
        check_output(confidence_out, (".png",))
    if npy_out:
        check_output(npy_out, (".npy",))
    if preview_out:
        check_output(preview_out, IMAGE_SUFFIXES)
    ps = processed(ctx, inputs, params)
    for path in (output, confidence_out, npy_out, preview_out):
        if path:
            check_output(path, (path.suffix.lower(),), ps.info.paths)
    threads = root_threads(ctx)
    png = output.suffix.lower() != ".npy"
    encoding = []

    def made(made_now: DepthResult) -> None:  # (a map made now: its PNG encoded on a helper while the folder keeps it)
        if png and helper_threads(threads) > 1:
            encoding.append(in_background(lambda: depth_png_bytes(made_now), "postfocus-depth-png"))

    with progress_bars(is_quiet(ctx)) as progress:  # the first consumer of a stack makes its map: seconds
        result = stack_depth(ps, progress=progress, threads=threads, made=made)
    median_confidence = float(np.median(result.confidence))  # (while the PNG may still be encoding)
    if png:
        try:
            data = encoding[0].result() if encoding else None
        except OutputError as exc:
            raise OutputError(f"{output}: {exc}") from None
        written = [write_depth_png(output, result, data=data)]
    else:
        written = [write_depth_npy(output, result)]
    for path, write in ((npy_out, write_depth_npy), (confidence_out, write_confidence),
                        (preview_out, write_depth_preview)):
        if path:
            written.append(write(path, result))
    label = FrameLabels(ps.names, ps.info.fps)
    last = result.frames - 1
    near, far = (label(0), label(last)) if ps.near_to_far else (label(last), label(0))
    err_console.print(f"depth {size_text(result.size)}: 0 is the nearest frame, {near}; {last} the farthest, {far}; "
                      f"median confidence {median_confidence:.2f}",
                      soft_wrap=True, markup=False)
    if preview_out:
        lo, hi = depth_range(result.depth, result.frames)
        err_console.print(f"preview colours: depth {lo:.2f} (red, near) to {hi:.2f} (blue, far) of 0-{last}, "
                          "the scene's own range", soft_wrap=True, markup=False)
    order = order_said(ctx, ps)
    finish(written, **stack_data(ps), **order,
           median_confidence=round(median_confidence, 3))
