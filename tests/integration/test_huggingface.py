"""``labkeep.huggingface.Callback`` with a real ``transformers.Trainer`` on models made from a
config with random weights (2 layers, vocabulary of 100, hidden size 16) and data made here;
nothing is downloaded."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from typing import Any

import pytest
import torch
import transformers

import labkeep


@pytest.fixture(autouse=True)
def quick_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKEEP_CAPTURE", "0")
    monkeypatch.setenv("LABKEEP_SYSTEM_METRICS", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class Tokens(torch.utils.data.Dataset[dict[str, Any]]):
    """Random token sequences of 8, labelled by whether the first token is above 50."""

    def __init__(self, rows: int, seed: int, labels: str = "class") -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 100, (rows, 8), generator=generator)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = self.ids[i]
        label = ids if self.labels == "tokens" else (ids[0] > 50).long()
        return {
            "input_ids": ids,
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": label,
        }


def arguments(tmp: Any, **extra: Any) -> Any:
    return transformers.TrainingArguments(
        output_dir=str(tmp / "out"),
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=2,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        **extra,
    )


def bert() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)


def steps(view: Any, key: str) -> list[int]:
    return [int(s) for s in view.series(key).steps]


def test_training_records_arguments_config_metrics_and_the_final_model(tmp_path: Any) -> None:
    model = bert()
    callback = labkeep.huggingface.Callback(experiment="bert")
    trainer = transformers.Trainer(
        model=model,
        args=arguments(tmp_path, num_train_epochs=2, eval_strategy="epoch"),
        train_dataset=Tokens(32, seed=1),  # 4 steps an epoch
        eval_dataset=Tokens(16, seed=2),
        callbacks=[callback],
    )
    trainer.train()
    run = callback.run
    assert run is not None and run.finished and labkeep.active_run() is None
    view = labkeep.get_run(run.uuid)
    assert view.status.value == "completed" and view.info.experiment == "bert"

    params = view.params
    assert params["learning_rate"] == 1e-3 and params["num_train_epochs"] == 2
    assert params["per_device_train_batch_size"] == 8
    assert params["model.model_type"] == "bert" and params["model.hidden_size"] == 16
    assert params["model.num_hidden_layers"] == 2 and params["model.vocab_size"] == 100
    assert params["model.num_parameters"] == model.num_parameters()

    assert steps(view, "loss") == [2, 4, 6, 8]  # logging_steps=2, at the global step
    assert steps(view, "eval_loss") == [4, 8]  # each epoch's end
    assert {"grad_norm", "learning_rate", "epoch", "train_runtime"} <= set(view.metrics)
    assert view.summary["global_step"] == 8
    assert view.summary["train_loss"] == pytest.approx(view.metrics["train_loss"].last)

    [info] = view.models
    assert info.name == "model" and info.flavour == "pytorch"
    stored = labkeep.load_model(view, "model", trusted=True)
    assert type(stored) is transformers.BertForSequenceClassification
    batch = Tokens(4, seed=3)[0]
    stored.eval()
    model.eval()
    with torch.no_grad():
        want = model(input_ids=batch["input_ids"][None]).logits
        got = stored(input_ids=batch["input_ids"][None]).logits
    assert torch.equal(got, want)

    # An evaluation after training continues the run the callback started.
    trainer.evaluate()
    active = labkeep.active_run()
    assert active is not None and active.uuid == run.uuid
    labkeep.finish()
    view = labkeep.get_run(run.uuid)
    assert steps(view, "eval_loss") == [4, 8, 8] and view.status.value == "completed"


def test_inside_an_active_run_the_callback_logs_into_it(tmp_path: Any) -> None:
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=100, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    with labkeep.init(experiment="gpt2", config={"corpus": "random"}) as run:
        callback = labkeep.huggingface.Callback(log_model=False)
        trainer = transformers.Trainer(
            model=model,
            args=arguments(tmp_path, max_steps=4),
            train_dataset=Tokens(16, seed=4, labels="tokens"),
            callbacks=[callback],
        )
        trainer.train()
        assert callback.run is run and not run.finished
    view = labkeep.get_run(run.uuid)
    assert view.params["corpus"] == "random" and view.params["model.model_type"] == "gpt2"
    assert view.params["max_steps"] == 4
    assert steps(view, "loss") == [2, 4]
    assert view.models == []
