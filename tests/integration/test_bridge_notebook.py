"""Bridges in notebooks: ``labkeep run notebook.ipynb`` whose cells use MLflow, W&B or a
TensorBoard ``SummaryWriter`` records their calls into the run, as it does for a script."""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_helpers import labkeep_run, last_run, series

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize("mode", ["--bridge-only", None])
def test_notebook_cells_using_mlflow_wandb_and_summarywriter_land_in_the_run(
    tmp_path: Path, mode: str | None
) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboardX")
    _notebook(
        tmp_path / "explore.ipynb",
        "lr = 0.05",
        "import mlflow\n"
        "mlflow.start_run()\n"
        "mlflow.log_param('alpha', 0.3)\n"
        "for i in range(3):\n"
        "    mlflow.log_metric('loss', 1.0 / (i + 1), step=i)\n"
        "mlflow.end_run()",
        "import wandb\n"
        "run = wandb.init(project='nb', config={'lr': lr, 'epochs': 2})\n"
        "for e in range(wandb.config.epochs):\n"
        "    wandb.log({'acc': 0.5 + 0.1 * e})\n"
        "run.summary['best'] = 0.6\n"
        "wandb.finish()",
        "from tensorboardX import SummaryWriter\n"
        "writer = SummaryWriter('tb')\n"
        "for step in range(2):\n"
        "    writer.add_scalar('val/loss', 0.5 - 0.1 * step, step)\n"
        "writer.close()",
    )
    args = [mode] if mode else []
    labkeep_run(tmp_path, tmp_path / "store", *args, "explore.ipynb", "lr=0.1")
    run = last_run(tmp_path / "store")
    assert run.status.value == "completed"
    assert run.params == {"lr": 0.1, "alpha": 0.3, "epochs": 2}
    assert series(run, "loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert series(run, "acc") == [(0, 0.5), (1, pytest.approx(0.6))]
    assert series(run, "val/loss") == [(0, 0.5), (1, pytest.approx(0.4))]
    assert run.summary["best"] == 0.6
    # The executed notebook shows the user's cells only.
    executed = nbformat.read(str(run.artifact_path("notebook/explore.ipynb")), as_version=4)
    assert len(executed.cells) == 4
