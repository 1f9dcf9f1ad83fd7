"""Ops that move data without arithmetic: reshape, permute, expand."""
from __future__ import annotations

import numpy as np

from ..arrays import c_contiguous
from . import functions as F
from .registry import OpDef, ShapeError, TensorType, register


def _reshape_infer(a: TensorType, shape: tuple[int, ...]) -> TensorType:
    if int(np.prod(shape, dtype=np.int64)) != int(np.prod(a.shape, dtype=np.int64)):
        raise ShapeError(f"reshape: shape {list(shape)} is invalid for input of shape {list(a.shape)}")
    return TensorType(tuple(shape), a.dtype)


def _permute_infer(a: TensorType, dims: tuple[int, ...]) -> TensorType:
    if sorted(dims) != list(range(a.ndim)):
        raise ShapeError(f"permute: dims {list(dims)} do not match shape {list(a.shape)}")
    return TensorType(tuple(a.shape[d] for d in dims), a.dtype)


def _expand_infer(a: TensorType, shape: tuple[int, ...]) -> TensorType:
    lead = len(shape) - a.ndim
    if lead < 0 or any(s not in (1, t) for s, t in zip(a.shape, shape[lead:])):
        raise ShapeError(f"expand: shape {list(a.shape)} cannot be expanded to {list(shape)}")
    return TensorType(tuple(shape), a.dtype)


register(OpDef("reshape", "shape", _reshape_infer, lambda a, shape: np.reshape(a, shape),
               lambda ins, out, g, shape: (F.reshape(g, ins[0].shape),)))
register(OpDef("permute", "shape", _permute_infer, lambda a, dims: c_contiguous(np.transpose(a, dims)),
               lambda ins, out, g, dims: (F.permute(g, tuple(int(i) for i in np.argsort(dims))),)))
register(OpDef("expand", "shape", _expand_infer, lambda a, shape: c_contiguous(np.broadcast_to(a, shape)),
               lambda ins, out, g, shape: (F.sum_to(g, ins[0].shape),)))
register(OpDef("detach", "shape", lambda a: a, lambda a: a, None,
               doc="identity that stops gradients; lowers to an alias"))


def _window_fits(op: str, shape: tuple[int, ...], starts, steps, window) -> None:
    if not len(shape) == len(starts) == len(steps) == len(window):
        raise ShapeError(f"{op}: starts {list(starts)}, steps {list(steps)} and shape {list(window)} "
                         f"do not match the rank of {list(shape)}")
    for n, s, st, w in zip(shape, starts, steps, window):
        last = s + (w - 1) * st
        if st == 0 or w < 0 or (w and not (0 <= s < n and 0 <= last < n)):
            raise ShapeError(f"{op}: window starts {list(starts)} steps {list(steps)} shape {list(window)} "
                             f"does not fit in {list(shape)}")


def window(starts, steps, shape) -> tuple[slice, ...]:
    """numpy's index of the strided window: shape[d] elements from starts[d], steps[d] apart
    (a negative step walks backwards: flip)."""
    return tuple(slice(s, s + w * st if s + w * st >= 0 else None, st) for s, st, w in zip(starts, steps, shape))


def _slice_infer(a: TensorType, starts, steps, shape) -> TensorType:
    _window_fits("slice", a.shape, starts, steps, shape)
    return TensorType(tuple(shape), a.dtype)


def _slice_scatter_infer(g: TensorType, starts, steps, shape) -> TensorType:
    _window_fits("slice_scatter", tuple(shape), starts, steps, g.shape)
    return TensorType(tuple(shape), g.dtype)


def _slice_scatter(g: np.ndarray, starts, steps, shape) -> np.ndarray:
    out = np.zeros(shape, g.dtype)
    out[window(starts, steps, g.shape)] = g
    return out


register(OpDef("slice", "shape", _slice_infer,
               lambda a, starts, steps, shape: c_contiguous(a[window(starts, steps, shape)]),
               lambda ins, out, g, starts, steps, shape: (F.slice_scatter(g, starts, steps, ins[0].shape),),
               doc="the strided window a[starts + i * steps] of `shape` (basic indexing, split, narrow, flip)"))
register(OpDef("slice_scatter", "shape", _slice_scatter_infer, _slice_scatter,
               lambda ins, out, g, starts, steps, shape: (F.slice(g, starts, steps, ins[0].shape),),
               doc="zeros of `shape` with g written into the strided window (slice's gradient)"))


def _cat_infer(*types: TensorType, dim: int) -> TensorType:
    first = types[0]
    for t in types:
        if t.ndim != first.ndim or t.dtype != first.dtype or any(
                a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != dim):
            raise ShapeError(f"cat: tensors of shapes {[list(t.shape) for t in types]} and dtypes "
                             f"{[t.dtype for t in types]} cannot be joined along dim {dim}")
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in types)
    return TensorType(tuple(shape), first.dtype)


def _cat_grad(ins, out, g, dim):
    grads, offset = [], 0
    for t in ins:
        starts = tuple(offset if d == dim else 0 for d in range(g.ndim))
        grads.append(F.slice(g, starts, (1,) * g.ndim, t.shape))
        offset += t.shape[dim]
    return tuple(grads)


register(OpDef("cat", "shape", _cat_infer, lambda *arrays, dim: np.concatenate(arrays, axis=dim), _cat_grad,
               doc="inputs joined along `dim` (same dtype; other dims equal)"))
