"""Train a linear classifier on iris with a few configs, one labkeep run each.

Run it with ``make demo``, then look at the runs with ``labkeep runs -e iris``.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import labkeep

CONFIGS = [
    {"loss": "log_loss", "alpha": 1e-4, "learning_rate": "optimal", "epochs": 30},
    {"loss": "log_loss", "alpha": 1e-2, "learning_rate": "optimal", "epochs": 30},
    {
        "loss": "modified_huber",
        "alpha": 1e-3,
        "learning_rate": "adaptive",
        "eta0": 0.05,
        "epochs": 30,
    },
    {"loss": "hinge", "alpha": 1e-3, "learning_rate": "constant", "eta0": 0.01, "epochs": 30},
]


def train(config: dict[str, object], seed: int = 0) -> None:
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    classes = np.unique(y)
    with labkeep.init(experiment="iris", config={**config, "seed": seed}, tags=["demo"]) as run:
        model = SGDClassifier(
            loss=str(config["loss"]),
            alpha=float(config["alpha"]),  # type: ignore[arg-type]
            learning_rate=str(config["learning_rate"]),
            eta0=float(config.get("eta0", 0.01)),  # type: ignore[arg-type]
            random_state=seed,
        )
        for epoch in range(int(config["epochs"])):  # type: ignore[call-overload]
            model.partial_fit(x_train, y_train, classes=classes)
            acc = accuracy_score(y_test, model.predict(x_test))
            metrics = {"acc": acc, "train_acc": accuracy_score(y_train, model.predict(x_train))}
            if hasattr(model, "predict_proba"):
                metrics["loss"] = log_loss(y_test, model.predict_proba(x_test), labels=classes)
            run.log(metrics, step=epoch)
        run.summary["final_acc"] = acc
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pkl"
            path.write_bytes(pickle.dumps(model))
            run.log_artifact(path)
        print(f"run {run.number}: {config['loss']:<15} alpha={config['alpha']:<7} acc={acc:.3f}")


if __name__ == "__main__":
    for cfg in CONFIGS:
        train(cfg)
