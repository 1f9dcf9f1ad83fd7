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
