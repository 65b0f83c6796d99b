"""``labkeep rerun --verify`` on what runs write: executed notebooks compared by their cells,
volatile artifacts, ``--ignore`` and other trackers' files left out of the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from repro_helpers import Project, git, make_project

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

# Deterministic cells that also write what other trackers write, with new content (and, for
# TensorBoard, a new file name) every time.
CELLS = (
    "import random\nrandom.seed(3)\nvalues = [round(random.random(), 6) for _ in range(3)]\n"
    "for v in values:\n    print('value', v)",
    "import os, time\n"
    "os.makedirs('mlruns/0/abc', exist_ok=True)\n"
    "open('mlruns/0/abc/meta.yaml', 'w').write(str(time.time()))\n"
    "os.makedirs('wandb/run-1', exist_ok=True)\n"
    "open('wandb/run-1/log.txt', 'w').write(str(time.time()))\n"
    "open('mlflow.db', 'w').write(str(time.time()))\n"
    "os.makedirs('lightning_logs/version_0', exist_ok=True)\n"
    "open('lightning_logs/version_0/hparams.yaml', 'w').write(str(time.time()))\n"
    "os.makedirs('runs/exp', exist_ok=True)\n"
    "open(f'runs/exp/events.out.tfevents.{time.time_ns()}.host', 'w').write('e')\n"
    "open('result.txt', 'w').write(repr(values))",
    "sum(values)",
)

STAMPED = """\
import time
import labkeep

with labkeep.init(experiment="stamp") as run:
    run.log({"loss": 0.5})
    with open("stamp.txt", "w") as f:
        f.write(str(time.time_ns()))
    run.log_artifact("stamp.txt", volatile=True)
    with open("report.txt", "w") as f:
        f.write(str(time.time_ns()))
    run.log_artifact("report.txt")
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in CELLS]
    nbformat.write(nb, str(project.repo / "analysis.ipynb"))
    (project.repo / "stamped.py").write_text(STAMPED)
    git(project.repo, "add", "-A")
    git(project.repo, "commit", "-q", "-m", "notebook")
    return project


def test_deterministic_notebook_reproduces(project: Project) -> None:
    first = project.cli("run", "analysis.ipynb")
    assert first.returncode == 0, first.stderr
    result = project.cli("rerun", "1", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reproduced run 1" in result.stdout
    assert "output notebook/analysis.ipynb" in result.stdout
    assert "output result.txt" in result.stdout
    assert "differs" not in result.stdout
    # Other trackers' files are never part of the verdict, and the verdict says so.
    for name in ("mlflow.db", "mlruns/", "wandb/", "lightning_logs/", "events.out.tfevents"):
        assert f"output {name}" not in result.stdout
    assert "not compared" in result.stdout and "mlflow.db" in result.stdout


def test_volatile_artifact_and_ignore_pattern(project: Project) -> None:
    first = project.cli("run", "stamped.py")
    assert first.returncode == 0, first.stderr
    plain = project.cli("rerun", "1", "--verify")
    assert plain.returncode == 1, plain.stdout + plain.stderr
    differing = [line for line in plain.stdout.splitlines() if "differs" in line]
    # report.txt differs on the runner's run (it collected the file) and on the child run
    # that logged it; stamp.txt, marked volatile by the child, on neither.
    assert differing and all("report.txt" in line for line in differing), plain.stdout
    ignored = project.cli("rerun", "1", "--verify", "--ignore", "report.*", "--ignore", "x/")
    assert ignored.returncode == 0, ignored.stdout + ignored.stderr
    assert "reproduced run 1" in ignored.stdout
    assert "stamp.txt (volatile)" in ignored.stdout
    assert "report.txt (--ignore)" in ignored.stdout


def test_ignore_without_verify_is_one_line(project: Project) -> None:
    result = project.cli("rerun", "1", "--ignore", "*.log")
    assert result.returncode != 0
    assert result.stderr.strip() == "labkeep: --ignore only applies to a verdict: add --verify"
