"""What a command gives back: the files it wrote (stdout), or one JSON object (``--json``); default output names.

Every command ends with :func:`finish`: without ``--json`` it prints each
file it wrote, one a line, on stdout; with ``--json`` it prints one JSON
object instead (outputs, frames, size, timings, warnings and what the command
found). Messages for people go to stderr either way.

Conventions of what is printed, the same in every command:

- frames for people are named by their file, ``pcb_003.jpg``, as the app
  and the saved page name them (:class:`FrameLabels`, by
  :func:`postfocus.labels.frame_label`: a number, counted from 1, only for a
  video's frame or a name two frames share); ``--range`` and
  ``--reference``, JSON and the Python API keep 0-based frame indexes;
- sizes for people are ``width x height`` (``2048x1536``); in JSON
  ``{"width": 2048, "height": 1536}`` (:func:`size_data`).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from postfocus.errors import PostfocusWarning
from postfocus.labels import frame_label, frame_labels

__all__ = [
    "FrameLabels",
    "Run",
    "bits_option",
    "compression_option",
    "current_run",
    "default_output",
    "default_suffix",
    "finish",
    "frames_data",
    "json_flag",
    "json_option",
    "order_said",
    "order_text",
    "plural",
    "size_data",
    "size_text",
    "stack_data",
    "tap_data",
    "unique_path",
]


@dataclass
class Run:
    """One command's record: what it wrote and found, for ``--json``.

    Attributes
    ----------
    command : str
        The command's name.
    json : bool
        ``--json`` was given.
    started : float
        ``time.monotonic()`` when the command began.
    stages : dict
        Seconds per progress stage (``align and measure``, ``fuse``, ...).
    warnings : list of str
        Every warning shown on stderr.
    """

    command: str = ""
    json: bool = False
    started: float = field(default_factory=time.monotonic)
    stages: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _last: float | None = None
    _seen: dict[str, float] = field(default_factory=dict)

    def progress(self, stage: str) -> None:
        """Note that ``stage`` made progress now (its time runs from the previous note of any stage)."""
        now = time.monotonic()
        start = self._seen.setdefault(stage, self._last if self._last is not None else self.started)
        self.stages[stage] = round(now - start, 3)
        self._last = now

    def timings(self) -> dict[str, Any]:
        return {"total": round(time.monotonic() - self.started, 3), "stages": dict(self.stages)}

    def error(self, message: str) -> dict[str, Any]:
        """The JSON object of a run that failed with ``message``."""
        return {"command": self.command, "ok": False, "error": message, "warnings": self.warnings,
                "timings": self.timings()}


def current_run(ctx: click.Context | None = None) -> Run:
    """The record of the running command (a fresh one outside a command, e.g. in tests)."""
    ctx = ctx or click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if not isinstance(obj, dict):
        return Run()
    return obj.setdefault("run", Run())


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        current_run(ctx).json = True


def json_flag(help_text: str = "Print one JSON object on stdout (outputs, frames, size, timings, warnings) instead "
                                 "of the paths written.") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--json``; a command that writes no files (``info``, ``serve``) says what its object holds instead."""
    return click.option("--json", "json_output", is_flag=True, expose_value=False, is_eager=True, callback=_set_json,
                        help=help_text)


json_option = json_flag()


def finish(outputs: Sequence[str | Path] = (), **data: Any) -> None:
    """End a command: print the paths written (one a line), or with ``--json`` one JSON object.

    Parameters
    ----------
    outputs : sequence of paths
        Every file or folder the command wrote, each once.
    **data
        What else the JSON object says (``frames``, ``size``, ``tap`` ...); None values are left out.
    """
    run = current_run()
    if not run.json:
        for path in outputs:
            click.echo(str(path))
        return
    record = {"command": run.command, "ok": True, "outputs": [str(p) for p in outputs],
              **{k: v for k, v in data.items() if v is not None}, "warnings": run.warnings, "timings": run.timings()}
    click.echo(json.dumps(record, indent=2, default=str))


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 stack``, ``2 stacks``.

    Examples
    --------
    >>> plural(1, "stack"), plural(3, "frame"), plural(2, "moving region")
    ('1 stack', '3 frames', '2 moving regions')
    """
    return f"{n} {word if n == 1 else (many or word + 's')}"


def order_text(near_to_far: bool, evidence: dict | None = None) -> str:
    """The sweep's focus order for people, with the occlusion-edge evidence when it was measured.

    Parameters
    ----------
    near_to_far : bool
        Whether frame 0 is focused nearest.
    evidence : dict or None
        :meth:`postfocus.focus.direction.SweepDirection.as_dict` (None or no pieces: the order was stated).

    Examples
    --------
    >>> order_text(False)
    'far to near'
    >>> order_text(True, {"pieces": 9, "source": "assumed", "leans_near_to_far": True, "confidence": 0.86,
    ...                   "agreement": 0.9})  # doctest: +ELLIPSIS
    'near to far (assumed: the occlusion edges lean near to far, too weakly to decide (confidence 0.860, ...'
    """
    text = "near to far" if near_to_far else "far to near"
    if evidence and evidence.get("pieces", 1) > 0:  # measured at occlusion edges (focus/direction.py)
        leans = "near to far" if evidence["leans_near_to_far"] else "far to near"
        numbers = f"confidence {evidence['confidence']:.3f}, {evidence['agreement']:.0%} agreeing"
        if evidence["source"] == "assumed":  # evidence too weak to decide: the default order was kept
            text += (f" (assumed: the occlusion edges lean {leans}, too weakly to decide ({numbers}); "
                     f"give --order if you know it)")
        else:
            text += f" ({evidence['source']}; the occlusion edges lean {leans}, {numbers})"
    return text


def order_said(ctx: click.Context, stack: Any) -> dict[str, Any]:
    """The depth order a product of ``stack`` took, for ``--json`` (``{"order": {...}}``); said in one line on
    stderr when it is ``--order``'s default, given neither on the command line nor in the config file, or when
    ``--order auto``'s measurement was too weak to decide (:func:`postfocus.products.order.depth_order`). A stack
    whose sweep turns back through focus (:func:`postfocus.products.order.turns_said`) has it said again as a
    warning when the stack was kept by an earlier run (this run's own warnings already said it).

    Nothing a processed stack holds says which way its focus swept without ``--order auto``'s measurement (about
    0.3 s of CPU on pcb_depthmap at the analysis size, and too weak to decide on it or on keyboard_sweep.mp4, both
    swept far to near: docs/depth-and-aperture.md), so the default is named, with how to change it.

    Parameters
    ----------
    ctx : click.Context
        The command's context (its ``--order`` option, and where its value came from).
    stack : ProcessedStack
        The stack the product was made from.

    Returns
    -------
    dict
        ``{"order": {"near_to_far": bool, "assumed": bool}}`` for :func:`finish`.
    """
    from click.core import ParameterSource

    from postfocus.products.order import depth_order, turns_said

    default = ctx.get_parameter_source("order") in (ParameterSource.DEFAULT, None)
    assumed = depth_order(stack, stack.names, stated=not default)["assumed"]  # (as the app and the page say it)
    turns = turns_said(stack)
    if turns is not None and turns not in current_run().warnings:  # (a stack kept by an earlier run: said again)
        warnings.warn(turns, PostfocusWarning, stacklevel=2)  # (as the run's own warnings are: stderr and --json)
    if assumed:
        label, last = FrameLabels(stack.names, stack.info.fps), len(stack.names) - 1
        near, far = (label(0), label(last)) if stack.near_to_far else (label(last), label(0))
        flip = "far-to-near" if stack.near_to_far else "near-to-far"
        why = (f"--order {ctx.params.get('order')}, the default" if default
               else "--order auto could not decide from these frames")
        from postfocus.cli.common import err_console  # (common imports this module)

        err_console.print(f"depth order assumed: {near} is the nearest ({why}); if {far} is, give --order {flip}"
                          + (" (--order auto measures it)" if default else ""), soft_wrap=True, markup=False)
    return {"order": {"near_to_far": bool(stack.near_to_far), "assumed": assumed}}


def size_text(size: Sequence[int]) -> str:
    """``(height, width)`` as people read it: ``width x height``.

    Examples
    --------
    >>> size_text((1536, 2048))
    '2048x1536'
    """
    h, w = size
    return f"{w}x{h}"


def size_data(size: Sequence[int]) -> dict[str, int]:
    """``(height, width)`` as JSON gives it.

    Examples
    --------
    >>> size_data((1536, 2048))
    {'width': 2048, 'height': 1536}
    """
    h, w = size
    return {"width": int(w), "height": int(h)}


class FrameLabels:
    """Frames for people, as :func:`postfocus.labels.frame_label` names them: ``labels(2)`` is ``pcb_003.jpg``.

    Examples
    --------
    >>> FrameLabels(["a.jpg", "b.jpg", "c.jpg"])(2)
    'c.jpg'
    >>> FrameLabels(["frame 0000", "frame 0001"], fps=25)(1)
    'frame 2 (0.04 s)'
    """

    def __init__(self, names: Sequence[str], fps: float | None = None):
        self.names, self.fps = list(names), fps

    def __call__(self, index: int) -> str:
        return frame_label(self.names, index, fps=self.fps)

    def many(self, indexes: Sequence[int]) -> str:
        """Several frames: ``c.jpg, e.jpg``."""
        return frame_labels(self.names, indexes, fps=self.fps)


def frames_data(names: Sequence[str], **more: Any) -> dict[str, Any]:
    """The ``frames`` of a JSON record: count, names and any of used/merged/reference (0-based indexes)."""
    return {"count": len(names), "names": list(names), **{k: v for k, v in more.items() if v is not None}}


def tap_data(answer: Any) -> dict[str, Any]:
    """A :class:`~postfocus.products.refocus.Tap` for JSON: the frame (0-based), where it was read, and for a plain
    point the map whose fill answered (``filled_from``, empty otherwise)."""
    return {"frame": answer.frame, "position": round(answer.position, 3), "confidence": round(answer.confidence, 3),
            "x": round(answer.x, 1), "y": round(answer.y, 1), "fallback": answer.fallback,
            "filled_from": answer.filled_from, "moving": answer.moving}


def stack_data(stack: Any) -> dict[str, Any]:
    """``size`` and ``frames`` of a JSON record about a :class:`~postfocus.store.ProcessedStack`."""
    return {"size": size_data(stack.size),
            "frames": frames_data(stack.names, used=list(stack.used), reference=stack.reference)}


def unique_path(path: Path, suffix: str | None = None) -> Path:
    """``path``, or ``<stem>-1<suffix>``, ``-2`` ... when that name is taken (never over anything).

    Parameters
    ----------
    path : pathlib.Path
    suffix : str, optional
        The part of the name the number goes before (default: the path's suffix; ``""`` for a folder).

    Examples
    --------
    >>> unique_path(Path("/nonexistent/x.jpg"))
    PosixPath('/nonexistent/x.jpg')
    """
    suffix = path.suffix if suffix is None else suffix
    stem = path.name[: len(path.name) - len(suffix)]
    candidate, k = path, 0
    while candidate.exists() or candidate.is_symlink():
        k += 1
        candidate = path.with_name(f"{stem}-{k}{suffix}")
    return candidate


def default_output(inputs: Sequence[Path], tag: str, suffix: str = ".jpg") -> Path:
    """Where a result goes when ``-o`` is left out: next to the input, named after it.

    A folder ``shots/`` gives ``shots-<tag><suffix>`` beside the folder (not in
    it, where it would become a frame); files give a name after the first one,
    beside it; a taken name gets ``-1``, ``-2`` ... (:func:`unique_path`).

    Examples
    --------
    >>> default_output([Path("/nonexistent/shots")], "stacked")
    PosixPath('/nonexistent/shots-stacked.jpg')
    >>> default_output([Path("/nonexistent/sweep.mp4")], "refocus-640-360")
    PosixPath('/nonexistent/sweep-refocus-640-360.jpg')
    """
    first = Path(inputs[0])
    if first.name in ("", ".", ".."):
        first = first.resolve()
    stem = first.name if first.is_dir() or not first.suffix else first.stem
    return unique_path(first.parent / f"{stem}-{tag}{suffix}", suffix)


def default_suffix(bits: int | None, compression: str | None) -> str:
    """The default output's format: JPEG, unless 16 bits or a compression ask for TIFF (a zlib level: PNG)."""
    if compression is not None and compression.strip().isdigit():
        return ".png"
    return ".tif" if bits == 16 or compression is not None else ".jpg"


def bits_option(default: int | None = None, help_text: str | None = None) -> Callable[..., Any]:
    """``--bits 8|16`` for PNG and TIFF outputs."""
    return click.option(
        "--bits", type=click.Choice([8, 16]), default=default, show_default=default is not None,
        help=help_text or "Bits per channel of a PNG or TIFF output [default: 16 for 16-bit inputs, else 8; TIFF 16].")


def compression_option(help_text: str | None = None) -> Callable[..., Any]:
    """``--compression``: none, deflate or lzw for TIFF; a zlib level 0-9 for PNG."""
    return click.option(
        "--compression", default=None, metavar="none|deflate|lzw|0-9",
        help=help_text or "TIFF: none, deflate or lzw [default: deflate]; PNG: zlib level 0 (fast) to 9 (small) "
                          "[default: 6].")
