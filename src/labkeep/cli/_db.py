"""``labkeep db``: store administration."""

from __future__ import annotations

import click

from labkeep.cli._context import client_from


@click.group("db")
def db_group() -> None:
    """Administer the store's database."""


@db_group.command("upgrade")
@click.pass_context
def upgrade_command(ctx: click.Context) -> None:
    """Migrate the store's schema to this labkeep version (safe to repeat)."""
    from labkeep.store.sql import upgrade_store

    client = client_from(ctx)
    location = client.location
    if location.kind not in ("sqlite", "postgresql"):
        raise click.UsageError(
            "db upgrade works on SQLite and PostgreSQL stores; upgrade the server instead"
        )
    before, after = upgrade_store(location)
    if before == after:
        click.echo(f"{location.uri}: schema {after} is current")
    else:
        click.echo(f"{location.uri}: schema {before or 'none'} -> {after}")


@db_group.command("path")
@click.pass_context
def path_command(ctx: click.Context) -> None:
    """Print where the store is."""
    location = client_from(ctx).location
    click.echo(location.db_url if location.kind != "sqlite" else str(location.sqlite_path.parent))


@db_group.command("check")
@click.pass_context
def check_command(ctx: click.Context) -> None:
    """Check the database's integrity and every blob against its sha256 (reads only).

    Exits 1 when anything is damaged or missing."""
    from labkeep.store.sql import check_store

    location = client_from(ctx).location
    report = check_store(location)
    if report.database_problems:
        click.echo(f"database {report.database}: damaged")
        for problem in report.database_problems:
            click.echo(f"  {problem}")
    else:
        click.echo(f"database {report.database}: ok")
    bad = len(report.damaged_blobs) + len(report.missing_blobs)
    click.echo(
        f"blobs: {report.blobs_checked} checked, "
        + (
            f"{len(report.damaged_blobs)} damaged, {len(report.missing_blobs)} missing"
            if bad
            else "ok"
        )
    )
    for problem in [*report.damaged_blobs, *report.missing_blobs]:
        click.echo(f"  {problem}")
    if not report.ok:
        if report.database_problems:
            click.echo("Rebuild the database from what can be read with `labkeep db recover`.")
        ctx.exit(1)


@db_group.command("recover")
@click.pass_context
def recover_command(ctx: click.Context) -> None:
    """Rebuild a damaged SQLite database from what can be read into a new file; the old one
    is kept beside it as labkeep.db.damaged-TIME. Stop labkeep processes using the store first."""
    from labkeep.store.sql import recover_sqlite

    report = recover_sqlite(client_from(ctx).location)
    counts = ", ".join(
        f"{report.rows.get(t, 0)} {label}"
        for t, label in (
            ("runs", "runs"),
            ("params", "params"),
            ("metric_chunks", "metric chunks"),
            ("artifacts", "artifacts"),
            ("snapshots", "snapshots"),
            ("output_lines", "output lines"),
        )
    )
    click.echo(f"recovered {counts} into {report.database} ({report.method})")
    if report.dropped:
        click.echo(f"{report.dropped} rows of lost runs could not be kept")
    click.echo(f"the damaged file is kept as {report.kept}")
