"""``labkeep models``: the model registry, and the models stored with runs.

``labkeep models [RUN]`` lists the registered models and the models of the latest runs (or
of RUN); ``labkeep models show NAME`` a registered model's versions, aliases and source
runs; ``register``, ``alias``, ``update`` and ``delete`` change the registry as MLflow's
model registry does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import format_size, format_timestamp
from labkeep.cli._params import DefaultListGroup, Limit
from labkeep.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from labkeep._views import RunView
    from labkeep.entities import ModelVersion, RegisteredModel
    from labkeep.models import ModelInfo
    from labkeep.store._base import Store


def model_row(view: RunView, info: ModelInfo, registered: Sequence[str] = ()) -> dict[str, object]:
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
        "registered": list(registered),
    }


def _run_number(store: Store, uuid: str, cache: dict[str, str]) -> str:
    """A run's number as people type it; the uuid's start when the run is gone."""
    if uuid not in cache:
        try:
            cache[uuid] = str(store.resolve_run(uuid).number)
        except NotFoundError:
            cache[uuid] = f"{uuid[:8]} (gone)"
    return cache[uuid]


def _registered_by_source(store: Store) -> dict[tuple[str, str], list[str]]:
    """``NAME vN @alias`` labels of every registered version, by (run uuid, model path)."""
    found: dict[tuple[str, str], list[str]] = {}
    for model in store.list_registered_models():
        for version in store.list_model_versions(model.name):
            label = f"{model.name} v{version.version}"
            if version.aliases:
                label += " " + " ".join(f"@{a}" for a in version.aliases)
            found.setdefault((version.run_uuid, version.model_path), []).append(label)
    return found


@click.group("models", cls=DefaultListGroup, invoke_without_command=False)
def models_group() -> None:
    """The model registry, and the models stored with runs.

    \b
    labkeep models [RUN]                      registered models; models of the latest runs (or RUN)
    labkeep models show NAME                  versions, aliases and source runs of a model
    labkeep models register runs:/7/model NAME
    labkeep models alias NAME ALIAS VERSION   (--delete to remove it)

    Load one with labkeep.load_model("runs:/RUN/NAME") or ("models:/NAME@ALIAS").
    """


@models_group.command("list")
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
@click.option("--json", "as_json", is_flag=True, help="Print the runs' models as JSON.")
@click.pass_context
def list_command(
    ctx: click.Context, run: str | None, limit: int, experiment: str | None, as_json: bool
) -> None:
    """Registered models, and the models stored with RUN (a number, name, uuid prefix or
    'last') or with the latest runs."""
    from labkeep.cli._table import Column, TextTable, terminal_width, use_color
    from labkeep.models._load import recent_models

    client = client_from(ctx)
    views = [client.get_run(run)] if run else list(client.runs(experiment, limit=limit))
    found = recent_models(views)
    registered = _registered_by_source(client.store) if client.store.exists() else {}
    if as_json:
        rows = [model_row(v, m, registered.get((v.uuid, m.name), ())) for v, m in found]
        click.echo(json.dumps(rows, indent=2))
        return
    width, color = terminal_width(), use_color()
    if not run:
        models = client.store.list_registered_models() if client.store.exists() else []
        if models:
            for line in _registry_table(models).render(width, color=color):
                click.echo(line)
            click.echo("")
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
            Column("registered", shrink=True),
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
                ", ".join(registered.get((view.uuid, info.name), ())),
            ],
            ["", "", "" if info.safe else "yellow"],
        )
    for line in table.render(width, color=color):
        click.echo(line)


def _registry_table(models: Sequence[RegisteredModel]) -> Any:
    from labkeep.cli._table import Column, TextTable

    table = TextTable(
        [
            Column("registered model", shrink=True),
            Column("latest", justify="right"),
            Column("aliases", shrink=True),
            Column("updated"),
            Column("description", shrink=True, style="dim"),
        ]
    )
    for model in models:
        aliases = ", ".join(f"@{a} v{v}" for a, v in model.aliases.items())
        latest = "" if model.latest_version is None else f"v{model.latest_version}"
        table.add_row(
            [model.name, latest, aliases, format_timestamp(model.updated), model.description]
        )
    return table


def _version_json(version: ModelVersion, run: str) -> dict[str, Any]:
    return {
        "version": version.version,
        "run": run,
        "run_uuid": version.run_uuid,
        "model_path": version.model_path,
        "source": f"runs:/{run}/{version.model_path}" if run.isdigit() else version.source,
        "aliases": list(version.aliases),
        "description": version.description,
        "tags": version.tags,
        "created": version.created,
        "uri": version.uri,
    }


@models_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON.")
@click.pass_context
def show_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """A registered model: its versions (newest first), aliases and source runs."""
    from labkeep.cli._table import Column, TextTable, terminal_width, use_color

    store = client_from(ctx).store
    model = store.get_registered_model(name)
    versions = store.list_model_versions(name)
    numbers: dict[str, str] = {}
    rows = [_version_json(v, _run_number(store, v.run_uuid, numbers)) for v in versions]
    if as_json:
        data = {
            "name": model.name,
            "description": model.description,
            "tags": model.tags,
            "created": model.created,
            "updated": model.updated,
            "aliases": model.aliases,
            "versions": rows,
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{model.name}  ({len(versions)} versions, created {format_timestamp(model.created)})"
    )
    if model.description:
        click.echo(model.description)
    if model.tags:
        click.echo("tags: " + ", ".join(f"{k}={v}" for k, v in model.tags.items()))
    if model.aliases:
        click.echo("aliases: " + ", ".join(f"@{a} -> v{v}" for a, v in model.aliases.items()))
    table = TextTable(
        [
            Column("version", justify="right"),
            Column("aliases", shrink=True),
            Column("run", justify="right"),
            Column("source", shrink=True),
            Column("registered"),
            Column("description", shrink=True, style="dim"),
        ]
    )
    for row in rows:
        table.add_row(
            [
                f"v{row['version']}",
                " ".join(f"@{a}" for a in row["aliases"]),
                str(row["run"]),
                str(row["source"]),
                format_timestamp(float(row["created"])),
                str(row["description"]),
            ]
        )
    click.echo("")
    for line in table.render(terminal_width(), color=use_color()):
        click.echo(line)
    click.echo("")
    click.echo(f'load one with labkeep.load_model("models:/{model.name}/VERSION")')


def _tags(pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"tag {pair!r} is not KEY=VALUE: write it like stage=prod")
        tags[key] = value
    return tags


@models_group.command("register")
@click.argument("model_uri")
@click.argument("name")
@click.option("-d", "--description", default="", help="What this version is.")
@click.option("-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A version tag.")
@click.pass_context
def register_command(
    ctx: click.Context, model_uri: str, name: str, description: str, tags: tuple[str, ...]
) -> None:
    """Register MODEL_URI (runs:/RUN/NAME) as the next version of the registered model NAME
    (created if new)."""
    from labkeep._registry import register_model

    client = client_from(ctx)
    version = register_model(client, model_uri, name, description=description, tags=_tags(tags))
    run = _run_number(client.store, version.run_uuid, {})
    click.echo(
        f"registered {version.name} version {version.version} "
        f"(runs:/{run}/{version.model_path}): load it with "
        f'labkeep.load_model("{version.uri}")'
    )


@models_group.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@click.pass_context
def alias_command(
    ctx: click.Context, name: str, alias: str, version: int | None, delete: bool
) -> None:
    """Point ALIAS (production, staging…) of NAME at VERSION, or remove it with --delete."""
    store = client_from(ctx).store
    if delete:
        store.delete_model_alias(name, alias)
        click.echo(f"removed alias @{alias} of {name}")
        return
    if version is None:
        raise InvalidInputError(
            f"give the version for @{alias}: labkeep models alias {name} {alias} VERSION "
            "(or --delete to remove it)"
        )
    store.set_model_alias(name, alias, version)
    click.echo(f"{name}@{alias} -> version {version}")


@models_group.command("update")
@click.argument("name")
@click.argument("version", type=int, required=False)
@click.option("-d", "--description", default=None, help="The new description.")
@click.option("-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Set a tag.")
@click.option("--untag", multiple=True, metavar="KEY", help="Remove a tag.")
@click.pass_context
def update_command(
    ctx: click.Context,
    name: str,
    version: int | None,
    description: str | None,
    tags: tuple[str, ...],
    untag: tuple[str, ...],
) -> None:
    """Change the description and tags of NAME, or of its VERSION."""
    store = client_from(ctx).store
    if version is None:
        store.update_registered_model(
            name, description=description, set_tags=_tags(tags), delete_tags=untag
        )
        click.echo(f"updated {name}")
    else:
        store.update_model_version(
            name, version, description=description, set_tags=_tags(tags), delete_tags=untag
        )
        click.echo(f"updated {name} version {version}")


@models_group.command("delete")
@click.argument("name")
@click.argument("version", type=int, required=False)
@click.option("-y", "--yes", is_flag=True, help="Delete a whole model without asking.")
@click.pass_context
def delete_command(ctx: click.Context, name: str, version: int | None, yes: bool) -> None:
    """Remove VERSION of NAME from the registry, or NAME with all its versions. The runs
    keep their models."""
    store = client_from(ctx).store
    if version is not None:
        store.delete_model_version(name, version)
        click.echo(f"deleted {name} version {version}")
        return
    count = len(store.list_model_versions(name))
    if not yes:
        click.confirm(f"delete {name} and its {count} versions from the registry?", abort=True)
    store.delete_registered_model(name)
    click.echo(f"deleted {name}")
