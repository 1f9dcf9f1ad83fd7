"""Train an MLP on scikit-learn's 8x8 digits with one native call per training step.

Run: python examples/mlp.py   (prints loss per epoch and the test accuracy)
"""
from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphc
import graphc.nn as nn
import graphc.nn.functional as F


class MLP(nn.Module):
    def __init__(self, in_features: int = 64, hidden: int = 128, classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def main(epochs: int = 30, batch: int = 64) -> float:
    graphc.manual_seed(0)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

    model = MLP()
    optimizer = graphc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = graphc.compile_train_step(model, nn.CrossEntropyLoss(), optimizer)

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        losses = []
        for i in range(0, len(order) - batch + 1, batch):  # full batches: one compiled specialisation
            idx = order[i:i + batch]
            losses.append(step(graphc.tensor(x_train[idx]), graphc.tensor(y_train[idx])).item())
        if epoch % 5 == 0 or epoch == epochs - 1:
            print(f"epoch {epoch:2d}  loss {np.mean(losses):.4f}")
    seconds = time.perf_counter() - start

    model.eval()
    predict = graphc.compile(model)
    with graphc.no_grad():
        logits = predict(graphc.tensor(x_test))
    accuracy = float((logits.argmax(1).numpy() == y_test).mean())
    print(f"test accuracy {accuracy:.4f}  ({len(y_test)} images; training took {seconds:.2f} s)")
    return accuracy


if __name__ == "__main__":
    main()
