"""``postfocus mesh``: a textured 3D relief of a focus sweep."""

from __future__ import annotations

from pathlib import Path

import click

from postfocus.cli.common import err_console, is_quiet, main, processed, progress_bars, root_threads
from postfocus.cli.options import check_distinct, output_option, processing_options
from postfocus.cli.output import default_output, finish, json_option, order_said, stack_data
from postfocus.products.depth import check_output
from postfocus.io.write import write_image
from postfocus.products.mesh import (DEFAULT_MAX_FACES, DEFAULT_RELIEF, MESH_FORMATS, check_relief, mesh_files,
                                     render_view, rock_frames, stack_mesh, write_gif, write_mesh)

__all__ = ["mesh_command"]


@main.command("mesh")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option("Mesh to write: .ply (vertex colours), .obj (+ .mtl + texture PNG) or .glb (binary glTF).",
               "<input>-mesh.ply")
@click.option("--preview", "preview_out", type=click.Path(path_type=Path), default=None,
              help="Also write a view of the relief from an angle (.png or .jpg).")
@click.option("--rock", "rock_out", type=click.Path(path_type=Path), default=None,
              help="Also write a rocking animation (.gif), a synthetic stereo view.")
@click.option("--relief", type=float, default=DEFAULT_RELIEF, show_default=True,
              help="Depth of the relief from nearest to farthest frame, as a share of the image's long edge.")
@click.option("--max-faces", type=click.IntRange(2, None), default=DEFAULT_MAX_FACES, show_default=True,
              help="Upper bound on triangles; the grid is decimated to fit.")
@processing_options
@json_option
@click.pass_context
def mesh_command(ctx, inputs, output, preview_out, rock_out, relief, max_faces, **params):
    """Height-field mesh of the depth map, textured with the all-in-focus image.

    Prints every file it wrote, one a line (an .obj also writes its .mtl and texture).
    """
    check_relief(relief)  # (before the stack is processed: nan, inf and 1e308 too)
    output = output or default_output(inputs, "mesh", ".ply")
    check_output(output, MESH_FORMATS)
    # An .obj's .mtl and texture are outputs too (they replaced an input, or --preview, of their names)
    mtl_texture = dict(zip(("-o's .mtl", "-o's texture"), mesh_files(output)[1:]))
    check_distinct({"-o": output, **mtl_texture, "--preview": preview_out, "--rock": rock_out})
    if preview_out:
        check_output(preview_out, (".png", ".jpg", ".jpeg"))
    if rock_out:
        check_output(rock_out, (".gif",))
    ps = processed(ctx, inputs, params)
    for path in (*mesh_files(output), preview_out, rock_out):
        if path:
            check_output(path, (path.suffix.lower(),), ps.info.paths)
    with progress_bars(is_quiet(ctx)) as progress:
        mesh, image, result = stack_mesh(ps, max_faces=max_faces, relief=relief, progress=progress,
                                           threads=root_threads(ctx))
    written = write_mesh(output, mesh)
    rows, cols = mesh.grid
    err_console.print(f"mesh: {len(mesh.vertices)} vertices ({cols}x{rows} grid), {len(mesh.faces)} faces",
                      soft_wrap=True, markup=False)
    if preview_out:
        written.append(write_image(preview_out, render_view(image, result.depth, result.frames, relief=relief)))
    if rock_out:
        written.append(write_gif(rock_out, rock_frames(image, result.depth, result.frames, relief=relief)))
    finish(written, **stack_data(ps), **order_said(ctx, ps),
           vertices=len(mesh.vertices), faces=len(mesh.faces))
