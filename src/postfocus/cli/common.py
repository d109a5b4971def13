"""Shared pieces of the command line: the root group, errors, warnings, progress."""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from postfocus._version import __version__
from postfocus.cli.options import flag_message
from postfocus.errors import OptionError, PostfocusError, PostfocusWarning
from postfocus.store.cache import CacheError

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_USER_ERROR",
    "PostfocusGroup",
    "ProgressReporter",
    "err_console",
    "is_quiet",
    "main",
    "one_malloc_arena",
    "processed",
    "progress_bars",
    "root_threads",
    "set_threads",
]

if TYPE_CHECKING:
    from postfocus.store import ProcessedStack

# Messages carry file names: no markup or emoji codes may be read out of them (see _say).
err_console = Console(stderr=True, highlight=False, emoji=False)
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def _say(style: str, label: str, message: object) -> None:
    """Print ``label message`` as one line on stderr; ``message`` is shown literally.

    A path such as ``shots[1]/a.jpg`` or ``a[/]b`` must not be taken for Rich
    markup (which would swallow it or raise), and line breaks inside a message
    would break the one-line promise.
    """
    text = " ".join(str(message).splitlines())
    err_console.print(f"[{style}]{label}[/] {escape(text)}", soft_wrap=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    if issubclass(category, PostfocusWarning):
        _say("yellow", "warning:", message)
    else:
        _say("dim", "warning:", f"{category.__name__}: {message}")


class PostfocusGroup(click.Group):
    """Click group that turns PostfocusError into a one-line message and exit code."""

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: ANN001, ANN201
        """Options of the root command itself (e.g. --threads) get the same one-line errors."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if "--debug" in args:
                raise
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _say("red", "postfocus: error:", exc.format_message() + where)
            sys.exit(EXIT_USER_ERROR)

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        debug = bool(ctx.params.get("debug"))
        previous = warnings.showwarning
        warnings.showwarning = _show_warning
        warnings.simplefilter("default", PostfocusWarning)
        try:
            return super().invoke(ctx)
        except PostfocusError as exc:
            if debug:
                raise
            if isinstance(exc, OptionError):
                exc = flag_message(exc)
            elif isinstance(exc, CacheError):
                exc = f"{exc}; choose another folder with --cache DIR"
            _say("red", "postfocus: error:", exc)
            sys.exit(EXIT_USER_ERROR)
        except click.UsageError as exc:  # a bad option value: one line too, with where to look
            if debug:
                raise
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _say("red", "postfocus: error:", exc.format_message() + where)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            err_console.print("postfocus: interrupted; no output was written")
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except MemoryError:
            err_console.print("[red]postfocus: error:[/] out of memory; try 'stack --memory MB' or fewer frames")
            sys.exit(EXIT_INTERNAL)
        except Exception as exc:  # an internal bug: still one line unless --debug
            if debug:
                raise
            _say("red", "postfocus: internal error:", f"{type(exc).__name__}: {exc} (run with --debug for details)")
            sys.exit(EXIT_INTERNAL)
        finally:
            warnings.showwarning = previous


@click.group(cls=PostfocusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="postfocus")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Threads for image processing and video decoding [default: all cores].")
@click.pass_context
def main(ctx: click.Context, debug: bool, quiet: bool, threads: int | None) -> None:
    """postfocus: decide focus after the shot.

    Merge a focus sweep (a folder of photos or a video) into one all-in-focus
    image, refocus by tapping, change the aperture, and more.
    """
    if threads:
        set_threads(threads)
    one_malloc_arena()
    ctx.obj = {"debug": debug, "quiet": quiet, "threads": threads}


def one_malloc_arena() -> None:
    """Let every thread allocate from one glibc arena (as MALLOC_ARENA_MAX=1 would).

    The decoding and alignment threads otherwise each get an arena of their
    own that keeps freed memory: measured on the 30-frame 4K sweep, a peak of
    970-1040 MB against 850-870 MB with one arena, in the same time. No effect
    (and no harm) where the C library is not glibc, or when the environment
    already sets MALLOC_ARENA_MAX.
    """
    import ctypes
    import os

    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(ctypes.c_int(-8), ctypes.c_int(1))  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def set_threads(threads: int) -> None:
    """Limit OpenCV's worker threads and, through their environment variables, BLAS's and OpenMP's.

    Video decoding threads and postfocus's own are set from the same number
    through :class:`~postfocus.options.StackOptions` (``threads``) and
    :func:`~postfocus.io.open.open_source`, never through the environment.
    """
    import os

    import cv2

    cv2.setNumThreads(threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


def root_threads(ctx: click.Context) -> int | None:
    """The ``--threads`` given to ``postfocus`` itself (None: all cores)."""
    obj = ctx.find_root().obj
    return obj.get("threads") if obj else None


class ProgressReporter:
    """Callable ``(stage, done, total)`` that drives Rich progress bars with ETA."""

    def __init__(self, progress: Progress | None):
        self._progress = progress
        self._tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(stage)
        if task is None:
            task = self._progress.add_task(stage, total=total)
            self._tasks[stage] = task
        self._progress.update(task, completed=done, total=total)


@contextmanager
def progress_bars(quiet: bool = False) -> Iterator[ProgressReporter]:
    """Context giving a progress callback; silent when quiet or not on a terminal... unless asked."""
    if quiet:
        yield ProgressReporter(None)
        return
    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    with progress:
        yield ProgressReporter(progress)


def is_quiet(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("quiet"))


def processed(ctx: click.Context, inputs: tuple, params: dict) -> ProcessedStack:
    """The processed stack of INPUTS for the command's processing options (made now if not cached yet).

    Parameters
    ----------
    ctx : click.Context
    inputs : tuple of pathlib.Path
    params : dict
        The command's parsed options (see :func:`postfocus.cli.options.processing_options`).
    """
    from postfocus.cli.options import stack_options
    from postfocus.pipeline.run import process

    options = stack_options(params)
    with progress_bars(is_quiet(ctx)) as progress:
        return process(list(inputs), options, cache_dir=params.get("cache_dir"), progress=progress)
