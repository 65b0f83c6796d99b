"""Apply a WriteBatch to a SQL store in one transaction, through the DB-API connection.

The SQL is portable between SQLite (≥ 3.24) and PostgreSQL: ``INSERT … ON CONFLICT`` and
``CASE`` only. Metric points are stored as packed chunks per key; the per-key summary is
merged with what is already there so several writers can log to one run. A run's packed
row (``run_rows``) is updated in the same transaction, for the keys the batch touched.

On PostgreSQL the points and summaries go in with binary ``COPY`` (psycopg's
``cursor.copy()``): a statement per row held ingest near 350k points/s, most of it the
server's per-statement work, where COPY streams them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

from labkeep._names import run_name
from labkeep._values import encode_value
from labkeep.errors import NotFoundError
from labkeep.store._base import MetricBlock, MetricColumns, WriteBatch
from labkeep.store._refs import ARTIFACT, MEDIA
from labkeep.store.sql._connect import Connection
from labkeep.store.sql._packed import SECTIONS, refresh

CHUNK_POINTS = 65536
COMPACT_BELOW = 1024
#: A key's chunks are merged at finish only when there are more than this many: reading a
#: series of a few chunks costs what reading one does, and merging every key of a run of
#: 50,000 keys x 20 steps (two or three chunks each) was a third of its ingest on SQLite.
COMPACT_ABOVE = 8

_UPSERT_VALUE = """
INSERT INTO {table} (run_number, key, vtype, num, text, json) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run_number, key) DO UPDATE SET
  vtype = excluded.vtype, num = excluded.num, text = excluded.text, json = excluded.json
"""

#: How a key's new summary merges with the stored one (several writers may log one key).
_MERGE_METRIC = """
ON CONFLICT (run_number, key) DO UPDATE SET
  last = CASE WHEN excluded.last_time >= metrics.last_time THEN excluded.last ELSE metrics.last END,
  last_step = CASE WHEN excluded.last_time >= metrics.last_time
                   THEN excluded.last_step ELSE metrics.last_step END,
  last_time = CASE WHEN excluded.last_time >= metrics.last_time
                   THEN excluded.last_time ELSE metrics.last_time END,
  min = CASE WHEN metrics.min IS NULL OR excluded.min < metrics.min
             THEN excluded.min ELSE metrics.min END,
  max = CASE WHEN metrics.max IS NULL OR excluded.max > metrics.max
             THEN excluded.max ELSE metrics.max END,
  count = metrics.count + excluded.count
"""
_METRIC_COLUMNS = "run_number, key, last, last_step, last_time, min, max, count"
_UPSERT_METRIC = f"""
INSERT INTO metrics ({_METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) {_MERGE_METRIC}
"""
#: PostgreSQL: the batch's summaries, copied into the temporary table, merged at once.
_MERGE_METRIC_BATCH = f"""
INSERT INTO metrics ({_METRIC_COLUMNS})
SELECT %s, key, last, last_step, last_time, min, max, count FROM labkeep_metric_batch ORDER BY key
{_MERGE_METRIC} RETURNING key, last, min, max, count, last_step
"""

_INSERT_CHUNK = """
INSERT INTO metric_chunks (run_number, key, n, first_step, last_step, steps, vals, times)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""


def apply_batch(
    conn: Connection, batch: WriteBatch, snapshot_refs: set[tuple[str, str]] | None = None
) -> int:
    """Apply ``batch`` unless this writer's position already covers it; return the run number.

    ``snapshot_refs``: the ``(sha256, kind)`` blobs ``batch.snapshot`` names (see
    :func:`labkeep.store._refs.snapshot_refs`), which replace the run's snapshot references.
    """
    with conn.transaction() as cur:
        return _apply_in(cur, conn, batch, snapshot_refs)


def apply_batches(
    conn: Connection, batches: list[tuple[WriteBatch, set[tuple[str, str]] | None]]
) -> list[int]:
    """Apply ``(batch, snapshot_refs)`` pairs in order in one transaction (all or none), each
    as :func:`apply_batch` would; return their run numbers.

    One commit for many runs: importing 2,000 MLflow runs one transaction each spent 19 s
    of its 49 s of writing in the 2,000 commits (each a sync to disk), on a busy machine."""
    with conn.transaction() as cur:
        return [_apply_in(cur, conn, batch, refs) for batch, refs in batches]


def _apply_in(
    cur: Any, conn: Connection, batch: WriteBatch, snapshot_refs: set[tuple[str, str]] | None
) -> int:
    sql = conn.sql
    cur.execute(sql("SELECT position FROM journal_positions WHERE writer = ?"), (batch.writer,))
    row = cur.fetchone()
    if row is not None and row[0] >= batch.position:
        number = _run_number(cur, conn, batch.run_uuid)
        if batch.is_empty() and batch.heartbeat is not None:
            cur.execute(
                sql("UPDATE runs SET heartbeat = ? WHERE number = ?"), (batch.heartbeat, number)
            )
        return number
    if batch.start is not None:
        _create_run(cur, conn, batch)
    number = _run_number(cur, conn, batch.run_uuid)
    changed = [
        section
        for section, given in zip(
            SECTIONS,
            (batch.params, batch.summary, batch.metrics or batch.metric_block is not None),
            strict=True,
        )
        if given
    ]
    if changed and conn.dialect == "postgresql":
        # Writers to one run take turns (SQLite's BEGIN IMMEDIATE already makes every
        # writer wait), so the run's packed row is rebuilt from what the previous
        # writer committed, not from what it saw before that writer's keys changed.
        cur.execute(sql("SELECT number FROM runs WHERE number = ? FOR UPDATE"), (number,))
    if batch.params:
        _upsert_values(cur, conn, "params", number, batch.params)
    if batch.summary:
        _upsert_values(cur, conn, "summaries", number, batch.summary)
    if batch.tags_added:
        cur.executemany(
            sql("INSERT INTO tags (run_number, tag) VALUES (?, ?) ON CONFLICT DO NOTHING"),
            [(number, t) for t in batch.tags_added],
        )
    if batch.tags_removed:
        cur.executemany(
            sql("DELETE FROM tags WHERE run_number = ? AND tag = ?"),
            [(number, t) for t in batch.tags_removed],
        )
    if batch.notes is not None:
        cur.execute(sql("UPDATE runs SET notes = ? WHERE number = ?"), (batch.notes, number))
    touched: list[tuple[Any, ...]] = []
    complete = False
    if batch.metric_block is not None:
        touched, complete = _insert_metrics(cur, conn, number, batch.metric_block)
    elif batch.metrics:
        touched, complete = _insert_metrics(cur, conn, number, batch.metrics)
    if changed:
        refresh(
            cur,
            sql,
            number,
            changed,
            touched_metrics=touched if touched else None,
            metrics_complete=complete,
        )
    for art in batch.artifacts:
        cur.execute(
            sql(
                "INSERT INTO blobs (sha256, size, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            (art.sha256, art.size, art.created),
        )
        cur.execute(
            sql(
                "INSERT INTO artifacts (run_number, path, sha256, size, kind, created) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_number, path) DO UPDATE SET "
                "sha256 = excluded.sha256, size = excluded.size, kind = excluded.kind, "
                "created = excluded.created"
            ),
            (number, art.path, art.sha256, art.size, art.kind, art.created),
        )
    if batch.artifacts:
        _insert_refs(cur, conn, number, {(a.sha256, ARTIFACT) for a in batch.artifacts})
    if batch.media:
        _insert_media(cur, conn, number, batch)
    if batch.snapshot is not None or batch.snapshot_add:
        _write_snapshot(cur, conn, number, batch)
    if batch.snapshot is not None and snapshot_refs is not None:
        # A snapshot is rewritten whole by its owner: its references are replaced too.
        cur.execute(
            sql("DELETE FROM blob_refs WHERE run_number = ? AND kind NOT IN (?, ?)"),
            (number, ARTIFACT, MEDIA),
        )
        _insert_refs(cur, conn, number, snapshot_refs)
    if batch.output:
        cur.executemany(
            sql("INSERT INTO output_lines (run_number, stream, time, text) VALUES (?, ?, ?, ?)"),
            [(number, stream, t, text) for stream, t, text in batch.output],
        )
    heartbeat = batch.heartbeat
    if batch.resume is not None:
        # Running again, owned by the resuming process (so that its pid, not the dead
        # one's, tells whether it still runs).
        res = batch.resume
        cur.execute(
            sql(
                "UPDATE runs SET status = 'running', end_time = NULL, error = NULL, "
                "exit_code = NULL, pid = ?, host = ?, heartbeat = ? WHERE number = ?"
            ),
            (res.pid, res.host, res.time, number),
        )
    if batch.finish is not None:
        fin = batch.finish
        cur.execute(
            sql(
                "UPDATE runs SET status = ?, end_time = ?, error = ?, exit_code = ?, "
                "heartbeat = ? WHERE number = ?"
            ),
            (fin.status, fin.end_time, fin.error, fin.exit_code, fin.end_time, number),
        )
        _compact(cur, conn, number)
    elif heartbeat is not None:
        cur.execute(sql("UPDATE runs SET heartbeat = ? WHERE number = ?"), (heartbeat, number))
    cur.execute(
        sql(
            "INSERT INTO journal_positions (writer, run_number, position) VALUES (?, ?, ?) "
            "ON CONFLICT (writer) DO UPDATE SET position = excluded.position"
        ),
        (batch.writer, number, batch.position),
    )
    return number


_SNAPSHOT_LISTS = ("inputs", "seeds", "volatile")


def _insert_media(cur: Any, conn: Connection, number: int, batch: WriteBatch) -> None:
    """The batch's media rows; a (key, step) logged again loses the items it held before."""
    sql = conn.sql
    counts: dict[tuple[str, int], int] = {}
    for entry in batch.media:
        slot = (entry.key, entry.step)
        counts[slot] = max(counts.get(slot, 0), entry.index + 1)
    cur.executemany(
        sql("DELETE FROM media WHERE run_number = ? AND key = ? AND step = ? AND idx >= ?"),
        [(number, key, step, n) for (key, step), n in counts.items()],
    )
    cur.executemany(
        sql("INSERT INTO blobs (sha256, size, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
        sorted({(e.sha256, e.size, e.time) for e in batch.media}),
    )
    cur.executemany(
        sql(
            "INSERT INTO media (run_number, key, step, idx, kind, sha256, size, time, meta) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_number, key, step, idx) "
            "DO UPDATE SET kind = excluded.kind, sha256 = excluded.sha256, "
            "size = excluded.size, time = excluded.time, meta = excluded.meta"
        ),
        [
            (
                number,
                e.key,
                e.step,
                e.index,
                e.kind,
                e.sha256,
                e.size,
                e.time,
                json.dumps(e.meta, allow_nan=True),
            )
            for e in batch.media
        ],
    )
    _insert_refs(cur, conn, number, {(e.sha256, MEDIA) for e in batch.media})


def _insert_refs(cur: Any, conn: Connection, number: int, refs: set[tuple[str, str]]) -> None:
    cur.executemany(
        conn.sql(
            "INSERT INTO blob_refs (run_number, sha256, kind) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING"
        ),
        [(number, sha, kind) for sha, kind in sorted(refs)],
    )


def _write_snapshot(cur: Any, conn: Connection, number: int, batch: WriteBatch) -> None:
    """Store the owner's snapshot and the inputs, seeds and volatile artifact names other
    writers added, in either order: the lists are merged (inputs by path, the newest fingerprint winning)."""
    cur.execute(conn.sql("SELECT data FROM snapshots WHERE run_number = ?"), (number,))
    row = cur.fetchone()
    stored: dict[str, Any] = json.loads(row[0]) if row is not None else {}
    data: dict[str, Any] = dict(batch.snapshot) if batch.snapshot is not None else dict(stored)
    for name in _SNAPSHOT_LISTS:
        merged: list[Any] = []
        for item in [*stored.get(name, []), *data.get(name, []), *batch.snapshot_add.get(name, [])]:
            if name == "inputs" and isinstance(item, dict):
                merged = [m for m in merged if m.get("path") != item.get("path")]
            elif item in merged:
                continue
            merged.append(item)
        if merged or name in data:
            data[name] = merged
    cur.execute(
        conn.sql(
            "INSERT INTO snapshots (run_number, data) VALUES (?, ?) "
            "ON CONFLICT (run_number) DO UPDATE SET data = excluded.data"
        ),
        (number, json.dumps(data, allow_nan=True)),
    )


def _run_number(cur: Any, conn: Connection, uuid: str) -> int:
    cur.execute(conn.sql("SELECT number FROM runs WHERE uuid = ?"), (uuid,))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError(f"run {uuid} is not in the store (yet)")
    return int(row[0])


def _create_run(cur: Any, conn: Connection, batch: WriteBatch) -> None:
    start = batch.start
    assert start is not None
    sql = conn.sql
    cur.execute(
        sql("INSERT INTO experiments (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"),
        (start.experiment, start.start_time),
    )
    cur.execute(sql("SELECT id FROM experiments WHERE name = ?"), (start.experiment,))
    experiment_id = cur.fetchone()[0]
    cur.execute(
        sql(
            "INSERT INTO runs (uuid, experiment_id, name, status, start_time, heartbeat, "
            "username, host, pid, notes, parent_uuid, deleted, reproduces_uuid, run_group, "
            "job_type) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (uuid) DO NOTHING"
        ),
        (
            start.uuid,
            experiment_id,
            start.name,
            start.start_time,
            start.start_time,
            start.user,
            start.host,
            start.pid,
            start.notes,
            start.parent_uuid,
            False,
            start.reproduces_uuid,
            start.group,
            start.job_type,
        ),
    )
    if not start.name:
        number = _run_number(cur, conn, start.uuid)
        cur.execute(
            sql("UPDATE runs SET name = ? WHERE number = ?"), (run_name(start.uuid, number), number)
        )


def _upsert_values(
    cur: Any, conn: Connection, table: str, number: int, values: dict[str, Any]
) -> None:
    cur.executemany(
        conn.sql(_UPSERT_VALUE.format(table=table)),
        [(number, key, *encode_value(value)) for key, value in values.items()],
    )


def _metric_rows(
    number: int, metrics: dict[str, MetricColumns]
) -> tuple[Iterator[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The chunk rows (made as they are consumed, once) and the summary rows (key, last,
    last step, last time, min, max, count) of a batch's metrics, sorted by key: every key's
    columns joined end to end, then as :func:`_block_rows`."""
    keys = sorted(metrics)
    columns = list(map(metrics.__getitem__, keys))
    lengths = list(map(len, map(attrgetter("steps"), columns)))
    if not all(lengths):  # keys without points (never from a journal) have no rows
        keys = [k for k, n in zip(keys, lengths, strict=True) if n]
        columns = list(map(metrics.__getitem__, keys))
        lengths = [n for n in lengths if n]
    return _block_rows(
        number,
        MetricBlock(
            keys,
            lengths,
            b"".join(map(attrgetter("steps"), columns)),
            b"".join(map(attrgetter("values"), columns)),
            b"".join(map(attrgetter("times"), columns)),
        ),
    )


def chunk_pieces(
    lengths: Any, starts: Any, ends: Any, steps: Any
) -> tuple[Any, Any, Any, list[int], list[int]]:
    """Each key's points (``lengths`` of them from ``starts`` to ``ends`` in the joined
    ``steps``) cut in pieces of at most :data:`CHUNK_POINTS`, one chunk row a piece: each
    piece's key (its index), its ``[lo, hi)`` in the joined columns, and its first and last
    step. A few vector operations for a batch of any width."""
    import numpy as np

    pieces = (lengths + CHUNK_POINTS - 1) // CHUNK_POINTS
    owner = np.repeat(np.arange(len(lengths)), pieces)
    index_in_key = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    lo = starts[owner] + index_in_key * CHUNK_POINTS
    hi = np.minimum(lo + CHUNK_POINTS, ends[owner])
    first_step = np.minimum.reduceat(steps, lo).tolist()
    last_step = np.maximum.reduceat(steps, lo).tolist()
    return owner, lo, hi, first_step, last_step


def key_summaries(
    keys: Sequence[str], steps: Any, values: Any, times: Any, starts: Any, ends: Any
) -> tuple[list[tuple[Any, ...]], Any, Any, Any]:
    """Each key's ``metrics`` row (key, last, last step, its time, min, max, count; NaN as
    NULL) from its points ``starts[i]:ends[i]`` in the joined columns, made with numpy's
    ``reduceat``, and the min, max and last-point index arrays they came from."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        low = np.fmin.reduceat(values, starts)  # NaN only where every value is NaN
        high = np.fmax.reduceat(values, starts)
    tail = ends - 1
    last_values = values[tail]
    columns = (
        keys,
        last_values.tolist(),
        steps[tail].tolist(),
        times[tail].tolist(),
        low.tolist(),
        high.tolist(),
        (ends - starts).tolist(),
    )
    if not (np.isnan(last_values).any() or np.isnan(low).any()):
        return list(zip(*columns, strict=True)), low, high, tail
    rows = [  # NaN is stored as NULL
        (
            key,
            None if last != last else last,
            step,
            when,
            None if lo_v != lo_v else lo_v,
            None if hi_v != hi_v else hi_v,
            n,
        )
        for key, last, step, when, lo_v, hi_v, n in zip(*columns, strict=True)
    ]
    return rows, low, high, tail


def _block_rows(
    number: int, block: MetricBlock
) -> tuple[Iterator[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The chunk rows and summary rows of ``block`` (keys sorted, each with points), as
    :func:`_metric_rows` says. The summaries are made at once with numpy's ``reduceat``: a
    batch of 50,000 keys of a few points each costs a few vector operations, not a Python
    loop of them per key."""
    import numpy as np

    keys = block.keys
    if not keys:
        return iter(()), []
    lengths = np.array(block.lengths, dtype=np.int64)
    steps_b, values_b, times_b = block.steps, block.values, block.times
    steps = np.frombuffer(steps_b, dtype=np.int64)
    values = np.frombuffer(values_b, dtype=np.float64)
    times = np.frombuffer(times_b, dtype=np.float64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    owner, lo, hi, first_step, last_step = chunk_pieces(lengths, starts, ends, steps)
    # Slices of bytes, not memoryviews: a copy of a few points costs less than a view.
    # Made as they are consumed (zip and map, no Python frame per row): 50,000 rows held
    # at once set off the garbage collector's full passes over the batch's objects.
    lo8 = (lo * 8).tolist()
    hi8 = (hi * 8).tolist()
    chunks = zip(
        repeat(number),
        keys if len(owner) == len(keys) else map(keys.__getitem__, owner.tolist()),
        (hi - lo).tolist(),
        first_step,
        last_step,
        map(steps_b.__getitem__, map(slice, lo8, hi8)),
        map(values_b.__getitem__, map(slice, lo8, hi8)),
        map(times_b.__getitem__, map(slice, lo8, hi8)),
    )
    summaries, _, _, _ = key_summaries(keys, steps, values, times, starts, ends)
    return chunks, summaries


def _insert_metrics(
    cur: Any, conn: Connection, number: int, metrics: dict[str, MetricColumns] | MetricBlock
) -> tuple[list[tuple[Any, ...]], bool]:
    """Add a batch's points and merge its per-key summaries; return the merged summaries of
    the keys it touched as (key, last, min, max, count, last step), for the run's packed row,
    and whether they are all of the run's keys."""
    if isinstance(metrics, MetricBlock):
        chunks, summaries = _block_rows(number, metrics)
    else:
        chunks, summaries = _metric_rows(number, metrics)
    if not summaries:
        return [], False
    if not _has_metrics(cur, conn, number):
        return _insert_first_metrics(cur, conn, number, chunks, summaries), True
    if conn.dialect == "postgresql":
        return _insert_metrics_copy(cur, number, chunks, summaries), False
    cur.executemany(conn.sql(_INSERT_CHUNK), chunks)
    cur.executemany(conn.sql(_UPSERT_METRIC), ((number, *row) for row in summaries))
    return _merged_summaries(cur, conn, number, [row[0] for row in summaries])


def _has_metrics(cur: Any, conn: Connection, number: int) -> bool:
    cur.execute(conn.sql("SELECT 1 FROM metrics WHERE run_number = ? LIMIT 1"), (number,))
    return cur.fetchone() is not None


_INSERT_METRIC = f"INSERT INTO metrics ({_METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_METRIC_TYPES = ("int4", "text", "float8", "int8", "float8", "float8", "float8", "int8")


def _insert_first_metrics(
    cur: Any,
    conn: Connection,
    number: int,
    chunks: Iterator[tuple[Any, ...]],
    summaries: list[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """The run's first metric points: its summaries go in as they are, with nothing to merge
    or read back (writers to one run take turns, see ``_apply_in``, so no other writer adds
    keys meanwhile); return them as (key, last, min, max, count, last step). A run's first
    batch of metrics is often its only one: on PostgreSQL, merging 10,000 new keys through
    the temporary table took 0.25 s where copying them straight in takes 0.17 s."""
    rows = ((number, *row) for row in summaries)
    if conn.dialect == "postgresql":
        _copy_chunks(cur, chunks)
        with cur.copy(f"COPY metrics ({_METRIC_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_METRIC_TYPES)
            for row in rows:
                copy.write_row(row)
    else:
        cur.executemany(conn.sql(_INSERT_CHUNK), chunks)
        cur.executemany(conn.sql(_INSERT_METRIC), rows)
    return [(key, last, low, high, n, step) for key, last, step, _, low, high, n in summaries]


#: The batch's summaries on their way into ``metrics`` (PostgreSQL): a temporary table of
#: the connection, emptied at each commit.
_SUMMARY_TEMP = """
CREATE TEMPORARY TABLE IF NOT EXISTS labkeep_metric_batch (
  key text, last float8, last_step int8, last_time float8, min float8, max float8, count int8
) ON COMMIT DELETE ROWS
"""
_SUMMARY_TYPES = ("text", "float8", "int8", "float8", "float8", "float8", "int8")
_CHUNK_TYPES = ("int4", "text", "int4", "int8", "int8", "bytea", "bytea", "bytea")


def _insert_metrics_copy(
    cur: Any, number: int, chunks: Iterator[tuple[Any, ...]], summaries: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """PostgreSQL: the points and the summaries go in with binary COPY (one stream each
    instead of a statement per row, 5x faster at 10,000 keys), the summaries then merged
    into ``metrics`` by one ``INSERT … SELECT … ON CONFLICT`` that returns the merged rows."""
    _copy_chunks(cur, chunks)
    cur.execute(_SUMMARY_TEMP)
    with cur.copy(
        "COPY labkeep_metric_batch (key, last, last_step, last_time, min, max, count) "
        "FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(_SUMMARY_TYPES)
        for row in summaries:
            copy.write_row(row)
    cur.execute(_MERGE_METRIC_BATCH, (number,))
    merged = list(cur.fetchall())
    # Emptied at commit, but several batches (Store.apply_many) share one transaction.
    cur.execute("DELETE FROM labkeep_metric_batch")
    return merged


def _copy_chunks(cur: Any, chunks: Iterator[tuple[Any, ...]]) -> None:
    with cur.copy(
        "COPY metric_chunks (run_number, key, n, first_step, last_step, steps, vals, times) "
        "FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(_CHUNK_TYPES)
        for row in chunks:
            copy.write_row(row)


def _merged_summaries(
    cur: Any, conn: Connection, number: int, keys: list[str]
) -> tuple[list[tuple[Any, ...]], bool]:
    """(key, last, min, max, count, last step) of run ``number``'s ``keys`` as merged, and
    whether those are all of the run's keys (then read in one statement)."""
    query = "SELECT key, last, min, max, count, last_step FROM metrics WHERE run_number = ?"
    cur.execute(conn.sql("SELECT count(*) FROM metrics WHERE run_number = ?"), (number,))
    total = cur.fetchone()[0]
    if len(keys) == total:
        cur.execute(conn.sql(query), (number,))
        return list(cur.fetchall()), True
    found: list[tuple[Any, ...]] = []
    for lo in range(0, len(keys), 500):
        part = keys[lo : lo + 500]
        marks = ", ".join("?" * len(part))
        cur.execute(conn.sql(f"{query} AND key IN ({marks})"), (number, *part))
        found.extend(cur.fetchall())
    return found, False


def _compact(cur: Any, conn: Connection, number: int) -> None:
    """Merge a finished run's small chunks (one per flush while it was live) per key, for
    keys logged slowly enough to hold more than COMPACT_ABOVE chunks averaging fewer than
    COMPACT_BELOW points: one read of those chunks, one delete and one insert for all such
    keys together."""
    sql = conn.sql
    cur.execute(
        sql(
            "SELECT key FROM metric_chunks WHERE run_number = ? GROUP BY key "
            "HAVING COUNT(*) > ? AND SUM(n) < ? * COUNT(*)"
        ),
        (number, COMPACT_ABOVE, COMPACT_BELOW),
    )
    wanted = {row[0] for row in cur.fetchall()}
    if not wanted:
        return
    cur.execute(
        sql(
            "SELECT id, key, steps, vals, times FROM metric_chunks WHERE run_number = ? "
            "ORDER BY key, id"
        ),
        (number,),
    )
    merged: dict[str, MetricColumns] = {}
    ids = []
    for chunk_id, key, steps, vals, times in cur.fetchall():
        if key not in wanted:
            continue
        ids.append(chunk_id)
        cols = merged.get(key)
        if cols is None:
            cols = merged[key] = MetricColumns()
        cols.steps.frombytes(steps)
        cols.values.frombytes(vals)
        cols.times.frombytes(times)
    for lo in range(0, len(ids), 500):
        part = ids[lo : lo + 500]
        cur.execute(
            sql(f"DELETE FROM metric_chunks WHERE id IN ({', '.join('?' * len(part))})"), part
        )
    chunks, _ = _metric_rows(number, merged)
    if conn.dialect == "postgresql":
        _copy_chunks(cur, chunks)
    else:
        cur.executemany(sql(_INSERT_CHUNK), chunks)


def mark_killed(conn: Connection, numbers: list[int], end_times: list[float]) -> None:
    with conn.transaction() as cur:
        cur.executemany(
            conn.sql(
                "UPDATE runs SET status = 'killed', end_time = ? "
                "WHERE number = ? AND status = 'running'"
            ),
            [(t, n) for n, t in zip(numbers, end_times, strict=True)],
        )
