"""The registry and versioned-artifact part of the Store contract.

Imported by ``test_store_contract.py`` (SQLite, PostgreSQL) and so, through it, by
``test_rest_store_contract.py`` (a RestStore on a live server): one suite, every backend.
PostgreSQL tests share a schema, so each test uses names of its own.
"""

from __future__ import annotations

import secrets
import uuid as uuid_mod

import pytest

from labkeep.entities import ArtifactFile
from labkeep.errors import InvalidInputError, NotFoundError
from labkeep.store._base import Store


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _uuid() -> str:
    return str(uuid_mod.uuid4())


def _files(*contents: str) -> list[ArtifactFile]:
    return [
        ArtifactFile(f"part-{i}.csv", secrets.token_hex(32) if c == "?" else c * 64, 10 + i)
        for i, c in enumerate(contents)
    ]


def test_registry_numbers_versions_from_one_and_finds_latest(store: Store) -> None:
    name, run_a, run_b = _name("clf"), _uuid(), _uuid()
    first = store.create_model_version(name, run_a, "model", description="baseline")
    second = store.create_model_version(name, run_b, "clf/best", tags={"stage": "dev"})
    assert (first.version, second.version) == (1, 2)
    assert first.source == f"runs:/{run_a}/model"
    assert second.uri == f"models:/{name}/2"
    assert [v.version for v in store.list_model_versions(name)] == [2, 1]
    latest = store.get_model_version(name, "latest")
    assert (latest.run_uuid, latest.model_path, latest.tags) == (
        run_b,
        "clf/best",
        {"stage": "dev"},
    )
    assert store.get_model_version(name, 1).description == "baseline"
    assert store.get_model_version(name, "1").run_uuid == run_a
    model = store.get_registered_model(name)
    assert (model.name, model.latest_version, model.aliases) == (name, 2, {})
    other = _name("other")
    store.create_model_version(other, run_b, "clf/best")
    store.set_model_alias(other, "production", 1)
    found = [(v.name, v.version, v.model_path, v.aliases) for v in store.find_model_versions(run_b)]
    assert found == sorted([(name, 2, "clf/best", ()), (other, 1, "clf/best", ("production",))])
    assert store.find_model_versions(_uuid()) == []
    assert name in [m.name for m in store.list_registered_models()]


def test_registry_aliases_move_resolve_and_delete(store: Store) -> None:
    name = _name("clf")
    for _ in range(3):
        store.create_model_version(name, _uuid(), "model")
    store.set_model_alias(name, "production", 1)
    store.set_model_alias(name, "staging", 3)
    assert store.get_model_version(name, "production").version == 1
    store.set_model_alias(name, "production", 2)  # moves
    assert store.get_model_version(name, "production").version == 2
    assert store.get_model_version(name, 2).aliases == ("production",)
    assert store.get_registered_model(name).aliases == {"production": 2, "staging": 3}
    store.delete_model_alias(name, "staging")
    assert store.get_registered_model(name).aliases == {"production": 2}
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        store.get_model_version(name, "staging")
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        store.delete_model_alias(name, "staging")


def test_registry_bad_references_are_one_clear_error(store: Store) -> None:
    name = _name("clf")
    with pytest.raises(NotFoundError, match=f"no registered model '{name}'"):
        store.get_registered_model(name)
    with pytest.raises(NotFoundError, match=f"no registered model '{name}'"):
        store.get_model_version(name, "latest")
    with pytest.raises(NotFoundError, match=f"no registered model '{name}'"):
        store.set_model_alias(name, "production", 1)
    store.create_model_version(name, _uuid(), "model")
    with pytest.raises(NotFoundError, match=r"no version 7 \(its versions: 1\)"):
        store.set_model_alias(name, "production", 7)
    assert store.get_registered_model(name).aliases == {}  # nothing half-written
    with pytest.raises(NotFoundError, match="no version 7"):
        store.get_model_version(name, 7)
    with pytest.raises(InvalidInputError, match="would read as a version"):
        store.set_model_alias(name, "latest", 1)
    with pytest.raises(InvalidInputError, match="contains '/'"):
        store.create_model_version("a/b", _uuid(), "model")
    with pytest.raises(NotFoundError):
        store.update_model_version(name, 9, description="x")


def test_registry_descriptions_tags_and_deletes(store: Store) -> None:
    name = _name("clf")
    store.create_model_version(name, _uuid(), "model")
    store.create_model_version(name, _uuid(), "model")
    model = store.update_registered_model(
        name, description="iris classifier", set_tags={"team": "vision", "task": "cls"}
    )
    assert (model.description, model.tags) == ("iris classifier", {"team": "vision", "task": "cls"})
    model = store.update_registered_model(name, delete_tags=["task"])
    assert (model.description, model.tags) == ("iris classifier", {"team": "vision"})
    version = store.update_model_version(name, 1, description="first", set_tags={"ok": "yes"})
    assert (version.description, version.tags) == ("first", {"ok": "yes"})
    store.set_model_alias(name, "production", 2)
    store.delete_model_version(name, 2)
    assert [v.version for v in store.list_model_versions(name)] == [1]
    assert store.get_registered_model(name).aliases == {}  # the alias went with its version
    # A deleted version's number is not given again: models:/NAME/2 named that model only.
    assert store.create_model_version(name, _uuid(), "model").version == 3
    assert store.get_registered_model(name).latest_version == 3
    with pytest.raises(NotFoundError, match="no version 2"):
        store.get_model_version(name, 2)
    store.delete_registered_model(name)
    with pytest.raises(NotFoundError):
        store.list_model_versions(name)


def test_artifact_versions_follow_content(store: Store) -> None:
    name, run_a, run_b, run_c = _name("train-set"), _uuid(), _uuid(), _uuid()
    files = _files("a", "b")
    v0 = store.log_artifact_version(name, "dataset", files, run_a)
    again = store.log_artifact_version(name, "dataset", list(reversed(files)), run_b)
    assert (v0.version, again.version, again.digest) == (0, 0, v0.digest)
    assert again.run_uuid == run_a  # the first producer
    changed = store.log_artifact_version(name, "dataset", _files("a", "c"), run_c)
    assert changed.version == 1 and changed.digest != v0.digest
    latest = store.get_artifact_version(name, "latest")
    assert (latest.version, latest.label, latest.file_count) == (1, f"{name}:v1", 2)
    assert [f.path for f in latest.files] == ["part-0.csv", "part-1.csv"]
    assert latest.aliases == ("latest",)
    assert store.get_artifact_version(name, "v0").files == tuple(
        sorted(files, key=lambda f: f.path)
    )
    assert store.get_artifact_version(name, 0).size == sum(f.size for f in files)
    assert [v.version for v in store.list_artifact_versions(name)] == [1, 0]
    named = {a.name: a for a in store.list_named_artifacts()}[name]
    assert (named.type, named.latest_version, named.version_count) == ("dataset", 1, 2)
    produced = [
        (link.run_uuid, link.version, link.role) for link in store.list_artifact_links(name=name)
    ]
    assert sorted(produced) == sorted(
        [(run_a, 0, "produced"), (run_b, 0, "produced"), (run_c, 1, "produced")]
    )


def test_artifact_use_aliases_and_lineage(store: Store) -> None:
    name, producer, consumer = _name("data"), _uuid(), _uuid()
    store.log_artifact_version(name, "dataset", _files("?"), producer)
    store.log_artifact_version(name, "dataset", _files("?"), producer)
    store.set_artifact_alias(name, "golden", 0)
    assert store.get_artifact_version(name, "golden").version == 0
    store.use_artifact_version(name, 0, consumer)
    store.use_artifact_version(name, 0, consumer)  # once
    links = store.list_artifact_links(run_uuid=consumer)
    assert [(link.name, link.version, link.role, link.type) for link in links] == [
        (name, 0, "used", "dataset")
    ]
    assert {link.role for link in store.list_artifact_links(run_uuid=producer)} == {"produced"}
    store.delete_artifact_alias(name, "golden")
    with pytest.raises(NotFoundError, match="no alias 'golden'"):
        store.get_artifact_version(name, "golden")


def test_artifact_bad_references_are_one_clear_error(store: Store) -> None:
    name = _name("data")
    with pytest.raises(NotFoundError, match=f"no artifact '{name}'"):
        store.get_artifact_version(name, "latest")
    with pytest.raises(NotFoundError, match=f"no artifact '{name}'"):
        store.list_artifact_versions(name)
    store.log_artifact_version(name, "dataset", _files("?"), _uuid())
    with pytest.raises(NotFoundError, match=r"no version v4 \(its versions: v0\)"):
        store.get_artifact_version(name, "v4")
    with pytest.raises(NotFoundError, match="no version v4"):
        store.use_artifact_version(name, 4, _uuid())
    with pytest.raises(NotFoundError, match="no version v4"):
        store.set_artifact_alias(name, "golden", 4)
    with pytest.raises(InvalidInputError, match="is a dataset, not a model"):
        store.log_artifact_version(name, "model", _files("?"), _uuid())
    assert [v.version for v in store.list_artifact_versions(name)] == [0]  # nothing half-written
    with pytest.raises(InvalidInputError, match="has no files"):
        store.log_artifact_version(_name("empty"), "dataset", [], _uuid())
