"""Options shared by the commands, defined once, and the mapping of library errors to flags.

The library names its parameters (``frame_range``, ``reference``, ...), never
a flag; :func:`flag_message` turns an :class:`~postfocus.errors.OptionError`
into the line a person typing ``--range`` expects. Every command that works
on a processed stack takes the same processing options (:func:`processing_options`),
so ``refocus``, ``pop``, ``depth``, ``aperture``, ``mesh`` and ``view`` find
the stack that ``stack --align none`` made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from postfocus.errors import OptionError, OutputError
from postfocus.io.write import check_output_path
from postfocus.options import ALIGN_MODELS, DEFAULT_METHOD, METHODS, MOTION_MODES, ORDERS, PREFER, StackOptions

__all__ = [
    "FLAGS",
    "check_distinct",
    "check_side_output",
    "cache_option",
    "flag_message",
    "inputs_argument",
    "method_option",
    "output_option",
    "processing_options",
    "quality_option",
    "range_option",
    "stack_options",
]

FLAGS = {
    "method": "--method",
    "align": "--align",
    "reference": "--reference",
    "crop": "--crop",
    "frame_range": "--range",
    "frames": "--range",
    "motion": "--motion",
    "prefer": "--prefer",
    "order": "--order",
    "refine_flow": "--refine-flow",
    "memory_mb": "--memory",
    "threads": "--threads",
    "memory_limit": "--memory-limit",
    "scheduler": "--scheduler",
    "fmt": "--format",
    "bit_depth": "--bits",
    "compression": "--compression",
    "start": "--from",
    "end": "--to",
    "duration": "--duration",
    "fps": "--fps",
    "f_number": "--f-number",
    "relief": "--relief",
    "feather": "--feather",
    "opacity": "--opacity",
    "tolerance": "--tolerance",
    "highlights": "--highlights",
    "focus_depth": "--focus-depth",
    "max_upload_mb": "--max-upload-mb",
    "max_uploads": "--max-uploads",
    "upload_timeout": "--upload-timeout",
    "long_edge": "--long-edge",
    "strength": "--strength",
}
"""Library parameter -> the flag that sets it."""

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}:{value[1]}"
    return str(value)


def flag_message(exc: OptionError) -> str:
    """The one-line message of ``exc`` in the command line's words.

    Examples
    --------
    >>> flag_message(OptionError("frame_range", (3, 12), "no usable frame in that range"))
    '--range 3:12: no usable frame in that range'
    """
    flag = FLAGS.get(exc.param, exc.param)
    return f"{flag} {_shown(exc.value)}: {exc.reason}"


inputs_argument = click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))


def output_option(help_text: str = "Image to write.", default_name: str = "<input>-<command>.jpg") -> Decorator:
    """``-o/--output``; left out, the command names the file after the input (see :func:`~postfocus.cli.output.default_output`)."""
    return click.option("-o", "--output", default=None, type=click.Path(path_type=Path),
                        help=f"{help_text} [default: {default_name} next to the input, never over a file]")


def quality_option(default: int = 95, help_text: str = "JPEG quality.") -> Decorator:
    """``--quality`` 1-100."""
    return click.option("--quality", type=click.IntRange(1, 100), default=default, show_default=True, help=help_text)


cache_option = click.option(
    "--cache", "cache_dir", type=click.Path(path_type=Path), default=None, envvar="POSTFOCUS_CACHE",
    help="Folder for processed stacks [default: $POSTFOCUS_CACHE, the config file's cache, or ~/.cache/postfocus].",
)

method_option = click.option(
    "--method", type=click.Choice(METHODS), default=DEFAULT_METHOD, show_default=True,
    help="depthmap: blend by a regularised focus map; pyramid: max-contrast pyramid selection.")

FROM_ZERO = "counted from 0 (the frame that messages and 'info' call frame 1 is 0)"
"""How the options that take frame numbers count: from 0, as scripts and manifests always have; people read from 1."""


def range_option(verb: str) -> Decorator:
    """``--range A:B``, the frames a command works on; ``verb`` says what it does with them (``Merge``, ``Check``)."""
    return click.option("--range", "frame_range", default=None, metavar="A:B",
                        help=f"{verb} only frames A to B (inclusive), {FROM_ZERO}.")


_PROCESSING: list[Decorator] = [
    click.option("--align", "align", type=click.Choice(ALIGN_MODELS), default="similarity", show_default=True,
                 help="Motion model for handheld frames; 'none' for a registered tripod stack."),
    click.option("--reference", type=int, default=None,
                 help=f"Frame whose geometry the result takes, {FROM_ZERO} [default: middle]."),
    click.option("--motion", type=click.Choice(MOTION_MODES), default="auto", show_default=True,
                 help="auto: subjects that moved during the sweep (flames, water, leaves, people) show one instant, "
                      "not a blend of several; off: the scene stood still."),
    click.option("--prefer", type=click.Choice(PREFER), default="none", show_default=True,
                 help="Where a blurred near object lets far detail shine through (two focus peaks, e.g. microscopy): "
                      "front takes the near object, back the far detail; none the stronger."),
    click.option("--order", type=click.Choice(ORDERS), default="near-to-far", show_default=True,
                 help="Which frame is focused nearest: near-to-far: the first frame; far-to-near: the last; auto "
                      "measures it at the stack's occlusion edges (near-to-far when they do not tell)."),
    click.option("--refine-flow", is_flag=True,
                 help="Also register frames densely (optical flow) for the local parallax of handheld close-ups."),
    cache_option,
]


def processing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that choose a processed stack: --align, --reference, --motion, --prefer, --order, --refine-flow,
    --cache."""
    for option in reversed(_PROCESSING):
        command = option(command)
    return command


def check_distinct(outputs: dict[str, Path | None]) -> None:
    """Refuse two outputs of one command that name the same file (one would silently replace the other).

    Parameters
    ----------
    outputs : dict
        ``{flag: path}``, e.g. ``{"-o": out, "--mask": mask}``; None paths are skipped.

    Raises
    ------
    click.UsageError

    Examples
    --------
    >>> check_distinct({"-o": Path("a.png"), "--mask": Path("./a.png")})
    Traceback (most recent call last):
    ...
    click.exceptions.UsageError: --mask a.png: is the same file as -o; choose another name
    """
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        resolved = Path(os.path.realpath(path))  # (Path.resolve raises on a loop of links)
        if resolved in seen:
            raise click.UsageError(f"{flag} {path}: is the same file as {seen[resolved]}; choose another name")
        seen[resolved] = flag


def check_side_output(flag: str, path: Path, inputs: Sequence[Path], suffixes: Sequence[str] | None = None) -> None:
    """:func:`~postfocus.io.write.check_output_path` for a side output, its message naming the flag.

    Parameters
    ----------
    flag : str
        The option, e.g. ``--report``.
    path : pathlib.Path
    inputs : sequence of pathlib.Path
        Files it must not be.
    suffixes : sequence of str, optional
        Accepted suffixes (default: any).

    Raises
    ------
    OutputError
    """
    try:
        check_output_path(path, inputs, suffixes or (Path(path).suffix.lower(),))
    except OutputError as exc:
        raise OutputError(f"{flag} {exc}") from None


def stack_options(params: dict[str, Any], **more: Any) -> StackOptions:
    """The :class:`StackOptions` of a command's parsed processing options (and ``more`` fields).

    Parameters
    ----------
    params : dict
        The command's keyword arguments (``align``, ``reference``, ``motion``, ``prefer``, ``refine_flow``, ``order``).
    **more
        Other fields, e.g. ``method`` or ``memory_mb``.

    Returns
    -------
    StackOptions
    """
    fields = {name: params[name] for name in ("align", "reference", "motion", "prefer", "refine_flow", "order")
              if name in params}
    ctx = click.get_current_context(silent=True)
    threads = ctx.find_root().obj.get("threads") if ctx is not None and ctx.find_root().obj else None
    return StackOptions(**fields, threads=threads, **more)
