"""python -m benchmarks.activations: compiled float32 transcendental ops on 128x512 against numpy,
and Linear(512, 512) + activation at batch 128 (W1's hidden layer), median µs per call.

A quick look for lowering work on graphc/lower/fastmath.py (no rounds, no peers beyond numpy):
run it from two checkouts to compare them.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

import graphc
import graphc.nn as nn
from graphc.ops import functions as F

from .machine import cpu_model


class Apply(nn.Module):
    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def median_us(call: Callable[[], object], seconds: float = 0.5) -> float:
    call()
    samples, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 20:
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def numpy_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


ELEMENTWISE = {"relu (no math: the call's cost)": (F.relu, lambda v: np.maximum(v, 0)), "tanh": (F.tanh, np.tanh), "log": (F.log, np.log), "sigmoid": (F.sigmoid, numpy_sigmoid),
               "exp": (F.exp, np.exp), "erf": (F.erf, None), "log1p": (F.log1p, np.log1p),
               "expm1": (F.expm1, np.expm1)}
LAYERS = {"tanh": (nn.Tanh, np.tanh), "sigmoid": (nn.Sigmoid, numpy_sigmoid), "gelu": (nn.GELU, None),
          "softplus": (nn.Softplus, None), "elu": (nn.ELU, None), "relu": (nn.ReLU, lambda v: np.maximum(v, 0))}


def row(name: str, ours: float, theirs: float | None) -> str:
    ratio = f"{theirs / ours:.2f}x" if theirs else "-"
    return f"| {name} | {ours:.1f} | {theirs:.1f} | {ratio} |" if theirs else f"| {name} | {ours:.1f} | - | - |"


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 4.0, (128, 512)).astype(np.float32)  # positive: log's domain
    print(f"CPU: {cpu_model()}, graphc threads as configured\n")
    print("| op on 128x512 float32 | graphc µs | numpy µs | numpy / graphc |\n|---|---|---|---|")
    with graphc.no_grad():
        tx = graphc.tensor(x)
        for name, (ours, theirs) in ELEMENTWISE.items():
            compiled = graphc.compile(Apply(ours))
            print(row(name, median_us(lambda: compiled(tx)), theirs and median_us(lambda: theirs(x))))
        print("\n| Linear(512, 512) + activation, batch 128 | graphc µs | numpy µs | numpy / graphc |\n|---|---|---|---|")
        h = rng.standard_normal((128, 512)).astype(np.float32)
        th = graphc.tensor(h)
        for name, (layer, theirs) in LAYERS.items():
            graphc.manual_seed(0)
            model = nn.Sequential(nn.Linear(512, 512), layer()).eval()
            compiled = graphc.compile(model)
            w, b = (p.numpy() for p in model.parameters())
            reference = theirs and (lambda: theirs(h @ w.T + b))
            print(row(name, median_us(lambda: compiled(th)), reference and median_us(reference)))


if __name__ == "__main__":
    main()
