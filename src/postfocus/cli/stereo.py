"""``postfocus stereo``: a stereo pair from the depth map (side by side, red-cyan anaglyph, wiggle GIF)."""

from __future__ import annotations

from pathlib import Path

import click
import cv2

from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars, root_threads
from postfocus.cli.options import check_distinct, check_side_output, inputs_argument, output_option, processing_options
from postfocus.cli.options import quality_option
from postfocus.cli.output import default_output, finish, json_option, stack_data
from postfocus.io.animation import write_gif
from postfocus.io.write import check_output_path
from postfocus.products.depth_cache import stack_depth
from postfocus.products.stereo import DEFAULT_STRENGTH, anaglyph, check_strength, side_by_side, stereo_pair, wiggle_frames
from postfocus.result import save_image

__all__ = ["stereo_command"]

WIGGLE_EDGE = 640


@main.command("stereo")
@inputs_argument
@output_option("Image to write: the two views side by side (left view on the left), or the anaglyph.",
               "<input>-stereo.jpg")
@click.option("--anaglyph", "as_anaglyph", is_flag=True, help="Write a red-cyan anaglyph instead (red: left eye).")
@click.option("--cross", is_flag=True, help="Side by side for cross-eyed viewing (right view on the left).")
@click.option("--wiggle", "wiggle_out", type=click.Path(path_type=Path), default=None,
              help="Also write a wiggle stereogram (.gif): the view swinging between the two eyes.")
@click.option("--strength", type=float, default=DEFAULT_STRENGTH, show_default=True,
              help="Disparity across the scene's depth range, as a share of the width (0.02: gentle; 0.05: strong).")
@click.option("--zero-at", default=None, metavar="X,Y",
              help="Point that stays in the screen plane (pixels or 40%,55%) [default: the middle of the depth range].")
@quality_option()
@processing_options
@json_option
@click.pass_context
def stereo_command(ctx, inputs, output, as_anaglyph, cross, wiggle_out, strength, zero_at, quality, **params):
    """Left and right views by depth-image-based rendering of the all-in-focus picture (Fehn 2004).

    Near things stand out in front of the screen, far ones lie behind it; what
    a view sees that the camera did not (beside a near edge) is filled from
    the background.
    """
    from postfocus.products.aperture import focus_at
    from postfocus.products.refocus import parse_point

    output = output or default_output(inputs, "anaglyph" if as_anaglyph else "stereo", ".jpg")
    check_distinct({"-o": output, "--wiggle": wiggle_out})
    check_output_path(output)
    check_strength(strength)
    if wiggle_out:
        check_side_output("--wiggle", wiggle_out, [], (".gif",))
    ps = processed(ctx, inputs, params)
    check_output_path(output, ps.info.paths)
    if wiggle_out:
        check_side_output("--wiggle", wiggle_out, ps.info.paths, (".gif",))
    with progress_bars(is_quiet(ctx)) as progress:
        image = ps.all_in_focus(progress=progress, threads=root_threads(ctx))
        result = stack_depth(ps, image=image, progress=progress, threads=root_threads(ctx))
    zero = None
    if zero_at is not None:
        x, y = parse_point(zero_at, ps.size)
        zero = focus_at(result.depth, x, y, result.confidence)
    pair = stereo_pair(image, result.depth, strength=strength, zero=zero, frames=result.frames)
    picture = anaglyph(pair) if as_anaglyph else side_by_side(pair, cross=cross)
    kind = "red-cyan anaglyph" if as_anaglyph else ("side by side, cross-eyed" if cross else "side by side, parallel")
    written = [save_image(output, picture, ps.info, quality=quality,
                          description=f"postfocus stereo ({kind}), disparity {strength:g} of the width")]
    if wiggle_out:
        h, w = result.depth.shape
        s = min(1.0, WIGGLE_EDGE / max(h, w))
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_depth = cv2.resize(result.depth, size, interpolation=cv2.INTER_AREA)
        views = wiggle_frames(small, small_depth, strength=strength, zero=pair.zero, frames=result.frames)
        written.append(write_gif(wiggle_out, views, duration_ms=90))
    span = float(pair.disparity.max() - pair.disparity.min())
    err_console.print(f"stereo: {kind}; disparity from {pair.disparity.max():+.1f} px (nearest) to "
                      f"{pair.disparity.min():+.1f} px (farthest), {100 * pair.holes:.1f} % of the view filled "
                      "from the background", soft_wrap=True, markup=False)
    finish(written, **stack_data(ps), stereo={"kind": kind, "strength": strength, "zero_depth": round(pair.zero, 3),
                                              "disparity_px": round(span, 2), "filled": round(pair.holes, 4)})
