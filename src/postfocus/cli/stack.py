"""``postfocus stack``: merge a focus stack into one all-in-focus image."""

from __future__ import annotations

import json
from pathlib import Path

import click
import cv2
import numpy as np

from postfocus.cli.common import err_console, is_quiet, main, progress_bars
from postfocus.errors import OutputError, PostfocusError
from postfocus.focusmap import PREFER
from postfocus.io.write import atomic_write, check_output_path, describe_stack, write_image
from postfocus.motion import MODES as MOTION_MODES
from postfocus.pipeline import (
    ALIGN_MODELS,
    DEFAULT_METHOD,
    METHODS,
    collect_warnings,
    open_quietly,
    parse_range,
    plan_bands,
    save_image,
    stack,
)
from postfocus.refocus import parse_point, tap
from postfocus.state import merge, process

cache_option = click.option(
    "--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
    help="Folder for processed stacks [default: $POSTFOCUS_CACHE or ~/.cache/postfocus].",
)


@main.command("stack")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Result file: .jpg, .png or .tif (16-bit TIFF keeps 16-bit inputs' precision).")
@click.option("--method", type=click.Choice(METHODS), default=DEFAULT_METHOD, show_default=True,
              help="depthmap: blend by a regularised focus map; pyramid: max-contrast pyramid selection.")
@click.option("--reference", type=int, default=None, help="Frame whose geometry the result takes [default: middle].")
@click.option("--align", "align", type=click.Choice(ALIGN_MODELS), default="similarity", show_default=True,
              help="Motion model for handheld frames; 'none' for a registered tripod stack.")
@click.option("--crop/--no-crop", default=True, show_default=True, help="Crop to the area every frame covers.")
@click.option("--range", "frame_range", default=None, metavar="A:B", help="Merge only frames A to B (inclusive).")
@click.option("--near-at", default=None, metavar="X,Y", help="Choose the range by tapping the nearest subject...")
@click.option("--far-at", default=None, metavar="X,Y", help="...and the farthest subject that must be sharp.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Also write the per-frame alignment report as JSON.")
@click.option("--motion", type=click.Choice(MOTION_MODES), default="auto", show_default=True,
              help="auto: subjects that moved during the sweep (flames, water, leaves, people) show one instant, "
                   "not a blend of several; off: the scene stood still.")
@click.option("--motion-mask", "motion_mask", type=click.Path(path_type=Path), default=None, metavar="OUT.png",
              help="Also write where the scene moved (PNG, output geometry, white = moved).")
@click.option("--prefer", type=click.Choice(PREFER), default="none", show_default=True,
              help="Where a blurred near object lets far detail shine through (two focus peaks, e.g. microscopy): "
                   "front takes the near object, back the far detail; none the stronger.")
@click.option("--refine-flow", is_flag=True,
              help="Also register frames densely (optical flow) for the local parallax of handheld close-ups.")
@click.option("--memory", "memory_mb", type=click.FloatRange(min=100), default=None, metavar="MB",
              help="Aim to stay under this much memory: the depthmap merge then works in bands of rows, "
                   "decoding the frames once per band (slower). [default: no limit]")
@cache_option
@click.option("--no-cache", is_flag=True, help="Do not keep the processed stack (no later taps reuse it).")
@click.pass_context
def stack_command(ctx, inputs, output, method, reference, align, crop, frame_range, near_at, far_at, quality,
                  report, motion, motion_mask, refine_flow, prefer, memory_mb, cache_dir, no_cache):
    """Merge INPUTS (a folder, image files in focus order, or a video) into one all-in-focus image.

    The first run on an input keeps its aligned frames and focus maps (see
    --cache), so later taps, range merges and other methods need no re-alignment.
    """
    open_warnings: list[str] = []
    source = open_quietly(list(inputs), collect_warnings(open_warnings))
    check_output_path(output, source.info.paths)
    # Refuse bad options now, not after minutes of alignment.
    if reference is not None and not 0 <= reference < len(source):
        raise PostfocusError(f"--reference {reference}: must be a frame number from 0 to {len(source) - 1}")
    parse_range(frame_range, len(source))
    if report:
        check_report_path(report, output, source.info.paths)
    if motion_mask:
        check_output_path(motion_mask, source.info.paths)
        if motion == "off":
            raise click.UsageError("--motion-mask needs --motion auto")
    if (near_at is None) != (far_at is None):
        raise click.UsageError("--near-at and --far-at go together")
    if memory_mb is not None:  # refused here if impossible; said once if it changes how the merge runs
        bands = plan_bands(source.info.size, len(source), method, memory_mb, lambda message: None)
        if bands > 1:
            err_console.print(f"merging in {bands} bands of rows to stay under --memory {memory_mb:g} MB "
                              "(each band decodes the frames again)")
    if no_cache or not crop:
        if near_at:
            raise click.UsageError("--near-at/--far-at need the processed stack; drop --no-cache/--no-crop")
        with progress_bars(is_quiet(ctx)) as progress:
            result = stack(source, method=method, reference=reference, align=align, crop=crop,
                           frame_range=frame_range, motion=motion, refine_flow=refine_flow, prefer=prefer,
                           memory_mb=memory_mb, progress=progress)
        path = result.save(output, quality=quality)
        moved, share, instants = result.motion, result.motion_share, result.motion_frames
        if moved is not None:  # analysis size, reference geometry -> output geometry
            t, l, b, r = result.crop
            moved = cv2.resize(moved, result.info.size[::-1], interpolation=cv2.INTER_LINEAR)[t:b, l:r]
        alignment = [a.as_dict() for a in result.alignment]
        used, total, ref, warnings_ = result.frames_used, len(result.alignment), result.reference, result.warnings
    else:
        with progress_bars(is_quiet(ctx)) as progress:
            ps = process(source, method=method, align=align, reference=reference, cache_dir=cache_dir,
                         motion=motion, refine_flow=refine_flow, prefer=prefer, memory_mb=memory_mb,
                         progress=progress)
            frames = None
            if frame_range:
                lo, hi = parse_range(frame_range, len(ps.names))
                frames = [i for i in ps.used if lo <= i <= hi]
            elif near_at:
                a = tap(ps, *parse_point(near_at, ps.size))
                b = tap(ps, *parse_point(far_at, ps.size))
                lo, hi = sorted((a.frame, b.frame))
                frames = [i for i in ps.used if lo <= i <= hi]
                err_console.print(f"range {lo}:{hi} from the taps ({a.describe()}; {b.describe()})")
            if frames is not None and not frames:
                raise click.UsageError(f"--range {frame_range}: no usable frame in that range")
            image = ps.all_in_focus(method, progress, memory_mb) if frames is None else merge(
                ps, method=method, frames=frames, memory_mb=memory_mb, progress=progress)
        used_frames = frames or ps.used
        path = save_image(output, image, ps.info, quality=quality,
                          description=describe_stack(used_frames, len(ps.names), method, ps.reference))
        alignment, used, total = ps.alignment, frames or ps.used, len(ps.names)
        ref, warnings_ = ps.reference, ps.manifest.get("warnings", [])
        moved, share = ps.motion, ps.motion_share
        instants = ps.analysis().motion_frames(frames)[1] if moved is not None else {}
        if moved is not None:
            moved = cv2.resize(np.asarray(moved, np.float32), ps.size[::-1], interpolation=cv2.INTER_LINEAR)
    err_console.print(f"merged {len(used)} of {total} frames ({method}); reference frame {ref}")
    if motion == "auto":
        shown = ", ".join(map(str, sorted(set(instants.values()))))
        regions = f"{len(instants)} moving region{'s' if len(instants) > 1 else ''}"
        err_console.print(f"moved: {100 * share:.1f}% of the image" + (
            f" ({regions}, each shown from one instant: frame {shown})" if instants else " (no moving subject)"))
    if motion_mask and moved is not None:
        write_image(motion_mask, np.clip(moved, 0, 1), grey=True)
    if report:
        data = {"method": method, "reference": ref, "frames_used": list(used), "frames": alignment,
                "motion_share": share if motion == "auto" else None,
                "motion_frames": {str(k): v for k, v in instants.items()},
                "warnings": open_warnings + [w for w in warnings_ if w not in open_warnings]}
        atomic_write(report, lambda p: p.write_text(json.dumps(data, indent=2)))
    click.echo(str(path))


def check_report_path(report: Path, output: Path, inputs: list[Path]) -> None:
    """Refuse a --report path that cannot be written, before any work is done."""
    parent = report.parent if str(report.parent) else Path(".")
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise OutputError(f"--report {report}: folder {parent} {what}")
    if report.is_dir():
        raise OutputError(f"--report {report}: is a folder, not a file name")
    resolved = report.resolve()
    if resolved == output.resolve():
        raise OutputError(f"--report {report}: is the same file as the output image")
    if any(Path(p).resolve() == resolved for p in inputs):
        raise OutputError(f"--report {report}: is one of the input frames; choose another name")
