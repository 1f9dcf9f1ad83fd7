"""W3: the tutorial's net y = sqrt(x**2 + b) @ W (x 10x5, parameters b of shape 5 and W 5x3), a
train step with MSELoss(reduction='sum') and Adam."""
from __future__ import annotations

from typing import Any

import numpy as np

from .case import Case

LEARNING_RATE = 0.01
BETAS, EPS = (0.9, 0.999), 1e-8  # Adam's defaults in graphc and PyTorch


def tutorial_net(nn: Any, tensor: Any) -> Any:
    class Tutorial(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            rng = np.random.default_rng(30)
            self.b = nn.Parameter(tensor(rng.uniform(0.5, 1.5, 5).astype(np.float32)))
            self.W = nn.Parameter(tensor(rng.standard_normal((5, 3)).astype(np.float32)))

        def forward(self, x: Any) -> Any:
            return (x ** 2 + self.b).sqrt() @ self.W
    return Tutorial()


def adam_state(params: dict) -> dict:
    """The parameters, Adam's moments (zero) and its step count."""
    state = dict(params, t=np.zeros((), np.float32))
    for name in params:
        state[f"m.{name}"] = state[f"v.{name}"] = np.zeros_like(params[name])
    return state


def adam_train_step(xp: Any, state: dict, x: Any, target: Any) -> tuple[Any, dict]:
    """The summed squared error, its gradient by hand, and one Adam update."""
    (beta1, beta2), b, W = BETAS, state["b"], state["W"]
    root = xp.sqrt(x ** 2 + b)
    error = root @ W - target
    loss = xp.sum(error ** 2)
    d_out = 2 * error
    grads = {"b": xp.sum((d_out @ W.T) / (2 * root), axis=0), "W": root.T @ d_out}
    t = state["t"] + 1
    new_state = {"t": t}
    for name, grad in grads.items():
        m = beta1 * state[f"m.{name}"] + (1 - beta1) * grad
        v = beta2 * state[f"v.{name}"] + (1 - beta2) * grad * grad
        step = LEARNING_RATE * (m / (1 - beta1 ** t)) / (xp.sqrt(v / (1 - beta2 ** t)) + EPS)
        new_state[name], new_state[f"m.{name}"], new_state[f"v.{name}"] = state[name] - step, m, v
    return loss, new_state


def cases() -> list[Case]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 5)).astype(np.float32)
    # the target comes from the same net with other positive b, so training keeps x**2 + b > 0
    target = np.sqrt(x ** 2 + rng.uniform(0.5, 1.5, 5)) @ rng.standard_normal((5, 3))
    return [Case("W3_train", "W3 tutorial net train step (MSE sum, Adam)", tutorial_net,
                 (x, target.astype(np.float32)), adam_train_step, loss=("MSELoss", {"reduction": "sum"}),
                 optimizer=("Adam", {"lr": LEARNING_RATE}), reference_state=adam_state, tolerance=1e-3)]
