"""``labkeep gc``: blobs nothing names are removed after the grace period, on a local
directory and on object storage, through the API, a server and the CLI; never one that a
live run may be about to name, and purge leaves a blob that a run is re-using."""

from __future__ import annotations

import os
import secrets
import sys
import time
import uuid as uuid_mod
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from labkeep_server import ServerProcess, child_env, cli
from s3_server import MotoServer

from labkeep.entities import Artifact
from labkeep.errors import NotFoundError
from labkeep.store import RunFinish, RunStart, Store, WriteBatch, locate_store, open_store


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3", "server"])
def gc_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    if request.param == "server":  # blobs through a server (HEAD ?put=1, /gc, /purge)
        server = ServerProcess(str(tmp_path / "server-store")).start()
        store = open_store(locate_store(server.url))
        yield store
        store.close()
        server.kill()
        return
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("moto")
        for name, value in moto.env().items():
            monkeypatch.setenv(name, value)
        location = locate_store(tmp_path / "store", artifacts=f"s3://{moto.new_bucket()}/lk")
    else:
        location = locate_store(tmp_path / "store")
    store = open_store(location)
    yield store
    store.close()


def _run(
    store: Store, artifacts: list[Artifact], *, finish: bool = True, start: float | None = None
) -> tuple[int, WriteBatch]:
    run_uuid = str(uuid_mod.uuid4())
    batch = WriteBatch(
        run_uuid=run_uuid,
        writer=f"{run_uuid}.{secrets.token_hex(6)}",
        position=10,
        start=RunStart(
            uuid=run_uuid,
            experiment="gc",
            name="",
            start_time=time.time() if start is None else start,
            user="alice",
            host="box",
            pid=4242,
        ),
        artifacts=artifacts,
        heartbeat=time.time(),
        finish=RunFinish("completed", time.time()) if finish else None,
    )
    return store.apply(batch), batch


def _put(store: Store, tmp_path: Path, size: int = 1000) -> tuple[str, int]:
    path = tmp_path / f"f-{secrets.token_hex(4)}.bin"
    path.write_bytes(secrets.token_bytes(size))
    return store.put_blob(path)


def _gone(store: Store, sha: str) -> bool:
    try:
        store.blob_path(sha)
    except NotFoundError:
        return True
    return False


def test_gc_removes_unnamed_blobs_after_the_grace_period(gc_store: Store, tmp_path: Path) -> None:
    store = gc_store
    named = _put(store, tmp_path)
    _run(store, [Artifact("kept.bin", *named)])
    trashed = _put(store, tmp_path)
    number, _ = _run(store, [Artifact("trashed.bin", *trashed)])
    store.set_deleted([number], True)  # in the trash: still named
    orphan = _put(store, tmp_path, 2345)

    report = store.collect_garbage(3600, dry_run=True)
    assert report.blobs == [] and report.recent == 1  # put within the hour

    time.sleep(1.1)  # object stores keep whole seconds
    report = store.collect_garbage(0, dry_run=True)
    assert [(b.sha256, b.size) for b in report.blobs] == [orphan]
    assert not _gone(store, orphan[0])  # a dry run removes nothing

    report = store.collect_garbage(0)
    assert [(b.sha256, b.size) for b in report.blobs] == [orphan] and report.size == 2345
    assert _gone(store, orphan[0])
    assert not _gone(store, named[0]) and not _gone(store, trashed[0])
    assert store.collect_garbage(0).blobs == []


def test_gc_keeps_what_a_live_run_put_since_it_started(gc_store: Store, tmp_path: Path) -> None:
    """A running run with a live heartbeat may name any blob it put since it started, its
    record still on the way: those stay, whatever the grace period."""
    store = gc_store
    before = _put(store, tmp_path)
    time.sleep(1.1)
    _run(store, [], finish=False)  # live: started now, heartbeat now
    time.sleep(1.1)
    during = _put(store, tmp_path)
    time.sleep(1.1)
    removed = {b.sha256 for b in store.collect_garbage(0).blobs}
    assert removed == {before[0]}
    assert not _gone(store, during[0])


def test_a_blob_put_again_is_kept_by_purge_and_by_gc(gc_store: Store, tmp_path: Path) -> None:
    """Run B named a blob and is purged while run A, re-using the same content, has put it
    (found it there) but its record has not arrived: the blob stays."""
    store = gc_store
    path = tmp_path / "shared.bin"
    path.write_bytes(secrets.token_bytes(5000))
    sha, size = store.put_blob(path)
    number, _ = _run(store, [Artifact("shared.bin", sha, size)])
    store.set_deleted([number], True)
    time.sleep(1.1)
    assert store.put_blob(path) == (sha, size)  # run A's put: found, not sent again
    assert store.purge([number]) == 1
    assert not _gone(store, sha)
    assert sha not in {b.sha256 for b in store.collect_garbage(3600).blobs}
    _run(store, [Artifact("shared.bin", sha, size)])  # run A's record lands
    time.sleep(1.1)
    assert sha not in {b.sha256 for b in store.collect_garbage(0).blobs}
    assert not _gone(store, sha)


def test_gc_removes_what_an_interrupted_upload_left(tmp_path: Path) -> None:
    store = open_store(locate_store(tmp_path / "store"))
    _put(store, tmp_path)
    leftover = tmp_path / "store" / "blobs" / ".tmp-abandoned"
    leftover.write_bytes(b"x" * 100)
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    report = store.collect_garbage(3600, dry_run=True)
    assert [(item.name, item.size) for item in report.leftovers] == [(".tmp-abandoned", 100)]
    store.collect_garbage(3600)
    assert not leftover.exists()


def test_labkeep_gc_through_a_server_and_the_command_line(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = open_store(locate_store(store_dir))
    orphan = _put(store, tmp_path, 3 << 20)
    named = _put(store, tmp_path)
    _run(store, [Artifact("a.bin", *named)])
    store.close()
    time.sleep(1.1)

    dry = cli("--store", str(store_dir), "gc", "--dry-run", "--grace", "0")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"{orphan[0]}      3.0 MB",
        "would remove 1 unused blob (3.0 MB)",
    ]
    kept = cli("--store", str(store_dir), "gc")
    assert kept.stdout.strip() == "removed 0 unused blobs (0 B); kept 1 put within the grace period"
    bad = cli("--store", str(store_dir), "gc", "--grace", "soon")
    assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr

    server = ServerProcess(str(store_dir)).start()
    try:
        done = cli("--store", server.url, "gc", "--grace", "0s", env=child_env())
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "removed 1 unused blob (3.0 MB)"
    finally:
        server.kill()
    assert not (store_dir / "blobs" / orphan[0][:2] / orphan[0][2:]).exists()
    assert (store_dir / "blobs" / named[0][:2] / named[0][2:]).exists()
