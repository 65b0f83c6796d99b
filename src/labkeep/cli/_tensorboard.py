"""``labkeep tensorboard``: runs as TensorBoard event files, and TensorBoard started on them.

The export is :func:`labkeep.integrations.export_runs`; this module selects the runs, picks
the log directory and formats what happened.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from labkeep.cli._context import client_from
from labkeep.errors import NotFoundError

if TYPE_CHECKING:
    from labkeep.store import Store


@click.command("tensorboard")
@click.argument("runs", nargs=-1)
@click.option("-w", "--where", metavar="EXPR", help="Only runs that match (see labkeep runs).")
@click.option("-e", "--experiment", help="Only runs of this experiment.")
@click.option(
    "--logdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the event files (default: tensorboard/ beside the store's journals).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=6006,
    show_default=True,
    help="Port of TensorBoard on 127.0.0.1.",
)
@click.option("--no-start", is_flag=True, help="Only write the event files.")
@click.pass_context
def tensorboard_command(
    ctx: click.Context,
    runs: tuple[str, ...],
    where: str | None,
    experiment: str | None,
    logdir: Path | None,
    port: int,
    no_start: bool,
) -> None:
    """Show runs in TensorBoard: scalars per step, and params and metrics in its HParams view.

    RUNS are numbers, names, uuid prefixes or 'last'; with none, every run that matches
    --where and -e. Exporting again rewrites only the runs that changed, and removes
    from the log directory the runs exported before that are not selected now.

    \b
      labkeep tensorboard
      labkeep tensorboard -e mnist --where "params.lr < 0.01" --port 6007
      labkeep tensorboard 3 4 --logdir tb --no-start
    """
    from labkeep.integrations import check_port, export_runs, require_tensorboard

    require_tensorboard()
    if not no_start:
        check_port(port)  # before the export: a port in use is known at once
    client = client_from(ctx)
    client.recover()
    numbers = _select(client.store, runs, where, experiment)
    if not numbers:
        scope = f" in experiment {experiment!r}" if experiment else ""
        raise NotFoundError(
            f"no runs{' that match' if where or runs else ''}{scope} in {client.location.uri}"
        )
    target = logdir if logdir is not None else client.location.journal_dir.parent / "tensorboard"
    report = export_runs(client.store, numbers, target)
    line = f"wrote {len(report.written)} run(s) to {report.logdir}"
    if report.unchanged:
        line += f"; {len(report.unchanged)} unchanged"
    click.echo(line)
    if no_start:
        click.echo(f"open it with: tensorboard --logdir {report.logdir}")
        return
    _serve(report.logdir, port)


def _select(
    store: Store, refs: tuple[str, ...], where: str | None, experiment: str | None
) -> list[int]:
    """The named runs (filtered when asked), else every run that matches, oldest first."""
    from labkeep.cli._compare import select_runs

    sort = None if refs else "number"
    return select_runs(store, refs, where, experiment, sort, None, default_limit=None)


def _serve(logdir: Path, port: int) -> None:
    from labkeep.integrations import start_tensorboard

    process = start_tensorboard(logdir, port)
    click.echo(f"TensorBoard at http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        return
    if code != 0:
        click.secho(f"labkeep: TensorBoard exited with status {code}", fg="red", err=True)
        sys.exit(1)
