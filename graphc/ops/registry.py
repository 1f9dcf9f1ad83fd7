"""The op table: one OpDef per op holds its shape/dtype rule, numpy reference and gradient rule.

LLVM emitters live in a parallel table in `graphc.lower` so the IR never imports llvmlite.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


class ShapeError(ValueError):
    """An op was given shapes or dtypes it cannot take."""


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str

    @property
    def ndim(self) -> int:
        return len(self.shape)


# infer(*input_types, **attrs) -> TensorType
InferRule = Callable[..., TensorType]
# gradient(inputs, output, grad_output, **attrs) -> one gradient (or None) per input;
# written with graphc op functions so it serves eager autograd and backward-graph building.
GradientRule = Callable[..., tuple[Any, ...]]


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: str  # elementwise | reduce | shape | matmul | index
    infer: InferRule
    reference: Callable[..., np.ndarray]
    gradient: GradientRule | None = None
    doc: str = ""


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} registered twice")
    OPS[op.name] = op
    return op


def broadcast_shapes(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy/PyTorch broadcasting, with an error naming the op and shapes."""
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0} - {1}
        if len(dims) > 1:
            shown = " and ".join(str(list(s)) for s in shapes)
            raise ShapeError(f"{op}: shapes {shown} cannot be broadcast together")
        out.append(dims.pop() if dims else 1)
    return tuple(out)
