"""Per-run packed rows: each run's params, summary and metric summaries kept on write in one
``run_rows`` row, so reading many runs as columns (``RunList.to_pandas()`` of 100,000 runs)
reads one row per run instead of one per run and key (20 params and 10 metrics make 3 million
rows at 100,000 runs), and decodes them with numpy instead of a Python object per value.

A section (params, summary, metrics) of a run is:

- ``keyset``: the id of its sorted key list in ``key_sets`` (the list as JSON; the id is the
  first 8 bytes of its BLAKE2b hash), so runs with the same keys, nearly all runs of an
  experiment, share one list and decode together as one 2-D array;
- ``packed``: for params and summary, 9 bytes per key (a kind byte, then 8 bytes of value: an
  int64 for ``i`` ints and ``b`` bools, a float64 for ``f`` floats); for metrics, 40 bytes per
  key: last, min, max (float64, NaN where the table has NULL), count and last step (int64);
- ``other`` (params and summary): a JSON array of the exact values of kind ``o`` (strings,
  None, lists, dicts, ints beyond int64) in key order, NULL when there are none.

:func:`refresh` rewrites a run's sections from the ``params``, ``summaries`` and ``metrics``
tables inside the write transaction that changed them; those tables stay the truth for
queries and records. Reading every run folds each column into one value inside the database
(``group_concat`` on SQLite, ``string_agg`` on PostgreSQL), so Python sees a handful of
values per 50,000 runs rather than several per run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from labkeep.errors import StoreError

SECTIONS = ("params", "summary", "metrics")
#: Each section's columns in ``run_rows``.
COLUMNS = {
    "params": ("param_keyset", "param_packed", "param_other"),
    "summary": ("summary_keyset", "summary_packed", "summary_other"),
    "metrics": ("metric_keyset", "metric_packed"),
}
_SOURCE = {"params": "params", "summary": "summaries"}
_KIND_I, _KIND_F, _KIND_B, _KIND_O = (ord(c) for c in "ifbo")
_INT64 = 2**63
#: Runs folded into one value at a time when every run is read.
FOLD_RUNS = 50_000


def _dtype(section: str) -> Any:
    import numpy as np

    if section == "metrics":
        return np.dtype(
            [("last", "<f8"), ("min", "<f8"), ("max", "<f8"), ("count", "<i8"), ("step", "<i8")]
        )
    return np.dtype([("kind", "u1"), ("bits", "<i8")])


# -- writing -----------------------------------------------------------------------------------


def pack_values(rows: Iterable[tuple[str, str]]) -> tuple[str, bytes, str | None] | None:
    """A params or summary section from (key, exact JSON) rows: (keys as JSON, packed bytes,
    other values as JSON or None); None when there are no rows."""
    import struct

    keys: list[str] = []
    packed = bytearray()
    other: list[str] = []
    for key, exact in sorted(rows):
        value = json.loads(exact)
        keys.append(key)
        if isinstance(value, bool):
            packed += struct.pack("<Bq", _KIND_B, int(value))
        elif isinstance(value, int) and -_INT64 <= value < _INT64:
            packed += struct.pack("<Bq", _KIND_I, value)
        elif isinstance(value, float):
            packed += struct.pack("<Bd", _KIND_F, value)
        else:
            packed += struct.pack("<Bq", _KIND_O, 0)
            other.append(exact)
    if not keys:
        return None
    return _keys_text(keys), bytes(packed), f"[{','.join(other)}]" if other else None


def pack_metrics(
    rows: Iterable[tuple[str, float | None, float | None, float | None, int, int]],
) -> tuple[str, bytes] | None:
    """The metrics section from (key, last, min, max, count, last step) rows, packed a
    column at a time (a struct per key cost 8 µs a key, rewritten at every ingest batch of
    a run of 50,000 keys)."""
    import numpy as np

    ordered = sorted(rows, key=itemgetter(0))
    if not ordered:
        return None
    keys, last, low, high, count, step = zip(*ordered, strict=True)
    out = np.empty(len(keys), dtype=_dtype("metrics"))
    # None (SQL NULL) becomes NaN in a float64 array.
    out["last"] = np.array(last, dtype=np.float64)
    out["min"] = np.array(low, dtype=np.float64)
    out["max"] = np.array(high, dtype=np.float64)
    out["count"] = count
    out["step"] = step
    return _keys_text(list(keys)), out.tobytes()


def _keys_text(keys: list[str]) -> str:
    return json.dumps(keys, ensure_ascii=False, separators=(",", ":"))


def keyset_id(keys_text: str) -> int:
    """The id of a key list: its BLAKE2b hash's first 8 bytes as a signed integer."""
    import hashlib

    digest = hashlib.blake2b(keys_text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def pack_sections(
    found: dict[str, list[tuple[Any, ...]]], sections: Sequence[str]
) -> tuple[list[str], list[Any], dict[int, str]]:
    """Column names and values of ``run_rows`` for ``sections`` from each section's table rows,
    and the key lists they name (id to JSON)."""
    names: list[str] = []
    values: list[Any] = []
    key_lists: dict[int, str] = {}
    for section in sections:
        rows = found.get(section, [])
        packed = pack_metrics(rows) if section == "metrics" else pack_values(rows)
        columns = COLUMNS[section]
        names.extend(columns)
        if packed is None:
            values.extend([None] * len(columns))
            continue
        keys_text, *rest = packed
        ident = keyset_id(keys_text)
        key_lists[ident] = keys_text
        values.append(ident)
        values.extend(rest)
    return names, values, key_lists


def refresh(
    cur: Any,
    sql: Any,
    number: int,
    sections: Sequence[str],
    touched_metrics: list[tuple[Any, ...]] | None = None,
    metrics_complete: bool = False,
) -> None:
    """Rewrite run ``number``'s ``sections`` of ``run_rows`` from the tables, on the DB-API
    cursor ``cur`` of an open write transaction (``sql`` adapts ``?`` marks).

    ``touched_metrics``: the merged (key, last, min, max, count, last step) rows of the keys
    a batch changed; the metrics section is then updated from them and the packed section
    already stored, instead of read back whole (a run of 50,000 keys logging a few at a
    time rewrites those few). ``metrics_complete``: those rows are all of the run's keys."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    merged: tuple[int, bytes, str | None] | None = None
    for section in sections:
        if section == "metrics" and touched_metrics is not None and metrics_complete:
            found[section] = touched_metrics
            continue
        if section == "metrics" and touched_metrics is not None:
            merged = _merge_metrics(cur, sql, number, touched_metrics)
            if merged is not None:
                continue
        if section == "metrics":
            query = "SELECT key, last, min, max, count, last_step FROM metrics WHERE run_number = ?"
        else:
            query = f"SELECT key, json FROM {_SOURCE[section]} WHERE run_number = ?"
        cur.execute(sql(query), (number,))
        found[section] = cur.fetchall()
    rest = [s for s in sections if s in found]
    names, values, key_lists = pack_sections(found, rest)
    if merged is not None:
        ident, packed, new_text = merged
        names.extend(COLUMNS["metrics"])
        values.extend([ident, packed])
        if new_text is not None:
            key_lists[ident] = new_text
    for ident, keys_text in key_lists.items():
        add_key_list(cur, sql, ident, keys_text)
    marks = ", ".join("?" * (len(names) + 1))
    updates = ", ".join(f"{name} = excluded.{name}" for name in names)
    cur.execute(
        sql(
            f"INSERT INTO run_rows (run_number, {', '.join(names)}) VALUES ({marks}) "
            f"ON CONFLICT (run_number) DO UPDATE SET {updates}"
        ),
        (number, *values),
    )


#: The keys of a stored key list and each key's place in it, by id: an id is the hash of
#: its list, so an entry holds for every store and never goes stale. Bounded.
_KEY_LIMIT = 64
_KEY_INDEX: dict[int, tuple[list[str], dict[str, int]]] = {}


def _key_index(cur: Any, sql: Any, ident: int) -> tuple[list[str], dict[str, int]] | None:
    found = _KEY_INDEX.get(ident)
    if found is None:
        cur.execute(sql("SELECT keys FROM key_sets WHERE id = ?"), (ident,))
        row = cur.fetchone()
        if row is None:
            return None
        keys = json.loads(row[0])
        found = (keys, {k: i for i, k in enumerate(keys)})
        if len(_KEY_INDEX) >= _KEY_LIMIT:
            _KEY_INDEX.clear()
        _KEY_INDEX[ident] = found
    return found


def _merge_metrics(
    cur: Any, sql: Any, number: int, touched: list[tuple[Any, ...]]
) -> tuple[int, bytes, str | None] | None:
    """The run's metrics section (key-list id, packed bytes, and the key list as JSON when
    it is new) with the ``touched`` rows written over the stored section; None when there
    is no stored section to start from."""
    import numpy as np

    cur.execute(
        sql("SELECT metric_keyset, metric_packed FROM run_rows WHERE run_number = ?"), (number,)
    )
    row = cur.fetchone()
    dtype = _dtype("metrics")
    if row is None or row[0] is None:
        return None
    index = _key_index(cur, sql, int(row[0]))
    if index is None:
        return None
    keys, place = index
    stored = np.frombuffer(bytes(row[1]), dtype=dtype)
    if len(stored) != len(keys):
        return None
    new = [r for r in touched if r[0] not in place]
    if new:
        keys = sorted([*keys, *(r[0] for r in new)])
        place = {k: i for i, k in enumerate(keys)}
        out = np.zeros(len(keys), dtype=dtype)
        out[[place[k] for k in index[0]]] = stored
    else:
        out = stored.copy()
    names, last, low, high, count, step = zip(*touched, strict=True)
    at = [place[k] for k in names]
    out["last"][at] = np.array(last, dtype=np.float64)  # None (SQL NULL) becomes NaN
    out["min"][at] = np.array(low, dtype=np.float64)
    out["max"][at] = np.array(high, dtype=np.float64)
    out["count"][at] = count
    out["step"][at] = step
    if not new:
        return int(row[0]), out.tobytes(), None
    keys_text = _keys_text(keys)
    return keyset_id(keys_text), out.tobytes(), keys_text


def add_key_list(cur: Any, sql: Any, ident: int, keys_text: str) -> None:
    """Store a key list under its id, refusing a different list with the same id."""
    cur.execute(
        sql("INSERT INTO key_sets (id, keys) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"),
        (ident, keys_text),
    )
    if cur.rowcount == 1:
        return
    cur.execute(sql("SELECT keys FROM key_sets WHERE id = ?"), (ident,))
    stored = cur.fetchone()
    if stored is None or stored[0] != keys_text:
        raise StoreError(
            f"two key lists share the id {ident} in key_sets ({stored and stored[0]!r} and "
            f"{keys_text!r}); report this to the labkeep maintainers"
        )


# -- reading -----------------------------------------------------------------------------------

#: Values per ``IN (…)`` list, well under SQLite's limit of bound parameters.
IN_CHUNK = 500


def rows_in(raw: Any, dialect: str, sql: str, column: str, values: Sequence[Any]) -> list[Any]:
    """The rows of ``sql`` (a SELECT without WHERE) whose ``column`` is one of ``values``,
    asked for ``IN_CHUNK`` values at a time on the DB-API connection ``raw``."""
    mark = "?" if dialect == "sqlite" else "%s"
    found: list[Any] = []
    cur = raw.cursor()
    try:
        for lo in range(0, len(values), IN_CHUNK):
            part = [int(v) for v in values[lo : lo + IN_CHUNK]]
            cur.execute(f"{sql} WHERE {column} IN ({', '.join([mark] * len(part))})", part)
            found.extend(cur.fetchall())
    finally:
        cur.close()
    return found


class Folded:
    """One section of the runs read: aligned arrays of run numbers, key-list ids and packed
    lengths, the packed bytes of those runs end to end, and the JSON arrays of their
    ``other`` values joined by commas (runs without any are skipped)."""

    def __init__(self) -> None:
        self.numbers: list[Any] = []
        self.keysets: list[Any] = []
        self.lengths: list[Any] = []
        self.packed: list[bytes] = []
        self.other: list[str] = []

    def extend(
        self, numbers: Any, keysets: Any, lengths: Any, packed: bytes, other: str | None
    ) -> None:
        self.numbers.append(numbers)
        self.keysets.append(keysets)
        self.lengths.append(lengths)
        self.packed.append(packed)
        if other:
            self.other.append(other)


def read_sections(raw: Any, dialect: str, wanted: Any, scan: bool) -> dict[str, Folded]:
    """Each section of the runs ``wanted`` (every run when ``scan``), over the DB-API
    connection ``raw``."""
    import numpy as np

    folded = {section: Folded() for section in SECTIONS}
    if scan or folds_selection(dialect, wanted):
        cur = raw.cursor()
        try:
            if not scan:  # one statement for the whole selection
                cur.execute(_fold_sql(dialect, among=True), (array_text(wanted),))
                _unfold(cur.fetchone(), folded)
                return folded
            cur.execute("SELECT min(run_number), max(run_number) FROM run_rows")
            low, high = cur.fetchone()
            sql = _fold_sql(dialect)
            for lo in range(low or 0, (high or -1) + 1, FOLD_RUNS):
                cur.execute(sql, (lo, lo + FOLD_RUNS - 1))
                _unfold(cur.fetchone(), folded)
        finally:
            cur.close()
        return folded
    names = [name for section in SECTIONS for name in COLUMNS[section]]
    rows = rows_in(
        raw, dialect, f"SELECT run_number, {', '.join(names)} FROM run_rows", "run_number", wanted
    )
    at = 1
    for section, columns in COLUMNS.items():
        present = [r for r in rows if r[at] is not None]
        blobs = [bytes(r[at + 1]) for r in present]
        folded[section].extend(
            np.array([r[0] for r in present], dtype=np.int64),
            np.array([r[at] for r in present], dtype=np.int64),
            np.array([len(b) for b in blobs], dtype=np.int64),
            b"".join(blobs),
            ",".join(r[at + 2] for r in present if r[at + 2] is not None)
            if len(columns) > 2
            else None,
        )
        at += len(columns)
    return folded


def folds_selection(dialect: str, wanted: Sequence[Any]) -> bool:
    """Whether a selection of runs is read folded, in one statement (PostgreSQL, more runs
    than one IN list holds), rather than as plain rows ``IN_CHUNK`` runs at a time: 100,000
    runs of a store of a million took 200 statements per table and a Python tuple per row."""
    return dialect == "postgresql" and len(wanted) > IN_CHUNK


def array_text(numbers: Sequence[Any]) -> str:
    """Integers as the text of a PostgreSQL array (``{1,2,3}``), for ``CAST(%s AS bigint[])``:
    psycopg adapting a list of 100,000 ints took 2 s of the client's CPU, this 20 ms."""
    import numpy as np

    return "{" + ",".join(map(str, np.asarray(numbers, dtype=np.int64).tolist())) + "}"


def _unfold(row: Sequence[Any], folded: dict[str, Folded]) -> None:
    """Add one folded row of :func:`_fold_sql` to ``folded``."""
    rest = list(row)
    for section, columns in COLUMNS.items():
        texts, rest = rest[: len(columns) + 2], rest[len(columns) + 2 :]
        if texts[0] is None:
            continue
        numbers, keysets, lengths = (_ints(text) for text in texts[:3])
        packed = bytes(texts[3])
        if len(packed) != int(lengths.sum()):
            raise StoreError("run_rows could not be read back whole")
        other = texts[4] if len(texts) > 4 else None
        folded[section].extend(numbers, keysets, lengths, packed, other)


def _fold_sql(dialect: str, *, among: bool = False) -> str:
    """One statement folding every section of a range of runs (with ``among``, of the runs in
    one array parameter; PostgreSQL only): per section, its runs' numbers,
    key-list ids and packed lengths as comma-separated text, the packed bytes end to end, and
    the ``other`` arrays joined by commas. One scan of the table in run order feeds every
    aggregate; NULLs (runs without the section) are skipped by each."""
    folds: list[str] = []
    for keyset, packed, *other in COLUMNS.values():
        number = f"CASE WHEN {keyset} IS NOT NULL THEN run_number END"
        if dialect == "sqlite":
            # Blobs pass through group_concat unchanged (the database is UTF-8); the cast
            # gives them back as bytes.
            folds += [
                f"group_concat({number})",
                f"group_concat({keyset})",
                f"group_concat(length({packed}))",
                f"CAST(group_concat({packed}, '') AS BLOB)",
                *(f"group_concat({o})" for o in other),
            ]
        else:
            folds += [
                f"string_agg(CAST({number} AS text), ',')",
                f"string_agg(CAST({keyset} AS text), ',')",
                f"string_agg(CAST(length({packed}) AS text), ',')",
                f"string_agg({packed}, ''::bytea)",
                *(f"string_agg({o}, ',')" for o in other),
            ]
    if dialect == "sqlite":
        return f"SELECT {', '.join(folds)} FROM run_rows WHERE run_number BETWEEN ? AND ?"
    # The rows come in run order from the subquery (the primary key's order), the same for
    # every aggregate: an ORDER BY in each aggregate would sort once per column.
    rows = "run_number = ANY(CAST(%s AS bigint[]))" if among else "run_number BETWEEN %s AND %s"
    ordered = f"SELECT * FROM run_rows WHERE {rows} ORDER BY run_number"
    return f"SELECT {', '.join(folds)} FROM ({ordered}) AS run_rows"


def _ints(text: str) -> Any:
    import numpy as np

    return np.fromstring(text, dtype=np.int64, sep=",")


def key_lists(raw: Any, dialect: str, folded: dict[str, Folded]) -> dict[int, list[str]]:
    """The key lists the sections name, by id."""
    import numpy as np

    ids = sorted(
        {int(i) for f in folded.values() for part in f.keysets for i in np.unique(part).tolist()}
    )
    rows = rows_in(raw, dialect, "SELECT id, keys FROM key_sets", "id", ids)
    return {int(i): json.loads(keys) for i, keys in rows}


def _groups(
    folded: Folded, positions: Any, lists: dict[int, list[str]], section: str
) -> Iterable[tuple[list[str], Any, Any, Any]]:
    """Per key list: its keys, the output position of each of its runs, their packed values
    as a 2-D array (runs x keys), and each of those runs' index among the runs with
    ``other`` values (-1 for none)."""
    import numpy as np

    if not folded.numbers:
        return
    numbers = np.concatenate(folded.numbers)
    keysets = np.concatenate(folded.keysets)
    lengths = np.concatenate(folded.lengths)
    raw = np.frombuffer(b"".join(folded.packed), dtype=np.uint8)
    dtype = _dtype(section)
    at, keep = positions(numbers)
    starts = np.cumsum(lengths) - lengths
    distinct, inverse = np.unique(keysets, return_inverse=True)
    records: list[Any] = [None] * len(distinct)
    for g, ident in enumerate(distinct.tolist()):
        rows = np.flatnonzero(inverse == g)
        width = len(lists[ident]) * dtype.itemsize
        if len(distinct) == 1:
            block = raw
        else:
            block = raw[starts[rows][:, None] + np.arange(width)[None, :]].ravel()
        records[g] = (rows, block.view(dtype).reshape(len(rows), -1))
    # Runs with ``other`` values, in run order: their index into the decoded JSON lists.
    has_other = np.zeros(len(numbers), dtype=bool)
    if section != "metrics":
        for rows, values in records:
            has_other[rows] = (values["kind"] == _KIND_O).any(axis=1)
    other_index = np.where(has_other, np.cumsum(has_other) - 1, -1)
    kept_at = np.cumsum(keep) - 1  # a kept row's index into ``at``
    for g, ident in enumerate(distinct.tolist()):
        rows, values = records[g]
        mine = keep[rows]
        yield lists[ident], at[kept_at[rows[mine]]], values[mine], other_index[rows[mine]]


def value_columns(
    folded: Folded, positions: Any, lists: dict[int, list[str]], n: int, prefix: str
) -> dict[str, Any]:
    """Params or summary columns for ``n`` runs: a numpy array where every present value is a
    number of one type (int64 when no run lacks it, else float64; bool likewise), else a list
    of the exact values (None where a run lacks the key). Sorted by key."""
    import numpy as np

    others: list[list[Any]] = json.loads(f"[{','.join(folded.other)}]") if folded.other else []
    parts: dict[str, list[tuple[Any, Any, Any, list[Any]]]] = {}
    for keys, where, values, other_index in _groups(folded, positions, lists, prefix):
        kinds = values["kind"]
        is_other = kinds == _KIND_O
        # The j-th key's value of a run is the rank[run, j]-th of that run's other values.
        rank = np.cumsum(is_other, axis=1) - 1
        exact: dict[int, list[Any]] = {}
        for j in np.flatnonzero(is_other.any(axis=0)).tolist():
            rows = np.flatnonzero(is_other[:, j])
            exact[j] = [
                others[i][r]
                for i, r in zip(other_index[rows].tolist(), rank[rows, j].tolist(), strict=True)
            ]
        for j, key in enumerate(keys):
            parts.setdefault(key, []).append(
                (where, kinds[:, j], values["bits"][:, j], exact.get(j, []))
            )
    return {f"{prefix}.{key}": _value_column(parts[key], n) for key in sorted(parts)}


def _value_column(parts: list[tuple[Any, Any, Any, list[Any]]], n: int) -> Any:
    import numpy as np

    where = np.concatenate([p[0] for p in parts])
    kinds = np.concatenate([p[1] for p in parts])
    bits = np.concatenate([p[2] for p in parts])
    present = set(np.unique(kinds).tolist())
    complete = len(where) == n
    out: Any
    if present <= {_KIND_I, _KIND_F}:
        exact_ints = not (np.abs(bits[kinds == _KIND_I]) >= 2**53).any()
        if present == {_KIND_I} and exact_ints and complete:
            out = np.zeros(n, dtype=np.int64)
            out[where] = bits
            return out
        if exact_ints:  # an int a float cannot hold keeps the column exact
            is_int = kinds == _KIND_I
            floats = bits.view(np.float64).copy()
            floats[is_int] = bits[is_int].astype(np.float64)
            out = np.full(n, np.nan)
            out[where] = floats
            return out
    elif present == {_KIND_B} and complete:
        out = np.zeros(n, dtype=bool)
        out[where] = bits != 0
        return out
    # Exact values: ints a float cannot hold, bools with gaps, text, None, lists, dicts.
    listed: list[Any] = [None] * n
    others = iter([v for p in parts for v in p[3]])
    if present == {_KIND_O}:
        for i, value in zip(where.tolist(), others, strict=True):
            listed[i] = value
        return listed
    floats = bits.view(np.float64).tolist()
    for i, kind, b, f in zip(where.tolist(), kinds.tolist(), bits.tolist(), floats, strict=True):
        if kind == _KIND_I:
            listed[i] = b
        elif kind == _KIND_F:
            listed[i] = f
        elif kind == _KIND_B:
            listed[i] = bool(b)
        else:
            listed[i] = next(others)
    return listed


def metric_columns(
    folded: Folded, positions: Any, lists: dict[int, list[str]], n: int
) -> dict[str, Any]:
    """``metrics.K`` (last), ``.min``, ``.max``, ``.count`` and ``.step`` for ``n`` runs:
    float64 with NaN where a run lacks the key; count and step int64 when no run does."""
    import numpy as np

    parts: dict[str, list[tuple[Any, Any]]] = {}
    for keys, where, values, _ in _groups(folded, positions, lists, "metrics"):
        for j, key in enumerate(keys):
            parts.setdefault(key, []).append((where, values[:, j]))
    columns: dict[str, Any] = {}
    for key in sorted(parts):
        where = np.concatenate([p[0] for p in parts[key]])
        stats = np.concatenate([p[1] for p in parts[key]])
        for suffix, field in zip(
            ("", ".min", ".max", ".count", ".step"), _dtype("metrics").names, strict=True
        ):
            out = (
                np.zeros(n, dtype=np.int64)
                if field in ("count", "step") and len(where) == n
                else np.full(n, np.nan)
            )
            out[where] = stats[field]
            columns[f"metrics.{key}{suffix}"] = out
    return columns
