"""``labkeep compare``: runs side by side, as a table, CSV, JSON or Markdown."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import click

from labkeep._values import differing_keys
from labkeep.cli._context import client_from
from labkeep.cli._format import format_duration, format_time, format_value
from labkeep.cli._params import Limit
from labkeep.errors import InvalidInputError

#: Runs compared when none are named and there is no filter.
DEFAULT_RUNS = 10
#: Attribute names ``--columns`` takes, and the column each reads.
ATTRIBUTE_COLUMNS = {
    "number": "number",
    "uuid": "uuid",
    "name": "name",
    "experiment": "experiment",
    "status": "status",
    "started": "start_time",
    "start_time": "start_time",
    "ended": "end_time",
    "end_time": "end_time",
    "duration": "duration",
    "user": "user",
    "host": "host",
    "tags": "tags",
}
_ALWAYS = ("number", "name")
_MAX_CELL = 24


@click.command("compare")
@click.argument("runs", nargs=-1)
@click.option("-w", "--where", metavar="EXPR", help="Only runs that match (see labkeep runs).")
@click.option("-e", "--experiment", help="Only runs of this experiment.")
@click.option(
    "-s", "--sort", metavar="KEYS", help="Order by these keys, e.g. -metrics.acc (- descending)."
)
@click.option("-n", "--limit", type=Limit(), help="Compare at most N runs.")
@click.option(
    "-c",
    "--columns",
    metavar="A,B,C",
    help="Exactly these columns: params, metrics (acc, loss.min, metrics.loss.max), "
    "summary.KEY, or attributes (status, duration, started, user, tags …).",
)
@click.option("--all", "show_all", is_flag=True, help="Every column, not only what differs.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of objects).")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a Markdown table.")
@click.pass_context
def compare_command(
    ctx: click.Context,
    runs: tuple[str, ...],
    where: str | None,
    experiment: str | None,
    sort: str | None,
    limit: int | None,
    columns: str | None,
    show_all: bool,
    as_csv: bool,
    as_json: bool,
    as_markdown: bool,
) -> None:
    """Compare runs side by side: the params that differ among them and their metrics.

    RUNS are numbers, names, uuid prefixes or 'last'; with none and no --where, the newest
    10 runs (of the experiment, with -e).

    \b
      labkeep compare 3 4 7
      labkeep compare --where "experiment == 'mnist'" --csv > mnist.csv
      labkeep compare --sort -metrics.acc --columns lr,batch_size,acc,loss.min
    """
    if sum((as_csv, as_json, as_markdown)) > 1:
        raise InvalidInputError("choose one of --csv, --json and --markdown")
    if columns is not None and show_all:
        raise InvalidInputError("--columns and --all do not go together: choose one")
    client = client_from(ctx)
    client.recover()
    store = client.store
    numbers = select_runs(store, runs, where, experiment, sort, limit)
    if not numbers:
        scope = f" in experiment {experiment!r}" if experiment else ""
        click.echo(f"No runs{' that match' if where else ''}{scope} in {client.location.uri}.")
        return
    table = store.get_run_table(numbers)
    if columns is not None:
        chosen = pick_columns(table, [c.strip() for c in columns.split(",") if c.strip()])
    else:
        chosen = default_columns(table, show_all)
    rows = [[cell_value(table[c][i]) for c in chosen] for i in range(len(numbers))]
    if as_csv:
        click.echo(to_csv(chosen, rows), nl=False)
    elif as_json:
        click.echo(json.dumps([dict(zip(chosen, row, strict=True)) for row in rows], indent=2))
    elif as_markdown:
        texts = [[cell(c, v) for c, v in zip(chosen, row, strict=True)] for row in rows]
        click.echo(to_markdown(headers(chosen), texts))
    else:
        print_table(chosen, rows)


def select_runs(
    store: Any,
    refs: Sequence[str],
    where: str | None,
    experiment: str | None,
    sort: str | None,
    limit: int | None,
    *,
    default_limit: int | None = DEFAULT_RUNS,
) -> list[int]:
    """The run numbers to compare, in order: the named runs (filtered and sorted when asked),
    else the runs that match, else the newest ``default_limit`` (None: all of them)."""
    if not store.exists():
        if where or sort:
            store.search_runs(where, sort)  # a malformed query is still an error
        return []
    if refs:
        named: list[int] = []
        for ref in refs:
            number = store.resolve_run(ref).number
            if number not in named:
                named.append(number)
        if not (where or sort or experiment):
            return named[:limit] if limit else named
        listed = ", ".join(str(n) for n in named)
        text = f"number in [{listed}]" + (f" and ({where})" if where else "")
        found, _ = store.search_runs(text, sort, experiment, limit=limit, include_deleted=True)
        if sort:
            return list(found)
        kept = set(found)
        return [n for n in named if n in kept]
    if not where and limit is None:
        limit = default_limit
    found, _ = store.search_runs(where, sort, experiment, limit=limit)
    return list(found)


def default_columns(table: dict[str, Any], show_all: bool) -> list[str]:
    """Number and name, then the params whose values differ among the runs (all params for a
    single run), then each metric's last value; with ``show_all`` every column."""
    if show_all:
        return list(_ALWAYS) + [c for c in table if c not in _ALWAYS]
    n = len(table["number"])
    params = [c for c in table if c.startswith("params.")]
    if n > 1:
        # A run without the param has None there, like one that logged None.
        params = differing_keys({c: [cell_value(v) for v in table[c]] for c in params})
    # A metric's last value is the column beside which ``.count`` is.
    metrics = [
        c
        for c in table
        if c.startswith("metrics.") and f"{c}.count" in table and not c.startswith("metrics.sys/")
    ]
    return [*_ALWAYS, *params, *metrics]


def pick_columns(table: dict[str, Any], names: list[str]) -> list[str]:
    """The table columns ``names`` mean: attributes, ``params.K``, ``metrics.K[.min…]``,
    ``summary.K``, or bare names (a param, else a metric, else a summary key)."""
    if not names:
        raise InvalidInputError("--columns is empty: name some, e.g. --columns lr,loss,loss.min")
    chosen: list[str] = ["number"]
    for name in names:
        column = _column_for(table, name)
        if column not in chosen:
            chosen.append(column)
    return chosen


def _column_for(table: dict[str, Any], name: str) -> str:
    if name in ATTRIBUTE_COLUMNS:
        return ATTRIBUTE_COLUMNS[name]
    if name in table and name.startswith(("params.", "metrics.", "summary.")):
        return name
    for prefix in ("params.", "metrics.", "summary."):
        if f"{prefix}{name}" in table:
            return f"{prefix}{name}"
    from labkeep.query._errors import suggest

    choices = [*ATTRIBUTE_COLUMNS, *(c.split(".", 1)[1] for c in table if "." in c)]
    close = suggest(name, choices)
    hint = f"did you mean {close!r}?" if close else "labkeep show RUN lists a run's keys"
    raise InvalidInputError(f"no column {name!r} among the runs compared; {hint}")


def cell_value(value: Any) -> Any:
    """A cell as a JSON-ready value: numpy scalars become Python ones, NaN becomes None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def headers(columns: Sequence[str]) -> list[str]:
    """Short column names (``lr`` for ``params.lr``) unless two would read the same."""
    short = [c.split(".", 1)[1] if c.startswith(("params.", "metrics.")) else c for c in columns]
    clashes = {s for s in short if short.count(s) > 1}
    out = [c if s in clashes else s for c, s in zip(columns, short, strict=True)]
    return ["#" if c == "number" else c for c in out]


def cell(column: str, value: Any) -> str:
    """A value as the terminal shows it."""
    if value is None:
        return ""
    if column == "duration":
        return format_duration(value)
    if column in ("start_time", "end_time"):
        return format_time(value)
    if column == "tags":
        return ", ".join(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return format_value(value)


def to_csv(columns: Sequence[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(c, v) for c, v in zip(columns, row, strict=True)])
    return out.getvalue()


def _csv_value(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column == "tags":
        return ";".join(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def to_markdown(head: Sequence[str], rows: list[list[str]]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(escape(h) for h in head) + " |"]
    lines.append("|" + "|".join("---:" if h == "#" else "---" for h in head) + "|")
    lines.extend("| " + " | ".join(escape(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def print_table(columns: list[str], rows: list[list[Any]]) -> None:
    """A rich table, runs as rows, with as many columns as the terminal fits; the columns
    left out are named below it."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = Console()
    head = headers(columns)
    cells = [[cell(c, v) for c, v in zip(columns, row, strict=True)] for row in rows]
    widths = [
        min(_MAX_CELL, max([len(h), *(len(r[i]) for r in cells)])) for i, h in enumerate(head)
    ]
    # Metrics before params when not all fit; shown in their own order.
    priority = sorted(
        range(len(columns)), key=lambda i: (i >= 2 and not columns[i].startswith("metrics."), i)
    )
    shown: list[int] = []
    used = 0
    for i in priority:
        if used + widths[i] + 2 > console.width and len(shown) >= 2:
            continue
        shown.append(i)
        used += widths[i] + 2
    shown.sort()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for i in shown:
        numeric = all(isinstance(r[i], int | float) or r[i] is None for r in rows)
        table.add_column(
            Text(head[i]),  # keys and values are text, never markup
            justify="right" if numeric else "left",
            style="cyan" if columns[i] == "number" else None,
            no_wrap=True,
            overflow="ellipsis",
            max_width=_MAX_CELL,
        )
    for row in cells:
        table.add_row(*(Text(row[i]) for i in shown))
    console.print(table)
    hidden = [head[i] for i in range(len(head)) if i not in shown]
    if hidden:
        names = escape(", ".join(hidden[:8])) + (" …" if len(hidden) > 8 else "")
        console.print(
            f"[dim]({len(hidden)} more column{'s' if len(hidden) > 1 else ''} did not fit: "
            f"{names}; --columns picks, --csv or --json shows all)[/]",
            highlight=False,
        )
