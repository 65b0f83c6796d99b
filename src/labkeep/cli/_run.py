"""``labkeep run`` and ``labkeep stop``: parse, call the runner, format what comes back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from labkeep.cli._context import client_from
from labkeep.cli._terminal import message, write_output
from labkeep.runner._detect import DETECT_TIMEOUT, DETECT_TIMEOUT_ENV

_RAW_ARGS = "labkeep.raw_args"


class _RunCommand(click.Command):
    """Everything after the first ``--`` goes to the script untouched (click would otherwise
    mix it into the ``name=value`` arguments)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta[_RAW_ARGS] = tuple(args[cut + 1 :])
            args = args[:cut]
        return super().parse_args(ctx, args)


@click.command("run", cls=_RunCommand)
@click.argument("target", type=click.Path(path_type=Path))
@click.argument("assignments", nargs=-1)
@click.option("-e", "--experiment", default="default", show_default=True, help="Experiment.")
@click.option("-n", "--name", default="", help="Name of the run.")
@click.option("--tag", "tags", multiple=True, help="Tag the run (repeatable).")
@click.option("--note", default="", help="Notes for the run.")
@click.option("--flags", "show_flags", is_flag=True, help="Show the detected flags; run nothing.")
@click.option(
    "--config", type=click.Path(path_type=Path), help="YAML/JSON config whose keys are flags."
)
@click.option(
    "--input", "inputs", multiple=True, help="Fingerprint an input file or directory (repeatable)."
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    help="Seed random, numpy, torch and PYTHONHASHSEED.",
)
@click.option("--no-capture", is_flag=True, help="Do not record the code/environment snapshot.")
@click.option("--no-scalars", is_flag=True, help="Do not read metrics from the output.")
@click.option(
    "--bridge-only",
    is_flag=True,
    help="Record the script's MLflow/W&B/TensorBoard/Sacred calls without running those tools.",
)
@click.option(
    "--no-bridges", is_flag=True, help="Do not record the script's MLflow/W&B/TensorBoard calls."
)
@click.option(
    "--autolog",
    is_flag=True,
    help="Log the script's scikit-learn, XGBoost and LightGBM training (labkeep.autolog()).",
)
@click.option(
    "--scalar-regex",
    "scalar_patterns",
    multiple=True,
    metavar="REGEX",
    help="Read metrics with this regex (groups key and value; repeatable).",
)
@click.option(
    "--scalar-key",
    "scalar_keys",
    multiple=True,
    metavar="FLAG",
    help="Record FLAG as a metric when the script prints it (flags it prints are otherwise "
    "taken as echoes; repeatable).",
)
@click.option(
    "--detect-timeout",
    type=click.FloatRange(min=0),
    default=DETECT_TIMEOUT,
    show_default=True,
    envvar=DETECT_TIMEOUT_ENV,
    show_envvar=True,
    metavar="SECONDS",
    help="When a script's flags can only be read from its parser as it runs: how long it may "
    "take to reach the parser before labkeep says so (the run goes on).",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-q", "--quiet", is_flag=True, help="Do not echo the script's output.")
@click.option("--optimizer", help="Sweep with grid, random, tpe, gp (bayesian), cmaes or qmc.")
@click.option("--max-trials", type=int, help="Sweep: at most N trials (random etc.: 20).")
@click.option(
    "--minimize",
    metavar="METRIC",
    multiple=True,
    help="Sweep: minimize METRIC (loss, loss.min); several: a Pareto front.",
)
@click.option("--maximize", metavar="METRIC", multiple=True, help="Sweep: maximize METRIC.")
@click.option("--opt-flag", "opt_flags", multiple=True, metavar="KEY=VALUE",
              help="Sweep: an argument of the optimizer (seed=1, n_startup_trials=5).")  # fmt: skip
@click.option("--parallel", type=int, help="Sweep: run N trials at once.")
@click.option("--prune", metavar="PRUNER",
              help="Sweep: stop unpromising trials early (median, hyperband, asha).")  # fmt: skip
@click.option("--dask", metavar="ADDRESS",
              help="Sweep: run the trials on this Dask scheduler's workers (or LABKEEP_DASK).")  # fmt: skip
@click.option("--retry-failed", "retry_failed", type=int, metavar="N",
              help="Sweep: run a failed or killed trial again, up to N times.")  # fmt: skip
@click.pass_context
def run_command(ctx: click.Context, /, target: Path, assignments: tuple[str, ...], **options: Any) -> None:  # fmt: skip
    """Run TARGET (a script or notebook) as a tracked run, with flags set as NAME=VALUE.

    \b
      labkeep run train.py lr=0.01 epochs=5
      labkeep run train.ipynb x=-1.0
      labkeep run train.py --flags
      labkeep run main.py -- --epochs 1 data.csv

    A search space makes it a sweep, each trial a run of its own:

    \b
      labkeep run train.py 'x=[-2.0:2.0]' --optimizer tpe --minimize loss --max-trials 20
      labkeep run train.py 'lr=[0.1,0.01,0.001]' 'opt=[adam,sgd]'       # grid: 6 trials
      labkeep run train.py @trials.csv                                  # one trial per row
    """
    from labkeep.runner._launch import LaunchSpec, detect, launch, prepare_launch

    quiet = options["quiet"]
    spec = LaunchSpec(
        target=target,
        assignments=assignments,
        extra_args=ctx.meta.get(_RAW_ARGS, ()),
        experiment=options["experiment"],
        name=options["name"],
        tags=options["tags"],
        notes=options["note"],
        config=options["config"],
        inputs=options["inputs"],
        seed=options["seed"],
        capture=not options["no_capture"],
        scalars=not options["no_scalars"],
        scalar_patterns=options["scalar_patterns"],
        scalar_keys=options["scalar_keys"],
        bridges=None if options["no_bridges"] else "only" if options["bridge_only"] else "on",
        autolog=options["autolog"],
        detect_timeout=options["detect_timeout"],
        on_output=None if quiet else write_output,
        on_message=message,
    )
    client = client_from(ctx)
    if options["show_flags"]:
        _print_flags(*detect(spec, client))
        return
    if _maybe_sweep(ctx, spec, client, options):
        return
    prepared = prepare_launch(spec, client)
    for warning in prepared.flags.warnings:
        message(f"flag detection: {warning}")
    if prepared.flags.deferred is not None and assignments:
        message(
            f"the flags of {target.name} are read from its parser as it runs "
            f"({prepared.flags.deferred}); {' '.join(assignments)} "
            f"{'is' if len(assignments) == 1 else 'are'} checked when it parses them"
        )
    if prepared.flags.warnings and assignments and not options["yes"] and sys.stdin.isatty():
        click.confirm("labkeep: flags may be incomplete; run anyway?", default=True, abort=True)
    result = launch(spec, client, prepared)
    color = {"completed": "green", "failed": "red"}.get(result.status.value, "yellow")
    if result.number is None:
        where = f"kept on this machine: `labkeep sync` sends it to {client.location.uri}"
    else:
        where = f"labkeep show {result.number}"
    name = result.uuid[:8] if result.number is None else result.number
    click.secho(
        f"run {name} {result.status.value} in {result.duration:.1f}s ({where})",
        fg=color,
        err=True,
    )
    ctx.exit(result.exit_code)


_SWEEP_OPTIONS = (
    "optimizer", "max_trials", "minimize", "maximize", "opt_flags", "parallel", "prune",
    "dask", "retry_failed",
)  # fmt: skip


def _maybe_sweep(ctx: click.Context, spec: Any, client: Any, options: dict[str, Any]) -> bool:
    """Run ``spec`` as a sweep when it has a search space or a sweep option; False if not."""
    asked = [k for k in _SWEEP_OPTIONS if options[k]]
    if not asked and not any("[" in a or a.startswith("@") for a in spec.assignments):
        return False
    from labkeep.runner._launch import detect
    from labkeep.sweep import parse_opt_flags, plan_sweep, split_assignments, start_sweep

    _path, flags = detect(spec, client)
    split = split_assignments(flags, spec.assignments, (spec.cwd or Path.cwd()).resolve())
    if not split.space and not asked:
        return False  # a list flag given a list: an ordinary run
    parallel = options["parallel"] if options["parallel"] is not None else 1
    plan = plan_sweep(
        target=str(spec.target),
        cwd=(spec.cwd or Path.cwd()).resolve(),
        space=split.space,
        spelled=split.spelled,
        minimize=options["minimize"],
        maximize=options["maximize"],
        optimizer=options["optimizer"],
        max_trials=options["max_trials"],
        parallel=parallel,
        opt_flags=parse_opt_flags(options["opt_flags"]),
        points=split.points,
        pruner=options["prune"],
        fixed=list(split.fixed),
        extra_args=list(spec.extra_args),
        experiment=spec.experiment,
        tags=list(spec.tags),
        config=None if spec.config is None else str(spec.config),
        inputs=list(spec.inputs),
        seed=spec.seed,
        capture=spec.capture,
        scalars=spec.scalars,
        scalar_patterns=list(spec.scalar_patterns),
        scalar_keys=list(spec.scalar_keys),
    )
    from labkeep.cli._sweep import report
    from labkeep.sweep._dask import dask_address

    result = start_sweep(
        client,
        plan,
        name=spec.name,
        notes=spec.notes,
        on_output=spec.on_output,
        on_message=message,
        dask=dask_address(options["dask"]),  # LABKEEP_DASK alone does not make a sweep
        retry_failed=options["retry_failed"] or 0,
    )
    report(result, ctx)
    return True


def _print_flags(path: Path, flags: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from labkeep.cli._format import format_value

    console = Console()
    if flags.deferred is not None:
        console.print(
            f"{path.name} builds its {flags.interface} parser at run time ({flags.deferred}), "
            f"so its flags are read from that parser when it runs: `labkeep run {path.name}` "
            "once, and this lists them"
        )
    elif not len(flags):
        console.print(f"{path.name} has no flags ({flags.interface}); pass its arguments after --")
    else:
        table = Table(title=f"{path.name} ({flags.interface})", title_justify="left",
                      box=None, header_style="bold", pad_edge=False)  # fmt: skip
        for column in ("name", "type", "default", "choices", "kind", "help"):
            table.add_column(column)
        for flag in flags:
            choices = "" if flag.choices is None else ", ".join(map(str, flag.choices))
            table.add_row(
                flag.name + (" *" if flag.required else ""),
                flag.type
                if flag.type != "list" or not flag.item_type
                else f"list[{flag.item_type}]",
                format_value(flag.default),
                choices,
                flag.kind,
                flag.help,
            )
        console.print(table)
    if flags.config_file is not None:
        console.print(f"config: {flags.config_file} (via {flags.config_option})")
    for warning in flags.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


@click.command("stop")
@click.argument("run")
@click.option("--grace", type=float, default=10.0, show_default=True,
              help="Seconds to wait before killing the run's process.")  # fmt: skip
@click.pass_context
def stop_command(ctx: click.Context, run: str, grace: float) -> None:
    """Stop RUN, started by `labkeep run` on this host: it ends as interrupted."""
    from labkeep.runner._stop import stop_run

    result = stop_run(client_from(ctx), run, grace=grace)
    how = " (killed after the grace period)" if result.killed else ""
    click.echo(f"run {result.number} {result.status.value}{how}")
