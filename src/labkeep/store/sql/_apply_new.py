"""Apply many batches that each create a run whole (an import) a table at a time.

:func:`~labkeep.store.sql._apply.apply_batches` applies a batch at a time: for a run read
whole from another tool that is some 25 statements, a JSON round trip per value and a read
back of what was just written. Here a group of such batches is written with one
``executemany`` per table, each value encoded once (the same values recur across runs), and
each run's packed row (``run_rows``) built from the values in hand. What lands in the
tables is what the batch-at-a-time path writes. Where a batch's writer already has a
position or its run already exists (a concurrent import), the whole group goes the
batch-at-a-time way, in the same transaction.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from json.encoder import encode_basestring as _encode_string
from typing import Any

from labkeep._names import run_name
from labkeep._values import encode_value
from labkeep.store._base import WriteBatch
from labkeep.store._refs import ARTIFACT
from labkeep.store.sql import _apply
from labkeep.store.sql._connect import Connection
from labkeep.store.sql._packed import IN_CHUNK, add_key_list, keyset_id

_INT64 = 2**63
_INF = float("inf")
_KIND_B, _KIND_I, _KIND_F, _KIND_O = (ord(c) for c in "bifo")
_RUN_COLUMNS = (
    "uuid, experiment_id, name, status, start_time, end_time, heartbeat, username, host, "
    "pid, notes, error, exit_code, parent_uuid, deleted, reproduces_uuid, run_group, job_type"
)


def creates_run_whole(batch: WriteBatch) -> bool:
    """Whether ``batch`` starts and finishes a run and holds nothing that merges with what a
    store may have (media, snapshots, resumes), as an imported run's batch does."""
    return (
        batch.start is not None
        and batch.finish is not None
        and batch.start.uuid == batch.run_uuid
        and not batch.tags_removed
        and batch.notes is None
        and batch.resume is None
        and batch.heartbeat is None
        and batch.snapshot is None
        and not batch.snapshot_add
        and not batch.media
    )


def apply_new_runs(
    conn: Connection, batches: Sequence[tuple[WriteBatch, set[tuple[str, str]] | None]]
) -> list[int]:
    """Apply ``(batch, snapshot_refs)`` pairs in one transaction as
    :func:`~labkeep.store.sql._apply.apply_batches` does, a table at a time where every
    batch creates a new run whole (:func:`creates_run_whole`); return their run numbers."""
    with conn.transaction() as cur:
        items = [batch for batch, _ in batches]
        if not _all_new(cur, conn, items):
            return [_apply._apply_in(cur, conn, batch, refs) for batch, refs in batches]
        return _write_new(cur, conn, items)


def _all_new(cur: Any, conn: Connection, batches: list[WriteBatch]) -> bool:
    """Every batch creates a run whole, once in the group, and no writer or run of theirs
    is in the store yet."""
    if not all(creates_run_whole(b) for b in batches):
        return False
    writers = [b.writer for b in batches]
    uuids = [b.run_uuid for b in batches]
    if len(set(writers)) != len(writers) or len(set(uuids)) != len(uuids):
        return False
    for table, column, values in (
        ("journal_positions", "writer", writers),
        ("runs", "uuid", uuids),
    ):
        for lo in range(0, len(values), IN_CHUNK):
            part = values[lo : lo + IN_CHUNK]
            marks = ", ".join("?" * len(part))
            cur.execute(
                conn.sql(f"SELECT 1 FROM {table} WHERE {column} IN ({marks}) LIMIT 1"), part
            )
            if cur.fetchone() is not None:
                return False
    return True


def _write_new(cur: Any, conn: Connection, batches: list[WriteBatch]) -> list[int]:
    sql = conn.sql
    starts = [b.start for b in batches if b.start is not None]
    created: dict[str, float] = {}
    for first in starts:
        created.setdefault(first.experiment, first.start_time)
    cur.executemany(
        sql("INSERT INTO experiments (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"),
        list(created.items()),
    )
    experiment_ids: dict[str, int] = {}
    for name in created:
        cur.execute(sql("SELECT id FROM experiments WHERE name = ?"), (name,))
        experiment_ids[name] = int(cur.fetchone()[0])
    rows = []
    for batch in batches:
        start, fin = batch.start, batch.finish
        assert start is not None and fin is not None
        rows.append(
            (
                start.uuid,
                experiment_ids[start.experiment],
                start.name,
                fin.status,
                start.start_time,
                fin.end_time,
                fin.end_time,  # the heartbeat, as finishing a run sets it
                start.user,
                start.host,
                start.pid,
                start.notes,
                fin.error,
                fin.exit_code,
                start.parent_uuid,
                False,
                start.reproduces_uuid,
                start.group,
                start.job_type,
            )
        )
    marks = ", ".join("?" * len(rows[0]))
    cur.executemany(sql(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({marks})"), rows)
    numbers: list[int] = []
    for lo in range(0, len(batches), IN_CHUNK):
        part = [b.run_uuid for b in batches[lo : lo + IN_CHUNK]]
        cur.execute(
            sql(f"SELECT uuid, number FROM runs WHERE uuid IN ({', '.join('?' * len(part))})"),
            part,
        )
        found = dict(cur.fetchall())
        numbers.extend(int(found[u]) for u in part)
    unnamed = [
        (run_name(b.run_uuid, n), n)
        for b, n in zip(batches, numbers, strict=True)
        if b.start is not None and not b.start.name
    ]
    if unnamed:
        cur.executemany(sql("UPDATE runs SET name = ? WHERE number = ?"), unnamed)

    encoded = _Encoder()
    values: dict[str, list[tuple[Any, ...]]] = {"params": [], "summaries": []}
    key_lists: dict[int, str] = {}
    tags: list[tuple[int, str]] = []
    chunks, summaries, metric_sections = _group_metric_rows(batches, numbers, key_lists)
    packed_rows: list[tuple[Any, ...]] = []
    for batch, number, metric_section in zip(batches, numbers, metric_sections, strict=True):
        sections: list[Any] = []
        for table, given in (("params", batch.params), ("summaries", batch.summary)):
            items = sorted([(key, encoded(value)) for key, value in given.items()])
            values[table].extend([(number, key, *enc) for key, (enc, _) in items])
            section = _pack_encoded(items, key_lists) if items else (None, None, None)
            sections.extend(section)
        tags.extend((number, t) for t in dict.fromkeys(batch.tags_added))
        if batch.params or batch.summary or metric_section[0] is not None:
            packed_rows.append((number, *sections, *metric_section))
    for table, rows_of in values.items():
        if rows_of:
            cur.executemany(sql(_apply._UPSERT_VALUE.format(table=table)), rows_of)
    if tags:
        cur.executemany(
            sql("INSERT INTO tags (run_number, tag) VALUES (?, ?) ON CONFLICT DO NOTHING"), tags
        )
    if chunks:
        cur.executemany(sql(_apply._INSERT_CHUNK), chunks)
    if summaries:
        cur.executemany(
            sql(f"INSERT INTO metrics ({_apply._METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            summaries,
        )
    for ident, keys_text in key_lists.items():
        add_key_list(cur, sql, ident, keys_text)
    if packed_rows:
        cur.executemany(
            sql(
                "INSERT INTO run_rows (run_number, param_keyset, param_packed, param_other, "
                "summary_keyset, summary_packed, summary_other, metric_keyset, metric_packed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            packed_rows,
        )
    _write_files_and_output(cur, conn, batches, numbers)
    cur.executemany(
        sql("INSERT INTO journal_positions (writer, run_number, position) VALUES (?, ?, ?)"),
        [(b.writer, n, b.position) for b, n in zip(batches, numbers, strict=True)],
    )
    return numbers


def _write_files_and_output(
    cur: Any, conn: Connection, batches: list[WriteBatch], numbers: list[int]
) -> None:
    sql = conn.sql
    blobs = [(a.sha256, a.size, a.created) for b in batches for a in b.artifacts]
    if blobs:
        cur.executemany(
            sql(
                "INSERT INTO blobs (sha256, size, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            blobs,
        )
        cur.executemany(
            sql(
                "INSERT INTO artifacts (run_number, path, sha256, size, kind, created) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_number, path) DO UPDATE SET "
                "sha256 = excluded.sha256, size = excluded.size, kind = excluded.kind, "
                "created = excluded.created"
            ),
            [
                (n, a.path, a.sha256, a.size, a.kind, a.created)
                for b, n in zip(batches, numbers, strict=True)
                for a in b.artifacts
            ],
        )
        cur.executemany(
            sql(
                "INSERT INTO blob_refs (run_number, sha256, kind) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING"
            ),
            [
                (n, sha, kind)
                for b, n in zip(batches, numbers, strict=True)
                for sha, kind in sorted({(a.sha256, ARTIFACT) for a in b.artifacts})
            ],
        )
    output = [
        (n, stream, t, text)
        for b, n in zip(batches, numbers, strict=True)
        for stream, t, text in b.output
    ]
    if output:
        cur.executemany(
            sql("INSERT INTO output_lines (run_number, stream, time, text) VALUES (?, ?, ?, ?)"),
            output,
        )


def _group_metric_rows(
    batches: list[WriteBatch], numbers: list[int], key_lists: dict[int, str]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[int | None, bytes | None]]]:
    """The chunk rows and ``metrics`` rows of every batch's points, as
    :func:`~labkeep.store.sql._apply._metric_rows` makes them a run at a time, and each
    run's packed metrics section (key-list id, bytes; Nones for a run without points), as
    :func:`~labkeep.store.sql._packed.pack_metrics` packs it: a few vector operations
    for the whole group."""
    import numpy as np

    from labkeep.store.sql._packed import _dtype

    owners: list[int] = []
    keys: list[str] = []
    columns: list[Any] = []
    spans: list[tuple[int, int]] = []
    for batch, number in zip(batches, numbers, strict=True):
        first = len(keys)
        for key in sorted(k for k, c in batch.metrics.items() if len(c.steps)):
            owners.append(number)
            keys.append(key)
            columns.append(batch.metrics[key])
        spans.append((first, len(keys)))
    if not keys:
        return [], [], [(None, None)] * len(batches)
    steps_b = b"".join([c.steps for c in columns])
    values_b = b"".join([c.values for c in columns])
    times_b = b"".join([c.times for c in columns])
    steps = np.frombuffer(steps_b, dtype="<i8")
    values = np.frombuffer(values_b, dtype="<f8")
    times = np.frombuffer(times_b, dtype="<f8")
    lengths = np.fromiter((len(c.steps) for c in columns), dtype=np.int64, count=len(keys))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    owner, lo, hi, first_step, last_step = _apply.chunk_pieces(lengths, starts, ends, steps)
    steps_v, values_v, times_v = (memoryview(b) for b in (steps_b, values_b, times_b))
    chunks = [
        (
            owners[k],
            keys[k],
            b - a,
            f,
            la,
            steps_v[a * 8 : b * 8],
            values_v[a * 8 : b * 8],
            times_v[a * 8 : b * 8],
        )
        for k, a, b, f, la in zip(
            owner.tolist(), lo.tolist(), hi.tolist(), first_step, last_step, strict=True
        )
    ]
    rows, low, high, tail = _apply.key_summaries(keys, steps, values, times, starts, ends)
    summaries = [(number, *row) for number, row in zip(owners, rows, strict=True)]
    # The packed sections, from the values in hand (-0.0 kept), as a run's first batch
    # packs them (``_apply._insert_first_metrics``).
    packed = np.zeros(len(keys), dtype=_dtype("metrics"))
    packed["last"] = values[tail]
    packed["min"] = low
    packed["max"] = high
    packed["count"] = lengths
    packed["step"] = steps[tail]
    packed_bytes = packed.tobytes()
    size = packed.dtype.itemsize
    texts: dict[tuple[str, ...], tuple[int, str]] = {}
    sections: list[tuple[int | None, bytes | None]] = []
    for first, end in spans:
        if first == end:
            sections.append((None, None))
            continue
        run_keys = tuple(keys[first:end])
        found = texts.get(run_keys)
        if found is None:
            keys_text = json.dumps(list(run_keys), ensure_ascii=False, separators=(",", ":"))
            found = texts[run_keys] = (keyset_id(keys_text), keys_text)
            key_lists[found[0]] = keys_text
        sections.append((found[0], packed_bytes[first * size : end * size]))
    return chunks, summaries, sections


#: A value's (vtype, num, text, json) and its packed kind and 8 bytes (see ``_packed``).
_Encoded = tuple[tuple[str, float | None, str | None, str], tuple[str, Any]]


class _Encoder:
    """Encodes values, each distinct one once: runs of one sweep repeat their values."""

    def __init__(self) -> None:
        self.seen: dict[tuple[type, Any], _Encoded] = {}

    def __call__(self, value: Any) -> _Encoded:
        kind = type(value)
        cacheable = kind in (str, int, bool) or (kind is float and value != 0.0)
        if cacheable:
            found = self.seen.get((kind, value))
            if found is not None:
                return found
        enc = _encode(value)
        # As _packed.pack_values reads the exact JSON back: bools, ints of int64 and
        # floats packed, anything else kept as its JSON.
        if isinstance(value, bool):
            packed: tuple[str, Any] = ("Bq", (_KIND_B, int(value)))
        elif isinstance(value, int) and -_INT64 <= value < _INT64:
            packed = ("Bq", (_KIND_I, value))
        elif isinstance(value, float):
            packed = ("Bd", (_KIND_F, value))
        else:
            packed = ("Bq", (_KIND_O, 0))
        result = (enc, packed)
        if cacheable:
            self.seen[(kind, value)] = result
        return result


def _encode(value: Any) -> tuple[str, float | None, str | None, str]:
    """:func:`labkeep._values.encode_value`, the exact JSON of a string, number or bool
    written as ``json.dumps`` writes it without its per-call set-up."""
    kind = type(value)
    if kind is str:
        return "str", None, value.replace("\x00", ""), _encode_string(value)
    if kind is float and value == value and value not in (_INF, -_INF):
        return "float", value, None, float.__repr__(value)
    if kind is int:
        return "int", float(value) if abs(value) < _INT64 else None, None, int.__repr__(value)
    if kind is bool:
        return "bool", float(value), None, "true" if value else "false"
    return encode_value(value)


def _pack_encoded(
    items: list[tuple[str, _Encoded]], key_lists: dict[int, str]
) -> tuple[int, bytes, str | None]:
    """A params or summary section from (key, encoded value) in key order, as
    :func:`~labkeep.store.sql._packed.pack_values` packs it; its key list joins
    ``key_lists``."""
    keys = [key for key, _ in items]
    formats = "".join(p[0] for _, (_, p) in items)
    fields = [x for _, (_, p) in items for x in p[1]]
    packed = struct.pack("<" + formats, *fields)
    other = [enc[3] for _, (enc, p) in items if p[1][0] == _KIND_O]
    keys_text = json.dumps(keys, ensure_ascii=False, separators=(",", ":"))
    ident = keyset_id(keys_text)
    key_lists[ident] = keys_text
    return ident, packed, f"[{','.join(other)}]" if other else None
