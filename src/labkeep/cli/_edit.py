"""Commands that change runs: tag, note, delete, restore, purge."""

from __future__ import annotations

import click

from labkeep._values import check_key, check_text
from labkeep.cli._context import client_from
from labkeep.entities import RunInfo


def _resolve_all(ctx: click.Context, refs: tuple[str, ...]) -> list[RunInfo]:
    store = client_from(ctx).store
    return [store.resolve_run(ref) for ref in refs]


@click.command("tag")
@click.argument("run")
@click.argument("tags", nargs=-1)
@click.option("-r", "--remove", is_flag=True, help="Remove the tags instead of adding them.")
@click.pass_context
def tag_command(ctx: click.Context, run: str, tags: tuple[str, ...], remove: bool) -> None:
    """Add TAGS to RUN (or remove them with --remove); with no TAGS, list its tags."""
    client = client_from(ctx)
    info = client.store.resolve_run(run)
    checked = [check_key(t, "tag") for t in tags]
    if checked:
        if remove:
            client.store.set_tags(info.number, remove=checked)
        else:
            client.store.set_tags(info.number, add=checked)
    current = client.store.get_records([info.number])[0].tags
    click.echo(f"run {info.number}: " + (", ".join(current) if current else "no tags"))


@click.command("note")
@click.argument("run")
@click.argument("text", required=False)
@click.option("-a", "--append", is_flag=True, help="Add TEXT as a new line instead of replacing.")
@click.pass_context
def note_command(ctx: click.Context, run: str, text: str | None, append: bool) -> None:
    """Set RUN's notes to TEXT (or --append it); with no TEXT, print the notes."""
    client = client_from(ctx)
    info = client.store.resolve_run(run)
    if text is None:
        click.echo(info.notes)
        return
    notes = f"{info.notes}\n{text}" if append and info.notes else text
    client.store.set_notes(info.number, check_text(notes, "notes"))
    click.echo(f"run {info.number}: notes saved")


@click.command("delete")
@click.argument("runs", nargs=-1, required=True)
@click.pass_context
def delete_command(ctx: click.Context, runs: tuple[str, ...]) -> None:
    """Move RUNS to the trash (`labkeep restore` brings them back, `labkeep purge` removes them)."""
    infos = _resolve_all(ctx, runs)
    client_from(ctx).store.set_deleted([i.number for i in infos], True)
    click.echo(f"moved {len(infos)} run(s) to the trash: {', '.join(str(i.number) for i in infos)}")


@click.command("restore")
@click.argument("runs", nargs=-1, required=True)
@click.pass_context
def restore_command(ctx: click.Context, runs: tuple[str, ...]) -> None:
    """Bring RUNS back from the trash."""
    infos = _resolve_all(ctx, runs)
    client_from(ctx).store.set_deleted([i.number for i in infos], False)
    click.echo(f"restored {len(infos)} run(s): {', '.join(str(i.number) for i in infos)}")


@click.command("purge")
@click.argument("runs", nargs=-1)
@click.option("--all", "purge_all", is_flag=True, help="Purge every run in the trash.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge_command(ctx: click.Context, runs: tuple[str, ...], purge_all: bool, yes: bool) -> None:
    """Remove runs in the trash for good, with their metrics and unshared artifacts."""
    client = client_from(ctx)
    store = client.store
    if purge_all:
        infos = store.list_runs(deleted_only=True) if store.exists() else []
    elif runs:
        infos = _resolve_all(ctx, runs)
        live = [i.number for i in infos if not i.deleted]
        if live:
            raise click.UsageError(
                f"run(s) {', '.join(map(str, live))} are not in the trash: `labkeep delete` them first"
            )
    else:
        raise click.UsageError("name the runs to purge, or pass --all for the whole trash")
    if not infos:
        click.echo("the trash is empty")
        return
    numbers = [i.number for i in infos]
    if not yes:
        click.confirm(f"permanently remove {len(numbers)} run(s)?", abort=True)
    removed = store.purge(numbers)
    click.echo(f"purged {removed} run(s)")
