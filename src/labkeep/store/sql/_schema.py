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
    text,
)

metadata = MetaData()

# The head revision; checked without importing Alembic so a short run stays fast.
SCHEMA_REVISION = "0011"

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
    # A search sorted by start time (newest first) walks this instead of sorting every run.
    Index("ix_runs_start", "start_time", "number"),
    # The runs outside the trash, which every search is among: a count or a filter tests
    # each candidate run here with an index-only probe instead of reading its row.
    Index(
        "ix_runs_live",
        "number",
        postgresql_where=text("NOT deleted"),
        sqlite_where=text("NOT deleted"),
    ),
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
        Index(f"ix_{name}_key_text", "key", "text", "run_number"),
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
# On PostgreSQL the chunk columns are stored uncompressed (migration 0009: STORAGE EXTERNAL,
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

# Images, histograms, tables and figures a run logged (``labkeep.Image`` …): one row per
# item, ``idx`` its place in a list logged under ``key`` at ``step``. The content is a blob;
# ``meta`` is JSON that describes it (an image's size and caption, a table's shape).
media = Table(
    "media",
    metadata,
    Column("run_number", Integer, ForeignKey("runs.number", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("sha256", String(64), ForeignKey("blobs.sha256"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("time", Float, nullable=False),
    Column("meta", Text, nullable=False),
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

# What a store records about itself, one row per setting: ``artifacts`` is the artifact store
# (a directory or ``s3://bucket/prefix``) every machine using the database reads and writes.
store_settings = Table(
    "store_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
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

# The model registry: named models, their numbered versions (each a run's model, named by the
# run's uuid so a version survives the run's number), and aliases. Versions are numbered per
# model from 1, under a lock on the model's row, so concurrent registrations never share one.
registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    # JSON object of str → str.
    Column("tags", Text, nullable=False, server_default="{}"),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    # The highest version number ever given: a deleted version's number is never given again.
    Column("last_version", Integer, nullable=False, server_default="0"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("run_uuid", String(36), nullable=False),
    Column("model_path", String(1000), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("tags", Text, nullable=False, server_default="{}"),
    Column("created", Float, nullable=False),
    Index("ix_model_versions_run", "run_uuid"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Versioned artifacts: a name, and versions numbered from 0 that are each a set of files
# (blobs by sha256). A version is identified by its content's digest: the same files logged
# again are the same version (the unique index), new content is the next version.
named_artifacts = Table(
    "named_artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("created", Float, nullable=False),
)

artifact_versions = Table(
    "artifact_versions",
    metadata,
    Column(
        "artifact_id",
        Integer,
        ForeignKey("named_artifacts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    # The run that logged this content first.
    Column("run_uuid", String(36), nullable=False),
    Column("created", Float, nullable=False),
    Index("ux_artifact_versions_digest", "artifact_id", "digest", unique=True),
)

# The files of each version; purge keeps every blob named here.
artifact_files = Table(
    "artifact_files",
    metadata,
    Column(
        "artifact_id",
        Integer,
        ForeignKey("named_artifacts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_artifact_files_sha256", "sha256"),
)

artifact_aliases = Table(
    "artifact_aliases",
    metadata,
    Column(
        "artifact_id",
        Integer,
        ForeignKey("named_artifacts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Lineage: which runs produced (logged) and used (use_artifact) which versions.
artifact_links = Table(
    "artifact_links",
    metadata,
    Column("run_uuid", String(36), primary_key=True),
    Column(
        "artifact_id",
        Integer,
        ForeignKey("named_artifacts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("role", String(8), primary_key=True),
    Column("created", Float, nullable=False),
    Index("ix_artifact_links_version", "artifact_id", "version"),
)
