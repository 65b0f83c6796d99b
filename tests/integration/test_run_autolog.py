"""``labkeep run --autolog``: an unchanged script's scikit-learn and XGBoost training lands in
the runner's run (a search's candidates as its child runs), and without the flag nothing does."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import labkeep

SRC = str(Path(labkeep.__file__).resolve().parents[1])
SCRIPT = """
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    import xgboost

    C = 1.0
    x, y = load_iris(return_X_y=True)
    LogisticRegression(C=C, max_iter=300).fit(x, y)
    GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=3).fit(x, y)
    data = xgboost.DMatrix(x, y)
    xgboost.train({"objective": "multi:softprob", "num_class": 3}, data, 3,
                  evals=[(data, "train")], verbose_eval=False)
    print("trained")
"""


def labkeep_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.update(LABKEEP_HOME=str(tmp_path / "store"), LABKEEP_CAPTURE="0")
    return subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "run", *args, "train.py", "C=0.25"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_autolog_flag_logs_an_unchanged_script_into_the_runners_run(tmp_path: Path) -> None:
    done = labkeep_run(tmp_path, "--autolog")
    assert done.returncode == 0, done.stderr
    assert "trained" in done.stdout
    runs = list(labkeep.runs(store=str(tmp_path / "store")))
    (run,) = [r for r in runs if r.parent_uuid is None]
    assert run.status == "completed"
    assert run.params["C"] == 0.25  # the flag, and the first fit's param
    assert run.params["best.C"] in (0.1, 1.0)
    assert {"training_accuracy", "best_cv_score", "train-mlogloss"} <= set(run.metrics)
    assert list(run.series("train-mlogloss").steps) == [0, 1, 2]
    assert sorted(m.flavour for m in run.models) == ["sklearn", "sklearn", "xgboost"]
    assert sorted(c.params["C"] for c in run.children) == [0.1, 1.0]


def test_without_the_flag_the_script_logs_no_training(tmp_path: Path) -> None:
    done = labkeep_run(tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = labkeep.runs(store=str(tmp_path / "store"))
    assert run.models == []
    assert "training_accuracy" not in run.metrics


def test_printed_hugging_face_dicts_and_lightning_bars_become_metrics(tmp_path: Path) -> None:
    script = r"""
import sys
print("{'loss': 0.69, 'grad_norm': 1.5, 'learning_rate': 5e-05, 'epoch': 0.5}")
print("{'loss': 0.41, 'grad_norm': 1.1, 'learning_rate': 2.5e-05, 'epoch': 1.0}")
print("{'eval_loss': 0.45, 'eval_runtime': 0.2, 'epoch': 1.0}")
for epoch, loss in ((0, 0.9), (1, 0.5)):
    for done in range(0, 5):
        sys.stdout.write(f"\rEpoch {epoch}: {done * 25}%|##| {done}/4 "
                         f"[00:00<00:00, 80.00it/s, v_num=0, train_loss={loss + 0.1 * (4 - done):.3f}]")
        sys.stdout.flush()
print()
"""
    (tmp_path / "bars.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.update(LABKEEP_HOME=str(tmp_path / "store"), LABKEEP_CAPTURE="0")
    done = subprocess.run(
        [sys.executable, "-m", "labkeep.cli", "run", "bars.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = labkeep.runs(store=str(tmp_path / "store"))
    loss = run.series("loss")
    assert list(loss.steps) == [0, 1] and list(loss.values) == [0.69, 0.41]
    assert list(run.series("eval_loss").steps) == [1]
    bar = run.series("train_loss")
    assert list(bar.steps) == [0, 1] and list(bar.values) == [0.9, 0.5]
    assert "v_num" not in run.metrics
