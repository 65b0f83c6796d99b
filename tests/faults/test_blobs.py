"""Blobs are not trusted blindly: a changed blob is refused (before any byte is sent when it
is small, by aborting the response when it is large), and a symbolic link planted among the
blobs is never followed."""

from __future__ import annotations

import os
import secrets
import time
import uuid as uuid_mod
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import BACKENDS, LiveServer, drop_pg_schema, new_pg_schema, require_postgres
from labkeep.entities import Artifact
from labkeep.errors import DamagedStoreError
from labkeep.store import locate_store, open_store
from labkeep.store._base import RunStart, Store, WriteBatch


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_dir: Path) -> Iterator[Store]:
    opened = open_store(locate_store(store_dir))
    yield opened
    opened.close()


def log_artifact(store: Store, path: Path) -> tuple[int, str]:
    """A run with ``path`` as its only artifact: (run number, blob sha256)."""
    sha, size = store.put_blob(path)
    run_uuid = str(uuid_mod.uuid4())
    store.apply(
        WriteBatch(
            run_uuid=run_uuid,
            writer=f"{run_uuid}.w",
            position=1,
            start=RunStart(run_uuid, "default", "", time.time(), "u", "h", 1),
            artifacts=[Artifact(path.name, sha, size)],
        )
    )
    return store.resolve_run(run_uuid).number, sha


def tamper(blob: Path, offset: int = 0) -> None:
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_a_changed_blob_is_refused_when_read(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(secrets.token_bytes(4096))
    _, sha = log_artifact(store, source)
    assert store.blob_path(sha).read_bytes() == source.read_bytes()
    tamper(store.blob_path(sha), 100)
    fresh = open_store(store.location)  # a new process would not have verified it yet
    try:
        with pytest.raises(DamagedStoreError, match=sha[:12]):
            fresh.blob_path(sha)
    finally:
        fresh.close()


def test_a_symlink_planted_among_the_blobs_is_refused(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("notes\n")
    _, sha = log_artifact(store, source)
    blob = store.blob_path(sha)
    blob.unlink()
    blob.symlink_to("/etc/passwd")
    with pytest.raises(DamagedStoreError, match="symbolic link"):
        store.blob_path(sha)


def test_a_symlinked_blob_folder_is_refused(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("notes\n")
    _, sha = log_artifact(store, source)
    blob = store.blob_path(sha)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / blob.name).write_text("notes\n")
    for child in blob.parent.iterdir():
        os.chmod(child, 0o644)
        child.unlink()
    blob.parent.rmdir()
    blob.parent.symlink_to(outside)
    with pytest.raises(DamagedStoreError):
        store.blob_path(sha)


@pytest.fixture
def served(store: Store, store_dir: Path) -> Iterator[httpx.Client]:
    with (
        LiveServer(store_dir) as server,
        httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client,
    ):
        yield client


def test_server_refuses_a_changed_small_blob_before_sending_it(
    store: Store, served: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("the real notes\n")
    number, sha = log_artifact(store, source)
    tamper(store.blob_path(sha))
    for url in (f"/runs/{number}/artifacts/notes.txt", f"/store/blobs/{sha}"):
        response = served.get(url)
        assert response.status_code == 500, url
        assert "does not match its sha256" in response.json()["error"]
        assert b"real notes" not in response.content


def test_server_aborts_a_large_changed_blob(
    store: Store, served: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(secrets.token_bytes(5 << 20))
    number, sha = log_artifact(store, source)
    tamper(store.blob_path(sha), (5 << 20) - 1)  # the last byte: noticed only at the end
    with pytest.raises(httpx.HTTPError):
        response = served.get(f"/runs/{number}/artifacts/big.bin")
        pytest.fail(f"a changed blob was served whole ({len(response.content)} bytes)")


def test_server_serves_an_intact_blob_whole_and_in_ranges(
    store: Store, served: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    data = secrets.token_bytes(3 << 20)
    source.write_bytes(data)
    number, sha = log_artifact(store, source)
    assert served.get(f"/runs/{number}/artifacts/big.bin").content == data
    assert served.get(f"/store/blobs/{sha}").content == data
    part = served.get(f"/store/blobs/{sha}", headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, data[10:20])
    head = served.head(f"/store/blobs/{sha}")
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))


def test_server_refuses_a_planted_symlink(
    store: Store, served: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("notes\n")
    number, sha = log_artifact(store, source)
    blob = store.blob_path(sha)
    blob.unlink()
    blob.symlink_to("/etc/passwd")
    for url in (f"/runs/{number}/artifacts/notes.txt", f"/store/blobs/{sha}"):
        response = served.get(url)
        assert response.status_code == 500, url
        assert b"root:" not in response.content


@pytest.fixture(params=BACKENDS)
def own_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store of this test alone (on PostgreSQL a schema of its own: db check looks at
    every blob every run in the database names)."""
    if request.param == "sqlite":
        yield str(tmp_path / "own")
        return
    require_postgres(request.node.nodeid)
    schema, uri = new_pg_schema()
    try:
        yield uri
    finally:
        drop_pg_schema(schema)


def test_db_check_finds_damaged_and_missing_blobs_on_every_backend(
    own_store_uri: str, tmp_path: Path
) -> None:
    from labkeep.store.sql._repair import check_store

    backend = open_store(locate_store(own_store_uri))
    try:
        files = []
        for name in ("kept", "changed", "gone"):
            path = tmp_path / f"{name}.txt"
            path.write_text(f"{name} {secrets.token_hex(8)}\n")
            files.append(log_artifact(backend, path)[1])
        assert check_store(backend.location).ok
        kept, changed, gone = files
        tamper(backend.blob_path(changed))
        backend.blob_path(gone).unlink()
        report = check_store(backend.location)
    finally:
        backend.close()
    assert not report.ok and not report.database_problems
    assert [changed[:12] in p for p in report.damaged_blobs] == [True]
    assert [gone[:12] in p for p in report.missing_blobs] == [True]
    assert not any(kept[:12] in p for p in [*report.damaged_blobs, *report.missing_blobs])
