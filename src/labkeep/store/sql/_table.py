"""``get_run_table`` for SQL stores: many runs as columns, read in a few large queries and
pivoted with numpy, without a Python object per run (``RunList.to_pandas()`` of 100,000
runs in about a second).

Small selections read their rows with ``run_number IN (…)``; large ones scan the tables and
keep the rows of the selected runs, which costs less than 100,000 index probes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from labkeep.store._base import TABLE_ATTRIBUTES

#: Above this many runs (or this share of the store) the tables are scanned whole.
SCAN_ABOVE = 1_000
SCAN_SHARE = 0.5
_IN_CHUNK = 500
#: Up to this many distinct keys, a table's key is turned into a number by the database.
_CODED_KEYS = 400


def read_run_table(conn: Any, numbers: Sequence[int]) -> dict[str, Any]:
    """The columns of :meth:`Store.get_run_table` for ``numbers``, read through the
    SQLAlchemy connection ``conn``."""
    import numpy as np

    from labkeep.errors import NotFoundError

    wanted = np.asarray(numbers, dtype=np.int64)
    n = len(wanted)
    order = np.argsort(wanted, kind="stable")
    sorted_numbers = wanted[order]
    raw = conn.connection.driver_connection
    placeholder = "?" if conn.dialect.name == "sqlite" else "%s"
    total = _fetch(raw, "SELECT count(*) FROM runs", ())[0][0] if n > SCAN_ABOVE else 0
    scan = n > SCAN_ABOVE and n >= total * SCAN_SHARE

    def rows(
        columns: str, table: str, number_column: str = "run_number", binds: Sequence[Any] = ()
    ) -> list[Any]:
        if scan:
            return _fetch(raw, f"SELECT {columns} FROM {table}", binds)
        found: list[Any] = []
        for lo in range(0, n, _IN_CHUNK):
            part = [int(x) for x in wanted[lo : lo + _IN_CHUNK]]
            marks = ", ".join([placeholder] * len(part))
            sql = f"SELECT {columns} FROM {table} WHERE {number_column} IN ({marks})"
            found.extend(_fetch(raw, sql, [*binds, *part]))
        return found

    def keyed_rows(
        table: str, columns: str, fields: list[tuple[str, str]], keys: frozenset[str]
    ) -> tuple[list[str], Any]:
        """The rows as a numpy record array (``run``, ``key`` code, then ``fields`` for
        ``columns``) and the keys the codes stand for. The database turns keys into numbers
        when they are few: a small int costs Python nothing, a string per row a lot."""
        names = sorted(keys)
        dtype = np.dtype([("run", "i8"), ("key", "i8"), *fields])
        if 0 < len(names) <= _CODED_KEYS:
            whens = " ".join(f"WHEN {placeholder} THEN {i}" for i in range(len(names)))
            found = rows(f"run_number, CASE key {whens} ELSE -1 END, {columns}", table, binds=names)
            coded = np.array(found, dtype=dtype) if found else np.zeros(0, dtype=dtype)
            if not (coded["key"] < 0).any():  # else a key was added since the catalog was read
                return names, coded
        found = rows(f"run_number, key, {columns}", table)
        as_text = np.array(found, dtype=[("run", "i8"), ("key", "O"), *fields])
        names, codes = _codes(as_text["key"].tolist())
        coded = np.zeros(len(found), dtype=dtype)
        for name in dtype.names or ():
            coded[name] = codes if name == "key" else as_text[name]
        return names, coded

    def positions(run_numbers: Any) -> tuple[Any, Any]:
        """Row index of each run number, and which of them are selected."""
        arr = np.asarray(run_numbers, dtype=np.int64)
        at = np.searchsorted(sorted_numbers, arr)
        at[at >= n] = 0
        keep = sorted_numbers[at] == arr if n else np.zeros(len(arr), dtype=bool)
        return order[at[keep]], keep

    table: dict[str, Any] = {}
    run_rows = rows(
        "number, uuid, name, experiment_id, status, start_time, end_time, heartbeat, "
        "username, host",
        "runs",
        "number",
    )
    experiments = dict(_fetch(raw, "SELECT id, name FROM experiments", ()))
    if run_rows:
        cols = list(zip(*run_rows, strict=True))
        at, keep = positions(cols[0])
    else:
        cols, at, keep = [() for _ in range(10)], np.zeros(0, dtype=np.int64), None
    if len(at) != n:
        have = set(np.asarray(cols[0], dtype=np.int64)[keep].tolist()) if run_rows else set()
        missing = next(x for x in numbers if x not in have)
        raise NotFoundError(f"no run {missing}")

    def placed(values: Sequence[Any], dtype: Any = object) -> Any:
        arr = np.asarray(values, dtype=dtype)
        if keep is not None:
            arr = arr[keep]
        out = np.empty(n, dtype=arr.dtype)
        out[at] = arr
        return out

    start = placed(cols[5], np.float64)
    end = placed(cols[6], np.float64)
    heartbeat = placed(cols[7], np.float64)
    finish = np.where(np.isnan(end), heartbeat, end)
    table["number"] = wanted.copy()
    table["uuid"] = placed(cols[1]).tolist()
    table["name"] = placed(cols[2]).tolist()
    table["experiment"] = [experiments.get(i) for i in placed(cols[3]).tolist()]
    table["status"] = placed(cols[4]).tolist()
    table["start_time"] = start
    table["end_time"] = end
    table["duration"] = np.maximum(finish - start, 0.0)
    table["user"] = placed(cols[8]).tolist()
    table["host"] = placed(cols[9]).tolist()
    tags: list[list[str]] = [[] for _ in range(n)]
    tag_rows = rows("run_number, tag", "tags")
    if tag_rows:
        tag_runs, tag_names = zip(*sorted(tag_rows, key=lambda r: r[1]), strict=True)
        tag_at, tag_keep = positions(tag_runs)
        for i, name in zip(
            tag_at.tolist(), np.asarray(tag_names, dtype=object)[tag_keep], strict=True
        ):
            tags[i].append(name)
    table["tags"] = tags
    assert list(table) == list(TABLE_ATTRIBUTES)

    from labkeep.query import load_catalog

    catalog = load_catalog(conn)
    table.update(_typed_columns(keyed_rows, positions, n, "params", catalog.params))
    stats = ("last", "min", "max", "count", "last_step")
    names, found = keyed_rows(
        "metrics", ", ".join(stats), [(s, "f8") for s in stats], catalog.metrics
    )
    if len(found):
        at_m, keep_m = positions(found["run"])
        values = [found[s][keep_m] for s in stats]
        for key, mask in group_by_code(names, found["key"][keep_m]):
            rows_at = at_m[mask]
            for suffix, column in zip(("", ".min", ".max", ".count", ".step"), values, strict=True):
                out = np.full(n, np.nan)
                out[rows_at] = column[mask]
                if suffix in (".count", ".step") and len(rows_at) == n:
                    out = out.astype(np.int64)
                table[f"metrics.{key}{suffix}"] = out
    table.update(_typed_columns(keyed_rows, positions, n, "summaries", catalog.summaries))
    return table


_KINDS = ("float", "int", "bool", "str", "null", "json")
_KIND_CODE = (
    "CASE vtype WHEN 'float' THEN 0 WHEN 'int' THEN 1 WHEN 'bool' THEN 2 WHEN 'str' THEN 3 "
    "WHEN 'null' THEN 4 ELSE 5 END"
)


def _typed_columns(
    keyed_rows: Any, positions: Any, n: int, table_name: str, keys: frozenset[str]
) -> dict[str, Any]:
    """Params or summaries as one column per key: a numpy array where every present value is
    a number of one type (int64 when no run lacks it, else float64; bool likewise, object
    when some lack it), else a list of the exact values (None where a run lacks the key)."""
    import numpy as np

    prefix = "params" if table_name == "params" else "summary"
    fields = [("kind", "i8"), ("num", "f8"), ("text", "O")]
    names, found = keyed_rows(table_name, f"{_KIND_CODE}, num, text", fields, keys)
    if not len(found):
        return {}
    at, keep = positions(found["run"])
    found = found[keep]
    kind_arr, num_arr, text_arr, run_arr = found["kind"], found["num"], found["text"], found["run"]
    exact: dict[tuple[int, str], Any] = {}
    inexact = (kind_arr == 5) | ((kind_arr == 1) & _beyond_float(num_arr))
    if inexact.any():
        exact_names, exact_rows = keyed_rows(table_name, "json", [("json", "O")], keys)
        for number, code, raw_json in exact_rows.tolist():
            exact[(number, exact_names[code])] = raw_json
    columns: dict[str, Any] = {}
    for key, mask in group_by_code(names, found["key"]):
        rows_at = at[mask]
        kinds = {_KINDS[c] for c in np.unique(kind_arr[mask]).tolist()}
        complete = len(rows_at) == n
        values = num_arr[mask]
        if kinds <= {"int", "float"} and not (kinds == {"int"} and _beyond_float(values).any()):
            out: Any = np.full(n, np.nan)
            out[rows_at] = values
            if kinds == {"int"} and complete:
                out = out.astype(np.int64)
        elif kinds == {"bool"} and complete:
            out = np.zeros(n, dtype=bool)
            out[rows_at] = values != 0
        else:
            out = [None] * n
            for i, kind, num, text, number in zip(
                rows_at.tolist(),
                [_KINDS[c] for c in kind_arr[mask].tolist()],
                num_arr[mask].tolist(),
                text_arr[mask].tolist(),
                run_arr[mask].tolist(),
                strict=True,
            ):
                out[i] = _exact(kind, num, text, exact.get((number, key)))
        columns[f"{prefix}.{key}"] = out
    return columns


def _codes(labels: Sequence[str]) -> tuple[list[str], Any]:
    """Distinct labels in order of appearance, and each label's index among them."""
    import numpy as np

    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(label, len(index)) for label in labels), dtype=np.int64, count=len(labels)
    )
    return list(index), codes


def group_by_code(names: Sequence[str], codes: Any) -> list[tuple[str, Any]]:
    """(name, indices of its rows) for each name that has rows, sorted by name."""
    import numpy as np

    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    groups = [(names[c], order[bounds[c] : bounds[c + 1]]) for c in range(len(names))]
    return sorted((g for g in groups if len(g[1])), key=lambda g: g[0])


def _beyond_float(values: Any) -> Any:
    """Which numbers a float64 may not hold exactly as integers (their JSON is read)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        return np.abs(values) >= 2.0**53


def _exact(kind: str, num: float, text: str | None, raw_json: str | None) -> Any:
    if raw_json is not None:
        return json.loads(raw_json)
    if kind == "str":
        return text
    if kind == "int":
        return int(num)
    if kind == "float":
        return num  # NaN (stored as NULL) is already NaN
    if kind == "bool":
        return bool(num)
    return None  # null


def _fetch(raw: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    cur = raw.cursor()
    try:
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        cur.close()
