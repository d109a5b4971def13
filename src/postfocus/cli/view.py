"""``postfocus view``: one self-contained HTML page to keep, open and play with."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.io.write import check_output_path
from postfocus.cli.common import err_console, is_quiet, main, progress_bars, root_threads
from postfocus.cli.options import output_option, processing_options, stack_options
from postfocus.cli.output import default_output, finish, json_option, order_said, stack_data
from postfocus.io.open import open_source
from postfocus.pipeline.run import process

__all__ = ["check_page_path", "view_command"]

PAGE_SUFFIXES = (".html", ".htm")


def check_page_path(path: Path, inputs: list[Path]) -> Path:
    """Refuse an output page path that cannot be written or would overwrite an input."""
    return check_output_path(path, inputs, PAGE_SUFFIXES)


@main.command("view")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option("The page to write (.html).", "<input>-view.html")
@click.option("--long-edge", type=click.IntRange(64, None), default=1600, show_default=True,
              help="Long edge of the pictures in the page, in pixels.")
@click.option("--quality", type=click.IntRange(1, 100), default=82, show_default=True, help="JPEG/WebP quality.")
@click.option("--format", "fmt", type=click.Choice(["jpeg", "webp"]), default="jpeg", show_default=True,
              help="Picture format in the page (WebP is smaller; JPEG opens everywhere).")
@click.option("--title", default=None, help="Page title [default: the input's name].")
@click.option("--check", "check", is_flag=True,
              help="Add the forward-model check: a Residual toggle (R) shows where the result contradicts the frames.")
@click.option("--no-pull", "no_pull", is_flag=True,
              help="Do not play the short focus pull when the page opens (never played with reduced motion asked for).")
@processing_options
@json_option
@click.pass_context
def view_command(ctx, inputs, output, long_edge, quality, fmt, title, check, no_pull, **params):
    """Write ONE self-contained HTML page of INPUTS: tap to refocus, all in focus, depth, colour pop, magnifier.

    The page holds every picture and the viewer itself; it opens from the
    disk, by mail or from an archive, with no server and no network access.
    """
    from postfocus.viewer.export import export_page

    source = open_source(list(inputs), threads=root_threads(ctx))
    output = output or default_output(inputs, "view", ".html")
    check_page_path(output, list(source.info.paths))
    with progress_bars(is_quiet(ctx)) as progress:
        ps = process(source, stack_options(params), cache_dir=params.get("cache_dir"), progress=progress)
        order = order_said(ctx, ps)  # (the page says it too, when assumed)
        path = export_page(ps, output, long_edge=long_edge, quality=quality, fmt=fmt, title=title, check=check,
                           pull_on_load=not no_pull, order_stated=not order["order"]["assumed"], progress=progress,
                           threads=root_threads(ctx))
    size = path.stat().st_size
    err_console.print(f"page: {len(ps.used)} frames, {size / 1e6:.1f} MB")
    finish([path], **stack_data(ps), **order, bytes=size)
