"""Sliding windows: window_gather (im2col) and its adjoint window_scatter (col2im).

Which input element a window reads is given per spatial dim by an int64 table input,
table[o, k] = the input index read by output position o at kernel offset k, or -1 for padding.
Strided and dilated windows, zero, circular, reflect and replicate padding, ceil-mode overhang
and the variable bins of adaptive pools are all just different tables (`window_table`,
`adaptive_table`), so one pair of ops and one pair of kernels serves convolution and every
pool. Tables are O(out * kernel) per dim, small graph constants; attrs stay tiny.

Layouts (D spatial dims): window_gather takes x [N, C, *size] and gives [N, *out, C, *kernel],
so that reshaped to [N, prod(out), C * prod(kernel)] it is the left operand of a convolution's
matmul; window_scatter maps such an array back to [N, C, *size], adding overlapping windows.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import functions as F
from .registry import OpDef, ShapeError, TensorType, register


def window_table(size: int, kernel: int, stride: int, padding: tuple[int, int], dilation: int,
                 mode: str = "zeros") -> np.ndarray:
    """table[o, k] = o * stride + k * dilation - padding[0], mapped into [0, size) by `mode`
    ('zeros' marks outside positions -1); the output count is PyTorch's floor rule over the input
    padded by `padding` (low, high)."""
    out = (size + padding[0] + padding[1] - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ShapeError(f"window of size {dilation * (kernel - 1) + 1} does not fit an input of size {size} "
                         f"padded by {list(padding)}")
    index = np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * dilation - padding[0]
    if mode == "zeros":
        return np.where((index >= 0) & (index < size), index, -1).astype(np.int64)
    if mode == "circular":
        return np.mod(index, size).astype(np.int64)
    if mode == "reflect":
        period = 2 * (size - 1) if size > 1 else 1
        folded = np.mod(index, period)
        return np.where(folded < size, folded, period - folded).astype(np.int64)
    if mode == "replicate":
        return np.clip(index, 0, size - 1).astype(np.int64)
    raise ValueError(f"unknown padding mode {mode!r}")


def adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive bins: bin o covers [floor(o * size / out), ceil((o + 1) * size / out))."""
    o = np.arange(out)
    return (o * size) // out, -((-(o + 1) * size) // out)


def adaptive_table(size: int, out: int) -> np.ndarray:
    """table[o, k] = start(o) + k for k < the bin's length, -1 after it (bins differ in length)."""
    start, end = adaptive_bins(size, out)
    index = start[:, None] + np.arange(int((end - start).max()))[None, :]
    return np.where(index < end[:, None], index, -1).astype(np.int64)


def _spatial_indices(tables: Sequence[np.ndarray], padded: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Broadcast index arrays [*out, *kernel] per dim, padding (-1) sent to the extra last element."""
    dims = len(tables)
    indices = []
    for d, t in enumerate(tables):
        shape = [1] * (2 * dims)
        shape[d], shape[dims + d] = t.shape
        indices.append(np.where(t < 0, padded[d], t).reshape(shape))
    return tuple(indices)


def _to_windows_last(a: np.ndarray, dims: int) -> np.ndarray:
    """[N, C, *out, *kernel] -> [N, *out, C, *kernel]."""
    return np.ascontiguousarray(np.moveaxis(a, 1, 1 + dims))


def _check_tables(name: str, x_spatial: int, tables: Sequence[TensorType]) -> None:
    if any(t.dtype != "int64" or t.ndim != 2 for t in tables) or not tables:
        raise ShapeError(f"{name}: expected one int64 [out, kernel] table per spatial dim, got "
                         f"{[f'{t.dtype}{list(t.shape)}' for t in tables]}")
    if x_spatial != len(tables):
        raise ShapeError(f"{name}: {x_spatial} spatial dims but {len(tables)} tables")


def _gather_infer(x: TensorType, *tables: TensorType, pad_value: float) -> TensorType:
    _check_tables("window_gather", x.ndim - 2, tables)
    out, kernel = tuple(t.shape[0] for t in tables), tuple(t.shape[1] for t in tables)
    return TensorType((x.shape[0],) + out + (x.shape[1],) + kernel, x.dtype)


def _gather_reference(x: np.ndarray, *tables: np.ndarray, pad_value: float) -> np.ndarray:
    dims = len(tables)
    padded = np.pad(x, [(0, 0), (0, 0)] + [(0, 1)] * dims, constant_values=pad_value)
    picked = padded[(slice(None), slice(None)) + _spatial_indices(tables, x.shape[2:])]
    return _to_windows_last(picked, dims)


def _gather_gradient(ins, out, g, pad_value):
    x, *tables = ins
    return (window_scatter(g, tables, tuple(x.shape[2:])),) + (None,) * len(tables)


def _scatter_infer(col: TensorType, *tables: TensorType, size: tuple[int, ...]) -> TensorType:
    dims = len(tables)
    _check_tables("window_scatter", len(size), tables)
    expected = tuple(t.shape[0] for t in tables) + (None,) + tuple(t.shape[1] for t in tables)
    if col.ndim != 2 * dims + 2 or any(e is not None and e != s for e, s in zip(expected, col.shape[1:])):
        raise ShapeError(f"window_scatter: windows {list(col.shape)} do not match tables "
                         f"{[list(t.shape) for t in tables]}")
    return TensorType((col.shape[0], col.shape[1 + dims]) + tuple(size), col.dtype)


def _scatter_reference(col: np.ndarray, *tables: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    dims = len(tables)
    n, c = col.shape[0], col.shape[1 + dims]
    padded = np.zeros((n, c) + tuple(s + 1 for s in size), col.dtype)
    np.add.at(padded, (slice(None), slice(None)) + _spatial_indices(tables, size), np.moveaxis(col, 1 + dims, 1))
    return np.ascontiguousarray(padded[(slice(None), slice(None)) + tuple(slice(0, s) for s in size)])


def _scatter_gradient(ins, out, g, size):
    col, *tables = ins
    return (window_gather(g, tables, 0.0),) + (None,) * len(tables)


def window_gather(x, tables: Sequence, pad_value: float = 0.0):
    return F.apply("window_gather", x, *tables, pad_value=float(pad_value))


def window_scatter(col, tables: Sequence, size: Sequence[int]):
    return F.apply("window_scatter", col, *tables, size=tuple(int(s) for s in size))


register(OpDef("window_gather", "index", _gather_infer, _gather_reference, _gather_gradient,
               doc="x [N, C, *size] -> windows [N, *out, C, *kernel] read through per-dim index tables "
                   "(-1: pad_value)"))
register(OpDef("window_scatter", "index", _scatter_infer, _scatter_reference, _scatter_gradient,
               doc="windows [N, *out, C, *kernel] -> [N, C, *size], overlapping windows added (the adjoint "
                   "of window_gather)"))
