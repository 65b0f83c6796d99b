"""Artifact stores by URI against a real S3-compatible server (moto's server mode on
127.0.0.1): content-addressed, idempotent uploads, multipart, streamed and checked
downloads, one-line errors; a PostgreSQL store whose recorded artifact location every
client finds, through the API and through servers with and without proxying."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from labkeep_server import ServerProcess, child_env
from s3_server import MotoServer

from labkeep.errors import DamagedStoreError, NotFoundError, StoreError
from labkeep.store import _s3
from labkeep.store._artifacts import ObjectStoreUnreachableError, open_artifacts
from labkeep.store._s3 import S3Artifacts


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_uri(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://`` of a fresh bucket (and a prefix), with the AWS variables pointing at moto."""
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return f"s3://{moto.new_bucket()}/team/labkeep"


def _objects(moto: MotoServer, uri: str) -> dict[str, dict[str, Any]]:
    bucket, prefix = _s3.parse_s3_uri(uri)
    listed = moto.client().list_objects_v2(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
    return {item["Key"]: item for item in listed.get("Contents", [])}


def _file(path: Path, size: int) -> Path:
    path.write_bytes(secrets.token_bytes(size))
    return path


def test_upload_is_content_addressed_and_idempotent(
    s3_uri: str, moto: MotoServer, tmp_path: Path
) -> None:
    store = open_artifacts(s3_uri, tmp_path / "cache")
    source = _file(tmp_path / "weights.bin", 300_000)
    sha, size = store.put(source)
    assert (sha, size) == (hashlib.sha256(source.read_bytes()).hexdigest(), 300_000)
    key = f"team/labkeep/{sha[:2]}/{sha[2:]}"
    before = _objects(moto, s3_uri)
    assert set(before) == {key}

    copy = tmp_path / "copy.bin"
    copy.write_bytes(source.read_bytes())
    assert store.put(copy) == (sha, size)
    assert store.put(copy, sha) == (sha, size)  # known hash: nothing read, nothing sent
    after = _objects(moto, s3_uri)
    # Not sent again (its ETag and time unchanged); the put is noted by a marker.
    assert after[key]["LastModified"] == before[key]["LastModified"]
    assert set(after) == {key, f"team/labkeep/touched/{sha}"}
    assert store.put_bytes(b"small") == (hashlib.sha256(b"small").hexdigest(), 5)
    assert store.size(sha) == size and store.size("0" * 64) is None


def test_small_blobs_cost_one_request_each_way(s3_uri: str, tmp_path: Path) -> None:
    """Under SMALL_PUT a blob is sent without asking first (sending the same bytes again is
    cheaper than HEAD then PUT), and fetched with one GET that also says whether it is
    still stored; a cached blob is still asked for (it may have been purged)."""
    store = open_artifacts(s3_uri, tmp_path / "cache")
    assert isinstance(store, S3Artifacts)
    client = store._ready()
    calls: list[str] = []
    client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    small = _file(tmp_path / "small.bin", 1_000)
    sha, size = store.put(small)
    assert (sha, size) == (hashlib.sha256(small.read_bytes()).hexdigest(), 1_000)
    assert calls == ["PutObject"]
    calls.clear()
    assert store.put(small) == (sha, size)
    assert calls == ["PutObject"]  # sent again: its last-put time is the object's own
    calls.clear()
    assert store.local_path(sha).read_bytes() == small.read_bytes()
    assert calls == ["GetObject"]
    calls.clear()
    store.local_path(sha)
    assert calls == ["HeadObject"]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    empty_sha, _ = store.put(empty)
    assert store.local_path(empty_sha).read_bytes() == b""
    with pytest.raises(NotFoundError, match="is missing from"):
        store.local_path("0" * 64)


def test_large_files_go_in_parts_with_progress(
    s3_uri: str, moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_s3, "MULTIPART_THRESHOLD", 5 << 20)
    monkeypatch.setattr(_s3, "MULTIPART_CHUNK", 5 << 20)
    moved: list[tuple[str, int, int]] = []

    @contextlib.contextmanager
    def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
        seen = [0]
        yield lambda n: seen.__setitem__(0, seen[0] + n)
        moved.append((description.split()[0], total, seen[0]))

    store = S3Artifacts(s3_uri, tmp_path / "cache", progress=progress)
    source = _file(tmp_path / "big.bin", 12 << 20)
    sha, size = store.put(source)
    etag = next(iter(_objects(moto, s3_uri).values()))["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts of 5, 5 and 2 MiB
    assert moved == [("upload", size, size)]

    local = store.local_path(sha)  # parallel ranged download, checked, cached
    assert local.read_bytes() == source.read_bytes()
    assert moved[-1] == ("download", size, size)
    assert store.local_path(sha) == local  # from the cache now


def test_downloads_stream_and_are_checked(s3_uri: str, moto: MotoServer, tmp_path: Path) -> None:
    store = open_artifacts(s3_uri, tmp_path / "cache")
    source = _file(tmp_path / "data.bin", 3 << 20)
    sha, size = store.put(source)
    read = store.open(sha)
    assert read.size == size
    chunks = list(read.chunks)
    assert len(chunks) == 3 and b"".join(chunks) == source.read_bytes()

    # Changed behind labkeep's back: the stream stops before its last chunk.
    bucket, _ = _s3.parse_s3_uri(s3_uri)
    key = f"team/labkeep/{sha[:2]}/{sha[2:]}"
    moto.client().put_object(Bucket=bucket, Key=key, Body=b"x" * size)  # type: ignore[attr-defined]
    got: list[bytes] = []
    with pytest.raises(DamagedStoreError, match="does not match its sha256"):
        for chunk in store.open(sha).chunks:
            got.append(chunk)
    assert len(got) == 2
    assert "does not match" in (store.check(sha) or "")
    with pytest.raises(NotFoundError, match="missing from"):
        store.open("1" * 64)


def test_wrong_bucket_bad_credentials_and_no_server_are_one_line(
    s3_uri: str, moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _file(tmp_path / "a.bin", 10)
    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist") as missing:
        open_artifacts("s3://no-such-bucket/x", tmp_path / "c").put(source)
    assert "\n" not in str(missing.value)

    strict = MotoServer(auth=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", strict.url)
        with pytest.raises(StoreError, match="refused the credentials") as refused:
            open_artifacts("s3://any-bucket", tmp_path / "c").put(source)
        assert "AWS_ACCESS_KEY_ID" in str(refused.value) and "\n" not in str(refused.value)
    finally:
        strict.stop()

    from s3_server import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ObjectStoreUnreachableError, match="cannot reach the object store") as gone:
        open_artifacts(s3_uri, tmp_path / "c").put(source)
    assert "tried 5 times" in str(gone.value) and "\n" not in str(gone.value)


def test_an_interrupted_multipart_upload_is_a_leftover_for_gc(
    s3_uri: str, moto: MotoServer, tmp_path: Path
) -> None:
    bucket, _ = _s3.parse_s3_uri(s3_uri)
    s3: Any = moto.client()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="team/labkeep/ab/" + "c" * 62)
    store = open_artifacts(s3_uri, tmp_path / "cache")
    import time

    found = store.leftovers(time.time() + 5)
    assert [item.name.split("?")[0] for item in found] == ["team/labkeep/ab/" + "c" * 62]
    # (moto reports every upload as initiated in 2010, so the cutoff cannot be told apart.)
    store.delete_leftovers(found)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert upload["UploadId"]


# -- stores on PostgreSQL with their artifacts in the object store --------------------------

LOG_ARTIFACT = """
import sys, labkeep
with labkeep.init(experiment="s3") as run:
    run.log({"x": 1.0}, step=0)
    run.log_artifact(sys.argv[1])
print(run.number)
"""


def _log_from_child(store: str, artifact: Path, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", LOG_ARTIFACT, str(artifact)],
        env=child_env(LABKEEP_HOME=store, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.postgres
def test_a_postgresql_store_records_its_artifact_location(
    s3_uri: str, moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labkeep
    from conftest import drop_pg_schema, new_pg_schema
    from labkeep._client import Client

    schema, pg = new_pg_schema()
    try:
        monkeypatch.setenv("LABKEEP_ARTIFACTS", s3_uri)
        client = Client(pg)
        client.store.record_artifact_location(s3_uri)
        client.close()
        monkeypatch.delenv("LABKEEP_ARTIFACTS")
        # A machine with no LABKEEP_ARTIFACTS finds the recorded location.
        artifact = _file(tmp_path / "model.bin", 70_000)
        with labkeep.init(store=pg, experiment="s3") as run:
            run.log_artifact(artifact)
        sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
        assert f"team/labkeep/{sha[:2]}/{sha[2:]}" in _objects(moto, s3_uri)
        # Another machine (another cache) reads it from the object store.
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-machine"))
        view = labkeep.runs(store=pg)[0]
        assert view.artifact_path("model.bin").read_bytes() == artifact.read_bytes()
        # A different location than the recorded one is refused in one line.
        monkeypatch.setenv("LABKEEP_ARTIFACTS", str(tmp_path / "elsewhere"))
        with pytest.raises(StoreError, match="keeps its artifacts at s3://"):
            Client(pg).store.put_bytes(b"x")
    finally:
        drop_pg_schema(schema)


@pytest.mark.postgres
@pytest.mark.parametrize("proxy", [False, True], ids=["direct", "proxy"])
def test_servers_on_postgresql_with_s3_artifacts(
    proxy: bool, s3_uri: str, moto: MotoServer, tmp_path: Path
) -> None:
    """Clients log through a server; blobs go straight to the object store (the server says
    where) or through the server (--artifacts-proxy): either way into the bucket, and read
    back through a second server on the same store that was given no --artifacts."""
    from conftest import drop_pg_schema, new_pg_schema

    schema, pg = new_pg_schema()
    args = ("--artifacts", s3_uri, *(["--artifacts-proxy"] if proxy else []))
    first = ServerProcess(pg, args=args).start()
    second = ServerProcess(pg).start()
    try:
        artifact = _file(tmp_path / "model.bin", 200_000)
        env = moto.env() if not proxy else {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
        number = _log_from_child(first.url, artifact, env)
        sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
        assert f"team/labkeep/{sha[:2]}/{sha[2:]}" in _objects(moto, s3_uri)
        import httpx

        info = httpx.get(f"{first.url}/api/v1/store/artifact-store").json()
        assert info == {"uri": s3_uri, "proxy": proxy}
        got = httpx.get(f"{second.url}/api/v1/store/blobs/{sha}")
        assert got.status_code == 200 and got.content == artifact.read_bytes()
        record = httpx.post(f"{second.url}/api/v1/store/records", json={"numbers": [number]})
        assert record.json()[0]["artifacts"][0]["sha256"] == sha
    finally:
        first.kill()
        second.kill()
        drop_pg_schema(schema)


def test_a_direct_upload_to_an_unreachable_object_store_waits_on_this_machine(
    s3_uri: str, moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object store is down while a run logs an artifact: the blob waits in the
    outbox beside the journal, and goes up with the next batch once it answers."""
    from labkeep.store import locate_store
    from labkeep.store.rest import RestStore

    server = ServerProcess(str(tmp_path / "server-store"), args=("--artifacts", s3_uri)).start()
    try:
        artifact = _file(tmp_path / "late.bin", 50_000)
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        monkeypatch.setattr(_s3, "S3_ATTEMPTS", 1)
        store = RestStore(locate_store(server.url))
        sha, size = store.put_blob(artifact)
        assert store.outbox.path(sha).exists()
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        later = RestStore(locate_store(server.url))
        later._send_outbox()
        assert not store.outbox.path(sha).exists()
        assert later.blob_path(sha).read_bytes() == artifact.read_bytes()
        assert size == 50_000
    finally:
        server.kill()


def test_a_server_killed_mid_upload_stores_nothing_partial(tmp_path: Path) -> None:
    """The body of a PUT stops halfway because the server died: no blob under the hash,
    the client's next try (a new server) stores it whole."""
    import httpx

    from labkeep.store import locate_store
    from labkeep.store.rest import RestStore

    store_dir = tmp_path / "server-store"
    server = ServerProcess(str(store_dir), args=("--artifacts-proxy",)).start()
    data = secrets.token_bytes(8 << 20)
    sha = hashlib.sha256(data).hexdigest()

    def body() -> Iterator[bytes]:
        yield data[: 1 << 20]
        server.kill()
        yield data[1 << 20 :]

    with pytest.raises(httpx.TransportError):
        httpx.put(f"{server.url}/api/v1/store/blobs/{sha}", content=body(), timeout=10)
    assert not (store_dir / "blobs" / sha[:2] / sha[2:]).exists()

    again = ServerProcess(str(store_dir), port=server.port).start()
    try:
        path = tmp_path / "payload.bin"
        path.write_bytes(data)
        assert RestStore(locate_store(again.url)).put_blob(path) == (sha, len(data))
        assert (store_dir / "blobs" / sha[:2] / sha[2:]).read_bytes() == data
    finally:
        again.kill()


def test_server_refuses_a_bucket_that_is_not_there_in_one_line(s3_uri: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from labkeep.cli import main; main()",
            "server",
            "--store",
            str(tmp_path / "s"),
            "--port",
            "0",
            "--artifacts",
            "s3://no-such-bucket/x",
        ],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "bucket 'no-such-bucket' does not exist" in lines[0], done.stderr


def test_db_check_reads_every_blob_back_from_the_object_store(
    s3_uri: str, moto: MotoServer, tmp_path: Path
) -> None:
    from labkeep.entities import Artifact
    from labkeep.store import locate_store, open_store
    from labkeep.store.sql import check_store

    location = locate_store(tmp_path / "store", artifacts=s3_uri)
    store = open_store(location)
    sha, size = store.put_blob(_file(tmp_path / "a.bin", 4000))
    store.record_artifact_location(s3_uri)
    from test_gc import _run

    _run(store, [Artifact("a.bin", sha, size), Artifact("gone.bin", "9" * 64, 1)])
    store.close()
    bucket, _ = _s3.parse_s3_uri(s3_uri)
    moto.client().put_object(  # type: ignore[attr-defined]
        Bucket=bucket, Key=f"team/labkeep/{sha[:2]}/{sha[2:]}", Body=b"changed"
    )
    # Without LABKEEP_ARTIFACTS: the location recorded in the database is checked.
    report = check_store(locate_store(tmp_path / "store"))
    assert report.blobs_checked == 1
    assert len(report.damaged_blobs) == 1 and "does not match" in report.damaged_blobs[0]
    assert report.missing_blobs == [f"blob {'9' * 12} is named by a run but missing from {s3_uri}"]
