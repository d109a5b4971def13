"""``postfocus stack``: merge a focus stack into one all-in-focus image."""

from __future__ import annotations

import warnings
from pathlib import Path

import click
import numpy as np

from postfocus.cli.common import err_console, is_quiet, main, progress_bars, root_threads
from postfocus.cli.heap import small_frame_heap
from postfocus.cli.options import check_distinct, check_side_output, inputs_argument, method_option, output_option, processing_options, quality_option, range_option, \
    stack_options
from postfocus.cli.output import (FrameLabels, bits_option, compression_option, default_output, default_suffix, finish,
                                  frames_data, json_option, order_text, plural, size_data, size_text)
from postfocus.errors import PostfocusWarning
from postfocus.io.encoding import check_encoding
from postfocus.io.held import HeldWrites
from postfocus.io.metadata import describe_stack
from postfocus.io.write import atomic_write_json, check_output_path, write_image
from postfocus.options import parse_range
from postfocus.pipeline.merge import merge_frames, plan_bands
from postfocus.pipeline.run import collect_warnings, open_quietly, process, stack
from postfocus.result import save_image
from postfocus.store import CacheError

__all__ = ["stack_command"]


@main.command("stack")
@inputs_argument
@output_option("Result file: .jpg, .png or .tif (16-bit TIFF keeps 16-bit inputs' precision).",
               "<input>-stacked.jpg")
@method_option
@processing_options
@click.option("--crop/--no-crop", default=True, show_default=True, help="Crop to the area every frame covers.")
@range_option("Merge")
@click.option("--near-at", default=None, metavar="X,Y", help="Choose the range by tapping the nearest subject...")
@click.option("--far-at", default=None, metavar="X,Y", help="...and the farthest subject that must be sharp.")
@quality_option()
@bits_option()
@compression_option()
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Also write the per-frame alignment report as JSON.")
@click.option("--check", "check", is_flag=True,
              help="Add the forward-model check to --report: where the result contradicts the frames "
                   "(see 'postfocus check'; a few seconds more).")
@click.option("--motion-mask", "motion_mask", type=click.Path(path_type=Path), default=None, metavar="OUT.png",
              help="Also write where the scene moved (PNG, output geometry, white = moved).")
@click.option("--memory", "memory_mb", type=click.FloatRange(min=100), default=None, metavar="MB",
              help="Aim to stay under this much memory: the depthmap merge then works in bands of rows, "
                   "decoding the frames once per band (slower). [default: no limit]")
@click.option("--no-cache", is_flag=True, help="Do not keep the processed stack (no later taps reuse it).")
@json_option
@click.pass_context
def stack_command(ctx, inputs, output, method, crop, frame_range, near_at, far_at, quality, bits, compression, report,
                  check, motion_mask, memory_mb, cache_dir, no_cache, **processing):
    """Merge INPUTS (a folder, image files in focus order, or a video) into one all-in-focus image.

    The first run on an input keeps its aligned frames and focus maps (see
    --cache), so later taps, range merges and other methods need no re-alignment.
    """
    open_warnings: list[str] = []
    source = open_quietly(list(inputs), collect_warnings(open_warnings), threads=root_threads(ctx))
    small_frame_heap(source.info.size)  # a process setting: fewer page faults between small frames
    # Refuse bad options and outputs now, not after minutes of alignment.
    output = output or default_output(inputs, "stacked", default_suffix(bits, compression))
    check_distinct({"-o": output, "--report": report, "--motion-mask": motion_mask})
    check_output_path(output, source.info.paths)
    check_encoding(output, bits, compression)
    options = stack_options(processing, method=method, crop=crop, frame_range=parse_range(frame_range, len(source)),
                            memory_mb=memory_mb)
    options.check_frames(len(source))
    if report:
        check_side_output("--report", report, source.info.paths)
    if motion_mask:
        check_side_output("--motion-mask", motion_mask, source.info.paths, (".png", ".tif", ".tiff"))
        if options.motion == "off":
            raise click.UsageError("--motion-mask needs --motion auto")
    if (near_at is None) != (far_at is None):
        raise click.UsageError("--near-at and --far-at go together")
    if check and (not report or no_cache or not crop):
        raise click.UsageError("--check goes with --report and needs the processed stack (no --no-cache/--no-crop)")
    if near_at and (no_cache or not crop):
        raise click.UsageError("--near-at/--far-at need the processed stack; drop --no-cache/--no-crop")
    if memory_mb is not None:  # refused here if impossible; said once if it changes how the merge runs
        bands = plan_bands(source.info.size, len(source), method, memory_mb, lambda message: None)
        if bands > 1:
            err_console.print(f"merging in {bands} bands of rows to stay under --memory {memory_mb:g} MB "
                              "(each band decodes the frames again)")
    whole = not (options.frame_range or near_at)
    early: dict = {}  # the output, written while process() writes the folder's image (a whole stack only)
    held = HeldWrites()  # (renamed into place once the folder is kept: a run that fails or is interrupted then
    # leaves the output as it was, as its message says; review16)

    def save_early(image, used, reference):
        with held:
            early["path"] = save_image(output, image, source.info, quality=quality, bit_depth=bits,
                                       compression=compression, description=describe_stack(
                                           merge_frames(used, None), len(source), method, reference))
        early["image"] = image

    with progress_bars(is_quiet(ctx)) as progress:
        ps = None
        if not (no_cache or not crop):
            try:
                ps = process(source, options, cache_dir=cache_dir, progress=progress,
                             on_image=save_early if whole else None)
                held.commit()
            except CacheError as exc:
                early.clear()  # (written again from the merge without the cache)
                if near_at:
                    raise
                warnings.warn(f"{exc}; merging without keeping the processed stack", PostfocusWarning, stacklevel=1)
            finally:
                held.discard()  # (nothing once committed)
        if ps is None:
            result = stack(source, options, progress=progress)
            image, maps, merged, info = result.image, result.maps, result.merged, result.info
            alignment, total, ref, run_warnings = result.alignment, len(result.alignment), result.reference, \
                result.warnings
        else:
            frames_range = options.frame_range
            if near_at:
                from postfocus.products.refocus import parse_point, tap  # the products package only when tapped

                a = tap(ps, *parse_point(near_at, ps.size))
                b = tap(ps, *parse_point(far_at, ps.size))
                frames_range = tuple(sorted((a.frame, b.frame)))
                label = FrameLabels(ps.names, ps.info.fps)
                err_console.print(f"--range {frames_range[0]}:{frames_range[1]} from the taps ({a.describe(label)}; "
                                  f"{b.describe(label)})", markup=False, soft_wrap=True)
            merged = merge_frames(ps.used, frames_range)  # refuses a range with no usable frame, naming it
            threads = root_threads(ctx)
            image = early["image"] if early else ps.all_in_focus(method, progress, memory_mb, threads=threads) \
                if whole else ps.merge(method=method, frames=merged, memory_mb=memory_mb, progress=progress,
                                       threads=threads)
            maps, info, alignment, total, ref = ps.maps, ps.info, ps.alignment, len(ps.names), ps.reference
            run_warnings = ps.manifest.get("warnings", [])
    if ps is not None:
        near_to_far, evidence = ps.near_to_far, ps.manifest.get("direction")
    else:
        evidence = result.direction.as_dict() if result.direction is not None else None
        near_to_far = evidence["near_to_far"] if evidence else options.order != "far-to-near"
    path = early["path"] if early else save_image(output, image, info, quality=quality, bit_depth=bits,
                                                  compression=compression,
                                                  description=describe_stack(merged, total, method, ref))
    instants = maps.motion_frames(merged)[1] if maps.motion is not None else {}
    label = FrameLabels(info.names, info.fps)
    err_console.print(f"merged {len(merged)} of {total} frames ({method}), {size_text(image.shape[:2])}; "
                      f"reference {label(ref)}", markup=False, soft_wrap=True)
    if options.order == "auto":  # measured: say what was found (halos, depth and pop follow it)
        err_console.print(f"focus order: {order_text(near_to_far, evidence)}", markup=False, soft_wrap=True)
    if options.motion == "auto":
        shown = label.many(sorted(set(instants.values())))
        err_console.print(f"moved: {100 * maps.motion_share:.1f}% of the image" + (
            f" ({plural(len(instants), 'moving region')}, each shown from one instant: {shown})" if instants
            else " (no moving subject)"), markup=False, soft_wrap=True)
    written = [path]
    if motion_mask and maps.motion is not None:
        written.append(write_image(motion_mask, np.clip(maps.upscale(maps.motion), 0, 1), grey=True))
    all_warnings = open_warnings + [w for w in run_warnings if w not in open_warnings]
    if report:
        data = {"method": method, "reference": ref, "frames_used": list(merged), "size": size_data(image.shape[:2]),
                "frames": [a.as_dict() for a in alignment],
                "motion_share": maps.motion_share if options.motion == "auto" else None,
                "motion_frames": {str(k): v for k, v in instants.items()},
                "warnings": all_warnings}
        if check and ps is not None and len(merged) >= 2:
            from postfocus.check import forward_check

            data["check"] = forward_check(ps, method=method, image=image, frames=merged).to_dict()
        written.append(atomic_write_json(report, data, indent=2))
    finish(written, method=method, size=size_data(image.shape[:2]),
           frames=frames_data(info.names, used=[a.index for a in alignment if a.used], merged=list(merged),
                              reference=ref),
           motion_share=maps.motion_share if options.motion == "auto" else None,
           order={"given": options.order, "near_to_far": near_to_far, "evidence": evidence})

