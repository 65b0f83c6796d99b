"""labkeep rerun: drift, verify, changed inputs, overrides and bad input, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repro_helpers import Project, make_project, sha256

from labkeep._client import Client


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def _client(project: Project) -> Client:
    return Client(project.store)


def test_rerun_verify_of_deterministic_script_reproduces(project: Project) -> None:
    project.script("train.py", str(project.data))
    target = project.repo.parent / "rerun1"
    result = project.cli("rerun", "1", "--verify", "--dir", str(target))
    assert result.returncode == 0, result.stderr
    assert "reproduced run 1" in result.stdout
    assert "metric loss" in result.stdout and "output out.txt" in result.stdout
    assert "differs" not in result.stdout
    client = _client(project)
    try:
        original = client.store.resolve_run(1)
        new = client.store.resolve_run(2)
        assert new.reproduces_uuid == original.uuid
        assert sha256(target / "train.py") == sha256(project.repo / "train.py")
        assert (target / "tools" / "run.sh").stat().st_mode & 0o111
        snap = client.store.get_snapshot(2)
        assert snap is not None
        assert snap["command"]["target"] == "train.py"
        assert new.notes.startswith("rerun of run 1 ")
        assert snap["inputs"][0]["path"] == str(project.data)
        lines = [line.text for line in client.store.get_output(2)]
        assert any(line.startswith("loss ") for line in lines)
    finally:
        client.close()


def test_rerun_verify_of_unseeded_script_differs(project: Project) -> None:
    project.script("unseeded.py")
    result = project.cli("rerun", "1", "--verify")
    assert result.returncode == 1
    assert "did not reproduce" in result.stdout
    assert "differs" in result.stdout
    # The default directory lies under the store.
    assert list((project.store / "reruns").iterdir())


def test_rerun_tolerance_accepts_small_differences(project: Project) -> None:
    project.script("unseeded.py")
    result = project.cli("rerun", "1", "--verify", "--atol", "1.0")
    assert result.returncode == 0, result.stdout + result.stderr


def test_changed_input_refuses_then_allowed(project: Project) -> None:
    project.script("train.py", str(project.data))
    project.data.write_text("a,b\n1,3\n4,5\n")
    refused = project.cli("rerun", "1")
    assert refused.returncode != 0
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("labkeep: input ") and "--allow-changed-inputs" in last
    assert "Traceback" not in refused.stderr
    client = _client(project)
    try:
        assert [r.number for r in client.store.list_runs()] == [1]
    finally:
        client.close()
    assert not (project.store / "reruns").exists()
    allowed = project.cli("rerun", "1", "--allow-changed-inputs", "--verify")
    assert allowed.returncode == 1  # ran, but on other data: not a reproduction
    assert "input " in allowed.stdout and "the rerun read other data" in allowed.stdout
    assert "input " in allowed.stderr and "changed" in allowed.stderr


def test_missing_input_is_refused(project: Project) -> None:
    project.script("train.py", str(project.data))
    project.data.unlink()
    result = project.cli("rerun", "1")
    assert result.returncode != 0
    assert "missing" in result.stderr.strip().splitlines()[-1]


def test_drift_reports_git_and_env(project: Project) -> None:
    project.script("train.py", str(project.data))
    (project.repo / "train.py").write_text("print('changed since')\n")
    result = project.cli("rerun", "1", "--verify")
    assert result.returncode == 0, result.stderr
    assert "git dirty" in result.stderr
    assert "train.py" in result.stderr


def _runner_run(project: Project) -> int:
    """A run made by `labkeep run`, which records its command, flags and values."""
    (project.repo / "tune.py").write_text(
        "lr = 0.1\nimport labkeep\n"
        "with labkeep.init() as run:\n    run.log({'score': lr * 10})\n    print('lr', lr)\n"
    )
    made = project.cli("run", "tune.py")
    assert made.returncode == 0, made.stderr
    return 1


def test_rerun_with_flag_override(project: Project) -> None:
    number = _runner_run(project)
    same = project.cli("rerun", str(number), "--verify")
    assert same.returncode == 0, same.stdout + same.stderr
    changed = project.cli("rerun", str(number), "lr=0.02", "--verify")
    assert changed.returncode == 1
    client = _client(project)
    try:
        rec = client.store.get_records([client.store.resolve_run("last").number])[0]
        assert rec.params["lr"] == 0.02
        assert rec.metrics["score"].last == pytest.approx(0.2)
        assert rec.info.reproduces_uuid == client.store.resolve_run(number).uuid
    finally:
        client.close()
    output = project.cli("diff", str(number), "last", "--output")
    assert "-lr 0.1" in output.stdout and "+lr 0.02" in output.stdout
    flags = project.cli("diff", str(number), "last", "--flags")
    assert "0.02" in flags.stdout
    unknown = project.cli("rerun", str(number), "lrr=1")
    assert unknown.returncode != 0 and "did you mean 'lr'" in unknown.stderr


def test_override_of_api_run_is_refused(project: Project) -> None:
    project.script("train.py", str(project.data))
    result = project.cli("rerun", "1", "lr=0.5")
    assert result.returncode != 0
    assert "flags are unknown" in result.stderr


def test_bad_input_one_line_each(project: Project) -> None:
    project.script("train.py", str(project.data))
    project.script(
        "-c",
        "import labkeep\nwith labkeep.init(capture=False) as r:\n    r.log({'x': 1})\n",
    )
    no_snapshot = project.cli("rerun", "2")
    assert no_snapshot.returncode != 0
    assert "has no snapshot" in no_snapshot.stderr
    assert len(no_snapshot.stderr.strip().splitlines()) == 1

    assert project.cli("delete", "1").returncode == 0
    deleted = project.cli("rerun", "1")
    assert deleted.returncode != 0
    assert "in the trash" in deleted.stderr and len(deleted.stderr.strip().splitlines()) == 1
    assert project.cli("restore", "1").returncode == 0

    unknown = project.cli("rerun", "99")
    assert unknown.returncode != 0 and "no run '99'" in unknown.stderr

    busy = project.repo.parent / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    into_busy = project.cli("rerun", "1", "--dir", str(busy))
    assert into_busy.returncode != 0 and "not empty" in into_busy.stderr


def test_missing_blob_fails_cleanly(project: Project) -> None:
    project.script("train.py", str(project.data))
    client = _client(project)
    try:
        manifest_sha = client.store.get_snapshot(1)["code"]["manifest"]  # type: ignore[index]
        manifest = json.loads(client.store.blob_path(manifest_sha).read_bytes())
        victim = client.store.blob_path(
            next(f for f in manifest if f["path"] == "train.py")["sha256"]
        )
    finally:
        client.close()
    victim.unlink()
    target = project.repo.parent / "rerun-missing"
    result = project.cli("rerun", "1", "--dir", str(target))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "code file train.py of run 1" in last and "missing from the store" in last
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".rerun-missing")]
    checkout = project.cli("checkout", "1", str(target))
    assert checkout.returncode != 0 and "missing from the store" in checkout.stderr
    assert not target.exists()


def test_verdict_and_messages_read_once_and_agree(project: Project) -> None:
    project.script("unseeded.py")
    result = project.cli("rerun", "1", "--verify")
    assert result.returncode == 1
    assert "did not reproduce" in result.stdout
    assert "differs differs" not in result.stdout
    assert "differs by " in result.stdout
    # What the rerun is, not a verdict that the table below may contradict.
    assert "reproduces run" not in result.stderr
    assert "run 2 (completed, exit code 0) is a rerun of run 1" in result.stderr
    snapshot = project.cli("show", "2", "--snapshot").stdout
    assert "rerun of run 1" in snapshot and "reproduces" not in snapshot
