"""The model registry in SQL: registered models, their numbered versions and aliases.

Every write is one transaction. A new version's number is one more than the highest the
model ever had (``registered_models.last_version``: a deleted version's number is not given
again, so ``models:/NAME/3`` never names two different models), taken while the model's row
is locked (``FOR UPDATE`` on PostgreSQL; SQLite's write
transactions are serial, ``BEGIN IMMEDIATE``), so two processes registering at once get 1
and 2; the primary key (model, version) refuses a duplicate whatever happens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from labkeep._values import check_alias, check_registry_name, check_tags_map, check_text
from labkeep.entities import ModelVersion, RegisteredModel
from labkeep.errors import NotFoundError
from labkeep.store.sql._connect import Connection
from labkeep.store.sql._version_refs import fetch_all as _all
from labkeep.store.sql._version_refs import fetch_one as _one
from labkeep.store.sql._version_refs import (
    read_aliases,
    read_versions,
    resolve_ref,
    row_by_name,
)

_MODEL = "SELECT id, name, description, tags, created, updated FROM registered_models"
_VERSION = "SELECT version, run_uuid, model_path, description, tags, created FROM model_versions"


def _model_id(cur: Any, conn: Connection, name: str, *, lock: bool = False) -> int:
    row = row_by_name(
        cur,
        conn,
        "registered_models",
        "id",
        name,
        lambda listed: (
            f"no registered model {name!r} (registered: {listed}): register one with "
            f"labkeep.register_model('runs:/RUN/model', {name!r})"
        ),
        lock=lock,
    )
    return int(row[0])


def _aliases(cur: Any, conn: Connection, model_id: int) -> dict[str, int]:
    return read_aliases(cur, conn, "model_aliases", "model_id", model_id)


def _registered(cur: Any, conn: Connection, row: Any) -> RegisteredModel:
    model_id = int(row[0])
    latest = _one(
        cur, conn, "SELECT max(version) FROM model_versions WHERE model_id = ?", (model_id,)
    )
    return RegisteredModel(
        name=str(row[1]),
        description=str(row[2]),
        tags=dict(json.loads(row[3])),
        created=float(row[4]),
        updated=float(row[5]),
        latest_version=None if latest[0] is None else int(latest[0]),
        aliases=_aliases(cur, conn, model_id),
    )


def _version(name: str, row: Any, aliases: Mapping[str, int]) -> ModelVersion:
    number = int(row[0])
    return ModelVersion(
        name=name,
        version=number,
        run_uuid=str(row[1]),
        model_path=str(row[2]),
        description=str(row[3]),
        tags=dict(json.loads(row[4])),
        aliases=tuple(a for a, v in aliases.items() if v == number),
        created=float(row[5]),
    )


def create_version(
    conn: Connection,
    name: str,
    run_uuid: str,
    model_path: str,
    description: str,
    tags: Mapping[str, str] | None,
) -> ModelVersion:
    name = check_registry_name(name, "model name")
    description = check_text(description, "description")
    tag_map = check_tags_map(tags or {}, "tags")
    now = time.time()
    with conn.transaction() as cur:
        cur.execute(
            conn.sql(
                "INSERT INTO registered_models (name, description, tags, created, updated) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"
            ),
            (name, "", "{}", now, now),
        )
        model_id = _model_id(cur, conn, name, lock=True)
        top = _one(
            cur,
            conn,
            "SELECT last_version, (SELECT max(version) FROM model_versions WHERE model_id = ?) "
            "FROM registered_models WHERE id = ?",
            (model_id, model_id),
        )
        version = max(int(top[0]), int(top[1] or 0)) + 1
        cur.execute(
            conn.sql(
                "INSERT INTO model_versions (model_id, version, run_uuid, model_path, "
                "description, tags, created) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (model_id, version, run_uuid, model_path, description, json.dumps(tag_map), now),
        )
        cur.execute(
            conn.sql("UPDATE registered_models SET updated = ?, last_version = ? WHERE id = ?"),
            (now, version, model_id),
        )
    return ModelVersion(name, version, run_uuid, model_path, description, tag_map, (), now)


def get_model(cur: Any, conn: Connection, name: str) -> RegisteredModel:
    _model_id(cur, conn, name)
    return _registered(cur, conn, _one(cur, conn, f"{_MODEL} WHERE name = ?", (name,)))


def list_models(cur: Any, conn: Connection) -> list[RegisteredModel]:
    return [_registered(cur, conn, row) for row in _all(cur, conn, f"{_MODEL} ORDER BY name")]


def list_versions(cur: Any, conn: Connection, name: str) -> list[ModelVersion]:
    model_id = _model_id(cur, conn, name)
    aliases = _aliases(cur, conn, model_id)
    rows = _all(cur, conn, f"{_VERSION} WHERE model_id = ? ORDER BY version DESC", (model_id,))
    return [_version(name, row, aliases) for row in rows]


def _number(cur: Any, conn: Connection, name: str, model_id: int, ref: int | str) -> int:
    """The version number ``ref`` names; NotFoundError that says what there is."""
    versions = read_versions(cur, conn, "model_versions", "model_id", model_id)
    return resolve_ref(
        ref,
        "model version",
        versions,
        lambda: _aliases(cur, conn, model_id),
        no_versions=f"model {name!r} has no versions yet: register one",
        no_version=lambda wanted: (
            f"model {name!r} has no version {wanted} (its versions: {_span(versions)})"
        ),
        no_alias=lambda wanted, aliases: (
            f"model {name!r} has no alias {wanted!r} (its aliases: "
            f"{', '.join(f'{a} -> {v}' for a, v in aliases.items()) or 'none'}): set one with "
            f"labkeep.set_alias({name!r}, {wanted!r}, version=N)"
        ),
    )


def _span(versions: Sequence[int]) -> str:
    if not versions:
        return "none"
    if len(versions) > 6:
        return f"{versions[0]}..{versions[-1]}"
    return ", ".join(str(v) for v in versions)


def get_version(cur: Any, conn: Connection, name: str, ref: int | str) -> ModelVersion:
    model_id = _model_id(cur, conn, name)
    number = _number(cur, conn, name, model_id, ref)
    row = _one(cur, conn, f"{_VERSION} WHERE model_id = ? AND version = ?", (model_id, number))
    return _version(name, row, _aliases(cur, conn, model_id))


def set_alias(conn: Connection, name: str, alias: str, version: int) -> None:
    alias = check_alias(alias)
    with conn.transaction() as cur:
        model_id = _model_id(cur, conn, name, lock=True)
        number = _number(cur, conn, name, model_id, int(version))
        cur.execute(
            conn.sql("DELETE FROM model_aliases WHERE model_id = ? AND alias = ?"),
            (model_id, alias),
        )
        cur.execute(
            conn.sql("INSERT INTO model_aliases (model_id, alias, version) VALUES (?, ?, ?)"),
            (model_id, alias, number),
        )
        _touch(cur, conn, model_id)


def delete_alias(conn: Connection, name: str, alias: str) -> None:
    with conn.transaction() as cur:
        model_id = _model_id(cur, conn, name, lock=True)
        cur.execute(
            conn.sql("DELETE FROM model_aliases WHERE model_id = ? AND alias = ?"),
            (model_id, alias),
        )
        if cur.rowcount == 0:
            listed = ", ".join(_aliases(cur, conn, model_id)) or "none"
            raise NotFoundError(f"model {name!r} has no alias {alias!r} (its aliases: {listed})")
        _touch(cur, conn, model_id)


def _touch(cur: Any, conn: Connection, model_id: int) -> None:
    cur.execute(
        conn.sql("UPDATE registered_models SET updated = ? WHERE id = ?"), (time.time(), model_id)
    )


def _new_tags(current: str, set_tags: Mapping[str, str] | None, delete_tags: Sequence[str]) -> str:
    tags: dict[str, str] = dict(json.loads(current))
    tags.update(check_tags_map(set_tags or {}, "tags"))
    for key in delete_tags:
        tags.pop(key, None)
    return json.dumps(tags)


def update_model(
    conn: Connection,
    name: str,
    description: str | None,
    set_tags: Mapping[str, str] | None,
    delete_tags: Sequence[str],
) -> None:
    with conn.transaction() as cur:
        model_id = _model_id(cur, conn, name, lock=True)
        row = _one(
            cur, conn, "SELECT description, tags FROM registered_models WHERE id = ?", (model_id,)
        )
        text = row[0] if description is None else check_text(description, "description")
        cur.execute(
            conn.sql(
                "UPDATE registered_models SET description = ?, tags = ?, updated = ? WHERE id = ?"
            ),
            (text, _new_tags(row[1], set_tags, delete_tags), time.time(), model_id),
        )


def update_version(
    conn: Connection,
    name: str,
    version: int,
    description: str | None,
    set_tags: Mapping[str, str] | None,
    delete_tags: Sequence[str],
) -> None:
    with conn.transaction() as cur:
        model_id = _model_id(cur, conn, name, lock=True)
        number = _number(cur, conn, name, model_id, int(version))
        row = _one(
            cur,
            conn,
            "SELECT description, tags FROM model_versions WHERE model_id = ? AND version = ?",
            (model_id, number),
        )
        text = row[0] if description is None else check_text(description, "description")
        cur.execute(
            conn.sql(
                "UPDATE model_versions SET description = ?, tags = ? "
                "WHERE model_id = ? AND version = ?"
            ),
            (text, _new_tags(row[1], set_tags, delete_tags), model_id, number),
        )
        _touch(cur, conn, model_id)


def delete_version(conn: Connection, name: str, version: int) -> None:
    with conn.transaction() as cur:
        model_id = _model_id(cur, conn, name, lock=True)
        number = _number(cur, conn, name, model_id, int(version))
        for table in ("model_aliases", "model_versions"):
            cur.execute(
                conn.sql(f"DELETE FROM {table} WHERE model_id = ? AND version = ?"),
                (model_id, number),
            )
        _touch(cur, conn, model_id)


def delete_model(conn: Connection, name: str) -> None:
    with conn.transaction() as cur:
        model_id = _model_id(cur, conn, name, lock=True)
        for table in ("model_aliases", "model_versions"):
            cur.execute(conn.sql(f"DELETE FROM {table} WHERE model_id = ?"), (model_id,))
        cur.execute(conn.sql("DELETE FROM registered_models WHERE id = ?"), (model_id,))


def versions_of_run(cur: Any, conn: Connection, run_uuid: str) -> list[ModelVersion]:
    rows = _all(
        cur,
        conn,
        "SELECT registered_models.name, registered_models.id, model_versions.version, "
        "model_versions.run_uuid, model_versions.model_path, model_versions.description, "
        "model_versions.tags, model_versions.created FROM model_versions JOIN "
        "registered_models ON registered_models.id = model_versions.model_id "
        "WHERE model_versions.run_uuid = ? ORDER BY registered_models.name, model_versions.version",
        (run_uuid,),
    )
    aliases: dict[int, dict[str, int]] = {}
    found = []
    for name, model_id, *rest in rows:
        if model_id not in aliases:
            aliases[model_id] = _aliases(cur, conn, int(model_id))
        found.append(_version(str(name), rest, aliases[model_id]))
    return found


def registered_versions_of_runs(
    cur: Any, conn: Connection, run_uuids: Sequence[str]
) -> list[tuple[str, int, str]]:
    """(model name, version, run uuid) of every version that points at one of these runs."""
    if not run_uuids:
        return []
    marks = ", ".join("?" * len(run_uuids))
    return [
        (str(n), int(v), str(u))
        for n, v, u in _all(
            cur,
            conn,
            "SELECT registered_models.name, model_versions.version, model_versions.run_uuid "
            "FROM model_versions JOIN registered_models ON registered_models.id = "
            f"model_versions.model_id WHERE model_versions.run_uuid IN ({marks}) "
            "ORDER BY registered_models.name, model_versions.version",
            run_uuids,
        )
    ]
