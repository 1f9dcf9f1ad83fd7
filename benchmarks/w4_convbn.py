"""W4: conv3x3 16->32 pad 1, BatchNorm (eval), ReLU, conv3x3 32->32 pad 1, BatchNorm (eval), ReLU,
global average pool, linear 32->10, inference on 16x16x32x32."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import conv_reference as C
from .case import Case

EPS = 1e-5


def conv_bn_net(nn: Any, tensor: Any) -> Any:
    import collections
    model = nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(16, 32, 3, padding=1)), ("bn1", nn.BatchNorm2d(32)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(32, 32, 3, padding=1)), ("bn2", nn.BatchNorm2d(32)), ("relu2", nn.ReLU()),
        ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(32, 10))]))
    rng = np.random.default_rng(5)  # running statistics as after training, so eval BatchNorm is not the identity
    for bn in (model.bn1, model.bn2):
        bn.running_mean.copy_(tensor(rng.standard_normal(32).astype(np.float32) * 0.1))
        bn.running_var.copy_(tensor(rng.uniform(0.5, 1.5, 32).astype(np.float32)))
    return model.eval()


def _bn(xp: Any, s: dict, name: str, x: Any) -> Any:
    scale = s[f"{name}.weight"] / xp.sqrt(s[f"{name}.running_var"] + EPS)
    shift = s[f"{name}.bias"] - s[f"{name}.running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def forward(xp: Any, s: dict, x: Any) -> Any:
    x = xp.maximum(_bn(xp, s, "bn1", C.conv2d(xp, x, s["conv1.weight"], s["conv1.bias"], padding=1)), 0)
    x = xp.maximum(_bn(xp, s, "bn2", C.conv2d(xp, x, s["conv2.weight"], s["conv2.bias"], padding=1)), 0)
    return x.mean(axis=(2, 3)) @ s["fc.weight"].T + s["fc.bias"]


def cases() -> list[Case]:
    x = np.random.default_rng(4).standard_normal((16, 16, 32, 32)).astype(np.float32)
    return [Case("W4_inference_b16", "W4 conv-BN-ReLU x2, pool, linear inference, batch 16", conv_bn_net, (x,),
                 forward, tolerance=1e-4)]
