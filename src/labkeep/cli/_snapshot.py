"""The snapshot half of ``labkeep show``: ``show RUN --snapshot [--all] [--json]``.

What it says is :func:`labkeep.repro.snapshot_view`; this module lays it out for the terminal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import format_size
from labkeep.cli._terminal import console, markup

if TYPE_CHECKING:
    from labkeep.repro import SnapshotView


def render_snapshot(ctx: click.Context, run: str, show_all: bool, as_json: bool) -> None:
    """The snapshot of ``run``: code, git, packages, host, inputs (checked now) and seeds."""
    from labkeep.repro import load_snapshot_any, snapshot_view

    client = client_from(ctx)
    client.recover()
    snap = load_snapshot_any(client.store, run)
    if as_json:
        click.echo(json.dumps(snap.data, indent=2, sort_keys=True))
        return
    print_snapshot(snapshot_view(snap, cache_dir=client.location.cache_dir, show_all=show_all))


def print_snapshot(view: SnapshotView) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    for line in view.headings:
        out.print(markup(line))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for row in view.grid:
        grid.add_row(row.label, markup(row.value))
    out.print(grid)
    if view.inputs:
        table = Table(title="inputs", title_justify="left", box=None, header_style="bold")
        for col in ("path", "sha256", "size", "now"):
            table.add_column(col, justify="right" if col == "size" else "left")
        for item in view.inputs:
            table.add_row(
                escape(item.path),
                item.sha256[:12],
                format_size(item.size),
                markup((item.now,)),
            )
        out.print(table)
    for seed in view.seeds:
        out.print(markup(seed))
