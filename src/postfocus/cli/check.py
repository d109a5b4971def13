"""``postfocus check``: does the result explain the frames? The forward-model residual as a heat map."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.check import DEPTHS, forward_check
from postfocus.check.view import heat_overlay
from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars, root_threads
from postfocus.cli.options import check_distinct, check_side_output, inputs_argument, method_option, output_option, \
    processing_options, quality_option, range_option
from postfocus.cli.output import FrameLabels, default_output, finish, json_option, stack_data
from postfocus.errors import OptionError, frame_runs
from postfocus.io.write import atomic_write_json, check_output_path, write_image
from postfocus.options import parse_range

__all__ = ["check_command", "check_summary"]


def check_summary(result, label: FrameLabels) -> str:  # noqa: ANN001
    """One paragraph for people: how much is flagged, where, and the defocus the frames were rendered with."""
    s, m = result.summary, result.model
    text = (f"{100 * s['flagged']:.2f} % of the picture contradicts the frames (residual above {s['level']:g}x "
            f"the typical error; 99th percentile {s['p99']:.1f}x); {100 * s.get('unverifiable', 0.0):.1f} % "
            f"unverifiable (no frame could contradict its depth, blue)")
    if s["regions"]:
        worst = "; ".join(f"x {r['x']}-{r['x'] + r['width']}, y {r['y']}-{r['y'] + r['height']} (peak {r['peak']:.1f}x)"
                          for r in s["regions"][:3])
        text += f"\nworst: {worst}"
    frames = sorted(result.per_frame, key=result.per_frame.get, reverse=True)[:1]
    if frames:
        text += f"\nleast explained frame: {label(frames[0])} ({result.per_frame[frames[0]]:.1f} levels off on average)"
    text += (f"\ndefocus from the stack: {m.near_slope:.2f} px per frame nearer, {m.far_slope:.2f} px farther, "
             f"{m.floor:.2f} px at the focal plane")
    return text


@main.command("check")
@inputs_argument
@output_option("Heat map of the residual over the image (.png or .jpg).", "<input>-check.png")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Also write the numbers as JSON (flagged share, worst regions, per-frame scores, defocus model).")
@method_option
@click.option("--depth", "depth", type=click.Choice(DEPTHS), default="clean", show_default=True,
              help="Depth to judge: the depth map the products use, or the same without outlier rejection.")
@range_option("Check")
@quality_option()
@processing_options
@json_option
@click.pass_context
def check_command(ctx, inputs, output, report, method, depth, frame_range, quality, **params):
    """Re-render every aligned frame from the all-in-focus image and the depth map, and show where they disagree.

    The blur of every frame is calibrated from the stack itself; near layers
    are laid over far ones. The heat map is the residual in units of the
    typical error of pixels of the same contrast: halos, flecks and wrong
    depths glow; a consistent result stays grey.
    """
    output = output or default_output(inputs, "check", ".png")
    check_distinct({"-o": output, "--report": report})
    check_output_path(output, None, (".png", ".jpg", ".jpeg"))
    if report:
        check_side_output("--report", report, (), (".json",))
    ps = processed(ctx, inputs, params)
    check_output_path(output, ps.info.paths, (".png", ".jpg", ".jpeg"))
    if report:
        check_side_output("--report", report, ps.info.paths, (".json",))
    frames = None
    if frame_range is not None:
        lo, hi = parse_range(frame_range, len(ps.names))
        frames = [i for i in ps.used if lo <= i <= hi]
        if len(frames) < 2:
            raise OptionError("frames", (lo, hi), f"the check needs at least 2 frames kept there (kept: {frame_runs(ps.used)})")
    with progress_bars(is_quiet(ctx)) as progress:
        image = ps.all_in_focus(method, progress, threads=root_threads(ctx))
        result = forward_check(ps, frames=frames, method=method, image=image, depth=depth, progress=progress,
                               threads=root_threads(ctx))
    written = [write_image(output, heat_overlay(image, result.residual, unverifiable=result.unverifiable),
                           quality=quality)]
    label = FrameLabels(ps.names, ps.info.fps)
    err_console.print(check_summary(result, label), markup=False, soft_wrap=True)
    data = {"method": method, "depth": depth, **result.to_dict()}
    if report:
        written.append(atomic_write_json(report, data, indent=2))
    finish(written, **stack_data(ps), check={k: v for k, v in data.items() if k not in ("per_frame",
                                                                                     "flagged_per_frame")})
