"""``postfocus info``: frames, size and every processed stack of an input."""

from __future__ import annotations

import json

import click

from postfocus.cli.common import main
from postfocus.cli.options import cache_option, inputs_argument
from postfocus.io.open import open_source
from postfocus.io.video_metadata import describe_camera
from postfocus.store import find_stack_folders

__all__ = ["info_command"]


@main.command("info")
@inputs_argument
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@cache_option
def info_command(inputs, as_json, cache_dir):
    """Frames, size, focus order and what is cached for INPUTS."""
    source = open_source(list(inputs))
    info = source.info
    stacks = [ps.describe() for ps in find_stack_folders(source, cache_dir)]
    data = {
        "kind": info.kind,
        "frames": len(source),
        "size": f"{info.width}x{info.height}",
        "bit_depth": info.bit_depth,
        "fps": info.fps,
        "names": info.names,
        "camera": info.camera,
        "cached": stacks[0] if stacks else None,
        "processed_stacks": stacks,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{info.kind}: {len(source)} frames, {info.width}x{info.height}, {info.bit_depth}-bit"
               + (f", {info.fps:.3g} fps" if info.fps else ""))
    if describe_camera(info.camera):
        click.echo(f"camera: {describe_camera(info.camera)}")
    names = info.names
    click.echo("frames: " + (", ".join(names) if len(names) <= 8 else f"{names[0]} ... {names[-1]}"))
    if not stacks:
        click.echo("processed stack: none yet (the first stack/refocus/pop run makes one)")
    for cached in stacks:
        order = "near to far" if cached["near_to_far"] else "far to near"
        made = ", ".join(f"{k} {v}" for k, v in cached["options"].items() if v not in (None, False))
        click.echo(f"processed stack: {cached['folder']}")
        click.echo(f"  made with {made}")
        click.echo(f"  {cached['used']} of {cached['frames']} frames aligned, focus order {order}, "
                   f"reference frame {cached['reference']}, output {cached['size'][1]}x{cached['size'][0]}")
        if cached["dropped"]:
            click.echo(f"  dropped repeated frames: {cached['dropped']}")
        click.echo(f"  all-in-focus cached for: {', '.join(cached['methods_cached']) or 'none'}")
