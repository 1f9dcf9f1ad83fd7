"""W2: LeNet (conv5x5 1->6 pad 2, ReLU, max pool 2; conv5x5 6->16, ReLU, max pool 2; 400-120-84-10)
on 1x28x28 digits: inference at batch 64, and a train step at batch 64 with cross-entropy and SGD."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import conv_reference as C
from .case import Case

LEARNING_RATE = 0.01
LINEAR = ("fc1", "fc2", "fc3")


def lenet(nn: Any, tensor: Any) -> Any:
    import collections
    return nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(1, 6, 5, padding=2)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(400, 120)), ("relu3", nn.ReLU()), ("fc2", nn.Linear(120, 84)), ("relu4", nn.ReLU()),
        ("fc3", nn.Linear(84, 10))]))


def _forward(xp: Any, s: dict, x: Any) -> dict:
    v = {"x": x}
    v["c1"] = C.conv2d(xp, x, s["conv1.weight"], s["conv1.bias"], padding=2)
    v["p1"] = C.max_pool2(xp, xp.maximum(v["c1"], 0))
    v["c2"] = C.conv2d(xp, v["p1"], s["conv2.weight"], s["conv2.bias"])
    v["p2"] = C.max_pool2(xp, xp.maximum(v["c2"], 0))
    h = [v["p2"].reshape(x.shape[0], -1)]
    for i, name in enumerate(LINEAR):
        z = h[-1] @ s[f"{name}.weight"].T + s[f"{name}.bias"]
        h.append(z if i == len(LINEAR) - 1 else xp.maximum(z, 0))
    v["h"] = h
    return v


def forward(xp: Any, state: dict, x: Any) -> Any:
    return _forward(xp, state, x)["h"][-1]


def sgd_train_step(xp: Any, s: dict, x: Any, target: Any) -> tuple[Any, dict]:
    """Cross-entropy (mean), the whole backward by hand, and one SGD update."""
    v = _forward(xp, s, x)
    h, logits = v["h"], v["h"][-1]
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    exp = xp.exp(shifted)
    total = xp.sum(exp, axis=1, keepdims=True)
    one_hot = (target[:, None] == xp.arange(logits.shape[1])).astype(logits.dtype)
    loss = -xp.sum(one_hot * (shifted - xp.log(total))) / len(x)
    grad = (exp / total - one_hot) / len(x)
    grads = {}
    for i in reversed(range(len(LINEAR))):
        grads[f"{LINEAR[i]}.weight"], grads[f"{LINEAR[i]}.bias"] = grad.T @ h[i], xp.sum(grad, axis=0)
        grad = grad @ s[f"{LINEAR[i]}.weight"]
        if i:
            grad = grad * (h[i] > 0)
    grad = grad.reshape(v["p2"].shape)
    relu2 = xp.maximum(v["c2"], 0)
    grad = C.max_pool2_grad(xp, relu2, v["p2"], grad) * (v["c2"] > 0)
    d_p1, grads["conv2.weight"], grads["conv2.bias"] = C.conv2d_grads(xp, v["p1"], s["conv2.weight"], grad)
    relu1 = xp.maximum(v["c1"], 0)
    grad = C.max_pool2_grad(xp, relu1, v["p1"], d_p1) * (v["c1"] > 0)
    _, grads["conv1.weight"], grads["conv1.bias"] = C.conv2d_grads(xp, x, s["conv1.weight"], grad, padding=2)
    return loss, {name: s[name] - LEARNING_RATE * grads[name] for name in s}


def cases() -> list[Case]:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    target = rng.integers(0, 10, 64)
    return [
        Case("W2_inference_b64", "W2 LeNet inference, batch 64", lenet, (x,), forward, tolerance=1e-4),
        Case("W2_train_b64", "W2 LeNet train step (cross-entropy, SGD), batch 64", lenet, (x, target),
             sgd_train_step, loss=("CrossEntropyLoss", {}), optimizer=("SGD", {"lr": LEARNING_RATE}), tolerance=1e-3),
    ]
