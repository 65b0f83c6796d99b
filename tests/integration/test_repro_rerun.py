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


def test_rerun_override_wins_over_a_raw_argument(project: Project) -> None:
    (project.repo / "epochs.py").write_text(
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--epochs', type=int, default=14)\n"
        "p.add_argument('name')\n"
        "a = p.parse_args()\n"
        "print('ran', a.epochs, a.name)\n"
    )
    made = project.cli("run", "epochs.py", "--", "--epochs", "1", "first")
    assert made.returncode == 0, made.stderr
    assert "ran 1 first" in made.stdout
    again = project.cli("rerun", "1", "epochs=2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ran 2 first" in again.stdout
    client = _client(project)
    try:
        first, second = client.store.get_records([1, 2])
        assert first.params == {"epochs": 1}
        assert second.params == {"epochs": 2}
        snap = client.store.get_snapshot(2)
        assert snap is not None and snap["host"]["argv"] == ["epochs.py", "--epochs=2", "first"]
    finally:
        client.close()


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


SEVERAL_MODELS = """\
import os
import labkeep

for alpha in (0.1, 0.2, 0.3):
    with labkeep.init(experiment="tiny", config={"alpha": alpha}) as run:
        labkeep.seed(7)  # recorded in the child run, which has no snapshot of its own
        # Only the second model drifts.
        noise = int.from_bytes(os.urandom(4), "big") / 2**32 if alpha == 0.2 else 0.0
        for step in range(3):
            run.log({"acc": alpha * step + noise}, step=step)
"""


def test_rerun_verify_compares_child_runs_pairwise(project: Project) -> None:
    (project.repo / "several.py").write_text(SEVERAL_MODELS)
    made = project.cli("run", "several.py")
    assert made.returncode == 0, made.stderr
    result = project.cli("rerun", "1", "--verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not reproduce" in result.stdout
    differing = [line for line in result.stdout.splitlines() if "differs" in line]
    assert differing and all("child 2 (run 3 → 7, tiny)" in line for line in differing)
    assert "child 1 (run 2 → 6, tiny)" in result.stdout
    assert "child 3 (run 4 → 8, tiny)" in result.stdout
    assert "child runs that did not reproduce: child 2 (run 3 → 7, tiny)" in " ".join(
        result.stdout.split()
    )
    client = _client(project)
    try:
        rerun = client.get_run(5)
        assert rerun.info.reproduces_uuid == client.store.resolve_run(1).uuid
        assert rerun.children.numbers == [6, 7, 8]
        assert [c.params["alpha"] for c in rerun.children] == [0.1, 0.2, 0.3]
    finally:
        client.close()


def test_rerun_of_a_child_run_says_to_rerun_its_parent(project: Project) -> None:
    (project.repo / "several.py").write_text(SEVERAL_MODELS)
    assert project.cli("run", "several.py").returncode == 0
    result = project.cli("rerun", "3")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "run 3 is a child of run 1" in last and "labkeep rerun 1" in last


def test_rerun_of_one_of_several_api_runs_does_not_merge_the_others_into_it(
    project: Project,
) -> None:
    """A script run without `labkeep run` makes one run per init(); rerunning the first makes
    one run per init() again (the later ones children of the rerun), not one merged run."""
    (project.repo / "models.py").write_text(
        "import labkeep\n"
        "for alpha in (0.1, 0.2):\n"
        "    with labkeep.init(experiment='tiny', config={'alpha': alpha}) as run:\n"
        "        run.log({'acc': alpha})\n"
    )
    project.script("models.py")
    result = project.cli("rerun", "1", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    client = _client(project)
    try:
        rerun = client.get_run(3)
        assert rerun.params == {"alpha": 0.1} and rerun.metrics["acc"].count == 1
        assert [c.params for c in rerun.children] == [{"alpha": 0.2}]
    finally:
        client.close()


def test_rerun_tree_is_committed_so_its_snapshot_keeps_every_file(project: Project) -> None:
    from repro_helpers import git

    (project.repo / "assets").mkdir()
    (project.repo / "assets" / "weights.bin").write_bytes(b"\0\1\2" * 100)
    git(project.repo, "add", "-A")
    git(project.repo, "commit", "-q", "-m", "weights")
    project.script("train.py", str(project.data))
    result = project.cli("rerun", "1")
    assert result.returncode == 0, result.stderr
    client = _client(project)
    try:
        snaps = [client.store.get_snapshot(n) for n in (1, 2)]
        manifests = [
            json.loads(client.store.blob_path(s["code"]["manifest"]).read_bytes())  # type: ignore[index]
            for s in snaps
        ]
        assert [f["path"] for f in manifests[1]] == [f["path"] for f in manifests[0]]
        assert "assets/weights.bin" in [f["path"] for f in manifests[1]]
        rerun_git = snaps[1]["git"]  # type: ignore[index]
        assert rerun_git["state"] == "clean" and rerun_git["commit"]
    finally:
        client.close()


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
