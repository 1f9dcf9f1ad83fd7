"""Train a small CNN on scikit-learn's 8x8 digits: conv, BatchNorm, ReLU, pooling and dropout,
one native call per training step, a DataLoader, a learning-rate schedule, a checkpoint and a plot.

Run: python examples/cnn.py [--epochs N] [--out DIR]
Writes DIR/cnn.safetensors (the checkpoint, reloaded before testing) and DIR/cnn_training.png.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.optim.lr_scheduler import CosineAnnealingLR
from graphc.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(0.25)
        self.fc = nn.Linear(32 * 2 * 2, classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))  # 16 x 4 x 4
        x = self.pool(F.relu(self.bn2(self.conv2(x))))  # 32 x 2 x 2
        return self.fc(self.dropout(graphc.flatten(x, 1)))


def load_data(batch_size: int) -> tuple[DataLoader, graphc.Tensor, graphc.Tensor]:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # N x 1 x 8 x 8
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    generator = graphc.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(graphc.tensor(x_train), graphc.tensor(y_train)), batch_size=batch_size,
                       shuffle=True, drop_last=True, generator=generator)  # full batches: one specialisation
    return train, graphc.tensor(x_test), graphc.tensor(y_test)


def accuracy(model: nn.Module, x: graphc.Tensor, y: graphc.Tensor) -> float:
    model.eval()
    with graphc.no_grad():
        predicted = graphc.compile(model)(x).argmax(1)
    model.train()
    return float((predicted == y).float().mean().item())


def plot(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(history["loss"], label="train loss")
    left.set_xlabel("epoch"), left.set_ylabel("cross-entropy"), left.legend()
    right.plot(history["accuracy"], label="test accuracy", color="tab:green")
    right.set_xlabel("epoch"), right.set_ylabel("accuracy"), right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(epochs: int = 15, batch_size: int = 32, out: str | Path = ".", progress: bool = True) -> float:
    graphc.manual_seed(0)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, x_test, y_test = load_data(batch_size)
    model = DigitsCNN()
    optimizer = graphc.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs)  # changes the lr each epoch, no recompile
    step = graphc.compile_train_step(model, nn.CrossEntropyLoss(), optimizer)

    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc="training", disable=not progress)
    for _ in bar:
        losses = [step(images, labels).item() for images, labels in train]
        scheduler.step()
        history["loss"].append(float(np.mean(losses)))
        history["accuracy"].append(accuracy(model, x_test, y_test))
        bar.set_postfix(loss=f"{history['loss'][-1]:.4f}", acc=f"{history['accuracy'][-1]:.3f}")
    seconds = time.perf_counter() - start

    checkpoint = out / "cnn.safetensors"
    graphc.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epochs}, checkpoint)
    restored = DigitsCNN()
    state = graphc.load(checkpoint)
    restored.load_state_dict(state["model"])
    result = accuracy(restored, x_test, y_test)
    plot(history, out / "cnn_training.png")
    print(f"test accuracy {result:.4f} after {state['epoch']} epochs ({len(y_test)} images; training took "
          f"{seconds:.2f} s); checkpoint {checkpoint}, plot {out / 'cnn_training.png'}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    main(args.epochs, out=args.out)
