"""``labkeep diff``: parse the options, ask :mod:`labkeep.repro` what differs, lay it out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from labkeep.cli._context import client_from
from labkeep.cli._format import format_value
from labkeep.cli._terminal import console, diff_syntax, markup

if TYPE_CHECKING:
    from rich.console import Console

    from labkeep.repro import DiffSection, KeyTable


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--flags", "sections", flag_value="flags", multiple=True, help="Flags and params.")
@click.option("--metrics", "sections", flag_value="metrics", multiple=True, help="Metrics.")
@click.option("--packages", "sections", flag_value="packages", multiple=True, help="Packages.")
@click.option("--code", "sections", flag_value="code", multiple=True, help="Code files.")
@click.option("--output", "sections", flag_value="output", multiple=True, help="Console output.")
@click.option("--path", "path", metavar="FILE", help="One code file (notebooks cell by cell).")
@click.option("--all", "show_all", is_flag=True, help="Also list what is the same.")
@click.pass_context
def diff_command(
    ctx: click.Context,
    run_a: str,
    run_b: str,
    sections: tuple[str, ...],
    path: str | None,
    show_all: bool,
) -> None:
    """Show what differs between RUN_A and RUN_B: flags/params, metrics, packages, code and
    console output (all of them unless one is chosen)."""
    from rich.markup import escape

    from labkeep.repro import diff_file, diff_runs

    client = client_from(ctx)
    client.recover()
    out = console()
    if path is not None:
        one = diff_file(client.store, run_a, run_b, path)
        if one.patch:
            out.print(diff_syntax(one.patch))
        else:
            out.print(f"{escape(one.path)}: [green]the same[/] in runs {one.a} and {one.b}")
        return
    diff = diff_runs(client.store, run_a, run_b, sections, show_all=show_all)
    for section in diff.sections:
        _print_section(out, section, diff.a, diff.b)
        if section.title != "output":  # the console output ends the diff without a gap
            out.print()


def _print_section(out: Console, section: DiffSection, a: int, b: int) -> None:
    if section.heading:
        rest = f": {markup(section.summary)}" if section.summary else ""
        out.print(f"[bold]{section.title}[/]{rest}")
    if section.table is not None:
        out.print(_key_table(section.table, a, b))
    if section.note:
        out.print(markup(section.note))
    for line in section.lines:
        out.print(markup(line))
    for patch in section.patches:
        out.print(diff_syntax(patch))


def _key_table(table: KeyTable, a: int, b: int) -> object:
    from rich.table import Table
    from rich.text import Text

    shown = Table(title=table.title, title_justify="left", header_style="bold", box=None)
    shown.add_column("key", overflow="fold")
    shown.add_column(f"run {a}", overflow="fold")
    shown.add_column(f"run {b}", overflow="fold")
    styles = {"changed": "yellow", "added": "green", "removed": "red", "same": "dim"}
    for row in table.rows:
        shown.add_row(  # keys and values are text, never markup
            Text(row.key, style=styles[row.state]),
            Text("-" if row.state == "added" else format_value(row.a)),
            Text("-" if row.state == "removed" else format_value(row.b)),
        )
    return shown
