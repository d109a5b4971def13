"""``postfocus aperture``: a new focus and aperture after the shot."""

from __future__ import annotations

import math
from pathlib import Path

import click

from postfocus.products.aperture import PRESETS, aperture
from postfocus.products.depth import depth_range
from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars, root_threads
from postfocus.cli.options import output_option, processing_options
from postfocus.cli.output import (FrameLabels, bits_option, compression_option, default_output, default_suffix,
                                  finish, json_option, order_said, stack_data)
from postfocus.errors import OptionError, PostfocusError
from postfocus.io.encoding import check_encoding
from postfocus.io.write import check_output_path
from postfocus.result import save_image
from postfocus.products.refocus import parse_point

__all__ = ["aperture_command", "faint_blur_text"]

VISIBLE_BLUR_PX = 2.0
"""Below this largest blur radius, ``aperture`` says the blur is too little to see and which ``--blur`` shows."""


def faint_blur_text(largest: float, blur_px: float, long_edge: int, scene: tuple[float, float], frames: int) -> str:
    """What ``aperture`` says of a blur too small to see: where the scene lies in the sweep, and a ``--blur`` that shows.

    The ``--blur`` offered blurs the scene's farthest part from the focus by 1 % of the long edge.

    Examples
    --------
    >>> faint_blur_text(1.41, 0.94, 1885, (1.79, 4.64), 41)
    "largest blur 1.4 px, too little to see: the scene spans depths 1.79-4.64 of the sweep's 0-40; --blur 13 blurs \
its farthest part by 20 px (1 % of the long edge)"
    """
    reach = max(largest / blur_px, 1e-3)  # frames from the focus to the scene's farthest part
    offered = float(f"{0.01 * long_edge / reach:.2g}")
    return (f"largest blur {largest:.1f} px, too little to see: the scene spans depths {scene[0]:.2f}-{scene[1]:.2f} "
            f"of the sweep's 0-{frames - 1}; --blur {offered:g} blurs its farthest part by {offered * reach:.0f} px "
            f"(1 % of the long edge)")


@main.command("aperture")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--focus-at", "focus_at", metavar="X,Y", default=None,
              help="Point to focus on: pixels or 40%,55% (any depth, also between frames).")
@click.option("--focus-depth", type=float, default=None, metavar="FRAMES",
              help="Depth to focus at, in frames (0 = nearest frame; fractions allowed).")
@click.option("--preset", type=click.Choice(PRESETS), default=None,
              help="near: focus on the nearest subject; far: on the background; all: everything sharp.")
@click.option("--f-number", type=float, default=None, metavar="N",
              help="Virtual aperture (1.4 = 4% of the long edge of blur across the scene's depths; blur ~ 1/N).")
@click.option("--blur", "blur_px", type=float, default=None, metavar="PX",
              help="Blur radius in pixels per frame of depth distance (instead of --f-number).")
@click.option("--highlights", type=click.FloatRange(0, None), default=0.0, show_default=True,
              help="Boost near-white highlights before blurring so they bloom into bright discs.")
@output_option("Image to write.", "<input>-aperture-f<N>.jpg")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality.")
@bits_option()
@compression_option()
@processing_options
@json_option
@click.pass_context
def aperture_command(ctx, inputs, focus_at, focus_depth, preset, f_number, blur_px, highlights, output, quality,
                     bits, compression, **params):
    """Render a shallow depth of field focused anywhere, from the depth the sweep recorded.

    Choose the focus with --focus-at, --focus-depth or --preset, and the blur
    with --f-number or --blur (not needed for --preset all).
    """
    if sum(v is not None for v in (focus_at, focus_depth, preset)) != 1:
        raise PostfocusError("choose the focus with exactly one of --focus-at X,Y, --focus-depth or --preset")
    if preset != "all" and f_number is not None and blur_px is not None:
        raise PostfocusError("give exactly one of --f-number N or --blur PX, not both")
    if preset != "all" and f_number is None and blur_px is None:
        raise PostfocusError("how much blur? give exactly one of --f-number N (e.g. --f-number 2.8; a smaller "
                             "number blurs more) or --blur PX (pixels per frame of depth)")
    if f_number is not None and not (math.isfinite(f_number) and f_number > 0):
        raise PostfocusError(f"--f-number {f_number:g}: must be above 0 (e.g. 1.4, 2.8, 8)")
    for name, value in (("highlights", highlights), ("focus_depth", focus_depth)):  # FloatRange lets nan, inf in
        if value is not None and not math.isfinite(value):
            raise OptionError(name, value, "must be a finite number")
    if blur_px is not None and not (math.isfinite(blur_px) and blur_px >= 0):
        raise PostfocusError(f"--blur {blur_px:g}: must be 0 or more pixels per frame")
    if output is None:
        strength = "all" if preset == "all" else f"f{f_number:g}" if f_number is not None else f"blur{blur_px:g}"
        output = default_output(inputs, f"aperture-{strength}", default_suffix(bits, compression))
    check_output_path(output)
    check_encoding(output, bits, compression)
    ps = processed(ctx, inputs, params)
    check_output_path(output, ps.info.paths)
    point = parse_point(focus_at, ps.size) if focus_at is not None else None
    with progress_bars(is_quiet(ctx)) as progress:
        result = aperture(ps, focus_at_point=point, focus_depth=focus_depth, preset=preset, f_number=f_number,
                          blur_px=blur_px, highlights=highlights, progress=progress, threads=root_threads(ctx))
    if result.focus is None:
        err_console.print("everything in focus (preset all)", soft_wrap=True, markup=False)
    else:
        last = len(ps.names) - 1
        depth = min(max(round(result.focus), 0), last)  # depth 0 is the nearest frame
        near = FrameLabels(ps.names, ps.info.fps)(depth if ps.near_to_far else last - depth)
        err_console.print(f"focused at depth {result.focus:.2f} (nearest to {near}); "
                          f"blur {result.blur_px:.2f} px per frame of depth", soft_wrap=True, markup=False)
        if 0 < result.blur_px and result.largest_blur_px < VISIBLE_BLUR_PX:  # (--blur 0 asked for none)
            scene = depth_range(result.depth.depth, result.depth.frames)
            err_console.print(faint_blur_text(result.largest_blur_px, result.blur_px, max(ps.size), scene,
                                              result.depth.frames), soft_wrap=True, markup=False)
    note = ("all-in-focus" if result.focus is None else
            f"synthetic aperture: focus at depth {result.focus:.2f} of frames 0-{len(ps.names) - 1}, "
            f"blur {result.blur_px:.3g} px per frame of depth")
    path = save_image(output, result.image, ps.info, quality=quality, bit_depth=bits, compression=compression,
                      description=f"postfocus {note}")
    order = {} if result.focus is None else order_said(ctx, ps)  # (preset all: no depth)
    finish([path], **stack_data(ps), **order,
           focus_depth=None if result.focus is None else round(result.focus, 3), blur_px=round(result.blur_px, 3),
           largest_blur_px=round(result.largest_blur_px, 3))
