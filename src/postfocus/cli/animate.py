"""``postfocus animate``: a focus pull from near to far (or between any two depths) as MP4, GIF or WebP."""

from __future__ import annotations

import click

from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars, root_threads
from postfocus.cli.options import inputs_argument, output_option, processing_options, quality_option
from postfocus.cli.output import default_output, finish, json_option, stack_data
from postfocus.errors import OptionError, frame_runs
from postfocus.io.animation import ANIMATION_FORMATS, stored_frames
from postfocus.io.write import check_output_path
from postfocus.products.animate import PullEnd, animate, check_pull_options
from postfocus.products.refocus import parse_point
from postfocus.store import ProcessedStack

__all__ = ["animate_command", "pull_end"]

# Per format: frames per second and long edge when not given (a GIF is kept small).
DEFAULTS = {".mp4": (24.0, 1080), ".webp": (20.0, 720), ".gif": (15.0, 480)}


def pull_end(param: str, text: str, stack: ProcessedStack) -> PullEnd:
    """``near``, ``far``, ``40%`` (share of the sweep), a frame counted from 1, or a point X,Y (pixels or %)."""
    text = text.strip()
    if text.isdigit():
        frame = int(text) - 1
        if frame not in stack.used:
            raise OptionError(param, int(text), f"no frame {text} among the frames kept "
                              f"({frame_runs(stack.used, first=1)}; counted from 1)")
        return frame
    if "," in text:
        return parse_point(text, stack.size)
    return text


@main.command("animate")
@inputs_argument
@output_option("Animation to write: .mp4 (H.264), .gif or .webp.", "<input>-pull.mp4")
@click.option("--from", "start", default="near", show_default=True, metavar="WHERE",
              help="Where the pull starts: near, far, a frame (counted from 1), a share of the sweep (30%) "
                   "or a point X,Y (pixels or 40%,55%) whose subject is focused.")
@click.option("--to", "end", default="far", show_default=True, metavar="WHERE", help="Where it ends (as --from).")
@click.option("--duration", type=float, default=3.0, show_default=True, help="Seconds from start to end.")
@click.option("--fps", type=float, default=None, help="Frames per second [default: 24 MP4, 20 WebP, 15 GIF].")
@click.option("--f-number", type=float, default=None, metavar="N",
              help="Render with a virtual aperture (as `postfocus aperture`) instead of the recorded frames.")
@click.option("--long-edge", type=click.IntRange(16, None), default=None, metavar="PX",
              help="Long edge of the animation [default: 1080 MP4, 720 WebP, 480 GIF; never above the stack's].")
@click.option("--bounce", is_flag=True, help="Go there and back (a loop without a jump).")
@quality_option(80, "WebP quality and MP4 rate (higher: larger file).")
@processing_options
@json_option
@click.pass_context
def animate_command(ctx, inputs, output, start, end, duration, fps, f_number, long_edge, bounce, quality, **params):
    """A smooth focus pull: the focus glides between two depths, passing between the frames, not jumping.

    By default the recorded frames are mixed (the lens's own blur); with
    --f-number the all-in-focus picture and the depth map are rendered with
    that aperture at every depth on the way.
    """
    output = output or default_output(inputs, "pull", ".mp4")
    suffix = output.suffix.lower()
    check_output_path(output, suffixes=ANIMATION_FORMATS)
    default_fps, default_edge = DEFAULTS[suffix]
    fps = default_fps if fps is None else fps
    long_edge = default_edge if long_edge is None else long_edge
    check_pull_options(duration=duration, fps=fps, f_number=f_number, long_edge=long_edge)
    ps = processed(ctx, inputs, params)
    check_output_path(output, ps.info.paths, ANIMATION_FORMATS)
    with progress_bars(is_quiet(ctx)) as progress:
        path, pull = animate(ps, output, start=pull_end("start", start, ps), end=pull_end("end", end, ps),
                             duration=duration, fps=fps, f_number=f_number, long_edge=long_edge,
                             bounce=bounce, quality=quality, progress=progress, threads=root_threads(ctx))
    h, w = pull.size
    held = stored_frames(path)  # (a WebP or GIF keeps a run of frames alike once: say what the file holds)
    note = f"; the {suffix[1:].upper() if suffix == '.gif' else 'WebP'} holds {held} of them (neighbours alike are " \
        "stored once, shown as long)" if held is not None and held != pull.count else ""
    err_console.print(f"focus pull: {pull.count} frames of {w}x{h} at {pull.fps:g} fps, depth {pull.start:.2f} to "
                      f"{pull.end:.2f} (frames, 0 = nearest){note}", soft_wrap=True, markup=False)
    stored = {} if held is None else {"stored_frames": held}
    finish([path], **stack_data(ps), animation={"frames": pull.count, **stored, "fps": pull.fps, "width": w,
                                                "height": h, "start_depth": round(pull.start, 3),
                                                "end_depth": round(pull.end, 3)})
