"""``labkeep rerun``: parse the options, plan and run the rerun with :mod:`labkeep.repro`,
show the drift before it and the verdict after it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from labkeep.cli._context import client_from
from labkeep.cli._params import check_creatable
from labkeep.cli._terminal import console, markup, message, styled, write_output
from labkeep.errors import InvalidInputError, StoreError

if TYPE_CHECKING:
    from labkeep.repro import DriftRow, VerdictReport


@click.command("rerun", context_settings={"ignore_unknown_options": False})
@click.argument("run")
@click.argument("overrides", nargs=-1)
@click.option("--verify", is_flag=True, help="Compare the new run with RUN and print a verdict.")
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, help="Relative tolerance.")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, help="Absolute tolerance.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the snapshot's code (default: <store>/reruns/RUN-xxxxxx).",
)
@click.option(
    "--allow-changed-inputs", is_flag=True, help="Run even if an input changed since RUN."
)
@click.option(
    "--ignore",
    "ignore",
    metavar="PATTERN",
    multiple=True,
    help="With --verify, leave output files matching PATTERN (gitignore syntax) out of the "
    "verdict; repeatable.",
)
@click.pass_context
def rerun_command(
    ctx: click.Context,
    run: str,
    overrides: tuple[str, ...],
    verify: bool,
    rtol: float,
    atol: float,
    directory: Path | None,
    allow_changed_inputs: bool,
    ignore: tuple[str, ...],
) -> None:
    """Run RUN again from its snapshot: same code, interpreter, flags and inputs.

    NAME=VALUE arguments override flags (runs started with `labkeep run`). Drift since RUN
    (Python, packages, git, inputs) is reported first; a changed input stops the rerun unless
    --allow-changed-inputs. With --verify, exit status 0 means reproduced.
    """
    from labkeep.repro import (
        blocked_message,
        check_target,
        drift_rows,
        execute_rerun,
        no_drift_line,
        plan_rerun,
        verdict_report,
        verify_rerun,
    )

    if ignore and not verify:
        raise InvalidInputError("--ignore only applies to a verdict: add --verify")
    client = client_from(ctx)
    if directory is not None:
        check_creatable(directory, "directory")
        check_target(directory.absolute())
    plan = plan_rerun(client, run, overrides, directory=directory)
    err = console(stderr=True)
    number = plan.source.number
    if plan.drift:
        err.print(_drift_table(drift_rows(plan.drift)))
    else:
        err.print(markup(no_drift_line(number)))
    if plan.blocking and not allow_changed_inputs:
        raise InvalidInputError(blocked_message(plan.blocking, number))
    err.print(f"[bold]rerunning run {number}[/] in {plan.directory}")
    for name, version in sorted(plan.artifacts.items()):
        err.print(f"uses {name}:v{version}, the version run {number} used", markup=False)
    sys.stdout.flush()
    result = execute_rerun(client, plan, on_output=write_output, on_message=message)
    if result.number is None:
        raise StoreError(
            f"the rerun ({result.status.value}) is kept on this machine as run "
            f"{result.uuid[:8]}: `labkeep sync` sends it when {client.location.uri} is back"
        )
    err.print(
        f"run {result.number} ({result.status.value}, exit code {result.exit_code}) "
        f"is a rerun of run {number}"
    )
    if verify:
        verdict = verify_rerun(client, plan, result.number, rtol=rtol, atol=atol, ignore=ignore)
        report = verdict_report(verdict, number, result.number)
        _print_verdict(report)
        ctx.exit(0 if report.reproduced else 1)
    ctx.exit(0 if result.exit_code == 0 else 1)


def _drift_table(rows: list[DriftRow]) -> object:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="drift since the run", title_justify="left", box=None, header_style="bold")
    for col in ("", "what", "then", "now", "why"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(  # names, versions and paths are text, never markup
            styled((row.mark,)),
            Text(row.what),
            styled((row.then,)),
            styled((row.now,)),
            Text(row.why),
        )
    return table


def _print_verdict(report: VerdictReport) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=markup(report.title), title_justify="left", header_style="bold")
    table.add_column("item", overflow="fold")
    table.add_column(f"run {report.original}", overflow="fold")
    table.add_column(f"run {report.new}", overflow="fold")
    table.add_column("verdict")
    for row in report.rows:
        table.add_row(  # names and values are text, never markup
            Text(row.item), Text(row.original), Text(row.new), styled((row.verdict,))
        )
    out = console()
    out.print(table)
    if report.children:
        out.print(markup(report.children))
    if report.skipped:
        out.print(markup(report.skipped), soft_wrap=True)
