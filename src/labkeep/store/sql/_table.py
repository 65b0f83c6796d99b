"""``get_run_table`` for SQL stores: many runs as columns, without a Python row per run and
key where it counts (``RunList.to_pandas()`` of 100,000 runs holds some 5 million values).

Params, summaries and metric summaries come from ``run_rows``, one packed row per run kept on
write (:mod:`labkeep.store.sql._packed`). The runs and tags tables are read as flat,
row-aligned arrays (run number, key, values), then placed by run with numpy. A selection of a
few runs reads plain rows through the primary key. A large one scans each table once and lets
the database fold every column into one text (``group_concat`` on SQLite, ``string_agg`` on
PostgreSQL), decoded in C: integers by numpy, keys and strings by :func:`json.loads`. Floats
must come back exact: PostgreSQL prints the shortest text that round-trips, but SQLite can
only print them exactly slowly, so on SQLite they are read as rows of floats only, in the same
scan order within one read transaction. Tags become small integers inside SQLite (a join with
a temporary table of the tags), not a Python string per row. On SQLite ``run_rows`` is read
on this connection while a second connection reads runs and tags in a thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkeep.store._base import TABLE_ATTRIBUTES
from labkeep.store.sql._packed import (
    array_text,
    folds_selection,
    key_lists,
    metric_columns,
    read_sections,
    rows_in,
    value_columns,
)

if TYPE_CHECKING:
    from labkeep.store._uri import StoreLocation
    from labkeep.store.sql._connect import Connection

#: Above this many runs (or this share of the store) the tables are scanned whole.
SCAN_ABOVE = 1_000
SCAN_SHARE = 0.5

#: Column kinds: how a column is folded into text and decoded.
_INT, _REAL, _TEXT = "int", "real", "text"

_RUN_COLUMNS = (
    ("uuid", _TEXT),
    ("name", _TEXT),
    ("experiment_id", _INT),
    ("status", _TEXT),
    ("start_time", _REAL),
    ("end_time", _REAL),
    ("heartbeat", _REAL),
    ("username", _TEXT),
    ("host", _TEXT),
)


class _Flat:
    """One table's rows as aligned columns: ``run`` (int64), each row's key as a ``code``
    into ``labels`` (for tables with keys) and the named columns (numpy arrays; lists for
    text and JSON)."""

    def __init__(self, run: Any, codes: Any, labels: list[Any], columns: dict[str, Any]) -> None:
        self.run = run
        self.codes = codes
        self.labels = labels
        self.columns = columns

    def groups(self) -> list[tuple[Any, Any]]:
        """(key, indices of its rows) for each key with rows, sorted by key."""
        import numpy as np

        if self.codes is None:
            return []
        order = np.argsort(self.codes, kind="stable")
        bounds = np.searchsorted(self.codes[order], np.arange(len(self.labels) + 1))
        found = [(k, order[bounds[c] : bounds[c + 1]]) for c, k in enumerate(self.labels)]
        return sorted((g for g in found if len(g[1])), key=lambda g: g[0])


def _codes(keys: list[Any]) -> tuple[Any, list[Any]]:
    """Each key's index among the distinct keys, and the distinct keys."""
    import numpy as np

    index: dict[Any, int] = {}
    codes = np.fromiter(
        (index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys)
    )
    return codes, list(index)


class _Reader:
    """Reads tables as :class:`_Flat` over one DB-API connection, for all runs (``scan``) or
    for the run numbers ``wanted``."""

    def __init__(self, raw: Any, dialect: str, wanted: Any, scan: bool) -> None:
        self.raw = raw
        self.dialect = dialect
        self.wanted = wanted
        self.scan = scan

    def read(
        self, table: str, number: str, key: str | None, columns: Sequence[tuple[str, str]]
    ) -> _Flat:
        if self.scan or folds_selection(self.dialect, self.wanted):
            return self._folded(table, number, key, columns)
        return self._rows(table, number, key, columns)

    # -- a few runs: plain rows --------------------------------------------------------------
    def _rows(
        self, table: str, number: str, key: str | None, columns: Sequence[tuple[str, str]]
    ) -> _Flat:
        import numpy as np

        names = [number, *([key] if key else []), *(name for name, _ in columns)]
        sql = f"SELECT {', '.join(names)} FROM {table}"
        found = rows_in(self.raw, self.dialect, sql, number, self.wanted)
        cols = list(zip(*found, strict=True)) if found else [() for _ in names]
        at = 2 if key else 1
        decoded: dict[str, Any] = {}
        for (name, kind), values in zip(columns, cols[at:], strict=True):
            if kind == _INT:
                decoded[name] = np.array(values, dtype=np.int64)
            elif kind == _REAL:
                decoded[name] = np.array(values, dtype=np.float64)  # None becomes NaN
            else:
                decoded[name] = list(values)
        codes, labels = _codes(list(cols[1])) if key else (None, [])
        return _Flat(np.array(cols[0], dtype=np.int64), codes, labels, decoded)

    # -- every run: one folded row -----------------------------------------------------------
    def _fold(self, column: str, kind: str) -> list[str]:
        if self.dialect == "sqlite":
            if kind == _INT:
                return [f"group_concat({column}, ',')"]
            if kind == _REAL:  # only where they are NULL: the values come as rows of floats
                return [f"group_concat({column} IS NULL, ',')"]
            return [f"json_group_array({column})"]
        if kind == _INT:
            return [f"string_agg(CAST({column} AS text), ',')"]
        if kind == _REAL:
            return [f"string_agg(coalesce(CAST({column} AS text), 'NaN'), ',')"]
        return [f"CAST(json_agg({column}) AS text)"]

    def _folded(
        self, table: str, number: str, key: str | None, columns: Sequence[tuple[str, str]]
    ) -> _Flat:
        """The table's rows (every run's, or on PostgreSQL a large selection's) folded into
        one row of texts, decoded into columns."""
        import numpy as np

        sqlite = self.dialect == "sqlite"
        # SQLite: a table scan in rowid order for every statement below (no index may
        # reorder one of them), inside one read transaction (the same rows for each).
        # PostgreSQL: one sort in a subquery feeds every aggregate in the same order. An
        # ORDER BY inside each aggregate sorts once per column (spilling to disk past
        # work_mem): 100,000 runs took 1.6 s that way, against 0.1 s for the scan.
        order = f"{table}.{number}, {table}.{key}" if key else f"{table}.{number}"
        params: tuple[Any, ...] = ()
        if sqlite:
            source = f"{table} NOT INDEXED"
        elif self.scan:
            source = f"(SELECT * FROM {table} ORDER BY {order}) AS {table}"
        else:  # a selection, in one array parameter
            among = f"{table}.{number} = ANY(CAST(%s AS bigint[]))"
            source = f"(SELECT * FROM {table} WHERE {among} ORDER BY {order}) AS {table}"
            params = (array_text(self.wanted),)
        folds = self._fold(f"{table}.{number}", _INT)
        labels: list[Any] = []
        if key and sqlite:
            # Keys as small integers, looked up in SQLite: a Python string per row and
            # hashing it would cost more than the rest of the row.
            source += f" CROSS JOIN temp.{_KEY_TABLE} AS k ON k.key = {table}.{key}"
            folds += self._fold("k.code", _INT)
        elif key:
            folds += self._fold(f"{table}.{key}", _TEXT)
        for name, kind in columns:
            folds += self._fold(f"{table}.{name}", kind)
        reals = [f"{table}.{n}" for n, kind in columns if kind == _REAL] if sqlite else []
        began = sqlite and not self.raw.in_transaction
        if began:
            self.raw.execute("BEGIN")
        try:
            if key and sqlite:
                labels = self._key_table(table, key)
            texts = list(_fetch(self.raw, f"SELECT {', '.join(folds)} FROM {source}", params)[0])
            if texts[0] is None:  # no rows at all
                empty = {name: _decode("", kind) for name, kind in columns}
                codes = np.zeros(0, dtype=np.int64) if key else None
                return _Flat(np.zeros(0, dtype=np.int64), codes, labels, empty)
            run = _decode(texts.pop(0), _INT)
            if key and sqlite:
                codes = _decode(texts.pop(0), _INT)
            elif key:
                codes, labels = _codes(json.loads(texts.pop(0)))
            else:
                codes = None
            flat = _Flat(run, codes, labels, {})
            decoded = flat.columns
            for name, kind in columns:
                if kind != _REAL or not sqlite:
                    decoded[name] = _decode(texts.pop(0), kind)
                else:
                    decoded[name] = _decode(texts.pop(0), _INT).astype(bool)  # NULLs for now
            if reals:
                sql = f"SELECT {', '.join(f'ifnull({r}, 0.0)' for r in reals)} FROM {source}"
                cur = self.raw.execute(sql)
                try:
                    floats = _float_rows(cur, len(reals))
                finally:
                    cur.close()
                plain = [name for name, kind in columns if kind == _REAL]
                for i, name in enumerate(plain):
                    values, nulls = floats[:, i].copy(), decoded[name]
                    values[nulls] = np.nan
                    decoded[name] = values
        finally:
            if key and sqlite:
                self.raw.execute(f"DROP TABLE IF EXISTS temp.{_KEY_TABLE}")
            if began:
                self.raw.rollback()
        return flat

    def _key_table(self, table: str, key: str) -> list[Any]:
        """Fill the temporary table of ``table``'s keys and their codes; return the keys."""
        labels = [
            row[0]
            for row in _fetch(
                self.raw,
                f"WITH RECURSIVE seen(k) AS (SELECT min({key}) FROM {table} UNION ALL "
                f"SELECT (SELECT {key} FROM {table} WHERE {key} > seen.k ORDER BY {key} LIMIT 1) "
                "FROM seen WHERE seen.k IS NOT NULL) SELECT k FROM seen WHERE k IS NOT NULL",
                (),
            )
        ]
        self.raw.execute(f"DROP TABLE IF EXISTS temp.{_KEY_TABLE}")
        self.raw.execute(
            f"CREATE TEMP TABLE {_KEY_TABLE} (key TEXT PRIMARY KEY, code INTEGER NOT NULL) "
            "WITHOUT ROWID"
        )
        self.raw.executemany(
            f"INSERT INTO temp.{_KEY_TABLE} VALUES (?, ?)", [(k, i) for i, k in enumerate(labels)]
        )
        return labels


_KEY_TABLE = "labkeep_table_keys"


def _float_rows(cursor: Any, width: int) -> Any:
    """A cursor's rows of ``width`` floats as an (n, width) array, without a list of rows."""
    import itertools

    import numpy as np

    flat = np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.float64)
    return flat.reshape(-1, width)


def _decode(text: str, kind: str) -> Any:
    import numpy as np

    if kind == _INT:
        return np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, np.int64)
    if kind == _REAL:
        # PostgreSQL's shortest round-trip text (NaN, Infinity included).
        return np.fromstring(text, dtype=np.float64, sep=",") if text else np.zeros(0)
    return json.loads(text) if text else []


def read_run_table(
    conn: Connection, numbers: Sequence[int], location: StoreLocation
) -> dict[str, Any]:
    """The columns of :meth:`Store.get_run_table` for ``numbers``, read through the store's
    connection ``conn`` (and, for a large selection on SQLite, a second one to ``location``
    in a thread)."""
    import numpy as np

    from labkeep.errors import NotFoundError

    wanted = np.asarray(numbers, dtype=np.int64)
    n = len(wanted)
    order = np.argsort(wanted, kind="stable")
    sorted_numbers = wanted[order]
    dialect = conn.dialect
    raw = conn.raw.sqlite if dialect == "sqlite" else conn.raw
    total = _fetch(raw, "SELECT count(*) FROM runs", ())[0][0] if n > SCAN_ABOVE else 0
    scan = n > SCAN_ABOVE and n >= total * SCAN_SHARE

    def positions(run_numbers: Any) -> tuple[Any, Any]:
        """Row index of each run number, and which of them are selected."""
        arr = np.asarray(run_numbers, dtype=np.int64)
        at = np.searchsorted(sorted_numbers, arr)
        at[at >= n] = 0
        keep = sorted_numbers[at] == arr if n else np.zeros(len(arr), dtype=bool)
        return order[at[keep]], keep

    path = str(location.sqlite_path) if dialect == "sqlite" else None
    if scan and path:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            side = pool.submit(_read_side_tables, path, wanted, scan)
            folded = read_sections(raw, dialect, wanted, scan)
            lists = key_lists(raw, dialect, folded)
            run_rows, tag_rows = side.result()
    else:
        reader = _Reader(raw, dialect, wanted, scan)
        run_rows, tag_rows = _side_tables(reader)
        folded = read_sections(raw, dialect, wanted, scan)
        lists = key_lists(raw, dialect, folded)

    at, keep = positions(run_rows.run)
    if len(at) != n:
        have = set(run_rows.run[keep].tolist())
        missing = next(x for x in numbers if x not in have)
        raise NotFoundError(f"no run {missing}")

    def placed(values: Any, dtype: Any = object) -> Any:
        arr = np.asarray(values, dtype=dtype)[keep]
        out = np.empty(n, dtype=arr.dtype)
        out[at] = arr
        return out

    runs = run_rows.columns
    experiments = dict(_fetch(raw, "SELECT id, name FROM experiments", ()))
    start = placed(runs["start_time"], np.float64)
    end = placed(runs["end_time"], np.float64)
    heartbeat = placed(runs["heartbeat"], np.float64)
    finish = np.where(np.isnan(end), heartbeat, end)
    table: dict[str, Any] = {}
    table["number"] = wanted.copy()
    table["uuid"] = placed(runs["uuid"]).tolist()
    table["name"] = placed(runs["name"]).tolist()
    table["experiment"] = [experiments.get(i) for i in placed(runs["experiment_id"]).tolist()]
    table["status"] = placed(runs["status"]).tolist()
    table["start_time"] = start
    table["end_time"] = end
    table["duration"] = np.maximum(finish - start, 0.0)
    table["user"] = placed(runs["username"]).tolist()
    table["host"] = placed(runs["host"]).tolist()
    tags: list[list[str]] = [[] for _ in range(n)]
    for name, rows in tag_rows.groups():
        tag_at, _ = positions(tag_rows.run[rows])
        for i in tag_at.tolist():
            tags[i].append(name)
    table["tags"] = tags
    assert list(table) == list(TABLE_ATTRIBUTES)

    table.update(value_columns(folded["params"], positions, lists, n, "params"))
    table.update(metric_columns(folded["metrics"], positions, lists, n))
    table.update(value_columns(folded["summary"], positions, lists, n, "summary"))
    return table


def _side_tables(reader: _Reader) -> tuple[_Flat, _Flat]:
    """Runs and tags."""
    return (
        reader.read("runs", "number", None, _RUN_COLUMNS),
        reader.read("tags", "run_number", "tag", ()),
    )


def _read_side_tables(path: str, wanted: Any, scan: bool) -> tuple[_Flat, _Flat]:
    """:func:`_side_tables` over a connection of its own (for a thread)."""
    import sqlite3

    from labkeep.store.sql._connect import BUSY_TIMEOUT_S

    raw = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        raw.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        raw.execute("PRAGMA temp_store = MEMORY")
        return _side_tables(_Reader(raw, "sqlite", wanted, scan))
    finally:
        raw.close()


def _fetch(raw: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    cur = raw.cursor()
    try:
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        cur.close()
