"""``postfocus retouch``: paint parts of the all-in-focus picture from the source frames, by masks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from postfocus.cli.common import err_console, main, processed
from postfocus.cli.options import inputs_argument, method_option, output_option, processing_options, quality_option
from postfocus.cli.output import (FrameLabels, bits_option, compression_option, default_output, default_suffix,
                                  finish, json_option, plural, stack_data)
from postfocus.errors import InputError, OptionError, OutputError
from postfocus.io.encoding import check_encoding
from postfocus.io.write import check_output_path
from postfocus.products.edits import (NAMED_SOURCES, Edit, check_source, discard_unkept_masks, load_edits, mask_edit,
                                      parse_edits, save_edits)
from postfocus.products.retouch import read_mask, replay
from postfocus.result import save_image
from postfocus.store import ProcessedStack

__all__ = ["parse_source", "retouch_command"]


def parse_source(text: str) -> int | str:
    """``--from-frame`` as typed: a frame number (counted from 0, as ``--reference``) or a named source.

    Examples
    --------
    >>> parse_source("3"), parse_source("sharpest")
    (3, 'sharpest')
    """
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if text in NAMED_SOURCES:
        return text
    raise OptionError("--from-frame", text, f"use a frame number (from 0) or one of {', '.join(NAMED_SOURCES)}")


def _stack(ctx: click.Context, inputs: tuple, params: dict) -> ProcessedStack:
    """A stack folder given as INPUT, or the processed stack of the inputs (made now if not cached)."""
    if len(inputs) == 1 and (Path(inputs[0]) / "manifest.json").is_file():
        ps = ProcessedStack.open(inputs[0])
        ps.verify(checksums=False)
        return ps
    return processed(ctx, inputs, params)


def _file_edits(path: Path, ps: ProcessedStack, output: Path | None) -> list[Edit]:
    """Edits of an ``--edits`` JSON file: a list (or ``{"edits": [...]}``) of strokes and masks; a mask edit
    names its image file, relative to the JSON file (an input: ``output`` may not be it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--edits {path}: cannot be read as JSON ({exc})") from None
    except RecursionError:  # thousands of nested brackets: was an internal error
        raise InputError(f"--edits {path}: cannot be read as JSON (it nests too deep)") from None
    items = data.get("edits") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"--edits {path}: expected a list of edits (or {{\"edits\": [...]}})")
    out: list[Edit] = []
    for k, item in enumerate(items):
        if isinstance(item, dict) and item.get("kind", "mask" if "mask" in item else None) == "mask":
            image = path.parent / str(item.get("mask", ""))
            if output is not None:  # (-o naming a mask of the --edits file overwrote it)
                check_output_path(output, [image])
            try:
                mask = read_mask(image, ps.size)
                source = item.get("source")
                out.append(mask_edit(ps, mask, source=source, opacity=item.get("opacity", 1.0),
                                     feather=item.get("feather", 0.0)))
            except OptionError as exc:
                raise InputError(f"--edits {path}: edit {k}: {exc.param} {exc.value}: {exc.reason}") from None
        else:
            try:
                out += parse_edits([item], ps.size, ps.used)
            except OptionError as exc:
                raise InputError(f"--edits {path}: edit {k}: {exc.reason.removeprefix('edit 0: ')}") from None
    return out


def _outside_folder(output: Path, ps: ProcessedStack) -> None:
    """Refuse an output inside the processed stack's folder: ``-o FOLDER/all_in_focus_depthmap.png`` replaced the
    folder's own picture, and a folder given as INPUT has no photos to be made again from."""
    try:
        Path(os.path.realpath(output)).relative_to(os.path.realpath(ps.folder))  # (no Path.resolve: loops raise)
    except ValueError:
        return
    raise OutputError(f"{output}: is inside the processed stack folder {ps.folder}; choose an output outside it")


@main.command("retouch")
@inputs_argument
@click.option("--mask", "masks", multiple=True, type=click.Path(path_type=Path), metavar="M.png",
              help="Where to paint: white is painted, black kept, grey partly (the output's size). Repeatable.")
@click.option("--from-frame", "sources", multiple=True, metavar="N",
              help="What to paint from, one per --mask: a frame number (from 0), sharpest (the frame sharpest "
                   "under the mask), pyramid or depthmap (that fusion), result (undo).")
@click.option("--edits", "edits_file", type=click.Path(path_type=Path), default=None, metavar="EDITS.json",
              help="More edits from a JSON file (applied before the --mask pairs).")
@click.option("--feather", type=click.FloatRange(0, 500), default=2.0, show_default=True,
              help="Soft edge of the --mask masks: Gaussian sigma in pixels.")
@click.option("--opacity", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="How much of the source replaces the picture under the --mask masks.")
@click.option("--keep", is_flag=True, help="Keep these edits with the processed stack (replacing its edits): the "
                                           "page of 'postfocus view' and later runs show them.")
@click.option("--clear", is_flag=True, help="Remove the edits kept with the processed stack.")
@output_option("Image to write.", "<input>-retouched.jpg")
@method_option
@quality_option()
@bits_option()
@compression_option()
@processing_options
@json_option
@click.pass_context
def retouch_command(ctx, inputs, masks, sources, edits_file, feather, opacity, keep, clear, output, method, quality,
                    bits, compression, **params):
    """Paint parts of the all-in-focus picture from a source frame (retouch a halo or a ghost away).

    Each --mask M.png pairs with the --from-frame N in the same position. INPUT
    may be the photos or video (their processed stack is reused) or a stack
    folder. Without masks or --edits, the edits kept with the stack are applied.
    The untouched picture is never changed.
    """
    if len(masks) != len(sources):
        raise click.UsageError(f"--mask given {plural(len(masks), 'time')} and --from-frame {plural(len(sources), 'time')}: "
                               "give one --from-frame N for each --mask M.png")
    if clear and (keep or masks or edits_file):
        raise click.UsageError("--clear removes the kept edits: give it without --keep, --mask or --edits")
    picked = [parse_source(s) for s in sources]
    check_encoding(output or f"retouch{default_suffix(bits, compression)}", bits, compression)
    for path in [*masks, *([edits_file] if edits_file else [])]:
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file")
    if output is not None:
        check_output_path(output, [*masks, *([edits_file] if edits_file else [])])  # (an --edits file was not)
    ps = _stack(ctx, inputs, params)
    if output is not None:
        check_output_path(output, ps.info.paths)
        _outside_folder(output, ps)
    for source in picked:
        try:
            check_source(source, ps.used)
        except OptionError as exc:
            raise OptionError("--from-frame", exc.value, exc.reason) from None
    if clear:
        save_edits(ps, [])
    edits = _file_edits(edits_file, ps, output) if edits_file else []
    for path, source in zip(masks, picked):
        try:
            edits.append(mask_edit(ps, read_mask(path, ps.size), source=source, opacity=opacity, feather=feather))
        except OptionError as exc:
            if exc.param == "mask":
                raise InputError(f"--mask {exc.value}: {exc.reason}") from None
            raise OptionError({"source": "--from-frame"}.get(exc.param, exc.param), exc.value, exc.reason) from None
    given = bool(masks or edits_file)
    if keep:
        save_edits(ps, edits)
    if not given:
        edits = load_edits(ps)
    image, chosen = replay(ps, edits, method=method)
    if not keep:
        discard_unkept_masks(ps)  # the masks of this run's edits were kept for the replay only
    label = FrameLabels(ps.names, ps.info.fps)
    for k, (edit, regions) in enumerate(zip(edits, chosen), 1):
        names = ", ".join(label(s) if isinstance(s, int) else s for s in dict.fromkeys(regions)) or "nothing"
        err_console.print(f"edit {k}: {edit.kind} from {names}", markup=False, soft_wrap=True)
    if output is None:
        output = default_output(inputs, "retouched", default_suffix(bits, compression))
    description = f"postfocus: all-in-focus ({method}), retouched with {len(edits)} edit(s)"
    path = save_image(output, image, ps.info, quality=quality, bit_depth=bits, compression=compression,
                      description=description)
    finish([path], **stack_data(ps), method=method, kept=keep,
           edits=[{"kind": e.kind, "source": e.source, "from": r} for e, r in zip(edits, chosen)])
