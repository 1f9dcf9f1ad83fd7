"""matmul with optional transposed operands (so W.t() feeds a matmul without a copy) and one_hot."""
from __future__ import annotations

import numpy as np

from . import functions as F
from .registry import OpDef, ShapeError, TensorType, register


def _matmul_infer(a: TensorType, b: TensorType, transpose_a: bool, transpose_b: bool) -> TensorType:
    if a.dtype != b.dtype:
        raise ShapeError(f"matmul: expected both operands to have the same dtype, got {a.dtype} and {b.dtype}")
    if a.ndim < 2 or b.ndim < 2 or (b.ndim > 2 and a.shape[:-2] != b.shape[:-2]):
        raise ShapeError(f"matmul: unsupported operand shapes {list(a.shape)} and {list(b.shape)}")
    m, k = (a.shape[-1], a.shape[-2]) if transpose_a else a.shape[-2:]
    k2, n = (b.shape[-1], b.shape[-2]) if transpose_b else b.shape[-2:]
    if k != k2:
        raise ShapeError(f"matmul: shapes {list(a.shape)} and {list(b.shape)} cannot be multiplied "
                         f"({m}x{k} and {k2}x{n})")
    return TensorType(a.shape[:-2] + (m, n), a.dtype)


def _matmul_ref(a, b, transpose_a, transpose_b):
    return np.matmul(np.swapaxes(a, -1, -2) if transpose_a else a, np.swapaxes(b, -1, -2) if transpose_b else b)


def _matmul_grad(ins, out, g, transpose_a, transpose_b):
    a, b = ins
    if b.ndim == 2 and a.ndim > 2:  # batch folded into rows: d(b) sums over the batch
        a2, g2 = F.reshape(a, (-1, a.shape[-1])), F.reshape(g, (-1, g.shape[-1]))
        da = F.matmul(g, b, False, not transpose_b)
        db = F.matmul(g2, a2, True, False) if transpose_b else F.matmul(a2, g2, True, False)
        return da, db
    da = F.matmul(b, g, transpose_b, True) if transpose_a else F.matmul(g, b, False, not transpose_b)
    db = F.matmul(g, a, True, transpose_a) if transpose_b else F.matmul(a, g, not transpose_a, False)
    return da, db


register(OpDef("matmul", "matmul", _matmul_infer, _matmul_ref, _matmul_grad))


def _one_hot_infer(a: TensorType, num_classes: int, dtype: str) -> TensorType:
    if a.dtype != "int64":
        raise ShapeError(f"one_hot: expected int64 class indices, got {a.dtype}")
    return TensorType(a.shape + (num_classes,), dtype)


register(OpDef("one_hot", "index", _one_hot_infer,
               lambda a, num_classes, dtype: (a[..., None] == np.arange(num_classes)).astype(dtype)))
