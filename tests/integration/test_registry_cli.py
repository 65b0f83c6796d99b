"""``labkeep models``, ``labkeep artifacts``, ``labkeep show`` and ``labkeep rerun`` with the
registry and versioned artifacts, through the real command line in child processes; bad
references are one ``labkeep:`` line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repro_helpers import git
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import labkeep
from labkeep.store import locate_store, open_store

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")


def _cli(store: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env.update(PYTHONPATH=str(SRC), COLUMNS="200", NO_COLOR="1", LABKEEP_SYSTEM_METRICS="0")
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=180,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    """Exit 1 for what does not exist, 2 for input that is wrong; one line either way."""
    assert result.returncode in (1, 2), result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("labkeep: ") and text in result.stderr, result.stderr


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Runs 1 and 2 with an iris model each; run 3 logs train-set v0, run 4 uses it."""
    store = tmp_path / "store"
    X, y = load_iris(return_X_y=True)
    for c in (0.1, 1.0):
        with labkeep.init(store=str(store)) as run:
            run.log_model(LogisticRegression(C=c, max_iter=500).fit(X, y), "model")
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n")
    with labkeep.init(store=str(store)) as run:
        run.log_artifact(data, name="train-set", type="dataset")
    with labkeep.init(store=str(store)) as run:
        run.use_artifact("train-set:latest")
    return store


def test_models_register_alias_show_and_list(store: Path) -> None:
    registered = _cli(store, "models", "register", "runs:/1/model", "iris-clf", "-d", "baseline")
    assert registered.returncode == 0, registered.stderr
    assert "registered iris-clf version 1 (runs:/1/model)" in registered.stdout
    again = _cli(store, "models", "register", "runs:/2/model", "iris-clf", "-t", "stage=dev")
    assert "registered iris-clf version 2 (runs:/2/model)" in again.stdout
    alias = _cli(store, "models", "alias", "iris-clf", "production", "1")
    assert alias.returncode == 0 and "iris-clf@production -> version 1" in alias.stdout
    show = _cli(store, "models", "show", "iris-clf")
    assert show.returncode == 0, show.stderr
    assert "aliases: @production -> v1" in show.stdout
    rows = [r.split() for r in show.stdout.splitlines() if r.split()[:1] in (["v1"], ["v2"])]
    assert [r[0] for r in rows] == ["v2", "v1"]
    assert rows[1][1] == "@production" and "runs:/1/model" in rows[1]
    as_json = json.loads(_cli(store, "models", "show", "iris-clf", "--json").stdout)
    assert as_json["aliases"] == {"production": 1}
    assert [(v["version"], v["run"], v["description"]) for v in as_json["versions"]] == [
        (2, "2", ""),
        (1, "1", "baseline"),
    ]
    assert as_json["versions"][0]["tags"] == {"stage": "dev"}
    listing = _cli(store, "models")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["registered", "model", "latest"]
    assert lines[1].split()[:3] == ["iris-clf", "v2", "@production"]
    run_rows = {line.split()[0]: line for line in lines[3:] if line.split()[0].isdigit()}
    assert "iris-clf v1 @production" in run_rows["1"] and "iris-clf v2" in run_rows["2"]
    of_run = json.loads(_cli(store, "models", "1", "--json").stdout)
    assert of_run[0]["registered"] == ["iris-clf v1 @production"]
    shown = _cli(store, "show", "1")
    assert "iris-clf v1 @production" in shown.stdout
    update = _cli(store, "models", "update", "iris-clf", "-d", "iris classifier", "-t", "team=ml")
    assert update.returncode == 0, update.stderr
    assert "iris classifier" in _cli(store, "models", "show", "iris-clf").stdout
    deleted = _cli(store, "models", "delete", "iris-clf", "2")
    assert deleted.returncode == 0 and "deleted iris-clf version 2" in deleted.stdout


def test_registry_bad_input_is_one_line(store: Path) -> None:
    _one_line_error(_cli(store, "models", "show", "nope"), "no registered model 'nope'")
    _one_line_error(
        _cli(store, "models", "register", "runs:/1/absent", "iris-clf"), "has no model 'absent'"
    )
    _one_line_error(_cli(store, "models", "register", "runs:/99/model", "x"), "no run '99'")
    _cli(store, "models", "register", "runs:/1/model", "iris-clf")
    _one_line_error(
        _cli(store, "models", "alias", "iris-clf", "production", "9"),
        "model 'iris-clf' has no version 9 (its versions: 1)",
    )
    _one_line_error(
        _cli(store, "models", "alias", "iris-clf", "staging", "--delete"), "no alias 'staging'"
    )
    _one_line_error(_cli(store, "models", "alias", "nope", "production", "1"), "no registered")
    bad_name = _cli(store, "models", "register", "runs:/1/model", "a/b")
    _one_line_error(bad_name, "contains '/'")
    assert bad_name.returncode == 2


def test_artifacts_list_versions_and_lineage(store: Path, tmp_path: Path) -> None:
    listing = _cli(store, "artifacts")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[1].split()[:4] == ["train-set", "dataset", "1", "v0"]
    versions = _cli(store, "artifacts", "train-set")
    assert versions.returncode == 0, versions.stderr
    row = next(
        line.split() for line in versions.stdout.splitlines() if line.lstrip().startswith("v0")
    )
    assert row[:2] == ["v0", "latest"] and "3" in row and "4" in row
    as_json = json.loads(_cli(store, "artifacts", "train-set", "--json").stdout)
    assert (as_json[0]["produced_by"], as_json[0]["used_by"]) == (["3"], ["4"])
    one = _cli(store, "artifacts", "train-set:v0")
    assert "produced by runs: 3" in one.stdout and "used by runs: 4" in one.stdout
    assert "train.csv" in one.stdout
    out = tmp_path / "out"
    download = _cli(store, "artifacts", "download", "train-set:latest", str(out))
    assert download.returncode == 0, download.stderr
    assert (out / "train.csv").read_text() == "x,y\n1,2\n"
    alias = _cli(store, "artifacts", "alias", "train-set", "golden", "v0")
    assert alias.returncode == 0 and "train-set:golden -> v0" in alias.stdout
    used = _cli(store, "show", "4")
    section = used.stdout[used.stdout.index("artifact versions") :]
    assert "used" in section and "train-set:v0" in section
    produced = _cli(store, "show", "3", "--json")
    assert json.loads(produced.stdout)["artifact_versions"] == [
        {"name": "train-set", "version": 0, "type": "dataset", "role": "produced"}
    ]


def test_artifacts_bad_input_is_one_line(store: Path) -> None:
    _one_line_error(_cli(store, "artifacts", "nope"), "no artifact 'nope'")
    _one_line_error(
        _cli(store, "artifacts", "train-set:v7"), "has no version v7 (its versions: v0)"
    )
    _one_line_error(_cli(store, "artifacts", "train-set:gold"), "has no alias 'gold'")
    _one_line_error(_cli(store, "artifacts", "alias", "train-set", "golden", "v3"), "no version v3")
    _one_line_error(_cli(store, "artifacts", "download", "nope:latest"), "no artifact 'nope'")


CONSUMER = """\
import labkeep

with labkeep.init() as run:
    data = run.use_artifact("train-set:latest")
    run.summary["used"] = data.label
    print("rows", len(data.file("train.csv").read_text().splitlines()))
"""


def test_rerun_uses_the_artifact_version_the_run_used(tmp_path: Path) -> None:
    store = tmp_path / "store"
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x\n1\n")
    with labkeep.init(store=str(store)) as run:
        assert run.log_artifact(data, name="train-set", type="dataset") == "train-set:v0"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "consume.py").write_text(CONSUMER)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    first = _cli(store, "run", "consume.py", cwd=repo)
    assert first.returncode == 0, first.stderr
    (data / "train.csv").write_text("x\n1\n2\n")  # new content: v1 is now latest
    with labkeep.init(store=str(store)) as run:
        assert run.log_artifact(data, name="train-set", type="dataset") == "train-set:v1"
    fresh = _cli(store, "run", "consume.py", cwd=repo)
    assert fresh.returncode == 0, fresh.stderr
    rerun = _cli(store, "rerun", "2", cwd=repo)
    assert rerun.returncode == 0, rerun.stderr
    assert "uses train-set:v0, the version run 2 used" in rerun.stderr
    opened = open_store(locate_store(str(store)))
    try:
        used = {}
        for number in (2, 4, 5):
            record = opened.get_records([number])[0]
            links = opened.list_artifact_links(run_uuid=record.info.uuid)
            used[number] = ([(lk.version, lk.role) for lk in links], record.summary.get("used"))
        assert used[2] == ([(0, "used")], "train-set:v0")
        assert used[4] == ([(1, "used")], "train-set:v1")  # a new run takes the latest
        assert used[5] == ([(0, "used")], "train-set:v0")  # the rerun takes what run 2 took
        assert opened.resolve_run(5).reproduces_uuid == opened.resolve_run(2).uuid
    finally:
        opened.close()
