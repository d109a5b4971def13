"""``postfocus frames``: write a video's frames as images for other tools."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.cli.common import err_console, main, root_threads
from postfocus.cli.output import default_output, finish, frames_data, json_option, size_data, size_text
from postfocus.errors import InputError
from postfocus.io.open import open_source

__all__ = ["frames_command"]


@main.command("frames")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", default=None, type=click.Path(path_type=Path),
              help="Folder to write frame_0000.png ... into (created if its parent exists) "
                   "[default: <video>-frames next to the video, never over a file].")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="png keeps 10-bit video as 16-bit PNG; jpg is smaller.")
@click.option("--overwrite", is_flag=True, help="Replace frame files already in the folder.")
@json_option
@click.pass_context
def frames_command(ctx, video, out_dir, fmt, overwrite):
    """Write every frame of VIDEO as an image file (frame_0000 is frame 1)."""
    from postfocus.io.video import VideoSource
    from postfocus.io.video_write import extract_frames

    source = open_source(video, threads=root_threads(ctx), min_frames=1)  # frames out, not a stack
    if not isinstance(source, VideoSource):
        raise InputError(f"{video}: not a video file")
    out_dir = out_dir or default_output([video], "frames", "")
    paths = extract_frames(source, out_dir, fmt=fmt, overwrite=overwrite)
    err_console.print(f"wrote {len(paths)} frame{'' if len(paths) == 1 else 's'} ({size_text(source.info.size)}) "
                      f"to {out_dir}",
                      markup=False, soft_wrap=True)
    finish([out_dir], size=size_data(source.info.size), frames=frames_data(source.info.names), fps=source.info.fps,
           files=[str(p) for p in paths])
