"""The tables, as SQLAlchemy Core metadata: the one definition of the schema. Nothing reads
or writes through it at run time (the store uses SQL text on the driver's connection).

Alembic migrations must produce exactly this, and ``schema_sqlite.sql`` (how a new SQLite
store is made without importing SQLAlchemy) is generated from it with ``make schema``
(``python -m labkeep.store.sql._ddl``); ``tests/integration/test_migrations.py`` fails when
either disagrees with the models. A change here is a new migration plus ``make schema``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# The head revision; checked without importing Alembic so a short run stays fast.
SCHEMA_REVISION = "0006"

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    # ``number`` is what people type: unique in the store, never reused.
    Column("number", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float),
    Column("heartbeat", Float),
    Column("username", String(255), nullable=False, server_default=""),
    Column("host", String(255), nullable=False, server_default=""),
    Column("pid", Integer),
    Column("notes", Text, nullable=False, server_default=""),
    Column("error", Text),
    Column("exit_code", Integer),
    Column("parent_uuid", String(36)),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    # The run this one re-executes (``labkeep rerun``).
    Column("reproduces_uuid", String(36)),
    # ``init(group=…, job_type=…)``; "group" is an SQL keyword, hence run_group.
    Column("run_group", String(255)),
    Column("job_type", String(255)),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_parent", "parent_uuid"),
    Index("ix_runs_group", "run_group"),
)

# Typed values (params and summaries): ``vtype`` is int/float/bool/str/null/list/dict;
# ``num`` holds int/float/bool for numeric comparisons, ``text`` holds str, ``json`` the
# exact value for everything.
_VALUE_COLUMNS = (
    ("vtype", String(8)),
    ("num", Float),
    ("text", Text),
    ("json", Text),
)


def _value_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column(
            "run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True
        ),
        Column("key", String(250), primary_key=True),
        *(
            Column(col, typ, nullable=(col != "vtype" and col != "json"))
            for col, typ in _VALUE_COLUMNS
        ),
        # Covering: a filter on a key's value finds run numbers without touching the table.
        Index(f"ix_{name}_key_num", "key", "num", "run_number"),
    )


params = _value_table("params")
summaries = _value_table("summaries")

metrics = Table(
    "metrics",
    metadata,
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    # NULL in ``last`` means the last value was NaN (SQLite cannot store NaN).
    Column("last", Float),
    Column("last_step", BigInteger, nullable=False),
    Column("last_time", Float, nullable=False),
    Column("min", Float),
    Column("max", Float),
    Column("count", BigInteger, nullable=False),
    Index("ix_metrics_key_last", "key", "last", "run_number"),
)

# Points are packed per key into chunks of little-endian int64 steps, float64 values (vals) and
# float64 wall times: a row per point would cap ingest near 500k points/s and cost ~60 bytes
# of index per point.
# On PostgreSQL the chunk columns are stored uncompressed (migration 0006: STORAGE EXTERNAL,
# toast_tuple_target), which the models cannot say; packed floats barely compress.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("n", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("vals", LargeBinary, nullable=False),
    Column("times", LargeBinary, nullable=False),
    Index("ix_metric_chunks_run_key", "run_number", "key", "id"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(250), primary_key=True),
    Index("ix_tags_tag", "tag"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created", Float, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("sha256", String(64), ForeignKey("blobs.sha256"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False, server_default="output"),
    Column("created", Float, nullable=False),
)

# Every blob a run names (``labkeep.store._refs``): its artifacts, and its snapshot's code
# files, manifest, package list and diff, which are otherwise named only inside JSON. Purge
# deletes a blob only when no row here names it.
blob_refs = Table(
    "blob_refs",
    metadata,
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Index("ix_blob_refs_sha256", "sha256"),
)

# Exactly-once ingest: the byte position up to which each writer's journal is in the store,
# advanced in the same transaction as the data it covers.
journal_positions = Table(
    "journal_positions",
    metadata,
    Column("writer", String(80), primary_key=True),
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), nullable=False),
    Column("position", BigInteger, nullable=False),
)

# What reproduces a run: small sections inline as JSON; large, often repeated parts (the code
# manifest, the package list, the uncommitted diff) as content-addressed blobs named in it, so
# a hundred runs of unchanged code store those once.
snapshots = Table(
    "snapshots",
    metadata,
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True),
    Column("data", Text, nullable=False),
)

# Console output, one row per line as the user saw it (progress bars collapsed).
output_lines = Table(
    "output_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), nullable=False),
    Column("stream", String(8), nullable=False),
    Column("time", Float, nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_output_lines_run", "run_number", "id"),
)

# Each run's params, summary and metric summaries packed in one row, kept on write from the
# tables above (``_packed.refresh``): reading many runs as columns reads a row per run, not a
# row per run and key. See :mod:`labkeep.store.sql._packed` for the encoding.
run_rows = Table(
    "run_rows",
    metadata,
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True),
    Column("param_keyset", BigInteger),
    Column("param_packed", LargeBinary),
    Column("param_other", Text),
    Column("summary_keyset", BigInteger),
    Column("summary_packed", LargeBinary),
    Column("summary_other", Text),
    Column("metric_keyset", BigInteger),
    Column("metric_packed", LargeBinary),
)

# The key lists ``run_rows`` names, by a hash of the list: runs with the same keys share one.
key_sets = Table(
    "key_sets",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("keys", Text, nullable=False),
)
