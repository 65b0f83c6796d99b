"""``labkeep db check`` and ``labkeep db recover``: find damage, rebuild what can be read.

Check: SQLite's ``PRAGMA integrity_check`` over the whole file (damage in pages no command
reads goes unnoticed otherwise), then every blob hashed against its name, and every blob a
run names looked for. Recover (SQLite only): the readable rows are copied into a new file
with a fresh schema, table by table in rowid order; a read that fails on a damaged page is
retried row by row, then skipped past further each time it fails again. sqlite3's own
``.recover`` is tried first when the ``sqlite3`` program has it (Debian's does not: it lacks
the ``sqlite_dbpage`` table). Tables derived from others (packed run rows, key lists, blob
references) are rebuilt, not copied. The damaged file is kept beside the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkeep.errors import StoreError
from labkeep.store._artifacts import ArtifactStore, LocalArtifacts, open_artifacts
from labkeep.store._blobs import BlobDirectory
from labkeep.store._refs import ARTIFACT, MEDIA, snapshot_refs
from labkeep.store._uri import StoreLocation
from labkeep.store.sql._connect import connect, migration_lock, open_sqlite_readonly

#: Rebuilt from the tables they summarise, never copied.
DERIVED_TABLES = ("run_rows", "key_sets", "blob_refs")
_BATCH = 256
_MAX_PROBLEMS = 100


@dataclass
class CheckReport:
    """What ``labkeep db check`` found: empty lists mean a sound store."""

    database: str
    database_problems: list[str] = field(default_factory=list)
    blobs_checked: int = 0
    damaged_blobs: list[str] = field(default_factory=list)
    missing_blobs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.database_problems or self.damaged_blobs or self.missing_blobs)


def check_store(location: StoreLocation) -> CheckReport:
    """Check the database's integrity and every blob's content (reads only)."""
    referenced: set[str] = set()
    if location.kind == "sqlite":
        report = CheckReport(str(location.sqlite_path))
        _check_sqlite(location, report, referenced)
    elif location.kind == "postgresql":
        report = CheckReport(location.uri)
        conn = connect(location, create=False)  # PostgreSQL checks its own pages
        try:
            cur = conn.raw.cursor()
            cur.execute(
                "SELECT sha256 FROM blob_refs UNION SELECT sha256 FROM artifacts "
                "UNION SELECT sha256 FROM media"
            )
            referenced.update(row[0] for row in cur.fetchall())
            conn.raw.rollback()
        finally:
            conn.close()
    else:
        raise StoreError("db check works on SQLite and PostgreSQL stores; check the server's")
    artifacts = _artifact_store(location)
    present: set[str] = set()
    if isinstance(artifacts, LocalArtifacts):
        blobs = BlobDirectory(artifacts.root)
        for sha, problem in _walk_blobs(artifacts.root):
            if sha is not None:
                present.add(sha)
                problem = problem or blobs.check(sha)
                report.blobs_checked += 1
            if problem is not None:
                report.damaged_blobs.append(problem)
    else:  # object storage: every object read back and hashed
        for blob in artifacts.scan():
            present.add(blob.sha256)
            report.blobs_checked += 1
            problem = artifacts.check(blob.sha256)
            if problem is not None:
                report.damaged_blobs.append(problem)
    report.missing_blobs = [
        f"blob {sha[:12]} is named by a run but missing from {artifacts.uri}"
        for sha in sorted(referenced - present)
    ]
    return report


def _artifact_store(location: StoreLocation) -> ArtifactStore:
    """The store's artifact store: the recorded one when the database can say, else the
    location's (``LABKEEP_ARTIFACTS``) or its blob directory."""
    from labkeep.store.sql._store import SqlStore

    store = SqlStore(location)
    try:
        return store.artifacts
    except Exception:  # a damaged or old database still has its blobs checked
        uri = location.artifacts
        return open_artifacts(uri, location.blob_dir) if uri else LocalArtifacts(location.blob_dir)
    finally:
        store.close()


def _check_sqlite(location: StoreLocation, report: CheckReport, referenced: set[str]) -> None:
    path = location.sqlite_path
    if not path.is_file():
        raise StoreError(f"no store at {path.parent}: nothing to check")
    if path.stat().st_size == 0:
        report.database_problems.append(f"{path} is empty (0 bytes)")
        return
    try:
        raw = open_sqlite_readonly(path)
    except sqlite3.Error as exc:
        report.database_problems.append(f"{path} cannot be opened: {exc}")
        return
    try:
        rows = raw.execute(f"PRAGMA integrity_check({_MAX_PROBLEMS})").fetchall()
        report.database_problems.extend(str(r[0]) for r in rows if r[0] != "ok")
        for table in ("artifacts", "blob_refs", "media"):
            with contextlib.suppress(sqlite3.Error):  # damaged or older: what can be read
                referenced.update(r[0] for r in raw.execute(f"SELECT sha256 FROM {table}"))
    except sqlite3.Error as exc:
        report.database_problems.append(str(exc))
    finally:
        raw.close()


def _walk_blobs(root: Path) -> Iterator[tuple[str | None, str | None]]:
    """(sha256, None) for each file named like a blob; (None, why) for anything else there
    that should not be (a link, a stray file); temporary files of writes in progress pass."""
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                yield None, f"{here / name} is a symbolic link among the blobs"
        for name in sorted(files):
            if name.startswith((".tmp-", ".upload-")):
                continue
            sha = here.name + name
            if here.parent == root and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
                yield sha, None
            else:
                yield None, f"{here / name} is not a blob"


@dataclass
class RecoverReport:
    """What ``labkeep db recover`` did: rows per table in the new file."""

    database: Path
    kept: Path
    method: str
    rows: dict[str, int]
    dropped: int

    @property
    def runs(self) -> int:
        return self.rows.get("runs", 0)


def recover_sqlite(location: StoreLocation) -> RecoverReport:
    """Rebuild the store's database from what can be read of it; keep the old file."""
    if location.kind != "sqlite":
        raise StoreError(
            "db recover rebuilds SQLite stores; for PostgreSQL use its own tools (pg_dump)"
        )
    path = location.sqlite_path
    if not path.is_file():
        raise StoreError(f"no store at {path.parent}: nothing to recover")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    new = path.with_name(f"{path.name}.recovering-{stamp}")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    with migration_lock(location):
        scratch, method = _scratch_copy(path, new.with_name(f"{new.name}.sql"))
        try:
            rows, dropped = _rebuild(scratch, new, location)
        finally:
            scratch.close()
            new.with_name(f"{new.name}.sql").unlink(missing_ok=True)
        for suffix in ("", "-wal", "-shm"):
            old = Path(f"{path}{suffix}")
            if old.exists():
                os.replace(old, Path(f"{kept}{suffix}"))
        os.replace(new, path)
    return RecoverReport(path, kept, method, rows, dropped)


def _scratch_copy(path: Path, scratch_file: Path) -> tuple[sqlite3.Connection, str]:
    """A connection to read the rows from: what sqlite3's ``.recover`` rebuilt, when the
    program can, else the damaged file itself (read-only)."""
    program = shutil.which("sqlite3")
    if program is not None:
        try:
            done = subprocess.run(
                [program, "-readonly", str(path), ".recover"],
                capture_output=True,
                timeout=3600,
            )
            script = done.stdout.decode("utf-8", errors="replace")
            if done.returncode == 0 and "CREATE TABLE" in script:
                scratch = sqlite3.connect(scratch_file, isolation_level=None)
                try:
                    scratch.executescript(script)
                    return scratch, "sqlite3 .recover"
                except sqlite3.Error:
                    scratch.close()
                    scratch_file.unlink(missing_ok=True)
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        return open_sqlite_readonly(path), "row-by-row copy"
    except sqlite3.Error as exc:
        repaired = _with_a_new_header(path, scratch_file)
        if repaired is not None:
            return repaired, "row-by-row copy under a rewritten file header"
        raise StoreError(
            f"{path} cannot be opened at all ({exc}): restore it from a backup"
        ) from exc


def _with_a_new_header(path: Path, copy: Path) -> sqlite3.Connection | None:
    """A copy of a file whose 100-byte header is damaged (``file is not a database``), with
    the header of a fresh database of the first page size under which the schema reads; the
    pages after it are what they were. None when no page size works."""
    size = path.stat().st_size
    for page_size in (4096, 1024, 2048, 8192, 16384, 32768, 65536):
        if size < page_size or size % page_size:
            continue
        template = copy.with_name(f"{copy.name}.template")
        template.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(template)) as raw:
            raw.execute(f"PRAGMA page_size = {page_size}")
            raw.execute("CREATE TABLE t (x)")
            raw.commit()
        header = bytearray(template.read_bytes()[:100])
        template.unlink()
        header[28:32] = (size // page_size).to_bytes(4, "big")  # the database's size in pages
        shutil.copyfile(path, copy)
        with open(copy, "r+b") as fh:
            fh.write(header)
        raw = sqlite3.connect(copy, isolation_level=None)
        try:
            raw.execute("SELECT count(*) FROM runs").fetchone()
            return raw
        except sqlite3.Error:
            raw.close()
    copy.unlink(missing_ok=True)
    return None


def _rebuild(
    source: sqlite3.Connection, new: Path, location: StoreLocation
) -> tuple[dict[str, int], int]:
    from labkeep.store.sql._ddl import create_fresh

    dest = sqlite3.connect(new, isolation_level=None)
    try:
        dest.execute("PRAGMA journal_mode = WAL")
        create_fresh(dest)
        dest.execute("PRAGMA foreign_keys = ON")
        tables = [
            r[0]
            for r in dest.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid"
            )
            if r[0] != "alembic_version"
        ]
        rows: dict[str, int] = {}
        dropped = 0
        dest.execute("BEGIN")
        for table in tables:
            if table in DERIVED_TABLES:
                continue
            copied, lost = _copy_table(source, dest, table)
            rows[table] = copied
            dropped += lost
        _rebuild_derived(dest, location)
        dest.execute("COMMIT")
        for table in DERIVED_TABLES:
            rows[table] = int(dest.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        problems = dest.execute("PRAGMA integrity_check").fetchall()
        if problems != [("ok",)]:
            raise StoreError(f"the rebuilt database {new} is not sound: {problems[0][0]}")
    except BaseException:
        dest.close()
        for leftover in (new, Path(f"{new}-wal"), Path(f"{new}-shm")):
            leftover.unlink(missing_ok=True)
        raise
    dest.close()
    return rows, dropped


def _copy_table(
    source: sqlite3.Connection, dest: sqlite3.Connection, table: str
) -> tuple[int, int]:
    """Copy the rows of ``table`` that can be read; return (copied, refused by the new
    schema's constraints, such as rows of a run that was lost)."""
    wanted = [r[1] for r in dest.execute(f'PRAGMA table_info("{table}")')]
    try:
        have = {r[1] for r in source.execute(f'PRAGMA table_info("{table}")')}
    except sqlite3.Error:
        return 0, 0
    columns = [c for c in wanted if c in have]
    if not columns:
        return 0, 0
    names = ", ".join(f'"{c}"' for c in columns)
    select = f'SELECT rowid, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?'
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    last, limit, skip = -(2**63), _BATCH, 1
    copied = refused = 0
    while True:
        try:
            batch = source.execute(select, (last, limit)).fetchall()
        except sqlite3.Error:
            if limit > 1:
                limit = 1  # the good rows before the damage, one at a time
                continue
            if last > 2**62:
                break
            last += skip  # past the damaged page, further each time
            skip *= 4
            continue
        if not batch:
            break
        limit, skip = _BATCH, 1
        for row in batch:
            try:
                dest.execute(insert, row[1:])
                copied += 1
            except sqlite3.IntegrityError:
                refused += 1
        last = batch[-1][0]
    return copied, refused


def _rebuild_derived(dest: sqlite3.Connection, location: StoreLocation) -> None:
    """Packed run rows, key lists and blob references, from the tables they come from."""
    from labkeep.store.sql._packed import SECTIONS, refresh

    cur = dest.cursor()
    numbers = [r[0] for r in dest.execute("SELECT number FROM runs ORDER BY number")]
    for number in numbers:
        refresh(cur, _same, number, SECTIONS)
    dest.execute(
        "INSERT OR IGNORE INTO blob_refs (run_number, sha256, kind) "
        f"SELECT run_number, sha256, '{ARTIFACT}' FROM artifacts"
    )
    dest.execute(
        "INSERT OR IGNORE INTO blob_refs (run_number, sha256, kind) "
        f"SELECT run_number, sha256, '{MEDIA}' FROM media"
    )
    blobs = BlobDirectory(location.blob_dir)

    def read_json(sha: str) -> Any:
        return json.loads(blobs.get(sha).read_bytes())

    for number, data in dest.execute("SELECT run_number, data FROM snapshots").fetchall():
        try:
            snapshot = json.loads(data)
        except ValueError:
            continue
        if isinstance(snapshot, dict):
            cur.executemany(
                "INSERT OR IGNORE INTO blob_refs (run_number, sha256, kind) VALUES (?, ?, ?)",
                [(number, sha, kind) for sha, kind in sorted(snapshot_refs(snapshot, read_json))],
            )
    cur.close()


def _same(text: str) -> str:
    return text


__all__ = ["CheckReport", "RecoverReport", "check_store", "recover_sqlite"]
