"""``postfocus frames``: write a video's frames as images for other tools."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.cli.common import err_console, main, root_threads
from postfocus.errors import InputError
from postfocus.io.open import open_source

__all__ = ["frames_command"]


@main.command("frames")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write frame_0000.png ... into (created if its parent exists).")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="png keeps 10-bit video as 16-bit PNG; jpg is smaller.")
@click.option("--overwrite", is_flag=True, help="Replace frame files already in the folder.")
@click.pass_context
def frames_command(ctx, video, out_dir, fmt, overwrite):
    """Write every frame of VIDEO as an image file."""
    from postfocus.io.video import VideoSource
    from postfocus.io.video_write import extract_frames

    source = open_source(video, threads=root_threads(ctx))
    if not isinstance(source, VideoSource):
        raise InputError(f"{video}: not a video file")
    paths = extract_frames(source, out_dir, fmt=fmt, overwrite=overwrite)
    err_console.print(f"wrote {len(paths)} frames ({source.info.width}x{source.info.height}) to {out_dir}")
    click.echo(str(out_dir))
