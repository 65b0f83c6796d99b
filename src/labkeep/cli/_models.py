"""``labkeep models [RUN]``: the models stored with a run, or with the latest runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import format_size, format_timestamp
from labkeep.cli._params import Limit

if TYPE_CHECKING:
    from labkeep._views import RunView
    from labkeep.models import ModelInfo


def model_row(view: RunView, info: ModelInfo) -> dict[str, object]:
    return {
        "run": view.number,
        "name": info.name,
        "flavour": info.flavour,
        "size": info.size,
        "versions": info.versions,
        "safe": info.safe,
        "signature": info.signature,
        "uri": f"runs:/{view.number}/{info.name}",
        "created": info.created,
    }


@click.command("models")
@click.argument("run", required=False)
@click.option(
    "-n",
    "--limit",
    type=Limit(),
    default=100,
    show_default=True,
    help="Without RUN: look at this many of the latest runs.",
)
@click.option("-e", "--experiment", help="Without RUN: only runs of this experiment.")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
@click.pass_context
def models_command(
    ctx: click.Context, run: str | None, limit: int, experiment: str | None, as_json: bool
) -> None:
    """Models stored with RUN (a number, name, uuid prefix or 'last'), or with the latest runs.

    Load one with labkeep.load_model("runs:/RUN/NAME").
    """
    from labkeep.cli._table import Column, TextTable, terminal_width, use_color
    from labkeep.models._load import recent_models

    client = client_from(ctx)
    views = [client.get_run(run)] if run else list(client.runs(experiment, limit=limit))
    found = recent_models(views)
    if as_json:
        click.echo(json.dumps([model_row(v, m) for v, m in found], indent=2))
        return
    if not found:
        where = f"run {views[0].number}" if run else f"the latest {limit} runs"
        click.echo(f"no models in {where}: store one with run.log_model(model, 'model')")
        return
    table = TextTable(
        [
            Column("run", justify="right"),
            Column("name", shrink=True),
            Column("flavour"),
            Column("size", justify="right"),
            Column("framework", shrink=True),
            Column("logged"),
            Column("uri", shrink=True, style="dim"),
        ]
    )
    for view, info in found:
        flavour = info.flavour if info.safe else f"{info.flavour} (unsafe)"
        table.add_row(
            [
                str(view.number),
                info.name,
                flavour,
                format_size(info.size),
                info.framework,
                format_timestamp(info.created) if info.created else "",
                f"runs:/{view.number}/{info.name}",
            ],
            ["", "", "" if info.safe else "yellow"],
        )
    for line in table.render(terminal_width(), color=use_color()):
        click.echo(line)
