"""matmul with optional transposed operands (so W.t() feeds a matmul without a copy),
matmul_epilogue (a matmul with elementwise work fused after it) and one_hot."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import functions as F
from . import fused
from .registry import OpDef, ShapeError, TensorType, register


def _matmul_infer(a: TensorType, b: TensorType, transpose_a: bool, transpose_b: bool, packed_n: int = 0) -> TensorType:
    if a.dtype != b.dtype:
        raise ShapeError(f"matmul: expected both operands to have the same dtype, got {a.dtype} and {b.dtype}")
    if packed_n:  # b is pack_panels of a [K, packed_n] matrix: [panels, K, NR]
        if b.ndim != 3 or transpose_b or b.shape[0] * b.shape[2] < packed_n or (b.shape[0] - 1) * b.shape[2] >= packed_n:
            raise ShapeError(f"matmul: {list(b.shape)} are not the panels of a matrix of {packed_n} columns")
        b = TensorType((b.shape[1], packed_n), b.dtype)
    if a.ndim < 2 or b.ndim < 2 or (b.ndim > 2 and a.shape[:-2] != b.shape[:-2]):
        raise ShapeError(f"matmul: unsupported operand shapes {list(a.shape)} and {list(b.shape)}")
    m, k = (a.shape[-1], a.shape[-2]) if transpose_a else a.shape[-2:]
    k2, n = (b.shape[-1], b.shape[-2]) if transpose_b else b.shape[-2:]
    if k != k2:
        raise ShapeError(f"matmul: shapes {list(a.shape)} and {list(b.shape)} cannot be multiplied "
                         f"({m}x{k} and {k2}x{n})")
    return TensorType(a.shape[:-2] + (m, n), a.dtype)


def _matmul_ref(a, b, transpose_a, transpose_b, packed_n=0):
    if packed_n:
        b = unpack_panels(b, packed_n)
    return np.matmul(np.swapaxes(a, -1, -2) if transpose_a else a, np.swapaxes(b, -1, -2) if transpose_b else b)


def _matmul_grad(ins, out, g, transpose_a, transpose_b, packed_n=0):
    if packed_n:
        raise ValueError("matmul: a product of packed panels is made for inference only, after differentiation")
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


def _pack_infer(b: TensorType, transpose_b: bool, nr: int) -> TensorType:
    if b.ndim != 2 or nr < 1:
        raise ShapeError(f"pack_panels: expected a matrix and a panel width, got {list(b.shape)} and {nr}")
    k, n = (b.shape[1], b.shape[0]) if transpose_b else b.shape
    return TensorType((-(-n // nr), k, nr), b.dtype)


def _pack_ref(b, transpose_b, nr):
    matrix = b.T if transpose_b else b  # [K, N]
    k, n = matrix.shape
    panels = -(-n // nr)
    padded = np.zeros((k, panels * nr), b.dtype)
    padded[:, :n] = matrix
    return np.ascontiguousarray(padded.reshape(k, panels, nr).transpose(1, 0, 2))


def unpack_panels(panels: np.ndarray, n: int) -> np.ndarray:
    """The [K, n] matrix whose pack_panels `panels` are."""
    count, k, nr = panels.shape
    return panels.transpose(1, 0, 2).reshape(k, count * nr)[:, :n]


# pack_panels(b) = op(b) [K, N] as panels of NR columns, [ceil(N / NR), K, NR], zero past N: the
# layout the micro-kernel's tiles read. An inference graph packs a weight once, in its prepare
# graph (prepare.py), and its matmul reads the panels (packed_n = N) instead of packing b on
# every call. Made after differentiation: no gradient rule.
register(OpDef("pack_panels", "shape", _pack_infer, _pack_ref,
               doc="pack_panels: a matrix as the micro-kernel's panels of NR columns, zero-padded"))


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
                    body: fused.Body, packed_n: int = 0) -> TensorType:
    product = _matmul_infer(a, b, transpose_a, transpose_b, packed_n)
    result = fused._infer(product, *extra, body=body)
    if (result.shape, result.dtype) != (product.shape, product.dtype):
        raise ShapeError(f"matmul_epilogue: body {body!r} gives {result.dtype}{list(result.shape)}, "
                         f"not the product's {product.dtype}{list(product.shape)}")
    for t in extra:
        if epilogue_strides(t.shape, product.shape) is None:
            raise ShapeError(f"matmul_epilogue: operand {list(t.shape)} cannot be read by rows and columns "
                             f"of {list(product.shape)}")
    return product


def _epilogue_ref(a, b, *extra, transpose_a, transpose_b, body, packed_n=0):
    return fused._reference(np.asarray(_matmul_ref(a, b, transpose_a, transpose_b, packed_n)), *extra, body=body)


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
