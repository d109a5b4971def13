"""``postfocus refocus``, ``pop`` and ``info``: work on a processed stack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from postfocus.cli.common import err_console, is_quiet, main, progress_bars
from postfocus.cli.stack import cache_option
from postfocus.colour import to_grey
from postfocus.io.open import open_source
from postfocus.io.write import atomic_write, check_output_path
from postfocus.pipeline import DEFAULT_METHOD, save_image
from postfocus.pop import colour_pop, pop_mask
from postfocus.refocus import parse_point, tap
from postfocus.state import ProcessedStack, cache_root, process, stack_key


def processed(ctx: click.Context, inputs, cache_dir) -> ProcessedStack:  # noqa: ANN001
    """The processed stack of INPUTS (made now if it is not cached yet)."""
    source = open_source(list(inputs))
    with progress_bars(is_quiet(ctx)) as progress:
        return process(source, cache_dir=cache_dir, progress=progress)


@main.command("refocus")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--at", "at", required=True, metavar="X,Y", help="Point to bring into focus: pixels or 40%,55%.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Image to write.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True)
@cache_option
@click.pass_context
def refocus_command(ctx, inputs, at, output, quality, cache_dir):
    """Write the frame that is sharpest at a point (tap to refocus).

    X,Y are pixels of the output geometry shared by all results of this input.
    """
    ps = processed(ctx, inputs, cache_dir)
    check_output_path(output, ps.info.paths)
    answer = tap(ps, *parse_point(at, ps.size))
    err_console.print(answer.describe())
    cached = ps.frame_path(answer.frame)
    if cached.suffix.lower() == output.suffix.lower() and output.suffix.lower() in (".jpg", ".jpeg"):
        atomic_write(output, lambda p: shutil.copyfile(cached, p))
    else:
        save_image(output, ps.read_frame(answer.frame), ps.info, quality=quality)
    click.echo(str(output))


@main.command("pop")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--at", "at", required=True, metavar="X,Y", help="Subject that keeps its colour: pixels or 40%,55%.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Image to write.")
@click.option("--tolerance", type=click.FloatRange(0, None), default=1.0, show_default=True,
              help="Depth tolerance in frames on either side of the tapped subject.")
@click.option("--mask", "mask_out", type=click.Path(path_type=Path), default=None, help="Also write the mask (PNG).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True)
@cache_option
@click.pass_context
def pop_command(ctx, inputs, at, output, tolerance, mask_out, quality, cache_dir):
    """Colour pop: the tapped subject keeps its colour, everything else turns grey."""
    ps = processed(ctx, inputs, cache_dir)
    check_output_path(output, ps.info.paths)
    answer = tap(ps, *parse_point(at, ps.size))
    err_console.print(answer.describe())
    image = ps.all_in_focus(DEFAULT_METHOD)
    mask = pop_mask(ps.focus_index, answer.position, to_grey(image), tolerance=tolerance)
    save_image(output, colour_pop(image, mask), ps.info, quality=quality)
    if mask_out:
        from postfocus.io.write import write_image

        check_output_path(mask_out, ps.info.paths)
        write_image(mask_out, mask, grey=True)
    click.echo(str(output))


@main.command("info")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@cache_option
def info_command(inputs, as_json, cache_dir):
    """Frames, size, focus order and what is cached for INPUTS."""
    source = open_source(list(inputs))
    info = source.info
    folder = cache_root(cache_dir) / stack_key(source, {"align": "similarity", "reference": None})
    data = {
        "kind": info.kind,
        "frames": len(source),
        "size": f"{info.width}x{info.height}",
        "bit_depth": info.bit_depth,
        "fps": info.fps,
        "names": info.names,
        "cached": None,
    }
    if (folder / "manifest.json").exists():
        data["cached"] = ProcessedStack.open(folder).describe()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{info.kind}: {len(source)} frames, {info.width}x{info.height}, {info.bit_depth}-bit"
               + (f", {info.fps:.3g} fps" if info.fps else ""))
    names = info.names
    click.echo("frames: " + (", ".join(names) if len(names) <= 8 else f"{names[0]} ... {names[-1]}"))
    cached = data["cached"]
    if cached:
        order = "near to far" if cached["near_to_far"] else "far to near"
        click.echo(f"processed stack: {cached['folder']}")
        click.echo(f"  {cached['used']} of {cached['frames']} frames aligned, focus order {order}, "
                   f"reference frame {cached['reference']}, output {cached['size'][1]}x{cached['size'][0]}")
        if cached["dropped"]:
            click.echo(f"  dropped repeated frames: {cached['dropped']}")
        click.echo(f"  all-in-focus cached for: {', '.join(cached['methods_cached']) or 'none'}")
    else:
        click.echo("processed stack: none yet (the first stack/refocus/pop run makes one)")
