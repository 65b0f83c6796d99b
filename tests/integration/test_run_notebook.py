"""``labkeep run NOTEBOOK``: a copy executed top to bottom in a real kernel (one start per run;
the runs are shared between the tests of this module)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import labkeep
from labkeep._client import Client
from labkeep._views import RunView
from labkeep.entities import RunStatus

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

SRC = str(Path(labkeep.__file__).resolve().parents[1])
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def cli(cwd: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env["LABKEEP_HOME"] = str(store)
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    cells = []
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path


class Runs:
    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.work.mkdir()
        self.store = root / "store"
        self.good = notebook(
            self.work / "train.ipynb",
            "for i in range(n):\n    print(f'loss: {abs(x) / (i + 1)}')",
            "import labkeep\nrun = labkeep.init()\nrun.log({'api_metric': 5.0})\nprint('x is', x)",
            "from IPython.display import Image, display\nimport base64\n"
            f"display(Image(data=base64.b64decode('{PNG_1PX}')))",
            parameters="x = 1.0\nn = 3",
        )
        self.good_bytes = self.good.read_bytes()
        self.good_proc = cli(self.work, self.store, "run", "train.ipynb", "x=-2.0")
        self.bad = notebook(
            self.work / "bad.ipynb",
            "print('before')",
            "def divide(a):\n    return a / 0\ndivide(1)",
            "print('never')",
        )
        self.bad_proc = cli(self.work, self.store, "run", "bad.ipynb")

    def get(self, number: int) -> RunView:
        client = Client(self.store)
        try:
            return client.get_run(number)
        finally:
            client.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("notebooks"))


def test_notebook_runs_with_parameters_injected(runs: Runs) -> None:
    proc = runs.good_proc
    assert proc.returncode == 0, proc.stderr
    assert "loss: 2.0" in proc.stdout and "x is -2.0" in proc.stdout
    assert "run 1 completed in" in proc.stderr
    run = runs.get(1)
    assert run.status is RunStatus.COMPLETED
    assert run.params == {"x": -2.0, "n": 3}
    assert run.metrics["loss"].count == 3
    assert run.metrics["api_metric"].last == 5.0  # the kernel attached to the run
    assert runs.good.read_bytes() == runs.good_bytes  # the original is untouched


def test_notebook_artifacts_html_executed_copy_and_images(runs: Runs) -> None:
    run = runs.get(1)
    names = {a.path for a in run.artifacts}
    assert {"notebook/train.ipynb", "notebook/train.html"} <= names
    images = [n for n in names if n.startswith("notebook/images/")]
    assert len(images) == 1 and images[0].endswith(".png")
    assert run.artifact_path(images[0]).read_bytes()[:4] == b"\x89PNG"
    executed = json.loads(run.artifact_path("notebook/train.ipynb").read_text())
    injected = [
        c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert len(injected) == 1 and "x = -2.0" in "".join(injected[0]["source"])
    assert any(c.get("outputs") for c in executed["cells"])
    assert "<html" in run.artifact_path("notebook/train.html").read_text()[:2000].lower()


def test_failing_cell_fails_the_run_with_its_traceback(runs: Runs) -> None:
    proc = runs.bad_proc
    assert proc.returncode == 1
    assert "ZeroDivisionError" in proc.stderr
    run = runs.get(2)
    assert run.status is RunStatus.FAILED
    assert run.info.exit_code == 1
    assert run.error is not None
    assert "ZeroDivisionError" in run.error and "divide(1)" in run.error
    assert "\x1b[" not in run.error
    executed = json.loads(run.artifact_path("notebook/bad.ipynb").read_text())
    assert executed["cells"][2]["outputs"] == []  # nothing ran after the failing cell


def test_notebook_that_is_not_json_is_one_line_and_no_run(tmp_path: Path) -> None:
    (tmp_path / "broken.ipynb").write_text("{not json")
    proc = cli(tmp_path, tmp_path / "store", "run", "broken.ipynb")
    assert proc.returncode != 0
    assert proc.stderr.strip() == "labkeep: broken.ipynb is not a notebook (invalid JSON)"
    assert not (tmp_path / "store").exists() or len(Client(tmp_path / "store").runs()) == 0
