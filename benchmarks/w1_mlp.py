"""W1: the MLP 784-512-512-10 with ReLU, inference at batch 1 and 128, and a train step at batch
128 with cross-entropy and SGD."""
from __future__ import annotations

from typing import Any

import numpy as np

from .case import Case

LAYERS = ("0", "2", "4")  # the Linear layers' names in the Sequential
LEARNING_RATE = 0.01


def mlp(nn: Any, tensor: Any) -> Any:
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def activations(xp: Any, state: dict, x: Any) -> list:
    """The input, each hidden layer after its ReLU, and the logits."""
    values = [x]
    for i, name in enumerate(LAYERS):
        z = values[-1] @ state[f"{name}.weight"].T + state[f"{name}.bias"]
        values.append(z if i == len(LAYERS) - 1 else xp.maximum(z, 0))
    return values


def forward(xp: Any, state: dict, x: Any) -> Any:
    return activations(xp, state, x)[-1]


def sgd_train_step(xp: Any, state: dict, x: Any, target: Any) -> tuple[Any, dict]:
    """Cross-entropy (mean over the batch), its gradient by hand, and one SGD update."""
    values = activations(xp, state, x)
    logits = values[-1]
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    exp = xp.exp(shifted)
    total = xp.sum(exp, axis=1, keepdims=True)
    one_hot = (target[:, None] == xp.arange(logits.shape[1])).astype(logits.dtype)
    loss = -xp.sum(one_hot * (shifted - xp.log(total))) / len(x)
    grad = (exp / total - one_hot) / len(x)  # d loss / d logits
    new_state = {}
    for i in reversed(range(len(LAYERS))):
        weight, bias = f"{LAYERS[i]}.weight", f"{LAYERS[i]}.bias"
        new_state[weight] = state[weight] - LEARNING_RATE * (grad.T @ values[i])
        new_state[bias] = state[bias] - LEARNING_RATE * xp.sum(grad, axis=0)
        if i:
            grad = (grad @ state[weight]) * (values[i] > 0)
    return loss, new_state


def cases() -> list[Case]:
    rng = np.random.default_rng(1)
    x1, x128 = (rng.standard_normal((batch, 784)).astype(np.float32) for batch in (1, 128))
    target = rng.integers(0, 10, 128)
    return [
        Case("W1_inference_b1", "W1 MLP inference, batch 1", mlp, (x1,), forward),
        Case("W1_inference_b128", "W1 MLP inference, batch 128", mlp, (x128,), forward),
        Case("W1_train_b128", "W1 MLP train step (cross-entropy, SGD), batch 128", mlp, (x128, target),
             sgd_train_step, loss=("CrossEntropyLoss", {}), optimizer=("SGD", {"lr": LEARNING_RATE}), tolerance=1e-3),
    ]
