"""``labkeep runs`` and ``labkeep show``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from labkeep._json import record_as_dict
from labkeep._tree import COLLAPSE_OVER
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
from labkeep.entities import DROPPED_POINTS_KEY, JOURNAL_DAMAGE_KEY, RunInfo, RunRecord
from labkeep.errors import InvalidInputError, NotFoundError
from labkeep.store._base import implied_total

if TYPE_CHECKING:
    from labkeep._views import RunView
    from labkeep.entities import ArtifactLink, ModelVersion
    from labkeep.models import ModelInfo

#: The work a listing may spend counting every match (SQLite VM steps: some 20 ms).
COUNT_STEPS = 200_000


def _console() -> Any:
    from rich.console import Console

    return Console()


@dataclass(frozen=True, slots=True)
class KeyColumn:
    """A param or metric column of ``labkeep runs``: ``source`` is ``params`` or ``metrics``;
    ``differs`` when its value is not the same in every listed run."""

    source: str
    key: str
    differs: bool = False


def ranked_keys(records: list[RunRecord], prefer: Sequence[str] = ()) -> list[KeyColumn]:
    """The param and metric columns in the order a listing shows them when not all fit: keys
    in ``prefer`` (those a query or sort names), then the params and the metrics whose values
    differ among the runs, then the metrics and params that are the same; within each, the
    keys most runs have first."""
    seen: Counter[str] = Counter()
    values: dict[str, set[str]] = {}
    metric_seen: Counter[str] = Counter()
    metric_values: dict[str, set[float]] = {}
    for rec in records:
        for key, value in rec.params.items():
            seen[key] += 1
            values.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
        for key, m in rec.metrics.items():
            if not key.startswith("sys/"):
                metric_seen[key] += 1
                metric_values.setdefault(key, set()).add(m.last)
    n = len(records)

    def param(key: str) -> KeyColumn:
        return KeyColumn("params", key, n > 1 and (seen[key] < n or len(values[key]) > 1))

    def metric(key: str) -> KeyColumn:
        last = metric_values[key]
        # NaN != NaN: a set of NaNs has many members.
        same = len(last) == 1 or all(v != v for v in last)
        return KeyColumn("metrics", key, n > 1 and (metric_seen[key] < n or not same))

    first: list[KeyColumn] = []
    for key in prefer:
        head, _, tail = key.rpartition(".")
        if key in seen:
            first.append(param(key))
        if key in metric_seen:
            first.append(metric(key))
        elif key not in seen and head in metric_seen and tail == "last":
            first.append(metric(head))
    taken = {(c.source, c.key) for c in first}
    rest = [param(k) for k in sorted(seen, key=lambda k: (-seen[k], k))]
    rest += [metric(k) for k in sorted(metric_seen, key=lambda k: (-metric_seen[k], k))]
    rest = [c for c in rest if (c.source, c.key) not in taken]
    order = {("params", True): 0, ("metrics", True): 1, ("metrics", False): 2, ("params", False): 3}
    ranked = first + sorted(rest, key=lambda c: order[c.source, c.differs])
    unique: list[KeyColumn] = []
    for column in ranked:
        if all((c.source, c.key) != (column.source, column.key) for c in unique):
            unique.append(column)
    return unique


def named_keys(records: list[RunRecord], names: Sequence[str]) -> list[KeyColumn]:
    """The columns ``--columns`` names: ``params.K``, ``metrics.K``, or a bare name (a param
    if a listed run has it, else a metric)."""
    from labkeep.query._errors import suggest

    params = {k for rec in records for k in rec.params}
    metrics = {k for rec in records for k in rec.metrics}
    chosen: list[KeyColumn] = []
    for name in names:
        source, _, key = name.partition(".")
        if not (source in ("params", "metrics") and key):
            source, key = ("params" if name in params else "metrics"), name
        if key not in (params if source == "params" else metrics):
            close = suggest(name, sorted(params | metrics))
            hint = f"did you mean {close!r}?" if close else "labkeep show RUN lists a run's keys"
            raise InvalidInputError(f"no param or metric {name!r} in the runs listed; {hint}")
        column = KeyColumn(source, key)
        if column not in chosen:
            chosen.append(column)
    return chosen


def key_headers(records: list[RunRecord], columns: Sequence[KeyColumn]) -> list[str]:
    """Headers of key columns: the bare key, or ``params.K`` and ``metrics.K`` where a param
    and a metric of the runs share the name."""
    params = {k for rec in records for k in rec.params}
    metrics = {k for rec in records for k in rec.metrics}
    both = params & metrics
    return [f"{c.source}.{c.key}" if c.key in both else c.key for c in columns]


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
@click.option(
    "-c",
    "--columns",
    metavar="A,B,C",
    help="Exactly these param and metric columns, e.g. lr,loss or params.x,metrics.x.",
)
@click.option(
    "--flat",
    is_flag=True,
    help="Every run on a row of its own, child runs too, instead of nested under their parent.",
)
@click.option(
    "--expand",
    is_flag=True,
    help=f"List every child run, not a count of them for a parent with more than "
    f"{COLLAPSE_OVER} (a sweep's trials).",
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
    columns: str | None,
    flat: bool,
    expand: bool,
) -> None:
    """List runs, newest first: number, name, experiment, status, start, duration,
    the params that tell them apart and their last metric values.

    Child runs (``init(parent=...)``, a sweep's trials) are nested under their parent, oldest
    first; a parent with many is collapsed to a count (--expand lists them). A --where filter
    lists the runs it matches, children included, each naming its parent; so does --flat."""
    from labkeep._tree import TreeRow, describe_hidden, run_tree
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
    # Nested: the page is of top-level runs, each with its children under it.
    tree = not (flat or deleted or (where and where.strip()))
    query = "parent == None" if tree else where
    if deleted:
        trash = {i.number for i in store.list_runs(experiment, deleted_only=True)}
        found, _ = store.search_runs(where, sort, experiment, include_deleted=True)
        matching = [n for n in found if n in trash]
        numbers, total = matching[:page] if page else matching, len(matching)
    else:
        # One run past the page tells whether more match; the total is counted only when
        # that is cheap (a full count can cost more than the page on a large store).
        numbers = store.search_numbers(query, sort, experiment, limit=page and page + 1)
        total = implied_total(numbers, page and page + 1, 0)
        if total is None:
            total = store.count_runs_within(COUNT_STEPS, query, experiment)
        numbers = numbers[:page] if page else numbers
    if not numbers:
        scope = f" in experiment {experiment!r}" if experiment else ""
        matched = " that match" if where else ""
        click.echo(
            f"No {'deleted ' if deleted else ''}runs{matched}{scope} in {client.location.uri}."
        )
        return
    listed = store.get_records(numbers)
    entries = run_tree(store, listed, expand=expand) if tree else [TreeRow(r) for r in listed]
    records = [e.record for e in entries if e.record is not None]
    width = terminal_width()
    widest = max(len(str(r.info.number)) for r in records)
    fixed = [
        Column("#", justify="right", style="cyan", min_width=widest),
        Column("name", shrink=True, min_width=8),
        Column("experiment", shrink=True, min_width=7),
        Column("status"),
        Column("started"),
        Column("time", justify="right"),
    ]
    # How narrow a fixed column may get before it no longer counts as shown.
    floors = [widest, 10, 8, 0, 0, 0]
    # init(group=…, job_type=…): a column each, when a run on the page has one.
    structure = [
        attr for attr in ("group", "job_type") if any(getattr(r.info, attr) for r in records)
    ]
    for attr in structure:
        fixed.append(Column(attr.replace("_", " "), shrink=True, min_width=4))
        floors.append(4)
    # Listed flat, a child run names its parent (by number).
    parents: dict[str, str] = {}
    if not tree:
        for uuid in {r.info.parent_uuid for r in records if r.info.parent_uuid}:
            try:
                parents[uuid] = str(store.resolve_run(uuid).number)
            except NotFoundError:
                parents[uuid] = uuid[:8]
    if parents:
        fixed.append(Column("parent", justify="right", style="cyan"))
        floors.append(0)
    names = {id(e.record): e.prefix() for e in entries if e.record is not None}
    rows: list[list[str]] = []
    for rec in records:
        info = rec.info
        rows.append(
            [
                str(info.number),
                names[id(rec)] + info.name,
                info.experiment,
                info.status.value,
                format_time(info.start_time),
                format_duration(info.duration),
                *(getattr(info, attr) or "" for attr in structure),
                *([parents.get(info.parent_uuid or "", "")] if parents else []),
            ]
        )

    def cell(rec: RunRecord, column: KeyColumn) -> str:
        if column.source == "params":
            return format_value(rec.params[column.key]) if column.key in rec.params else ""
        metric = rec.metrics.get(column.key)
        return "" if metric is None else format_value(metric.last)

    def ordered(chosen: list[KeyColumn]) -> list[KeyColumn]:
        """Params before metrics, each in the order chosen."""
        return sorted(chosen, key=lambda c: c.source != "params")

    def build(chosen: list[KeyColumn]) -> TextTable:
        heads = key_headers(records, ordered(chosen))
        table = TextTable(
            fixed
            + [
                Column(head, style="dim", shrink=True, min_width=4)
                if c.source == "params"
                else Column(head, justify="right", shrink=True, min_width=4)
                for c, head in zip(ordered(chosen), heads, strict=True)
            ]
        )
        cells_of = {id(rec): cells for rec, cells in zip(records, rows, strict=True)}
        for entry in entries:
            rec = entry.record
            if rec is None:
                hint = "" if expand else "; --expand lists them"
                table.add_note(entry.prefix() + describe_hidden(entry.hidden) + hint, 1)
                continue
            table.add_row(
                cells_of[id(rec)] + [cell(rec, c) for c in ordered(chosen)],
                ["", "", "", STATUS_STYLES.get(rec.info.status.value, "")],
            )
        return table

    hidden: list[KeyColumn] = []
    if columns is not None:
        shown = named_keys(records, [c.strip() for c in columns.split(",") if c.strip()])
    else:
        ranked = ranked_keys(records, mentioned_keys(where, sort))
        shown = []
        caps = {"params": max_params, "metrics": max_metrics}
        for column in ranked:
            if caps[column.source] > 0:
                # Numbers cut short mislead: a metric shows whole or not at all.
                trial = [*shown, column]
                extra = [12 if c.source == "params" else 1000 for c in ordered(trial)]
                if build(trial).fits(width, [*floors, *extra]):
                    shown.append(column)
                    caps[column.source] -= 1
                    continue
            hidden.append(column)
    table = build(shown)
    color = use_color()
    lines = table.render(width, color=color)
    which = "matching runs" if where else "top-level runs" if tree else "runs"
    first = "first" if sort else "newest"
    if total is None:
        note = f"(the {first} {len(numbers)} {which}; more match: --all or --limit to see them)"
        lines.append(styled(note, "dim", color))
    elif len(numbers) < total:
        note = f"(the {first} {len(numbers)} of {total} {which}; --all or --limit for more)"
        lines.append(styled(note, "dim", color))
    if hidden:
        hidden.sort(key=lambda c: not c.differs)
        lines.append(styled(hidden_note(key_headers(records, hidden), width), "dim", color))
    click.echo("\n".join(lines))


def hidden_note(names: Sequence[str], width: int) -> str:
    """The line under a listing that names the columns left out, as many as fit ``width``.

    >>> hidden_note(["lr", "epochs"], 80)
    'hidden: 2 columns (lr, epochs); widen the terminal or use --columns'
    """
    plural = "s" if len(names) > 1 else ""
    for shown in range(len(names), -1, -1):
        listed = ", ".join([*names[:shown], *(["…"] if shown < len(names) else [])])
        note = (
            f"hidden: {len(names)} column{plural} ({listed}); widen the terminal or use --columns"
        )
        if len(note) <= width:
            break
    return note


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
        from labkeep.cli._snapshot import render_snapshot

        render_snapshot(ctx, run, show_all, as_json)
        return
    client = client_from(ctx)
    view = client.get_run(run)
    rec = view.record
    registered = view.registered_models
    lineage = view.lineage
    media = media_summary(view)
    if as_json:
        data = record_as_dict(rec)
        data["media"] = media
        data["registered_models"] = [
            {
                "name": v.name,
                "version": v.version,
                "model_path": v.model_path,
                "aliases": list(v.aliases),
            }
            for v in registered
        ]
        data["artifact_versions"] = [
            {"name": a.name, "version": a.version, "type": a.type, "role": a.role} for a in lineage
        ]
        click.echo(json.dumps(data, indent=2))
        return
    children = view.children.numbers
    store = client.store
    parent = None
    if rec.info.parent_uuid:
        try:
            parent = store.resolve_run(rec.info.parent_uuid)
        except NotFoundError:
            parent = None  # purged: the uuid is all there is
    listed = store.get_records(children[:SHOWN_CHILDREN]) if children else []
    render_record(
        rec,
        children,
        view.models,
        registered,
        lineage,
        listed_children=listed,
        parent=parent,
        media=media,
    )


def media_summary(view: RunView) -> dict[str, dict[str, Any]]:
    """Each media key of the run, sorted, with its kind, how many steps and items it holds
    and its last step: what ``show`` lists (the items' content is not read)."""
    summary: dict[str, dict[str, Any]] = {}
    for key, kind in view.media_keys.items():
        series = view.media(key)
        steps = series.steps
        summary[key] = {
            "kind": kind,
            "steps": len(steps),
            "items": len(series),
            "last_step": steps[-1] if steps else None,
        }
    return summary


_DATA_LOSS_KEYS = (JOURNAL_DAMAGE_KEY, DROPPED_POINTS_KEY)


def data_loss(rec: RunRecord) -> str:
    """What labkeep recorded that the run lacks (empty when its data is complete)."""
    parts = []
    dropped = rec.summary.get(DROPPED_POINTS_KEY)
    if dropped:
        parts.append(f"{dropped} points were dropped while the journal's disk was full")
    damage = rec.summary.get(JOURNAL_DAMAGE_KEY)
    if damage:
        parts.append(f"its journal was damaged: {damage}")
    return "; ".join(parts)


#: How many of a run's children ``show`` lists (the rest are counted).
SHOWN_CHILDREN = 20


def render_record(
    rec: RunRecord,
    children: Sequence[int] = (),
    models: Sequence[ModelInfo] = (),
    registered: Sequence[ModelVersion] = (),
    lineage: Sequence[ArtifactLink] = (),
    *,
    listed_children: Sequence[RunRecord] = (),
    parent: RunInfo | None = None,
    media: dict[str, dict[str, Any]] | None = None,
) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    # What a run holds is text, never markup: names, notes and keys print as written.
    console = _console()
    info = rec.info
    overview = Table.grid(padding=(0, 2))
    overview.add_column(style="bold")
    overview.add_column()
    for label, value in _overview_rows(rec, children, listed_children, parent):
        overview.add_row(label, value)
    console.print(Panel(overview, title=f"run {info.number}", title_align="left"))
    if info.notes:
        console.print(Panel(Text(info.notes), title="notes", title_align="left"))
    if rec.params:
        console.print(_values_table("params", rec.params))
    if rec.metrics:
        console.print(_metrics_table(rec))
    summary = {k: v for k, v in rec.summary.items() if k not in _DATA_LOSS_KEYS}
    if summary:
        console.print(_values_table("summary", summary))
    if media:
        console.print(_media_table(media))
    if rec.artifacts:
        console.print(_artifacts_table(rec))
    if models:
        console.print(_models_table(models, registered))
    if lineage:
        console.print(_lineage_table(lineage))
    if info.error:
        console.print(
            Panel(
                Text(info.error.rstrip()), title="failure", title_align="left", border_style="red"
            )
        )


def _overview_rows(
    rec: RunRecord,
    children: Sequence[int],
    listed_children: Sequence[RunRecord] = (),
    parent: RunInfo | None = None,
) -> list[tuple[str, Any]]:
    """The labelled lines of a run's panel: what it is, when and where it ran, its family."""
    from rich.markup import escape
    from rich.text import Text

    info = rec.info
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
    if info.group:
        rows.append(("group", Text(info.group)))
    if info.job_type:
        rows.append(("job type", Text(info.job_type)))
    if parent is not None:
        rows.append(("parent", Text(f"{parent.number}  {parent.name}  ({parent.uuid})")))
    elif info.parent_uuid:
        rows.append(("parent", Text(info.parent_uuid)))
    if listed_children:
        for i, child in enumerate(listed_children):
            line = Text(f"{child.info.number}  {child.info.name}  ")
            status = child.info.status.value
            line.append(status, style=STATUS_STYLES.get(status, ""))
            rows.append(("children" if i == 0 else "", line))
        if len(children) > len(listed_children):
            left = len(children) - len(listed_children)
            rows.append(
                ("", Text(f"… {left} more ({len(children)} in all): labkeep runs --expand"))
            )
    elif children:
        listed = ", ".join(str(n) for n in children[:SHOWN_CHILDREN])
        more = f", … ({len(children)} in all)" if len(children) > SHOWN_CHILDREN else ""
        rows.append(("children", listed + more))
    if rec.tags:
        rows.append(("tags", Text(", ".join(rec.tags))))
    loss = data_loss(rec)
    if loss:
        rows.append(("data", f"[bold red]incomplete[/]: {escape(loss)}"))
    return rows


def _values_table(title: str, values: dict[str, Any]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in values.items():
        table.add_row(Text(key), Text(format_value(value)))
    return table


def _metrics_table(rec: RunRecord) -> Any:
    from rich.table import Table
    from rich.text import Text

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
    return table


def _models_table(models: Sequence[ModelInfo], registered: Sequence[ModelVersion] = ()) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="models", title_justify="left", box=None, header_style="bold")
    columns = ["name", "flavour", "size", "versions"] + (["registered"] if registered else [])
    for col in columns:
        table.add_column(col, justify="right" if col == "size" else "left", overflow="fold")
    for model in models:
        versions = ", ".join(f"{d} {v}" for d, v in model.versions.items())
        flavour = model.flavour if model.safe else f"{model.flavour} (unsafe to load)"
        row: list[Text | str] = [Text(model.name), flavour, format_size(model.size), Text(versions)]
        if registered:
            labels = [
                f"{v.name} v{v.version}" + "".join(f" @{a}" for a in v.aliases)
                for v in registered
                if v.model_path == model.name
            ]
            row.append(Text(", ".join(labels)))
        table.add_row(*row)
    return table


def _lineage_table(lineage: Sequence[ArtifactLink]) -> Any:
    """The artifact versions the run used and produced."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="artifact versions", title_justify="left", box=None, header_style="bold")
    for col in ("role", "artifact", "type"):
        table.add_column(col, overflow="fold")
    for link in sorted(lineage, key=lambda a: (a.role != "used", a.name, a.version)):
        table.add_row(link.role, Text(link.label), Text(link.type))
    return table


def _media_table(media: dict[str, dict[str, Any]]) -> Any:
    """The run's media keys: kind, steps (and items, where a step holds several), last step."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="media", title_justify="left", box=None, header_style="bold")
    for col in ("key", "kind", "steps", "last step"):
        table.add_column(col, justify="left" if col in ("key", "kind") else "right")
    for key, entry in media.items():
        steps = entry["steps"]
        counted = f"{steps} step" + ("" if steps == 1 else "s")
        if entry["items"] != steps:
            counted += f" ({entry['items']} items)"
        last = "" if entry["last_step"] is None else str(entry["last_step"])
        table.add_row(Text(key), entry["kind"], counted, last)
    return table


def _artifacts_table(rec: RunRecord) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="artifacts", title_justify="left", box=None, header_style="bold")
    table.add_column("path", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("sha256")
    for art in rec.artifacts:
        table.add_row(Text(art.path), format_size(art.size), art.sha256[:12])
    return table
