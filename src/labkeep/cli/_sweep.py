"""``labkeep sweeps`` and ``labkeep sweep show|resume|stop``; the sweep half of ``labkeep run``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import STATUS_STYLES, format_time, format_value
from labkeep.cli._table import Column, TextTable, terminal_width, use_color
from labkeep.cli._terminal import message, write_output

if TYPE_CHECKING:
    from labkeep.sweep._controller import SweepResult
    from labkeep.sweep._report import TrialRow


def report(result: SweepResult, ctx: click.Context) -> None:
    """The one line ``labkeep run`` and ``labkeep sweep resume`` end a sweep with."""
    best = ""
    if result.front:
        best = "; pareto front: run " + ", ".join(str(t.number) for t in result.front)
    elif result.best_value is not None:
        values = " ".join(f"{k}={format_value(v)}" for k, v in result.best_params.items())
        best = f"; best {result.best_value:.6g} (run {result.best_number}: {values})"
    color = {"completed": "green", "failed": "red"}.get(result.status.value, "yellow")
    pruned = f", {result.pruned} pruned" if result.pruned else ""
    click.secho(
        f"sweep {result.number} {result.status.value}: {result.completed} completed, "
        f"{result.failed} failed{pruned}{best} (labkeep sweep show {result.number})",
        fg=color,
        err=True,
    )
    ctx.exit({"interrupted": 130, "failed": 1}.get(result.status.value, 0))


@click.command("sweeps")
@click.pass_context
def sweeps_command(ctx: click.Context) -> None:
    """List sweeps, newest first."""
    from labkeep.sweep import list_sweeps

    records = list_sweeps(client_from(ctx))
    if not records:
        click.echo("no sweeps yet: labkeep run train.py 'x=[-2.0:2.0]' --minimize loss")
        return
    table = TextTable(
        [Column("#", justify="right", style="cyan"), Column("target", shrink=True),
         Column("optimizer"), Column("objective"), Column("status"), Column("trials"),
         Column("best"), Column("started")]
    )  # fmt: skip
    for record in records:
        s, p = record.summary, record.params
        objective = p.get("sweep.objective") or ""
        direction = str(p.get("sweep.direction", "minimize"))
        if objective and "," in direction:  # several objectives: "min loss, max acc"
            pairs = zip(direction.split(", "), str(objective).split(", "), strict=False)
            objective = ", ".join(f"{d[:3]} {m}" for d, m in pairs)
        elif objective:
            objective = f"{direction[:3]} {objective}"
        done = sum(int(s.get(f"trials.{k}", 0)) for k in ("completed", "failed", "pruned"))
        table.add_row(
            [
                str(record.info.number),
                str(p.get("sweep.target", "")),
                str(p.get("sweep.optimizer", "")),
                objective,
                record.info.status.value,
                f"{done}/{s.get('trials.total', '?')}",
                f"front of {len(s['pareto.runs'])}"
                if isinstance(s.get("pareto.runs"), list)
                else ""
                if s.get("best.value") is None
                else f"{s['best.value']:.6g}",
                format_time(record.info.start_time),
            ],
            ["", "", "", "", STATUS_STYLES.get(record.info.status.value, "")],
        )
    for line in table.render(terminal_width(), color=use_color()):
        click.echo(line)


class _SweepGroup(click.Group):
    """``labkeep sweep FILE.yaml`` runs a W&B sweep file; ``labkeep sweep show N`` and the
    other words are subcommands."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "file", file_command, args
        return super().resolve_command(ctx, args)


@click.group("sweep", cls=_SweepGroup)
def sweep_group() -> None:
    """Run a W&B sweep file, or show, resume or stop a sweep.

    \b
      labkeep sweep sweep.yaml --parallel 2      # W&B's sweep configuration
      labkeep sweep show 3 ; labkeep sweep resume 3 ; labkeep sweep stop 3
    Start one from the command line with a search space:
      labkeep run train.py 'x=[-2.0:2.0]' --minimize loss
    """


def _trial_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of how a sweep's trials run, shared by ``labkeep sweep FILE`` and ``resume``:
    ``--dask``, ``--retry-failed`` and ``-q``."""
    options = (
        click.option("--dask", metavar="ADDRESS",
                     help="Run the trials on this Dask scheduler's workers (or LABKEEP_DASK)."),
        click.option("--retry-failed", "retry_failed", type=click.IntRange(min=0), default=0,
                     metavar="N", help="Run a failed or killed trial again, up to N times."),
        click.option("-q", "--quiet", is_flag=True, help="Do not echo the trials' output."),
    )  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _how_trials_run(dask: str | None, retry_failed: int, quiet: bool) -> dict[str, Any]:
    """What those options ask of ``start_sweep`` and ``resume_sweep``."""
    from labkeep.sweep._dask import dask_address

    return {
        "on_output": None if quiet else write_output,
        "on_message": message,
        "dask": dask_address(dask),
        "retry_failed": retry_failed,
    }


@click.command("file")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--parallel", type=click.IntRange(min=1), default=1, help="Trials at once.")
@click.option("--max-trials", type=click.IntRange(min=1), help="At most N trials (run_cap).")
@_trial_options
@click.pass_context
def file_command(
    ctx: click.Context,
    path: Path,
    parallel: int,
    max_trials: int | None,
    dask: str | None,
    retry_failed: int,
    quiet: bool,
) -> None:
    """Run the sweep a W&B sweep file (YAML) describes."""
    from labkeep.sweep import plan_wandb_sweep, start_sweep

    client = client_from(ctx)
    spec, config = plan_wandb_sweep(
        client, path, cwd=Path.cwd().resolve(), parallel=parallel, max_trials=max_trials
    )
    result = start_sweep(
        client,
        spec,
        name=config.name,
        notes=config.notes,
        **_how_trials_run(dask, retry_failed, quiet),
    )
    report(result, ctx)


@sweep_group.command("show")
@click.argument("sweep")
@click.pass_context
def show_command(ctx: click.Context, sweep: str) -> None:
    """SWEEP's spec, its best trial, its trials sorted by the objective and the importance of
    each searched flag."""
    from labkeep.sweep import sweep_report

    report_ = sweep_report(client_from(ctx), sweep)
    record, spec = report_.sweep, report_.spec
    click.echo(f"sweep {record.info.number} {record.info.status.value}: "
               f"{spec.target}, optimizer {spec.optimizer}")  # fmt: skip
    if spec.multi_objective:
        click.echo("objectives: " + ", ".join(f"{d} {m}" for m, d in spec.objectives))
    elif spec.objective:
        click.echo(f"objective: {spec.direction} {spec.objective}")
    click.echo("space: " + " ".join(f"{k}={v}" for k, v in spec.spelled.items()))
    if spec.fixed:
        click.echo("fixed: " + " ".join(spec.fixed))
    summary = record.summary
    done = int(summary.get("trials.completed", 0)) + int(summary.get("trials.failed", 0))
    pruned = int(summary.get("trials.pruned", 0))
    done += pruned
    click.echo(f"trials: {done} of {spec.max_trials} done "
               f"({summary.get('trials.completed', 0)} completed, "
               f"{summary.get('trials.failed', 0)} failed"
               + (f", {pruned} pruned" if pruned else "") + ")")  # fmt: skip
    if spec.pruner:
        click.echo(f"pruner: {spec.pruner}")
    best = report_.best
    if best is not None and best.value is not None:
        click.echo(f"best: run {best.record.info.number}, {spec.objective} = {best.value:.6g}")
    objectives = [m for m, _ in spec.objectives] or [spec.objective or "objective"]
    if spec.multi_objective:
        click.echo(f"pareto front: {len(report_.front)} trial(s)")
        for row in report_.front:
            values = ", ".join(
                f"{m} = {v:.6g}" for m, v in zip(objectives, row.values or (), strict=False)
            )
            click.echo(f"  run {row.record.info.number} (trial {row.index}): {values}")
    if report_.importances:
        click.echo("importance: " + ", ".join(
            f"{k} {v:.2f}" for k, v in report_.importances.items()))  # fmt: skip
    names = list(spec.spelled)
    table = TextTable(
        [Column("trial", justify="right"), Column("run", justify="right", style="cyan"),
         Column("status"), *(Column(m, justify="right") for m in objectives),
         *(Column(n) for n in names)]
    )  # fmt: skip
    for row in report_.trials:
        status = row.status
        table.add_row(
            [
                "" if row.index is None else str(row.index),
                str(row.record.info.number),
                status,
                *_objective_cells(row, len(objectives)),
                *(format_value(row.params.get(n)) for n in names),
            ],
            ["", "", STATUS_STYLES.get(status, "")],
        )
    for line in table.render(terminal_width(), color=use_color()):
        click.echo(line)


@sweep_group.command("resume")
@click.argument("sweep")
@click.option(
    "--parallel", type=click.IntRange(min=1), help="Trials at once (default: as started)."
)
@click.option("--max-trials", type=int, help="A new budget; the trials done count towards it.")
@_trial_options
@click.pass_context
def resume_command(
    ctx: click.Context,
    sweep: str,
    parallel: int | None,
    max_trials: int | None,
    dask: str | None,
    retry_failed: int,
    quiet: bool,
) -> None:
    """Run the trials SWEEP has left (after Ctrl-C, labkeep sweep stop, a crash or a reboot)."""
    from labkeep.sweep import resume_sweep

    result = resume_sweep(
        client_from(ctx),
        sweep,
        parallel=parallel,
        max_trials=max_trials,
        **_how_trials_run(dask, retry_failed, quiet),
    )
    report(result, ctx)


@sweep_group.command("stop")
@click.argument("sweep")
@click.option("--grace", type=float, default=10.0, show_default=True,
              help="Seconds to wait before killing the sweep's process.")  # fmt: skip
@click.pass_context
def stop_command(ctx: click.Context, sweep: str, grace: float) -> None:
    """Stop SWEEP: its running trials stop, it ends interrupted and can be resumed."""
    from labkeep.sweep import stop_sweep

    number = stop_sweep(client_from(ctx), sweep, grace=grace)
    click.echo(f"sweep {number} stopped (labkeep sweep resume {number} runs what is left)")


def _objective_cells(row: TrialRow, count: int) -> list[str]:
    values = row.values if row.values is not None else (row.value,) if count == 1 else ()
    if len(values) != count:
        return [""] * count
    return ["" if v is None else f"{v:.6g}" for v in values]
