"""matmul with optional transposed operands (so W.t() feeds a matmul without a copy),
matmul_epilogue (a matmul with elementwise work fused after it) and one_hot."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import functions as F
from . import fused
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
    if b.ndim == 2 and a.ndim > 2 and transpose_a:  # batched a^T, shared b: per-batch products, summed
        da = F.transpose(F.matmul(g, b, False, not transpose_b), -1, -2)
        per_batch = F.matmul(g, a, True, True) if transpose_b else F.matmul(a, g, False, False)
        return da, F.sum(per_batch, tuple(range(a.ndim - 2)))
    if b.ndim == 2 and a.ndim > 2:  # batch folded into rows: d(b) sums over the batch
        a2, g2 = F.reshape(a, (-1, a.shape[-1])), F.reshape(g, (-1, g.shape[-1]))
        da = F.matmul(g, b, False, not transpose_b)
        db = F.matmul(g2, a2, True, False) if transpose_b else F.matmul(a2, g2, True, False)
        return da, db
    da = F.matmul(b, g, transpose_b, True) if transpose_a else F.matmul(g, b, False, not transpose_b)
    db = F.matmul(g, a, True, transpose_a) if transpose_b else F.matmul(a, g, not transpose_a, False)
    return da, db


register(OpDef("matmul", "matmul", _matmul_infer, _matmul_ref, _matmul_grad))


def epilogue_strides(shape: Sequence[int], out_shape: Sequence[int]) -> tuple[int, int] | None:
    """(row, column) element strides of a contiguous operand of `shape` broadcast to `out_shape`
    and read at out viewed as [rows, N] (rows: every dim but the last): a bias [N] gives (0, 1),
    a residual of out's shape (N, 1), a scalar (0, 0). None when the batch and row dims of the
    operand do not step as one flat row index (a [B, 1, N] operand under a [B, M, N] out)."""
    lead = len(out_shape) - len(shape)
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(0 if n == 1 else step)
        step *= n
    strides = [0] * lead + strides[::-1]
    rows = out_shape[:-1]
    dims = [(s, math.prod(rows[d + 1:])) for d, s in enumerate(strides[:-1]) if rows[d] > 1]
    row = dims[-1][0] if dims else 0  # the innermost row dim of size > 1 steps one flat row
    if any(s != row * inner for s, inner in dims):
        return None
    return row, strides[-1]


def _epilogue_infer(a: TensorType, b: TensorType, *extra: TensorType, transpose_a: bool, transpose_b: bool,
                    body: fused.Body) -> TensorType:
    product = _matmul_infer(a, b, transpose_a, transpose_b)
    result = fused._infer(product, *extra, body=body)
    if (result.shape, result.dtype) != (product.shape, product.dtype):
        raise ShapeError(f"matmul_epilogue: body {body!r} gives {result.dtype}{list(result.shape)}, "
                         f"not the product's {product.dtype}{list(product.shape)}")
    for t in extra:
        if epilogue_strides(t.shape, product.shape) is None:
            raise ShapeError(f"matmul_epilogue: operand {list(t.shape)} cannot be read by rows and columns "
                             f"of {list(product.shape)}")
    return product


def _epilogue_ref(a, b, *extra, transpose_a, transpose_b, body):
    return fused._reference(np.asarray(_matmul_ref(a, b, transpose_a, transpose_b)), *extra, body=body)


# out = body(a @ b, extra...): in0 of `body` is the product, in1.. the operands after a and b.
# Made by fuse_matmul_epilogue after autodiff, so no gradient rule. A separate op rather than an
# attribute of matmul, so that matmul keeps two operands and a gradient for every pass that matches it.
register(OpDef("matmul_epilogue", "matmul", _epilogue_infer, _epilogue_ref,
               doc="matmul_epilogue: body(a @ b, extra...) in one kernel, the body applied before each store"))


def _one_hot_infer(a: TensorType, num_classes: int, dtype: str) -> TensorType:
    if a.dtype != "int64":
        raise ShapeError(f"one_hot: expected int64 class indices, got {a.dtype}")
    return TensorType(a.shape + (num_classes,), dtype)


register(OpDef("one_hot", "index", _one_hot_infer,
               lambda a, num_classes, dtype: (a[..., None] == np.arange(num_classes)).astype(dtype)))
