"""The Alembic migrations build exactly the tables the models describe, and stores are
created, checked and migrated on first use."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BACKENDS, drop_pg_schema, new_pg_schema, require_postgres
from labkeep.errors import SchemaVersionError
from labkeep.store import locate_store
from labkeep.store.sql import SqlStore, _connect, _migrate, _schema


@pytest.fixture(params=BACKENDS)
def fresh_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URI of an empty database: a new SQLite directory or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "store")
        return
    require_postgres(request.node.nodeid)
    schema, uri = new_pg_schema()
    try:
        yield uri
    finally:
        drop_pg_schema(schema)


def _revision(store: SqlStore) -> Any:
    conn = store.writer()
    cur = conn.raw.cursor()
    cur.execute("SELECT version_num FROM alembic_version")
    row = cur.fetchone()
    cur.close()
    conn.raw.commit()
    return row[0]


def test_models_match_the_migrated_database(fresh_uri: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    location = locate_store(fresh_uri)
    store = SqlStore(location)
    store.writer()  # a fresh store is migrated on first use
    engine = _migrate.make_engine(location)
    try:
        with engine.connect() as conn:
            # Alembic misreads SQLite's empty-string defaults (DEFAULT '' shows as a change),
            # so server defaults are compared on PostgreSQL only.
            defaults = location.kind == "postgresql"
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": defaults}
            )
            assert compare_metadata(context, _schema.metadata) == []
    finally:
        engine.dispose()
        store.close()


def test_fresh_store_is_at_the_head_revision(fresh_uri: str) -> None:
    store = SqlStore(locate_store(fresh_uri))
    try:
        assert _revision(store) == _schema.SCHEMA_REVISION
        before, after = _migrate.upgrade(store.location)
        assert before == after == _schema.SCHEMA_REVISION
    finally:
        store.close()


def test_schema_revision_constants_agree_with_the_migrations() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_migrate.MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head == _schema.SCHEMA_REVISION == _connect.SCHEMA_REVISION
    assert head in _migrate.revisions()


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    store = SqlStore(locate_store(tmp_path / "store"))
    store.writer()
    store.close()
    with sqlite3.connect(tmp_path / "store" / "labkeep.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_from_a_newer_labkeep_is_refused(fresh_uri: str) -> None:
    store = SqlStore(locate_store(fresh_uri))
    conn = store.writer()
    with conn.transaction() as cur:
        cur.execute("UPDATE alembic_version SET version_num = 'f999'")
    store.close()
    again = SqlStore(locate_store(fresh_uri))
    with pytest.raises(SchemaVersionError, match="newer labkeep"):
        again.writer()
    again.close()


@pytest.mark.postgres
def test_postgres_uri_options_choose_the_schema(request: pytest.FixtureRequest) -> None:
    """libpq query parameters in the URI (here ``options=-csearch_path=…``) reach both the
    write connection and the SQLAlchemy engine, so a store can live in its own schema."""
    require_postgres(request.node.nodeid)
    import psycopg

    from conftest import PG_SERVER

    schema, uri = new_pg_schema()
    try:
        location = locate_store(uri)
        assert location.kind == "postgresql"
        assert location.db_url.startswith("postgresql+psycopg://")
        assert location.db_url.endswith(f"?options=-csearch_path%3D{schema}")
        store = SqlStore(location)
        store.writer()
        assert store.list_runs() == []  # reads through the engine, in the same schema
        store.close()
        with psycopg.connect(PG_SERVER) as conn:
            found = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        assert {"runs", "metrics", "alembic_version"} <= {row[0] for row in found}
    finally:
        drop_pg_schema(schema)


def test_postgres_uri_spellings() -> None:
    for raw in ("postgresql://u@h:5/db", "postgres://u@h:5/db", "postgresql+psycopg://u@h:5/db"):
        location = locate_store(raw)
        assert (location.kind, location.db_url) == ("postgresql", "postgresql+psycopg://u@h:5/db")
        assert location.journal_dir.parts[-1] == "journals"


def _compare_sqlite(db: Path) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, _schema.metadata))
    finally:
        engine.dispose()


def test_alembic_migrations_alone_build_the_models_on_sqlite(tmp_path: Path) -> None:
    # A fresh local store is created from the bundled DDL; the migrations must agree with it.
    location = locate_store(tmp_path / "migrated")
    before, after = _migrate.upgrade(location)
    assert (before, after) == (None, _schema.SCHEMA_REVISION)
    assert _compare_sqlite(location.sqlite_path) == []


def test_bundled_sqlite_ddl_is_generated_from_the_models(tmp_path: Path) -> None:
    from labkeep.store.sql import _ddl

    assert _ddl.DDL_FILE.read_text() == _ddl.generate(), (
        "schema_sqlite.sql is stale: run python -m labkeep.store.sql._ddl"
    )
    db = tmp_path / "ddl.db"
    raw = sqlite3.connect(db, isolation_level=None)
    _ddl.create_fresh(raw)
    raw.close()
    assert _compare_sqlite(db) == []


def test_db_upgrade_migrates_a_store_made_by_an_older_labkeep(tmp_path: Path) -> None:
    import subprocess
    import sys

    location = locate_store(tmp_path / "old")
    _migrate.upgrade(location, "0001")
    cli = [sys.executable, "-m", "labkeep.cli", "--store", str(tmp_path / "old")]
    refused = subprocess.run([*cli, "runs"], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "labkeep db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr
    upgraded = subprocess.run([*cli, "db", "upgrade"], capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "0001 -> " + _schema.SCHEMA_REVISION in upgraded.stdout
    assert _compare_sqlite(location.sqlite_path) == []
    listed = subprocess.run([*cli, "runs"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr


def test_upgrade_to_0011_keeps_the_numbers_models_gave(fresh_uri: str) -> None:
    """A model registered before 0011 goes on from its highest version, not from 1."""
    from sqlalchemy import text

    location = locate_store(fresh_uri)
    _migrate.upgrade(location, "0010")
    engine = _migrate.make_engine(location)
    try:
        with engine.begin() as conn:
            for name in ("kept", "empty"):
                conn.execute(
                    text(
                        "INSERT INTO registered_models (name, description, tags, created, "
                        "updated) VALUES (:n, '', '{}', 0, 0)"
                    ),
                    {"n": name},
                )
            kept = conn.execute(text("SELECT id FROM registered_models WHERE name = 'kept'"))
            model_id = kept.scalar()
            for version in (1, 4):
                conn.execute(
                    text(
                        "INSERT INTO model_versions (model_id, version, run_uuid, model_path, "
                        "description, tags, created) VALUES (:m, :v, 'u', 'model', '', '{}', 0)"
                    ),
                    {"m": model_id, "v": version},
                )
        _migrate.upgrade(location)
    finally:
        engine.dispose()
    store = SqlStore(location)
    try:
        assert store.create_model_version("kept", "u2", "model").version == 5
        assert store.create_model_version("empty", "u3", "model").version == 1
    finally:
        store.close()


def test_upgrade_to_0004_names_every_blob_existing_snapshots_use(fresh_uri: str) -> None:
    """Stores from before ``blob_refs`` get theirs from the artifacts and from each snapshot's
    JSON (the manifest's files read from the blob directory), so a purge after upgrading
    keeps code that another run's snapshot names."""
    import json

    from sqlalchemy import text

    from labkeep.store._blobs import BlobDirectory

    location = locate_store(fresh_uri)
    _migrate.upgrade(location, "0003")
    blobs = BlobDirectory(location.blob_dir)
    code = blobs.put_bytes(b"print('train')\n")[0]
    manifest = blobs.put_bytes(json.dumps([{"path": "train.py", "sha256": code}]).encode())[0]
    diff = blobs.put_bytes(b"--- a\n+++ b\n")[0]
    snapshot = json.dumps({"code": {"manifest": manifest}, "git": {"diff_blob": diff}})
    engine = _migrate.make_engine(location)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO experiments (name, created) VALUES ('e', 0)"))
            eid = conn.execute(text("SELECT id FROM experiments WHERE name = 'e'")).scalar()
            for uuid in ("u-artifact", "u-code"):
                conn.execute(
                    text(
                        "INSERT INTO runs (uuid, experiment_id, name, status, start_time, "
                        "deleted) VALUES (:u, :e, 'r', 'completed', 0, false)"
                    ),
                    {"u": uuid, "e": eid},
                )
            numbers = dict(conn.execute(text("SELECT uuid, number FROM runs")).fetchall())
            conn.execute(
                text("INSERT INTO blobs (sha256, size, created) VALUES (:s, 15, 0)"), {"s": code}
            )
            conn.execute(
                text(
                    "INSERT INTO artifacts (run_number, path, sha256, size, kind, created) "
                    "VALUES (:n, 'train.py', :s, 15, 'output', 0)"
                ),
                {"n": numbers["u-artifact"], "s": code},
            )
            for uuid in ("u-artifact", "u-code"):
                conn.execute(
                    text("INSERT INTO snapshots (run_number, data) VALUES (:n, :d)"),
                    {"n": numbers[uuid], "d": snapshot},
                )
        _migrate.upgrade(location)
        with engine.connect() as conn:
            refs = set(conn.execute(text("SELECT run_number, sha256, kind FROM blob_refs")))
    finally:
        engine.dispose()
    for uuid in ("u-artifact", "u-code"):
        n = numbers[uuid]
        assert {(n, code, "code"), (n, manifest, "manifest"), (n, diff, "diff")} <= refs
    assert (numbers["u-artifact"], code, "artifact") in refs
    store = SqlStore(location)
    try:
        store.set_deleted([numbers["u-artifact"]], True)
        assert store.purge([numbers["u-artifact"]]) == 1
        assert store.blob_path(code).read_bytes() == b"print('train')\n"
    finally:
        store.close()
