"""``labkeep runs`` and ``labkeep show``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import click

from labkeep._json import record_as_dict
from labkeep.cli._context import client_from
from labkeep.cli._format import (
    STATUS_STYLES,
    format_duration,
    format_size,
    format_time,
    format_timestamp,
    format_value,
    status_text,
)
from labkeep.cli._params import Limit
from labkeep.entities import RunRecord
from labkeep.store._base import implied_total

#: The work a listing may spend counting every match (SQLite VM steps: some 20 ms).
COUNT_STEPS = 200_000


def _console() -> Any:
    from rich.console import Console

    return Console()


def leading_keys(
    records: list[RunRecord],
    max_params: int,
    max_metrics: int,
    prefer: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """The params that tell the runs apart (varying first), and the most common metrics;
    keys in ``prefer`` (those a query or sort names) come first."""
    seen: Counter[str] = Counter()
    values: dict[str, set[str]] = {}
    metric_seen: Counter[str] = Counter()
    for rec in records:
        for key, value in rec.params.items():
            seen[key] += 1
            values.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
        for key in rec.metrics:
            if not key.startswith("sys/"):
                metric_seen[key] += 1
    first_params = [k for k in prefer if k in seen]
    first_metrics = []
    for key in prefer:
        head, _, tail = key.rpartition(".")
        name = key if key in metric_seen or key not in seen else ""
        if key not in metric_seen and head in metric_seen and tail == "last":
            name = head
        if name in metric_seen and name not in first_metrics:
            first_metrics.append(name)
    params = first_params + sorted(
        (k for k in seen if k not in first_params),
        key=lambda k: (-(len(values[k]) > 1), -seen[k], k),
    )
    metrics = first_metrics + sorted(
        (k for k in metric_seen if k not in first_metrics), key=lambda k: (-metric_seen[k], k)
    )
    return params[:max_params], metrics[:max_metrics]


def mentioned_keys(where: str | None, sort: str | None) -> list[str]:
    """The param and metric keys that a query and a sort name, in order (bare names as
    typed): the columns a listing shows first."""
    from labkeep.query import parse_query, parse_sort

    fields = parse_query(where).fields() if where and where.strip() else []
    if sort and sort.strip():
        fields.extend(k.field for k in parse_sort(sort).keys)
    found: list[str] = []
    for field in fields:
        if field.source in ("param", "metric", "name") and field.key not in found:
            found.append(field.key)
    return found


@click.command("runs")
@click.option("-e", "--experiment", help="Only runs of this experiment.")
@click.option(
    "-w",
    "--where",
    metavar="EXPR",
    help='Only runs that match, e.g. "metrics.loss < 0.2 and params.lr >= 1e-3", '
    "\"status == 'failed' or 'baseline' in tags\"; bare names are params, else metrics.",
)
@click.option(
    "-s",
    "--sort",
    metavar="KEYS",
    help='Order by these keys, e.g. metrics.loss or "-acc, params.lr" (- for descending); '
    "runs without the key come last. Default: newest first.",
)
@click.option(
    "-n",
    "--limit",
    type=Limit(),
    default=20,
    show_default=True,
    help="Show at most N runs.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every run (no limit).")
@click.option("--deleted", is_flag=True, help="Show the runs in the trash instead.")
@click.option(
    "--params",
    "max_params",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How many param columns.",
)
@click.option(
    "--metrics",
    "max_metrics",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="How many metric columns.",
)
@click.pass_context
def runs_command(
    ctx: click.Context,
    experiment: str | None,
    where: str | None,
    sort: str | None,
    limit: int,
    show_all: bool,
    deleted: bool,
    max_params: int,
    max_metrics: int,
) -> None:
    """List runs, newest first: number, name, experiment, status, start, duration,
    the params that tell them apart and their last metric values."""
    from labkeep.cli._table import Column, TextTable, styled, terminal_width, use_color

    client = client_from(ctx)
    client.recover()
    store = client.store
    if not store.exists():
        if where or sort:
            store.search_runs(where, sort)  # a malformed query is still an error
        click.echo(f"No runs yet in {client.location.uri}.")
        return
    page = None if show_all else limit
    total: int | None
    if deleted:
        trash = {i.number for i in store.list_runs(experiment, deleted_only=True)}
        found, _ = store.search_runs(where, sort, experiment, include_deleted=True)
        matching = [n for n in found if n in trash]
        numbers, total = matching[:page] if page else matching, len(matching)
    else:
        # One run past the page tells whether more match; the total is counted only when
        # that is cheap (a full count can cost more than the page on a large store).
        numbers = store.search_numbers(where, sort, experiment, limit=page and page + 1)
        total = implied_total(numbers, page and page + 1, 0)
        if total is None:
            total = store.count_runs_within(COUNT_STEPS, where, experiment)
        numbers = numbers[:page] if page else numbers
    if not numbers:
        scope = f" in experiment {experiment!r}" if experiment else ""
        matched = " that match" if where else ""
        click.echo(
            f"No {'deleted ' if deleted else ''}runs{matched}{scope} in {client.location.uri}."
        )
        return
    records = store.get_records(numbers)
    width = terminal_width()
    # What fits beside the fixed columns (~60 characters), about 10 characters a column.
    budget = max(0, (width - 60) // 10)
    max_metrics = min(max_metrics, (budget + 1) // 2)
    max_params = min(max_params, budget - max_metrics)
    param_keys, metric_keys = leading_keys(
        records, max_params, max_metrics, mentioned_keys(where, sort)
    )
    widest = max(len(str(n)) for n in numbers)
    table = TextTable(
        [
            Column("#", justify="right", style="cyan", min_width=widest),
            Column("name", shrink=True, min_width=8),
            Column("experiment", shrink=True, min_width=7),
            Column("status"),
            Column("started"),
            Column("time", justify="right"),
            *(Column(key, style="dim", shrink=True, min_width=4) for key in param_keys),
            *(Column(key, justify="right", shrink=True, min_width=4) for key in metric_keys),
        ]
    )
    for rec in records:
        info = rec.info
        cells = [
            str(info.number),
            info.name,
            info.experiment,
            info.status.value,
            format_time(info.start_time),
            format_duration(info.duration),
        ]
        cells += [format_value(rec.params[k]) if k in rec.params else "" for k in param_keys]
        cells += [
            format_value(rec.metrics[k].last) if k in rec.metrics else "" for k in metric_keys
        ]
        table.add_row(cells, ["", "", "", STATUS_STYLES.get(info.status.value, "")])
    color = use_color()
    lines = table.render(width, color=color)
    which = "matching runs" if where else "runs"
    first = "first" if sort else "newest"
    if total is None:
        note = f"(the {first} {len(numbers)} {which}; more match: --all or --limit to see them)"
        lines.append(styled(note, "dim", color))
    elif len(numbers) < total:
        note = f"(the {first} {len(numbers)} of {total} {which}; --all or --limit for more)"
        lines.append(styled(note, "dim", color))
    click.echo("\n".join(lines))


@click.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.option(
    "--snapshot",
    is_flag=True,
    help="What reproduces the run: code, git, packages, host, inputs, seeds.",
)
@click.option("--all", "show_all", is_flag=True, help="With --snapshot: every file and package.")
@click.pass_context
def show_command(
    ctx: click.Context, run: str, as_json: bool, snapshot: bool, show_all: bool
) -> None:
    """Everything about one run. RUN is a number, a name, a uuid prefix or 'last'."""
    if snapshot:
        from labkeep.cli._repro import render_snapshot

        render_snapshot(ctx, run, show_all, as_json)
        return
    client = client_from(ctx)
    view = client.get_run(run)
    rec = view.record
    if as_json:
        click.echo(json.dumps(record_as_dict(rec), indent=2))
        return
    render_record(rec)


def render_record(rec: RunRecord) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    # What a run holds is text, never markup: names, notes and keys print as written.
    console = _console()
    info = rec.info
    overview = Table.grid(padding=(0, 2))
    overview.add_column(style="bold")
    overview.add_column()
    rows: list[tuple[str, Text | str]] = [
        ("run", Text(f"{info.number}  {info.name}")),
        ("uuid", Text(info.uuid)),
        ("experiment", Text(info.experiment)),
        (
            "status",
            status_text(info.status.value) + (" [dim](in the trash)[/]" if info.deleted else ""),
        ),
        ("started", format_timestamp(info.start_time)),
        ("ended", format_timestamp(info.end_time)),
        ("duration", format_duration(info.duration)),
        (
            "user@host",
            Text(f"{info.user}@{info.host}" + (f" (pid {info.pid})" if info.pid else "")),
        ),
    ]
    if info.exit_code is not None:
        rows.append(("exit code", str(info.exit_code)))
    if info.parent_uuid:
        rows.append(("parent", Text(info.parent_uuid)))
    if rec.tags:
        rows.append(("tags", Text(", ".join(rec.tags))))
    for label, value in rows:
        overview.add_row(label, value)
    console.print(Panel(overview, title=f"run {info.number}", title_align="left"))
    if info.notes:
        console.print(Panel(Text(info.notes), title="notes", title_align="left"))
    if rec.params:
        table = Table(title="params", title_justify="left", box=None, header_style="bold")
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in rec.params.items():
            table.add_row(Text(key), Text(format_value(value)))
        console.print(table)
    if rec.metrics:
        table = Table(title="metrics", title_justify="left", box=None, header_style="bold")
        for col in ("key", "last", "min", "max", "count", "last step"):
            table.add_column(col, justify="left" if col == "key" else "right")
        for key, m in rec.metrics.items():
            table.add_row(
                Text(key),
                format_value(m.last),
                format_value(m.min),
                format_value(m.max),
                str(m.count),
                str(m.last_step),
            )
        console.print(table)
    if rec.summary:
        table = Table(title="summary", title_justify="left", box=None, header_style="bold")
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in rec.summary.items():
            table.add_row(Text(key), Text(format_value(value)))
        console.print(table)
    if rec.artifacts:
        table = Table(title="artifacts", title_justify="left", box=None, header_style="bold")
        table.add_column("path", overflow="fold")
        table.add_column("size", justify="right")
        table.add_column("sha256")
        for art in rec.artifacts:
            table.add_row(Text(art.path), format_size(art.size), art.sha256[:12])
        console.print(table)
    if info.error:
        console.print(
            Panel(
                Text(info.error.rstrip()), title="failure", title_align="left", border_style="red"
            )
        )
