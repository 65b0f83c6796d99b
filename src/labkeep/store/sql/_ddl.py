"""The SQLite schema as plain DDL, for creating a fresh local store without importing
SQLAlchemy and Alembic (~0.5 s): ``schema_sqlite.sql`` is generated from the models by
``python -m labkeep.store.sql._ddl`` and a test checks it matches them and the migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

DDL_FILE = Path(__file__).with_name("schema_sqlite.sql")


def generate() -> str:
    """The DDL of every table and index for SQLite, ending with the Alembic stamp."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from labkeep.store.sql._schema import SCHEMA_REVISION, metadata

    dialect = sqlite.dialect()
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    statements.append(
        "CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\t"
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)"
    )
    statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{SCHEMA_REVISION}')")
    return ";\n\n".join(statements) + ";\n"


def create_fresh(raw: sqlite3.Connection) -> None:
    """Create the schema in an empty SQLite database, in one transaction."""
    raw.executescript("BEGIN;\n" + DDL_FILE.read_text() + "COMMIT;")


if __name__ == "__main__":
    DDL_FILE.write_text(generate())
    print(f"wrote {DDL_FILE}")
