"""``postfocus info``: frames, size and every processed stack of an input."""

from __future__ import annotations

import click

from postfocus.cli.common import main
from postfocus.cli.options import cache_option, inputs_argument
from postfocus.cli.output import (FrameLabels, current_run, finish, frames_data, json_flag, order_text,
                                  size_data)
from postfocus.io.open import open_source
from postfocus.io.video_metadata import describe_camera
from postfocus.store import find_stack_folders

__all__ = ["info_command"]


@main.command("info")
@inputs_argument
@json_flag("Print one JSON object on stdout instead of the text: kind, frames, size, bit depth, a video's fps "
           "and camera, and the processed stacks.")
@cache_option
def info_command(inputs, cache_dir):
    """Frames, size, focus order and what is cached for INPUTS."""
    source = open_source(list(inputs))
    info = source.info
    label = FrameLabels(info.names, info.fps)
    stacks = [ps.describe() for ps in find_stack_folders(source, cache_dir)]
    if current_run().json:
        finish([], kind=info.kind, frames=frames_data(info.names), size=size_data(info.size), bit_depth=info.bit_depth,
               fps=info.fps, camera=info.camera, cached=stacks[0] if stacks else None, processed_stacks=stacks)
        return
    click.echo(f"{info.kind}: {len(source)} frames, {info.width}x{info.height}, {info.bit_depth}-bit"
               + (f", {info.fps:.3g} fps" if info.fps else ""))
    if describe_camera(info.camera):
        click.echo(f"camera: {describe_camera(info.camera)}")
    names = info.names
    if info.kind != "video":  # a video's frames have no names of their own
        click.echo(f"frames 1-{len(names)}: "
                   + (", ".join(names) if len(names) <= 8 else f"{names[0]} ... {names[-1]}"))
    if not stacks:
        click.echo("processed stack: none yet (the first stack/refocus/pop run makes one)")
    for cached in stacks:
        order = order_text(cached["near_to_far"], cached.get("direction"))
        made = ", ".join(f"{k} {v}" for k, v in cached["options"].items() if v not in (None, False))
        size = cached["size"]
        click.echo(f"processed stack: {cached['folder']}")
        click.echo(f"  made with {made}")
        click.echo(f"  {cached['used']} of {cached['frames']} frames aligned, focus order {order}, "
                   f"reference {label(cached['reference'])}, output {size['width']}x{size['height']}")
        if cached["dropped"]:
            click.echo(f"  dropped repeated frames: {label.many(cached['dropped'])}")
        click.echo(f"  all-in-focus cached for: {', '.join(cached['methods_cached']) or 'none'}")
