"""Versioned artifacts in SQL: named artifacts, their versions and files, aliases, and the
links that say which runs produced and used which version.

A version is a set of files identified by a digest of their paths and contents
(:func:`labkeep.store.artifact_digest`); the unique index (artifact, digest) makes the same
content one version. A new version is numbered while the artifact's row is locked, in the
transaction that writes its files, so concurrent loggers never share a number and nothing
is half-written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from labkeep._values import check_alias, check_key, check_registry_name
from labkeep.entities import ArtifactFile, ArtifactLink, ArtifactVersion, NamedArtifact
from labkeep.errors import InvalidInputError, NotFoundError
from labkeep.store._digest import artifact_digest
from labkeep.store.sql._connect import Connection
from labkeep.store.sql._version_refs import fetch_all as _all
from labkeep.store.sql._version_refs import fetch_one as _one
from labkeep.store.sql._version_refs import (
    read_aliases,
    read_versions,
    resolve_ref,
    row_by_name,
)

_VERSION = "SELECT version, digest, size, file_count, run_uuid, created FROM artifact_versions"


def _artifact(cur: Any, conn: Connection, name: str, *, lock: bool = False) -> tuple[int, str]:
    row = row_by_name(
        cur,
        conn,
        "named_artifacts",
        "id, type",
        name,
        lambda listed: (
            f"no artifact {name!r} (artifacts: {listed}): log one with "
            f"run.log_artifact(path, name={name!r}, type='dataset')"
        ),
        lock=lock,
    )
    return int(row[0]), str(row[1])


def _aliases(cur: Any, conn: Connection, artifact_id: int) -> dict[str, int]:
    return read_aliases(cur, conn, "artifact_aliases", "artifact_id", artifact_id)


def _version(
    name: str, type_: str, row: Any, aliases: dict[str, int], latest: int
) -> ArtifactVersion:
    number = int(row[0])
    names = [a for a, v in aliases.items() if v == number]
    if number == latest:
        names.insert(0, "latest")
    return ArtifactVersion(
        name=name,
        type=type_,
        version=number,
        digest=str(row[1]),
        size=int(row[2]),
        file_count=int(row[3]),
        run_uuid=str(row[4]),
        created=float(row[5]),
        aliases=tuple(names),
    )


def log_version(
    conn: Connection, name: str, type_: str, files: Sequence[ArtifactFile], run_uuid: str
) -> ArtifactVersion:
    name = check_registry_name(name, "artifact name")
    type_ = check_registry_name(type_, "artifact type")
    if len(type_) > 64:
        raise InvalidInputError(f"artifact type {type_[:20]!r}… is too long: keep it under 65")
    if not files:
        raise InvalidInputError(f"artifact {name!r} has no files: give a file or a directory")
    files = sorted(files, key=lambda f: f.path)
    for f in files:
        check_key(f.path, "artifact file path")
    digest = artifact_digest(files)
    now = time.time()
    with conn.transaction() as cur:
        cur.execute(
            conn.sql(
                "INSERT INTO named_artifacts (name, type, created) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING"
            ),
            (name, type_, now),
        )
        artifact_id, existing = _artifact(cur, conn, name, lock=True)
        if existing != type_:
            raise InvalidInputError(
                f"artifact {name!r} is a {existing}, not a {type_}: log it with "
                f"type={existing!r}, or choose another name"
            )
        found = _one(
            cur,
            conn,
            "SELECT version FROM artifact_versions WHERE artifact_id = ? AND digest = ?",
            (artifact_id, digest),
        )
        if found is not None:
            version = int(found[0])
        else:
            top = _one(
                cur,
                conn,
                "SELECT max(version) FROM artifact_versions WHERE artifact_id = ?",
                (artifact_id,),
            )
            version = 0 if top[0] is None else int(top[0]) + 1
            cur.execute(
                conn.sql(
                    "INSERT INTO artifact_versions (artifact_id, version, digest, size, "
                    "file_count, run_uuid, created) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    artifact_id,
                    version,
                    digest,
                    sum(f.size for f in files),
                    len(files),
                    run_uuid,
                    now,
                ),
            )
            cur.executemany(
                conn.sql(
                    "INSERT INTO artifact_files (artifact_id, version, path, sha256, size) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                [(artifact_id, version, f.path, f.sha256, f.size) for f in files],
            )
        _link(cur, conn, run_uuid, artifact_id, version, "produced", now)
        return _get(cur, conn, name, artifact_id, type_, version)


def _link(
    cur: Any, conn: Connection, run_uuid: str, artifact_id: int, version: int, role: str, now: float
) -> None:
    cur.execute(
        conn.sql(
            "INSERT INTO artifact_links (run_uuid, artifact_id, version, role, created) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_uuid, artifact_id, version, role) DO NOTHING"
        ),
        (run_uuid, artifact_id, version, role, now),
    )


def _versions(cur: Any, conn: Connection, artifact_id: int) -> list[int]:
    return read_versions(cur, conn, "artifact_versions", "artifact_id", artifact_id)


def _number(cur: Any, conn: Connection, name: str, artifact_id: int, ref: int | str) -> int:
    versions = _versions(cur, conn, artifact_id)
    return resolve_ref(
        ref,
        "artifact version",
        versions,
        lambda: _aliases(cur, conn, artifact_id),
        no_versions=f"artifact {name!r} has no versions yet",
        no_version=lambda wanted: (
            f"artifact {name!r} has no version v{wanted} (its versions: "
            f"{', '.join(f'v{v}' for v in versions[-8:]) or 'none'})"
        ),
        no_alias=lambda wanted, aliases: (
            f"artifact {name!r} has no alias {wanted!r} (its aliases: latest, "
            f"{', '.join(f'{a} -> v{v}' for a, v in aliases.items()) or 'none'}): "
            f"use {name}:latest or {name}:vN"
        ),
    )


def _get(
    cur: Any, conn: Connection, name: str, artifact_id: int, type_: str, number: int
) -> ArtifactVersion:
    row = _one(
        cur, conn, f"{_VERSION} WHERE artifact_id = ? AND version = ?", (artifact_id, number)
    )
    files = tuple(
        ArtifactFile(str(p), str(s), int(z))
        for p, s, z in _all(
            cur,
            conn,
            "SELECT path, sha256, size FROM artifact_files WHERE artifact_id = ? AND version = ? "
            "ORDER BY path",
            (artifact_id, number),
        )
    )
    latest = max(_versions(cur, conn, artifact_id))
    version = _version(name, type_, row, _aliases(cur, conn, artifact_id), latest)
    from dataclasses import replace

    return replace(version, files=files)


def get_version(cur: Any, conn: Connection, name: str, ref: int | str) -> ArtifactVersion:
    artifact_id, type_ = _artifact(cur, conn, name)
    number = _number(cur, conn, name, artifact_id, ref)
    return _get(cur, conn, name, artifact_id, type_, number)


def list_versions(cur: Any, conn: Connection, name: str) -> list[ArtifactVersion]:
    artifact_id, type_ = _artifact(cur, conn, name)
    aliases = _aliases(cur, conn, artifact_id)
    rows = _all(
        cur, conn, f"{_VERSION} WHERE artifact_id = ? ORDER BY version DESC", (artifact_id,)
    )
    latest = int(rows[0][0]) if rows else -1
    return [_version(name, type_, row, aliases, latest) for row in rows]


def list_named(cur: Any, conn: Connection) -> list[NamedArtifact]:
    rows = _all(
        cur,
        conn,
        "SELECT named_artifacts.name, named_artifacts.type, named_artifacts.created, "
        "max(artifact_versions.version), count(artifact_versions.version) FROM named_artifacts "
        "JOIN artifact_versions ON artifact_versions.artifact_id = named_artifacts.id "
        "GROUP BY named_artifacts.id, named_artifacts.name, named_artifacts.type, "
        "named_artifacts.created ORDER BY named_artifacts.name",
    )
    return [NamedArtifact(str(n), str(t), float(c), int(v), int(k)) for n, t, c, v, k in rows]


def set_alias(conn: Connection, name: str, alias: str, version: int) -> None:
    alias = check_alias(alias)
    with conn.transaction() as cur:
        artifact_id, _ = _artifact(cur, conn, name, lock=True)
        number = _number(cur, conn, name, artifact_id, int(version))
        cur.execute(
            conn.sql("DELETE FROM artifact_aliases WHERE artifact_id = ? AND alias = ?"),
            (artifact_id, alias),
        )
        cur.execute(
            conn.sql("INSERT INTO artifact_aliases (artifact_id, alias, version) VALUES (?, ?, ?)"),
            (artifact_id, alias, number),
        )


def delete_alias(conn: Connection, name: str, alias: str) -> None:
    with conn.transaction() as cur:
        artifact_id, _ = _artifact(cur, conn, name, lock=True)
        cur.execute(
            conn.sql("DELETE FROM artifact_aliases WHERE artifact_id = ? AND alias = ?"),
            (artifact_id, alias),
        )
        if cur.rowcount == 0:
            listed = ", ".join(_aliases(cur, conn, artifact_id)) or "none"
            raise NotFoundError(f"artifact {name!r} has no alias {alias!r} (its aliases: {listed})")


def use_version(conn: Connection, name: str, version: int, run_uuid: str) -> None:
    with conn.transaction() as cur:
        artifact_id, _ = _artifact(cur, conn, name)
        number = _number(cur, conn, name, artifact_id, int(version))
        _link(cur, conn, run_uuid, artifact_id, number, "used", time.time())


def list_links(
    cur: Any, conn: Connection, run_uuid: str | None, name: str | None
) -> list[ArtifactLink]:
    sql = (
        "SELECT artifact_links.run_uuid, named_artifacts.name, artifact_links.version, "
        "named_artifacts.type, artifact_links.role, artifact_links.created FROM artifact_links "
        "JOIN named_artifacts ON named_artifacts.id = artifact_links.artifact_id"
    )
    where: list[str] = []
    params: list[Any] = []
    if run_uuid is not None:
        where.append("artifact_links.run_uuid = ?")
        params.append(run_uuid)
    if name is not None:
        _artifact(cur, conn, name)
        where.append("named_artifacts.name = ?")
        params.append(name)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY artifact_links.created, named_artifacts.name, artifact_links.version"
    return [
        ArtifactLink(str(u), str(n), int(v), str(t), str(r), float(c))
        for u, n, v, t, r, c in _all(cur, conn, sql, params)
    ]
