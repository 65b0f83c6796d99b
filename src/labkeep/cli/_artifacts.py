"""``labkeep artifacts``: named, versioned artifacts and their lineage.

``labkeep artifacts`` lists the named artifacts; ``labkeep artifacts NAME`` its versions with
the runs that produced and used each; ``labkeep artifacts NAME:v1`` one version's files;
``alias`` and ``download`` act on one version.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import format_size, format_timestamp
from labkeep.cli._params import DefaultListGroup
from labkeep.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from labkeep.store._base import Store


@click.group("artifacts", cls=DefaultListGroup)
def artifacts_group() -> None:
    """Named, versioned artifacts (run.log_artifact(path, name=..., type=...)).

    \b
    labkeep artifacts                       every named artifact
    labkeep artifacts NAME                  its versions, the runs that produced and used them
    labkeep artifacts NAME:v1               one version's files (NAME:latest, NAME:ALIAS too)
    labkeep artifacts alias NAME ALIAS VERSION   (--delete to remove it)
    labkeep artifacts download NAME:v1 [DIR]
    """


def _runs(store: Store, uuids: list[str], cache: dict[str, str]) -> list[str]:
    out = []
    for uuid in uuids:
        if uuid not in cache:
            try:
                cache[uuid] = str(store.resolve_run(uuid).number)
            except NotFoundError:
                cache[uuid] = uuid[:8]
        out.append(cache[uuid])
    return out


@artifacts_group.command("list")
@click.argument("ref", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def list_command(ctx: click.Context, ref: str | None, as_json: bool) -> None:
    """Every named artifact; with REF (NAME or NAME:VERSION), its versions or one version."""
    from labkeep._artifacts import parse_artifact_ref

    store = client_from(ctx).store
    if ref is None:
        _list_named(store, as_json)
        return
    name, wanted = parse_artifact_ref(ref)
    if ":" in ref:
        _show_version(store, name, wanted, as_json)
    else:
        _list_versions(store, name, as_json)


def _print(table: Any) -> None:
    from labkeep.cli._table import terminal_width, use_color

    for line in table.render(terminal_width(), color=use_color()):
        click.echo(line)


def _list_named(store: Store, as_json: bool) -> None:
    from labkeep.cli._table import Column, TextTable

    named = store.list_named_artifacts()
    if as_json:
        click.echo(json.dumps([vars_of(a) for a in named], indent=2))
        return
    if not named:
        click.echo(
            "no named artifacts: log one with run.log_artifact(path, name='train-set', "
            "type='dataset')"
        )
        return
    table = TextTable(
        [
            Column("artifact", shrink=True),
            Column("type"),
            Column("versions", justify="right"),
            Column("latest", justify="right"),
            Column("created"),
        ]
    )
    for a in named:
        table.add_row(
            [
                a.name,
                a.type,
                str(a.version_count),
                f"v{a.latest_version}",
                format_timestamp(a.created),
            ]
        )
    _print(table)


def vars_of(value: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(value)


def _list_versions(store: Store, name: str, as_json: bool) -> None:
    from labkeep.cli._table import Column, TextTable

    versions = store.list_artifact_versions(name)
    links = store.list_artifact_links(name=name)
    cache: dict[str, str] = {}
    rows = []
    for v in versions:
        produced = [
            lk.run_uuid for lk in links if lk.version == v.version and lk.role == "produced"
        ]
        used = [lk.run_uuid for lk in links if lk.version == v.version and lk.role == "used"]
        row = vars_of(v)
        row.pop("files")
        row["produced_by"] = _runs(store, produced, cache)
        row["used_by"] = _runs(store, used, cache)
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    kind = versions[0].type if versions else ""
    click.echo(f"{name}  ({kind}, {len(versions)} versions)")
    table = TextTable(
        [
            Column("version", justify="right"),
            Column("aliases", shrink=True),
            Column("files", justify="right"),
            Column("size", justify="right"),
            Column("produced by", shrink=True),
            Column("used by", shrink=True),
            Column("created"),
        ]
    )
    for row in rows:
        table.add_row(
            [
                f"v{row['version']}",
                " ".join(row["aliases"]),
                str(row["file_count"]),
                format_size(int(row["size"])),
                ", ".join(row["produced_by"]),
                ", ".join(row["used_by"]),
                format_timestamp(float(row["created"])),
            ]
        )
    _print(table)


def _show_version(store: Store, name: str, wanted: int | str, as_json: bool) -> None:
    from labkeep.cli._table import Column, TextTable

    version = store.get_artifact_version(name, wanted)
    links = [lk for lk in store.list_artifact_links(name=name) if lk.version == version.version]
    cache: dict[str, str] = {}
    produced = _runs(store, [lk.run_uuid for lk in links if lk.role == "produced"], cache)
    used = _runs(store, [lk.run_uuid for lk in links if lk.role == "used"], cache)
    if as_json:
        data = vars_of(version)
        data.update(produced_by=produced, used_by=used)
        click.echo(json.dumps(data, indent=2))
        return
    aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
    click.echo(f"{version.label}{aliases}  {version.type}, digest {version.digest[:12]}")
    click.echo(f"produced by runs: {', '.join(produced) or '-'}")
    click.echo(f"used by runs: {', '.join(used) or '-'}")
    table = TextTable(
        [
            Column("file", shrink=True),
            Column("size", justify="right"),
            Column("sha256", style="dim"),
        ]
    )
    for f in version.files:
        table.add_row([f.path, format_size(f.size), f.sha256[:12]])
    click.echo("")
    _print(table)


@artifacts_group.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@click.pass_context
def alias_command(
    ctx: click.Context, name: str, alias: str, version: str | None, delete: bool
) -> None:
    """Point ALIAS of artifact NAME at VERSION (3 or v3), or remove it with --delete."""
    from labkeep._values import version_ref

    store = client_from(ctx).store
    if delete:
        store.delete_artifact_alias(name, alias)
        click.echo(f"removed alias {alias} of {name}")
        return
    number = None if version is None else version_ref(version, "artifact version")
    if not isinstance(number, int):
        raise InvalidInputError(
            f"give the version for {alias}: labkeep artifacts alias {name} {alias} vN "
            "(or --delete to remove it)"
        )
    store.set_artifact_alias(name, alias, number)
    click.echo(f"{name}:{alias} -> v{number}")


@artifacts_group.command("download")
@click.argument("ref")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.pass_context
def download_command(ctx: click.Context, ref: str, directory: str | None) -> None:
    """Copy the files of REF (NAME:v1, NAME:latest, NAME:ALIAS) into DIRECTORY (default:
    the store's cache) and print where they are."""
    from labkeep._artifacts import VersionedArtifact, resolve

    client = client_from(ctx)
    version = resolve(client.store, ref, pinned=False)
    root = VersionedArtifact(client.store, version, client.location.cache_dir).download(directory)
    click.echo(str(root))
