"""Output scalars in the shapes two frameworks print: Hugging Face Trainer's log dicts and
PyTorch Lightning's progress bar (redrawn with ``\\r``, the validation bar below it moving the
cursor with a newline and ``ESC[A``), fed whole and in every kind of chunk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkeep.runner._scalars import OutputScalarParser

# What `Trainer.train()` prints to stdout (tqdm.write of each log, and its own lines) with
# logging_steps=2 and an evaluation each epoch, transformers 4.4x.
HF_OUTPUT = (
    "***** Running training *****\n"
    "{'loss': 0.6931, 'grad_norm': 1.0738452672958374, 'learning_rate': 4.5e-05, 'epoch': 0.5}\n"
    "{'loss': 0.6512, 'grad_norm': 0.98, 'learning_rate': 4e-05, 'epoch': 1.0}\n"
    "{'eval_loss': 0.6402, 'eval_accuracy': 0.75, 'eval_runtime': 0.1234, "
    "'eval_samples_per_second': 810.2, 'eval_steps_per_second': 16.2, 'epoch': 1.0}\n"
    "{'loss': 0.5, 'grad_norm': np.float32(0.91), 'learning_rate': 3.5e-05, 'epoch': 1.5}\n"
    "{'train_runtime': 3.4571, 'train_samples_per_second': 86.78, "
    "'train_steps_per_second': 2.892, 'train_loss': 0.6148, 'epoch': 2.0}\n"
)


# Lightning 2.x: one train bar redrawn on one line through all epochs (leave=True), its
# validation bar drawn one line below (a newline, then ESC[A back up), and a newline at the end.
def _bar(epoch: int, done: int, post: str) -> str:
    filled = "█" * (done * 10 // 4)
    return f"Epoch {epoch}: {done * 25:3d}%|{filled:<10}| {done}/4 [00:00<00:00, 80.10it/s{post}]"


def _lightning_output() -> str:
    parts = ["Sanity Checking DataLoader 0: 100%|██████████| 2/2 [00:00<00:00, 150.00it/s]\r"]
    for epoch in range(3):
        loss = 0.9 - 0.2 * epoch
        for done in range(5):
            post = f", v_num=0, loss={loss + 0.01 * (4 - done):.3f}"
            if epoch:
                post += f", val_acc={0.5 + 0.1 * epoch:.3f}"
            parts.append("\r" + _bar(epoch, done, post))
        parts.append("\n\rValidation DataLoader 0: 100%|██████████| 2/2 [00:00<00:00, 200.00it/s]")
        parts.append("\x1b[A")
        post = f", v_num=0, loss={loss:.3f}, val_acc={0.6 + 0.1 * epoch:.3f}"
        parts.append("\r" + _bar(epoch, 4, post))
    parts.append("\n`Trainer.fit` stopped: `max_epochs=3` reached.\n")
    return "".join(parts)


LIGHTNING_OUTPUT = _lightning_output()
LIGHTNING_POINTS = [
    ("epoch", 0.0, 0), ("loss", 0.9, 0), ("val_acc", 0.6, 0),
    ("epoch", 1.0, 1), ("loss", 0.7, 1), ("val_acc", 0.7, 1),
    ("epoch", 2.0, 2), ("loss", 0.5, 2), ("val_acc", 0.8, 2),
]  # fmt: skip


def points(text: str, cuts: list[int] | None = None) -> list[tuple[str, float, int]]:
    parser = OutputScalarParser()
    found = []
    start = 0
    for cut in sorted(cuts or []):
        found += parser.feed(text[start:cut])
        start = max(start, cut)
    found += parser.feed(text[start:]) + parser.close()
    return [(p.key, pytest.approx(p.value), p.step) for p in found]  # type: ignore[misc]


def test_hugging_face_dicts_are_metrics_a_training_log_per_step() -> None:
    found = points(HF_OUTPUT)
    by_key: dict[str, list[tuple[float, int]]] = {}
    for key, value, step in found:
        by_key.setdefault(key, []).append((value, step))
    assert by_key["loss"] == [(0.6931, 0), (0.6512, 1), (0.5, 2)]
    assert by_key["grad_norm"] == [(1.0738452672958374, 0), (0.98, 1), (0.91, 2)]
    assert by_key["learning_rate"][0] == (4.5e-05, 0)
    # The evaluation joins the training log it followed; the final summary the last one.
    assert by_key["eval_loss"] == [(0.6402, 1)]
    assert by_key["eval_accuracy"] == [(0.75, 1)]
    assert by_key["train_loss"] == [(0.6148, 2)]
    assert by_key["train_runtime"] == [(3.4571, 2)]
    assert by_key["epoch"] == [(0.5, 0), (1.0, 1), (1.0, 1), (1.5, 2), (2.0, 2)]


def test_a_dict_that_is_not_a_whole_line_or_has_no_numbers_is_left_to_the_usual_rules() -> None:
    assert points("config {'lr': 0.1}\n{'name': 'bert', 'tags': ['a']}\nloss: 0.5\n") == [
        ("loss", 0.5, 0)
    ]


def test_lightning_bar_gives_each_epochs_last_values_at_the_epoch() -> None:
    assert points(LIGHTNING_OUTPUT) == LIGHTNING_POINTS


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(LIGHTNING_OUTPUT)), max_size=12))
def test_lightning_bar_in_any_chunks_gives_the_same_points(cuts: list[int]) -> None:
    assert points(LIGHTNING_OUTPUT, cuts) == LIGHTNING_POINTS


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(HF_OUTPUT)), max_size=8))
def test_hugging_face_dicts_in_any_chunks_give_the_same_points(cuts: list[int]) -> None:
    assert points(HF_OUTPUT, cuts) == points(HF_OUTPUT)


def test_a_bar_per_epoch_left_on_its_own_line_reads_the_same() -> None:
    text = "".join(
        f"\r{_bar(e, 2, f', v_num=1, loss=0.{e}5')}\r{_bar(e, 4, f', v_num=1, loss=0.{e}')}\n"
        for e in range(2)
    )
    assert points(text) == [
        ("epoch", 0.0, 0), ("loss", 0.0, 0), ("epoch", 1.0, 1), ("loss", 0.1, 1),
    ]  # fmt: skip


def test_other_bars_and_epoch_lines_keep_their_rules() -> None:
    assert points("\r 10%|#   | 5\r100%|####| 9 loss=0.5\n") == [("loss", 0.5, 0)]
    assert points("Epoch 2/10\n32/32 [====] - 1s 3ms/step - loss: 0.29\n") == [
        ("epoch", 2.0, 0),
        ("loss", 0.29, 0),
    ]
