"""A plain training script with no labkeep code in it: its module-level values are flags.

    labkeep run examples/digits.py hidden=64 lr=0.01
    labkeep run examples/digits.py --flags

It prints ``epoch N loss=… acc=…`` lines, which labkeep turns into metrics, and writes
``digits-model.pkl``, which labkeep keeps as an artifact of the run.
"""

import pickle

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

hidden = 32
lr = 0.005
epochs = 15
alpha = 1e-4
seed = 0

x, y = load_digits(return_X_y=True)
x = x / 16.0
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed)
model = MLPClassifier(
    hidden_layer_sizes=(hidden,), learning_rate_init=lr, alpha=alpha, random_state=seed
)
classes = np.unique(y)
for epoch in range(epochs):
    model.partial_fit(x_train, y_train, classes=classes)
    acc = model.score(x_test, y_test)
    print(f"epoch {epoch} loss={model.loss_:.4f} acc={acc:.4f}")

with open("digits-model.pkl", "wb") as fh:
    pickle.dump(model, fh)
