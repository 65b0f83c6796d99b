"""``labkeep import TOOL WHERE``: bring runs from MLflow, TensorBoard, W&B, Sacred and Guild.

The command opens the tool's store (:mod:`labkeep.integrations`), shows a progress bar while
:func:`~labkeep.integrations._importing.import_runs` writes, and prints what was imported,
skipped (already there) and not understood; the last makes the exit status non-zero.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from labkeep.cli._context import client_from

if TYPE_CHECKING:
    from labkeep.integrations import ImportReport, Source


@click.group("import")
def import_group() -> None:
    """Import runs from another tracker's store; importing again adds only what is new."""


def _run_import(ctx: click.Context, open_source: Callable[[], Source]) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from labkeep.integrations import import_runs

    client = client_from(ctx)
    source = open_source()
    console = Console(stderr=True)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task(f"reading {source.location}", total=None, last="")

            def started(total: int) -> None:
                progress.update(task, total=total, description=f"importing from {source.tool}")

            report = import_runs(
                client.store,
                source,
                on_start=started,
                on_progress=lambda p: progress.update(
                    task, completed=p.done, last=f"{p.outcome} {p.run_id}"
                ),
            )
    finally:
        source.close()
    _print_report(report)
    if report.failed:
        sys.exit(1)


def _print_report(report: ImportReport) -> None:
    imported = len(report.imported)
    line = f"imported {imported} run(s) from {report.tool} {report.location}"
    if report.imported:
        first, last = min(report.imported), max(report.imported)
        line += f" as {first}" if first == last else f" as {first}-{last}"
    line += f"; skipped {len(report.skipped)} already imported"
    if report.failed:
        line += f"; {len(report.failed)} not understood (not imported)"
    click.echo(line)
    for _run_id, reason in report.failed:
        click.secho(f"labkeep: not imported: {reason}", fg="red", err=True)


@import_group.command("mlflow")
@click.argument("where", metavar="MLRUNS|sqlite:///FILE|http://HOST:PORT")
@click.pass_context
def mlflow_command(ctx: click.Context, where: str) -> None:
    """Import an MLflow store: a file store directory, a database URI, or a tracking server.

    \b
      labkeep import mlflow ./mlruns
      labkeep import mlflow sqlite:///mlflow.db
      labkeep import mlflow http://127.0.0.1:5000
    """
    from labkeep.integrations import MlflowSource

    _run_import(ctx, lambda: MlflowSource(where))


def _add_directory_command(tool: str, source: str, argument: str, help_text: str) -> None:
    """``labkeep import TOOL ARGUMENT``: import the runs a tool wrote to a directory, through
    the :mod:`labkeep.integrations` source class named ``source``."""

    @import_group.command(tool, help=help_text)
    @click.argument(argument, type=click.Path(file_okay=False))
    @click.pass_context
    def command(ctx: click.Context, /, **arguments: str) -> None:
        from labkeep import integrations

        _run_import(ctx, lambda: getattr(integrations, source)(arguments[argument]))


_add_directory_command(
    "tensorboard",
    "TensorboardSource",
    "logdir",
    """Import TensorBoard event files: each directory holding them is one run (scalars,
    HParams).

    \b
      labkeep import tensorboard ./runs
    """,
)
_add_directory_command(
    "sacred",
    "SacredSource",
    "directory",
    """Import the runs a Sacred FileStorageObserver wrote to DIRECTORY.

    \b
      labkeep import sacred ./my_runs
    """,
)
_add_directory_command(
    "wandb",
    "WandbSource",
    "directory",
    """Import W&B runs: DIRECTORY is a wandb/ directory of offline or synced runs, or one run.

    \b
      labkeep import wandb ./wandb
    """,
)
_add_directory_command(
    "guild",
    "GuildSource",
    "directory",
    """Import Guild AI runs: DIRECTORY is a runs directory (~/.guild/runs) or one run.

    \b
      labkeep import guild ~/.guild/runs
    """,
)
