"""``labkeep gc``: remove the blobs nothing names any more."""

from __future__ import annotations

import click

from labkeep.cli._context import client_from


def _grace(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from labkeep.query._dates import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a duration: give 24h, 90m, 2d or seconds"
        ) from None
    if seconds < 0:
        raise click.BadParameter("give a duration of 0 or more")
    return seconds


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would go, with sizes; remove nothing.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    callback=_grace,
    help="Keep blobs put within this long (a run may be about to name them).",
)
@click.pass_context
def gc_command(ctx: click.Context, dry_run: bool, grace: float) -> None:
    """Remove blobs (artifacts, code snapshots, models) that no run names any more.

    Runs in the trash still name theirs (`labkeep purge` removes runs for good). A blob put
    within the grace period, or since the oldest live run started, is kept.
    """
    from labkeep._value_text import format_size

    report = client_from(ctx).store.collect_garbage(grace, dry_run=dry_run)
    if dry_run:
        for blob in report.blobs:
            click.echo(f"{blob.sha256}  {format_size(blob.size):>10}")
        for item in report.leftovers:
            click.echo(f"{item.name}  {format_size(item.size):>10}  (interrupted upload)")
    count = len(report.blobs) + len(report.leftovers)
    verb = "would remove" if dry_run else "removed"
    line = f"{verb} {count} unused blob{'s' * (count != 1)} ({format_size(report.size)})"
    if report.recent:
        line += f"; kept {report.recent} put within the grace period"
    click.echo(line)
