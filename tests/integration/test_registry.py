"""The model registry and versioned artifacts from Python, on SQLite, PostgreSQL and a live
``labkeep server``: real scikit-learn models registered, aliased and loaded back by
``models:/`` URIs; directories logged as artifact versions that follow their content and
are used (with lineage) by other runs; concurrent registration from real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from labkeep_server import ServerProcess, child_env, isolated
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import labkeep
from labkeep.errors import InvalidInputError, NotFoundError
from labkeep.store import locate_store, open_store

__all__ = ["isolated"]


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "server"])
def uri(request: pytest.FixtureRequest, tmp_path: Path, isolated: None) -> Iterator[str]:
    """A store of each kind: a SQLite directory, this session's PostgreSQL schema, a server."""
    if request.param == "sqlite":
        yield str(tmp_path / "store")
    elif request.param == "postgresql":
        yield request.getfixturevalue("pg_schema_uri")
    else:
        server = ServerProcess(str(tmp_path / "server-store")).start()
        yield server.url
        server.kill()


def _name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**9}"


def _iris(c: float) -> tuple[LogisticRegression, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(C=c, max_iter=500).fit(X, y), X


def test_registered_versions_and_aliases_load_the_right_model(uri: str) -> None:
    name = _name("iris-clf")
    weak, X = _iris(0.01)
    strong, _ = _iris(10.0)
    numbers = []
    for clf in (weak, strong):
        with labkeep.init(store=uri) as run:
            run.log_model(clf, "model", input_example=X[:5])
        numbers.append(run.number)
    v1 = labkeep.register_model(f"runs:/{numbers[0]}/model", name, store=uri, description="weak")
    v2 = labkeep.register_model(f"runs:/{numbers[1]}/model", name, store=uri)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.description == "weak" and v1.source.endswith("/model")
    labkeep.set_alias(name, "production", version=1, store=uri)
    prod = labkeep.load_model(f"models:/{name}@production", store=uri)
    assert np.array_equal(prod.predict_proba(X), weak.predict_proba(X))
    latest = labkeep.load_model(f"models:/{name}/latest", store=uri)
    assert np.array_equal(latest.predict_proba(X), strong.predict_proba(X))
    by_number = labkeep.load_model(f"models:/{name}/2", store=uri)
    assert np.array_equal(by_number.predict(X), strong.predict(X))
    labkeep.set_alias(name, "production", version=2, store=uri)  # promote
    prod = labkeep.load_model(f"models:/{name}@production", store=uri)
    assert np.array_equal(prod.predict_proba(X), strong.predict_proba(X))
    labkeep.delete_alias(name, "production", store=uri)
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        labkeep.load_model(f"models:/{name}@production", store=uri)
    # A version registered from a version: the same run's model.
    v3 = labkeep.register_model(f"models:/{name}/1", name, store=uri)
    assert (v3.version, v3.run_uuid) == (3, v1.run_uuid)


def test_registry_bad_input_is_one_clear_error(uri: str) -> None:
    name = _name("clf")
    clf, _ = _iris(1.0)
    with labkeep.init(store=uri) as run:
        run.log_model(clf, "model")
    with pytest.raises(NotFoundError, match="has no model 'nope'"):
        labkeep.register_model(f"runs:/{run.number}/nope", name, store=uri)
    with pytest.raises(NotFoundError, match=f"no registered model '{name}'"):
        labkeep.load_model(f"models:/{name}/1", store=uri)
    labkeep.register_model(f"runs:/{run.number}/model", name, store=uri)
    with pytest.raises(NotFoundError, match="no version 4"):
        labkeep.set_alias(name, "production", version=4, store=uri)
    with pytest.raises(NotFoundError, match="no version 9"):
        labkeep.load_model(f"models:/{name}/9", store=uri)
    with pytest.raises(InvalidInputError, match="not a model URI: use models:/NAME/VERSION"):
        labkeep.load_model(f"models:/{name}", store=uri)


def test_a_run_registers_the_model_it_just_logged(uri: str) -> None:
    name = _name("clf")
    clf, X = _iris(1.0)
    with labkeep.init(store=uri) as run:
        run.log_model(clf, "model")
        version = labkeep.register_model(f"runs:/{run.uuid}/model", name)
    assert version.run_uuid == run.uuid
    loaded = labkeep.load_model(f"models:/{name}/1", store=uri)
    assert np.array_equal(loaded.predict(X), clf.predict(X))


def test_artifact_versions_follow_content_and_runs_record_what_they_used(
    uri: str, tmp_path: Path
) -> None:
    name = _name("train-set")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "train.csv").write_text("x,y\n1,2\n")
    (data / "sub" / "labels.txt").write_text("a\nb\n")
    labels = []
    with labkeep.init(store=uri) as first:
        labels.append(first.log_artifact(data, name=name, type="dataset"))
    with labkeep.init(store=uri) as same:
        labels.append(same.log_artifact(data, name=name, type="dataset"))
    (data / "train.csv").write_text("x,y\n1,2\n3,4\n")
    with labkeep.init(store=uri) as changed:
        labels.append(labkeep.log_artifact(data, name=name, type="dataset"))
    assert labels == [f"{name}:v0", f"{name}:v0", f"{name}:v1"]
    with labkeep.init(store=uri) as consumer:
        used = consumer.use_artifact(f"{name}:latest")
        old = labkeep.use_artifact(f"{name}:v0")
    assert (used.label, used.type, old.version) == (f"{name}:v1", "dataset", 0)
    root = used.download(tmp_path / "out")
    assert (root / "train.csv").read_text() == "x,y\n1,2\n3,4\n"
    assert (root / "sub" / "labels.txt").read_text() == "a\nb\n"
    assert old.file("train.csv").read_text() == "x,y\n1,2\n"
    assert labkeep.use_artifact(f"{name}:v0", store=uri).download().joinpath("train.csv").is_file()
    store = open_store(locate_store(uri))
    try:
        links = store.list_artifact_links(run_uuid=consumer.uuid)
        assert sorted((link.version, link.role) for link in links) == [(0, "used"), (1, "used")]
        produced = store.list_artifact_links(name=name)
        assert {(link.run_uuid, link.version) for link in produced if link.role == "produced"} == {
            (first.uuid, 0),
            (same.uuid, 0),
            (changed.uuid, 1),
        }
        # The files are the producing run's artifacts too.
        record = store.get_records([first.number])[0]
        assert {a.path for a in record.artifacts} == {f"{name}/train.csv", f"{name}/sub/labels.txt"}
    finally:
        store.close()


def test_unknown_artifacts_are_one_clear_error(uri: str, tmp_path: Path) -> None:
    name = _name("data")
    with labkeep.init(store=uri) as run:
        with pytest.raises(NotFoundError, match=f"no artifact '{name}'"):
            run.use_artifact(f"{name}:latest")
        with pytest.raises(InvalidInputError, match="does not exist"):
            run.log_artifact(tmp_path / "missing", name=name, type="dataset")
        (tmp_path / "f.txt").write_text("x")
        run.log_artifact(tmp_path / "f.txt", name=name, type="dataset")
        with pytest.raises(NotFoundError, match="no version v3"):
            run.use_artifact(f"{name}:v3")
        with pytest.raises(InvalidInputError, match="contains '/'"):
            run.use_artifact("a/b:latest")


_REGISTER = """
import sys, time
from pathlib import Path
import labkeep
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
version = labkeep.register_model(sys.argv[1], sys.argv[2], store=sys.argv[4])
print(version.version)
"""


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_processes_registering_at_once_get_distinct_versions(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    uri = str(tmp_path / "store") if kind == "sqlite" else request.getfixturevalue("pg_schema_uri")
    name = _name("race")
    clf, _ = _iris(1.0)
    with labkeep.init(store=uri) as run:
        run.log_model(clf, "model")
    script = tmp_path / "register.py"
    script.write_text(_REGISTER)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), f"runs:/{run.uuid}/model", name, str(go), uri],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    time.sleep(1.0)  # let every process reach the wait (not a timing assertion)
    go.write_text("go")
    versions = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        versions.append(int(out.strip()))
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    store = open_store(locate_store(uri))
    try:
        assert [v.version for v in store.list_model_versions(name)] == [6, 5, 4, 3, 2, 1]
    finally:
        store.close()


_LOG_ARTIFACT = """
import sys, time
from pathlib import Path
import labkeep
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
with labkeep.init(store=sys.argv[4]) as run:
    print(run.log_artifact(sys.argv[1], name=sys.argv[2], type="dataset"))
"""


def test_processes_logging_artifact_versions_at_once(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    name = _name("race-data")
    script = tmp_path / "log.py"
    script.write_text(_LOG_ARTIFACT)
    go = tmp_path / "go"
    folders = []
    for i in range(4):  # two pairs of folders with the same content
        folder = tmp_path / f"data-{i}"
        folder.mkdir()
        (folder / "data.csv").write_text(f"content {i // 2}\n")
        folders.append(folder)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(folder), name, str(go), uri],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]
    time.sleep(1.0)  # let every process reach the wait (not a timing assertion)
    go.write_text("go")
    labels = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        labels.append(out.strip())
    # Same content, same version; the two contents got v0 and v1, in whichever order.
    assert labels[0] == labels[1] and labels[2] == labels[3]
    assert sorted({labels[0], labels[2]}) == [f"{name}:v0", f"{name}:v1"]
    store = open_store(locate_store(uri))
    try:
        assert [v.version for v in store.list_artifact_versions(name)] == [1, 0]
    finally:
        store.close()


def test_purge_keeps_what_the_registry_and_artifact_versions_need(uri: str, tmp_path: Path) -> None:
    name, data_name = _name("clf"), _name("data")
    clf, _ = _iris(1.0)
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    with labkeep.init(store=uri) as run:
        run.log_model(clf, "model")
        run.log_artifact(data, name=data_name, type="dataset")
    labkeep.register_model(f"runs:/{run.number}/model", name, store=uri)
    store = open_store(locate_store(uri))
    try:
        store.set_deleted([run.number], True)
        with pytest.raises(InvalidInputError, match=f"holds the model of '{name}' version 1"):
            store.purge([run.number])
        assert store.resolve_run(run.uuid).number == run.number  # nothing purged
        store.delete_model_version(name, 1)
        assert store.purge([run.number]) == 1
    finally:
        store.close()
    # The artifact version outlives the run that logged it, files and all.
    kept = labkeep.use_artifact(f"{data_name}:v0", store=uri)
    assert kept.file("data.csv").read_text() == "x\n1\n"
