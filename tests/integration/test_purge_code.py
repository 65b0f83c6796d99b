"""Purging a run never takes another run's code: a run that logged its own script as an
artifact is purged, and every other run of that script still checks out."""

from __future__ import annotations

from pathlib import Path

from repro_helpers import git, make_project

SCRIPT = """\
import sys
import labkeep

with labkeep.init(experiment="purge") as run:
    run.log({"x": 1.0})
    if "--log-code" in sys.argv:
        run.log_artifact("keep.py")
"""


def test_purging_a_run_that_logged_the_script_keeps_other_runs_code(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project.repo / "keep.py").write_text(SCRIPT)
    git(project.repo, "add", "-A")
    git(project.repo, "commit", "-q", "-m", "keep")
    project.script("keep.py")
    project.script("keep.py", "--log-code")
    for args in (("delete", "2"), ("purge", "2", "--yes")):
        done = project.cli(*args)
        assert done.returncode == 0, done.stderr
    target = tmp_path / "checkout"
    checked_out = project.cli("checkout", "1", str(target))
    assert checked_out.returncode == 0, checked_out.stderr
    assert (target / "keep.py").read_text() == SCRIPT
    assert project.cli("db", "check").returncode == 0
