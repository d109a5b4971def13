"""Shared pieces of the command line: the root group, errors, warnings, progress."""

from __future__ import annotations

import importlib
import json
import os
import shlex
import sys
import warnings
from collections.abc import MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import click

from postfocus._version import __version__
from postfocus.cli.config import ConfigError, default_map
from postfocus.cli.heap import one_malloc_arena
from postfocus.cli.options import flag_message
from postfocus.cli.output import Run, current_run
from postfocus.errors import OptionError, PostfocusError, PostfocusWarning
from postfocus.options import MAX_THREADS
from postfocus.store.cache import CacheError

__all__ = [
    "CommandModules",
    "EXIT_INTERNAL",
    "EXIT_USER_ERROR",
    "PostfocusGroup",
    "ProgressReporter",
    "err_console",
    "is_quiet",
    "main",
    "processed",
    "progress_bars",
    "root_threads",
    "set_threads",
]

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from postfocus.store import ProcessedStack

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1
# click 8.2 raises this for a plain 'postfocus' (a UsageError that shows the help); 8.1 exits instead.
_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _ErrConsole:
    """The command line's Rich console on stderr, made (and Rich imported, ~15 ms of start-up) on first use.

    A line of plain printable text (``markup=False, soft_wrap=True``, as the commands print their
    summaries) is written straight to stderr while the console is not made yet and stderr is no
    terminal: Rich would write the same characters (no styles, no wrapping), so a run whose
    output goes to a pipe or a file does not load Rich to print two lines.
    """

    def __init__(self) -> None:
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The Rich console itself."""
        if self._console is None:
            from rich.console import Console

            # Messages carry file names: no markup or emoji codes may be read out of them (see _say).
            self._console = Console(stderr=True, highlight=False, emoji=False)
        return self._console

    def print(self, *objects: object, **options: object) -> None:
        """``Console.print``; see the class for the plain lines written without Rich."""
        if (self._console is None and len(objects) == 1 and isinstance(objects[0], str) and objects[0].isprintable()
                and options == {"markup": False, "soft_wrap": True} and not _is_terminal(sys.stderr)):
            sys.stderr.write(objects[0] + "\n")
            sys.stderr.flush()
            return
        self.console.print(*objects, **options)

    def __getattr__(self, name: str) -> object:
        return getattr(self.console, name)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream: let Rich say so
        return True


def _maybe_interactive() -> bool:
    """False when Rich's console could not be interactive (stderr no terminal, no override in the
    environment), so that a run on a pipe decides against bars without importing Rich."""
    forced = os.environ.get("TTY_INTERACTIVE") == "1" or bool(os.environ.get("FORCE_TERMINAL"))
    return forced or _is_terminal(sys.stderr)


err_console = _ErrConsole()


def _say(style: str, label: str, message: object) -> None:
    """Print ``label message`` as one line on stderr; ``message`` is shown literally.

    A path such as ``shots[1]/a.jpg`` or ``a[/]b`` must not be taken for Rich
    markup (which would swallow it or raise), and line breaks inside a message
    would break the one-line promise.
    """
    from rich.markup import escape

    text = " ".join(str(message).splitlines())
    err_console.print(f"[{style}]{label}[/] {escape(text)}", soft_wrap=True)


def _warning_printer(run: Run):  # noqa: ANN202
    """A ``warnings.showwarning`` that prints one line on stderr and keeps the text for ``--json``."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, PostfocusWarning):
            _say("yellow", "warning:", message)
            run.warnings.append(str(message))
        else:
            _say("dim", "warning:", f"{category.__name__}: {message}")

    return show


_FOLDER_OPTIONS = frozenset({"cache_dir", "data_dir", "out_dir"})
"""Options that take a folder of postfocus's own: an existing folder there is no input taken by mistake."""


def _usage_line(exc: click.UsageError, ctx: click.Context | None = None) -> str:
    """Click's message, what to give where that is clear, and the help to read."""
    command = exc.ctx.command if exc.ctx is not None else _subcommand(ctx)
    path = exc.ctx.command_path if exc.ctx is not None else _subcommand_path(ctx)
    text = exc.format_message()
    option = _option(command, getattr(exc, "option_name", None))
    if isinstance(exc, click.BadOptionUsage) and option is not None and text.endswith("requires an argument."):
        text = f"{text[:-1]}: give it as {exc.option_name} {_metavar(option)}"
    elif isinstance(exc, click.MissingParameter) and isinstance(exc.param, click.Argument) and exc.ctx is not None:
        hint = _value_taken_as_input(exc.ctx)
        text = f"{text.rstrip('.')}: {hint}" if hint else text
    return text + (f" (see '{path} --help')" if path else "")


def _subcommand(ctx: click.Context | None) -> click.Command | None:
    if ctx is None or not isinstance(ctx.command, click.Group) or not ctx.invoked_subcommand:
        return None
    return ctx.command.get_command(ctx, ctx.invoked_subcommand)


def _subcommand_path(ctx: click.Context | None) -> str:
    return f"{ctx.command_path} {ctx.invoked_subcommand}" if _subcommand(ctx) is not None else ""


def _option(command: click.Command | None, name: str | None) -> click.Option | None:
    params = command.params if command is not None and name else ()
    return next((p for p in params if isinstance(p, click.Option) and name in p.opts), None)


def _metavar(option: click.Option) -> str:
    return option.metavar or option.type.name.upper()


def _value_taken_as_input(ctx: click.Context) -> str:
    """For a missing INPUTS: the path option that took an existing file as its own, and the order that works."""
    args = ctx.meta.get("postfocus.args", [])
    for flag, value in zip(args, args[1:]):
        option = _option(ctx.command, flag)
        if option is None or option.is_flag or not isinstance(option.type, click.Path) or not os.path.exists(value):
            continue
        if option.name in _FOLDER_OPTIONS and os.path.isdir(value):  # a cache folder, not a stack
            continue
        return (f"{flag} took {value} as its {_metavar(option)}; give the option a value of its own: "
                f"{ctx.command_path} {shlex.quote(value)} {flag} {_metavar(option)}")
    return ""


def user_message(exc: PostfocusError, ctx: click.Context | None = None) -> str:
    """The one line a person sees for a library error: parameters named as flags, fixes named by their option."""
    if isinstance(exc, OptionError):
        return flag_message(exc)
    if isinstance(exc, CacheError):
        return f"{exc}; choose another folder with --cache DIR"
    text = str(exc)
    if text.endswith("or allow overwriting") and ctx is not None and _has_option(ctx, "--overwrite"):
        return text[: -len("allow overwriting")] + "pass --overwrite to replace them"
    return text


def _has_option(ctx: click.Context, flag: str) -> bool:
    sub = ctx.command.get_command(ctx, ctx.invoked_subcommand) if isinstance(ctx.command, click.Group) else None
    return sub is not None and any(flag in getattr(p, "opts", ()) for p in sub.params)


class CommandModules(MutableMapping):
    """The commands of the root group, each imported from its module when it is first asked for.

    A run of ``postfocus stack`` then imports the stack command's module only, not the web
    server's, the batch runner's or the 3D mesh's. Each module ``package.NAME`` registers the
    command ``NAME`` on :data:`main` when imported. Listing the commands (``--help``, the
    config file's check) imports them all.
    """

    def __init__(self, package: str, names: list[str]):
        self._package, self._names = package, list(names)
        self._commands: dict[str, click.Command] = {}

    def _load(self, name: str) -> None:
        if name in self._names and name not in self._commands:
            importlib.import_module(f"{self._package}.{name}")

    def _load_all(self) -> None:
        for name in self._names:
            self._load(name)

    def __getitem__(self, name: str) -> click.Command:
        self._load(name)
        return self._commands[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._commands[name] = command

    def __delitem__(self, name: str) -> None:
        del self._commands[name]

    def __contains__(self, name: object) -> bool:
        return name in self._commands or name in self._names

    def __iter__(self):  # noqa: ANN204
        self._load_all()
        return iter(dict(self._commands))

    def __len__(self) -> int:
        self._load_all()
        return len(self._commands)


class PostfocusGroup(click.Group):
    """Click group that turns PostfocusError into a one-line message and exit code.

    With ``--json`` a failed command also prints one JSON object on stdout
    (``"ok": false`` and the error). The config file (:mod:`postfocus.cli.config`)
    is read here, once, as the ``default_map``.
    """

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: ANN001, ANN201
        """Options of the root command itself (e.g. --threads) get the same one-line errors."""
        try:
            if parent is None and "default_map" not in extra and not extra.get("resilient_parsing"):
                extra["default_map"] = default_map(self)
            return super().make_context(info_name, args, parent=parent, **extra)
        except _NO_ARGS:
            raise  # plain 'postfocus': the help, as click prints it
        except click.UsageError as exc:
            if "--debug" in args:
                raise
            _say("red", "postfocus: error:", _usage_line(exc))
            sys.exit(EXIT_USER_ERROR)
        except ConfigError as exc:
            _say("red", "postfocus: error:", exc)
            sys.exit(EXIT_USER_ERROR)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["postfocus.args"] = list(args)
        return super().parse_args(ctx, args)

    def _fail(self, ctx: click.Context, label: str, message: object, code: int) -> None:
        """Say what went wrong in one line on stderr (and as JSON on stdout with --json); exit."""
        _say("red", label, message)
        run = current_run(ctx)
        if run.json or "--json" in ctx.meta.get("postfocus.args", ()):
            run.command = run.command or (ctx.invoked_subcommand or "")
            click.echo(json.dumps(run.error(" ".join(str(message).splitlines())), indent=2))
        sys.exit(code)

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        debug = bool(ctx.params.get("debug"))
        if not isinstance(ctx.obj, dict):
            ctx.obj = {}
        run = ctx.obj.setdefault("run", Run())
        previous = warnings.showwarning
        warnings.showwarning = _warning_printer(run)
        warnings.simplefilter("default", PostfocusWarning)
        try:
            return super().invoke(ctx)
        except PostfocusError as exc:
            if debug:
                raise
            self._fail(ctx, "postfocus: error:", user_message(exc, ctx), EXIT_USER_ERROR)
        except click.UsageError as exc:  # a bad option value: one line too, with where to look
            if debug:
                raise
            self._fail(ctx, "postfocus: error:", _usage_line(exc, ctx), EXIT_USER_ERROR)
        except KeyboardInterrupt:
            err_console.print("postfocus: interrupted; no output was written")
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except MemoryError:
            self._fail(ctx, "postfocus: error:", "out of memory; try 'stack --memory MB' or fewer frames", EXIT_INTERNAL)
        except Exception as exc:  # an internal bug: still one line unless --debug
            if debug:
                raise
            self._fail(ctx, "postfocus: internal error:",
                       f"{type(exc).__name__}: {exc} (run with --debug for details)", EXIT_INTERNAL)
        finally:
            warnings.showwarning = previous


@click.group(cls=PostfocusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="postfocus")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=None,
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
    ctx.ensure_object(dict).update(debug=debug, quiet=quiet, threads=threads)
    current_run(ctx).command = ctx.invoked_subcommand or ""


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
    """Callable ``(stage, done, total)``: Rich progress bars with ETA on a terminal, and stage times for --json.

    The bars start with the first stage that reports (a command whose work is
    all cached prints nothing, not an empty line).
    """

    def __init__(self, progress: Progress | None, run: Run | None = None):
        self._progress = progress
        self._run = run
        self._tasks: dict[str, int] = {}
        self.started = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._run is not None:
            self._run.progress(stage)
        if self._progress is None:
            return
        if not self.started:
            self._progress.start()
            self.started = True
        task = self._tasks.get(stage)
        if task is None:
            task = self._progress.add_task(stage, total=total)
            self._tasks[stage] = task
        self._progress.update(task, completed=done, total=total)


@contextmanager
def progress_bars(quiet: bool = False) -> Iterator[ProgressReporter]:
    """Context giving a progress callback: bars on an interactive terminal unless quiet; stage times always.

    On a pipe or a file (a log, a script reading stderr) no bars are drawn:
    Rich could only print their last state there.
    """
    run = current_run()
    if quiet or not _maybe_interactive() or not err_console.is_interactive:
        yield ProgressReporter(None, run)
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn  # only when bars are drawn (about 20 ms of start-up)

    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console.console,
        transient=False,
    )
    reporter = ProgressReporter(progress, run)
    try:
        yield reporter
    finally:
        if reporter.started:
            progress.stop()


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
