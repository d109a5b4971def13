"""``postfocus stack``: merge a focus stack into one all-in-focus image."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.cli.common import err_console, is_quiet, main, progress_bars
from postfocus.io.sources import open_source
from postfocus.io.write import check_output_path
from postfocus.pipeline import ALIGN_MODELS, DEFAULT_METHOD, METHODS, stack


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
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Also write the per-frame alignment report as JSON.")
@click.pass_context
def stack_command(ctx, inputs, output, method, reference, align, crop, frame_range, quality, report):
    """Merge INPUTS (a folder, image files in focus order, or a video) into one all-in-focus image."""
    source = open_source(list(inputs))
    check_output_path(output, source.info.paths)
    with progress_bars(is_quiet(ctx)) as progress:
        result = stack(source, method=method, reference=reference, align=align, crop=crop,
                       frame_range=frame_range, progress=progress)
    path = result.save(output, quality=quality)
    used = len(result.frames_used)
    err_console.print(f"merged {used} of {len(result.alignment)} frames ({method}); reference frame {result.reference}")
    if report:
        import json

        from postfocus.io.write import atomic_write

        data = {"method": method, "crop": list(result.crop), "frames": [a.as_dict() for a in result.alignment],
                "warnings": result.warnings}
        atomic_write(report, lambda p: p.write_text(json.dumps(data, indent=2)))
    click.echo(str(path))
