"""W5: sgemm 1024x1024x1024 in float32, as a compiled `x @ w` model."""
from __future__ import annotations

from typing import Any

import numpy as np

from .case import Case

N = 1024


def matmul_model(nn: Any, tensor: Any) -> Any:
    class MatMul(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(tensor(np.random.default_rng(50).standard_normal((N, N)).astype(np.float32)))

        def forward(self, x: Any) -> Any:
            return x @ self.w
    return MatMul()


def matmul(xp: Any, state: dict, x: Any) -> Any:
    return x @ state["w"]


def cases() -> list[Case]:
    x = np.random.default_rng(5).standard_normal((N, N)).astype(np.float32)
    return [Case("W5_sgemm", f"W5 sgemm {N}x{N}x{N} (float32)", matmul_model, (x,), matmul)]
