"""``labkeep db``: store administration."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from labkeep.cli._context import client_from

if TYPE_CHECKING:
    from labkeep.store._uri import StoreLocation
    from labkeep.store.sql._connect import Connection


@click.group("db")
def db_group() -> None:
    """Administer the store's database."""


@db_group.command("upgrade")
@click.pass_context
def upgrade_command(ctx: click.Context) -> None:
    """Migrate the store's schema to this labkeep version (safe to repeat)."""
    from labkeep.store.sql._connect import migration_lock
    from labkeep.store.sql._migrate import upgrade

    client = client_from(ctx)
    location = client.location
    if location.kind not in ("sqlite", "postgresql"):
        raise click.UsageError(
            "db upgrade works on SQLite and PostgreSQL stores; upgrade the server instead"
        )
    with migration_lock(location, None if location.kind == "sqlite" else _pg_conn(location)):
        before, after = upgrade(location)
    if before == after:
        click.echo(f"{location.uri}: schema {after} is current")
    else:
        click.echo(f"{location.uri}: schema {before or 'none'} -> {after}")


def _pg_conn(location: StoreLocation) -> Connection:
    from labkeep.store.sql._connect import _connect_postgresql

    return _connect_postgresql(location)


@db_group.command("path")
@click.pass_context
def path_command(ctx: click.Context) -> None:
    """Print where the store is."""
    location = client_from(ctx).location
    click.echo(location.db_url if location.kind != "sqlite" else str(location.sqlite_path.parent))
