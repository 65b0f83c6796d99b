"""What the model registry (``_registry.py``) and versioned artifacts (``_lineage.py``) share:
a row found by its name, numbered versions with aliases, and a reference to one of them: a
number, ``latest`` or an alias (``models:/NAME/3``, ``dataset:best``).

Each caller words its own errors (what the thing is called, how its versions are listed, how
to make the one that is missing); the steps of finding it are here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labkeep._values import version_ref
from labkeep.errors import NotFoundError
from labkeep.store.sql._connect import Connection


def fetch_one(cur: Any, conn: Connection, sql: str, params: Sequence[Any]) -> Any:
    """The first row of ``sql`` (``?`` placeholders, either dialect), or None."""
    cur.execute(conn.sql(sql), tuple(params))
    return cur.fetchone()


def fetch_all(cur: Any, conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Every row of ``sql`` (``?`` placeholders, either dialect)."""
    cur.execute(conn.sql(sql), tuple(params))
    return list(cur.fetchall())


def row_by_name(
    cur: Any,
    conn: Connection,
    table: str,
    columns: str,
    name: str,
    missing: Callable[[str], str],
    *,
    lock: bool = False,
) -> Any:
    """The ``columns`` of the model or artifact ``name`` in ``table`` (its row locked when
    ``lock``, on PostgreSQL; SQLite's write transactions are serial). None there raises
    :class:`NotFoundError` with ``missing(listed)``, ``listed`` the first ten names there are."""
    sql = f"SELECT {columns} FROM {table} WHERE name = ?"
    if lock and conn.dialect == "postgresql":
        sql += " FOR UPDATE"
    row = fetch_one(cur, conn, sql, (name,))
    if row is None:
        names = [r[0] for r in fetch_all(cur, conn, f"SELECT name FROM {table} ORDER BY name")]
        raise NotFoundError(missing(", ".join(names[:10]) or "none yet"))
    return row


def read_aliases(
    cur: Any, conn: Connection, table: str, owner: str, owner_id: int
) -> dict[str, int]:
    """Alias -> version number of one model or artifact (``owner`` is its id column), by
    alias."""
    rows = fetch_all(
        cur,
        conn,
        f"SELECT alias, version FROM {table} WHERE {owner} = ? ORDER BY alias",
        (owner_id,),
    )
    return {str(a): int(v) for a, v in rows}


def read_versions(cur: Any, conn: Connection, table: str, owner: str, owner_id: int) -> list[int]:
    """The version numbers of one model or artifact (``owner`` is its id column), ascending."""
    rows = fetch_all(
        cur, conn, f"SELECT version FROM {table} WHERE {owner} = ? ORDER BY version", (owner_id,)
    )
    return [int(r[0]) for r in rows]


def resolve_ref(
    ref: int | str,
    what: str,
    versions: Sequence[int],
    aliases: Callable[[], Mapping[str, int]],
    *,
    no_versions: str,
    no_version: Callable[[int], str],
    no_alias: Callable[[str, Mapping[str, int]], str],
) -> int:
    """The version number ``ref`` names among ``versions`` (ascending): the number itself,
    the highest for ``latest``, else the alias's (``aliases()`` is read only then).

    A reference that names none raises :class:`NotFoundError` with the caller's message:
    ``no_versions`` when there are none, ``no_version(number)``, ``no_alias(alias, aliases)``.
    ``what`` names the reference in the error for one that is not a reference at all.
    """
    wanted = version_ref(ref, what)
    if wanted == "latest":
        if not versions:
            raise NotFoundError(no_versions)
        return versions[-1]
    if isinstance(wanted, int):
        if wanted not in versions:
            raise NotFoundError(no_version(wanted))
        return wanted
    known = aliases()
    if wanted not in known:
        raise NotFoundError(no_alias(wanted, known))
    return known[wanted]
