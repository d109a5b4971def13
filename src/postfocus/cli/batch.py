"""``postfocus batch``: merge many stacks on a Dask cluster, resumably."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
from rich.markup import escape

from postfocus.cli.common import err_console, is_quiet, main, progress_bars
from postfocus.cli.output import finish, json_option, plural
from postfocus.options import ALIGN_MODELS, METHODS, ORDERS

__all__ = ["EXIT_INTERRUPTED", "EXIT_STACKS_FAILED", "batch_command"]

EXIT_STACKS_FAILED = 3
EXIT_INTERRUPTED = 130


def _raise_interrupt(signum, frame):  # noqa: ANN001
    raise KeyboardInterrupt


@main.command("batch")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the results (created if missing), results.jsonl and results.csv.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:8786",
              help="Address of a running `dask scheduler`; default: a local cluster on this machine.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes of the local cluster [default: one per CPU core].")
@click.option("--memory-limit", default=None, metavar="4GB",
              help="Memory per local worker; a worker above it is restarted and its stack rerun [default: RAM/workers].")
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="Fusion method for every stack [default: depthmap]; a manifest's method column wins.")
@click.option("--align", "align", type=click.Choice(ALIGN_MODELS), default=None,
              help="Motion model for every stack [default: similarity]; a manifest's align column wins.")
@click.option("--order", type=click.Choice(ORDERS), default=None,
              help="Which frame is focused nearest in every stack (as `stack --order`) [default: near-to-far]; "
                   "a manifest's order column wins.")
@click.option("--format", "fmt", type=click.Choice(["jpg", "png", "tif"]), default="jpg", show_default=True,
              help="Format of the results named after their stacks.")
@click.option("--quality", type=click.IntRange(1, 100), default=None, help="JPEG quality [default: 95].")
@click.option("--retry-failed", is_flag=True,
              help="Redo only the stacks that failed in an earlier run (default: redo failed and missing ones).")
@json_option
@click.pass_context
def batch_command(ctx, inputs, out_dir, scheduler, workers, memory_limit, method, align, order, fmt, quality, retry_failed):
    """Merge many stacks, each a task on a Dask cluster.

    INPUTS are folders of stacks (one sub-folder per stack; a folder that holds
    images is itself one stack), video files, or CSV manifests with columns
    input, output and optionally method, align, reference, crop, range, order, quality.

    A rerun skips stacks already done (output decodes, results.jsonl says ok for
    the same input) and redoes failed and missing ones. Exit status: 0 when
    every stack is done, 3 when any failed, 130 when interrupted.
    """
    from postfocus.batch import find_stacks, run_batch

    if scheduler and workers:
        raise click.UsageError("--scheduler and --workers exclude each other: workers join the scheduler")
    if scheduler and memory_limit:
        err_console.print(
            "[yellow]warning:[/] --memory-limit applies to the local cluster; with --scheduler set it on each "
            "`dask worker --memory-limit ...`"
        )
        memory_limit = None
    options = {"method": method, "align": align, "order": order, "quality": quality}
    jobs = find_stacks(list(inputs), out_dir, fmt=fmt, options={k: v for k, v in options.items() if v is not None})
    quiet = is_quiet(ctx)
    where = f"scheduler {scheduler}" if scheduler else "a local cluster"

    total = len(jobs)
    done = 0

    def on_plan(to_run, skipped, not_run):
        nonlocal total
        total = len(to_run) + len(skipped)
        text = f"batch: {plural(len(jobs), 'stack')}; {len(to_run)} to run on {where}"
        if skipped:
            text += f", {len(skipped)} already done"
        if not_run:
            text += f", {len(not_run)} left alone (--retry-failed redoes only failed ones)"
        err_console.print(text, soft_wrap=True)

    try:  # a cluster job manager's SIGTERM shuts down like Ctrl-C: finished results stay recorded
        previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous_term = None
    try:
        with progress_bars(quiet) as progress:
            def on_result(rec):
                nonlocal done
                done += 1
                if rec.status == "failed":
                    message = rec.error if rec.input in (rec.error or "") else f"{rec.input}: {rec.error}"
                    err_console.print(f"[red]failed:[/] {escape(message)}", soft_wrap=True)
                progress("stacks", done, total)

            summary = run_batch(jobs, out_dir, scheduler=scheduler, workers=workers, memory_limit=memory_limit,
                                retry_failed=retry_failed, on_plan=on_plan, on_result=on_result)
    except KeyboardInterrupt:
        err_console.print(
            escape(f"postfocus: interrupted; {done} result(s) are recorded in {out_dir / 'results.jsonl'}; "
                   "run the same command again to resume"),
            soft_wrap=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    err_console.print(escape(f"batch: {summary.line()}; results in {out_dir / 'results.csv'}"), soft_wrap=True)
    finish([out_dir / "results.csv", out_dir / "results.jsonl"],
           stacks={"total": summary.total, "ok": summary.ok, "failed": summary.failed, "skipped": summary.skipped,
                   "not_run": summary.not_run},
           results=[r.to_dict() for r in summary.records])
    if summary.failed:
        ctx.exit(EXIT_STACKS_FAILED)
