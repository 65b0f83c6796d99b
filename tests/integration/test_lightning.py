"""``labkeep.lightning.Logger`` with a real Lightning ``Trainer`` on a tiny network and data
made here: hyperparameters, metrics at the global step, checkpoints as models, the run's
final status, and the run it starts or joins."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import labkeep
from labkeep.errors import InvalidInputError


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")


class Regressor(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 8, fail_at_epoch: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def training_step(self, batch: Any, index: int) -> Any:
        if self.current_epoch == self.hparams.fail_at_epoch:
            raise RuntimeError("the data ran out")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader() -> Any:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    dataset = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    return torch.utils.data.DataLoader(dataset, batch_size=16)  # 4 batches an epoch


def trainer(logger: Any, epochs: int, checkpoint: ModelCheckpoint, tmp: Any) -> Any:
    return L.Trainer(
        max_epochs=epochs,
        logger=logger,
        callbacks=[checkpoint],
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp),
        accelerator="cpu",
    )


def steps(view: Any, key: str) -> list[int]:
    return [int(s) for s in view.series(key).steps]


def test_fit_records_hyperparameters_metrics_and_the_best_checkpoint(tmp_path: Any) -> None:
    torch.manual_seed(0)
    logger = labkeep.lightning.Logger(experiment="regression")
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1)
    trainer(logger, 3, checkpoint, tmp_path).fit(Regressor(), loader(), loader())

    run = logger.run
    assert run is not None and run.finished and labkeep.active_run() is None
    view = labkeep.get_run(run.uuid)
    assert view.status.value == "completed" and view.info.experiment == "regression"
    assert view.params == {"lr": 0.05, "hidden": 8, "fail_at_epoch": -1}
    assert steps(view, "train_loss") == list(range(12))  # global steps, one per batch
    assert steps(view, "val_loss") == [3, 7, 11]  # each epoch's last step
    assert "epoch" in view.metrics

    # Lightning kept its checkpoint under the run's folder: <root>/<experiment>/<run uuid>/.
    best_path = checkpoint.best_model_path
    assert run.uuid in best_path and "regression" in best_path
    assert [m.name for m in view.models] == ["checkpoints/best"]
    assert view.models[0].flavour == "pytorch_state_dict" and view.models[0].safe
    stored = labkeep.load_model(view, "checkpoints/best")
    on_disk = torch.load(best_path, weights_only=False)["state_dict"]
    assert stored.keys() == on_disk.keys()
    for key, tensor in on_disk.items():
        assert torch.equal(stored[key], tensor)
    restored = Regressor()
    restored.load_state_dict(stored)
    assert view.summary["checkpoint.monitor"] == "val_loss"
    assert view.summary["checkpoint.best_score"] == pytest.approx(
        float(checkpoint.best_model_score)
    )
    assert view.summary["checkpoint.best_score"] == pytest.approx(
        min(float(v) for v in view.series("val_loss").values)
    )


def test_log_model_all_stores_every_checkpoint(tmp_path: Any) -> None:
    torch.manual_seed(0)
    logger = labkeep.lightning.Logger(log_model="all")
    checkpoint = ModelCheckpoint(save_top_k=-1, filename="{epoch}")
    trainer(logger, 2, checkpoint, tmp_path).fit(Regressor(), loader(), loader())
    assert logger.run is not None
    view = labkeep.get_run(logger.run.uuid)
    assert sorted(m.name for m in view.models) == [
        "checkpoints/best",
        "checkpoints/epoch=0",
        "checkpoints/epoch=1",
    ]


def test_a_failing_fit_ends_the_run_failed(tmp_path: Any) -> None:
    logger = labkeep.lightning.Logger(log_model=False)
    fit = trainer(logger, 3, ModelCheckpoint(), tmp_path)
    with pytest.raises(RuntimeError, match="the data ran out"):
        fit.fit(Regressor(fail_at_epoch=1), loader(), loader())
    assert logger.run is not None
    view = labkeep.get_run(logger.run.uuid)
    assert view.status.value == "failed"
    assert steps(view, "train_loss") == [0, 1, 2, 3]
    assert view.models == []


def test_inside_an_active_run_the_logger_logs_into_it_and_leaves_it_running(
    tmp_path: Any,
) -> None:
    with labkeep.init(experiment="outer", config={"data": "random"}) as run:
        logger = labkeep.lightning.Logger(log_model=False)
        assert logger.experiment is run and logger.version == run.uuid
        trainer(logger, 1, ModelCheckpoint(), tmp_path).fit(Regressor(), loader())
        assert not run.finished
        logger.log_metrics({"extra": torch.tensor(2.5), "text": "not a number"}, step=99)
    view = labkeep.get_run(run.uuid)
    assert view.status.value == "completed"
    assert view.params["data"] == "random" and view.params["lr"] == 0.05
    assert steps(view, "extra") == [99] and "text" not in view.metrics
    assert view.metrics["extra"].last == 2.5


def test_bad_log_model_says_what_to_give() -> None:
    with pytest.raises(InvalidInputError, match=r"log_model='best'\): use True"):
        labkeep.lightning.Logger(log_model="best")
