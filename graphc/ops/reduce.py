"""Reductions over a tuple of dims (normalised, non-negative), with keepdim."""
from __future__ import annotations

import numpy as np

from . import functions as F
from .registry import OpDef, ShapeError, TensorType, register


def _reduce_infer(name: str):
    def infer(a: TensorType, dims: tuple[int, ...], keepdim: bool) -> TensorType:
        if any(not 0 <= d < a.ndim for d in dims):
            raise ShapeError(f"{name}: dims {list(dims)} out of range for shape {list(a.shape)}")
        shape = tuple(1 if i in dims else s for i, s in enumerate(a.shape) if keepdim or i not in dims)
        dtype = "int64" if a.dtype in ("bool", "int64") and name in ("sum", "prod") else a.dtype
        return TensorType(shape, dtype)
    return infer


def _kept(t, shape, dims, keepdim):
    """`t` reshaped so reduced dims are size 1 (ready to expand back to `shape`)."""
    return t if keepdim else F.reshape(t, tuple(1 if i in dims else s for i, s in enumerate(shape)))


def _sum_grad(ins, out, g, dims, keepdim):
    return (F.expand(_kept(g, ins[0].shape, dims, keepdim), ins[0].shape),)


def _amax_grad(ins, out, g, dims, keepdim):
    # the gradient is shared equally between tied maxima, as PyTorch does
    x = ins[0]
    mask = F.cast(F.eq(x, F.expand(_kept(out, x.shape, dims, keepdim), x.shape)), x.dtype)
    count = F.sum(mask, dims, True)
    share = F.div(_kept(g, x.shape, dims, keepdim), count)
    return (F.mul(mask, F.expand(share, x.shape)),)


register(OpDef("sum", "reduce", _reduce_infer("sum"),
               lambda a, dims, keepdim: np.asarray(np.sum(a, axis=dims, keepdims=keepdim,
                                                          dtype=np.int64 if a.dtype.kind in "bi" else a.dtype)),
               _sum_grad))
register(OpDef("amax", "reduce", _reduce_infer("amax"),
               lambda a, dims, keepdim: np.asarray(np.amax(a, axis=dims, keepdims=keepdim)), _amax_grad))


def _prod_grad(ins, out, g, dims, keepdim):
    # d prod / d x_i is the product of the others: out / x_i without zeros; with one zero in a
    # reduced group only the zero gets a gradient (the product of the rest); with two, none does
    x = ins[0]
    zero = F.eq(x, 0)
    zeros = F.expand(F.sum(F.cast(zero, "int64"), dims, True), x.shape)
    others = F.expand(F.prod(F.where(zero, 1.0, x), dims, True), x.shape)
    full = F.expand(_kept(out, x.shape, dims, keepdim), x.shape)
    share = F.where(F.eq(zeros, 0), F.div(full, F.where(zero, 1.0, x)),
                    F.where(F.logical_and(zero, F.eq(zeros, 1)), others, 0.0))
    return (F.mul(F.expand(_kept(g, x.shape, dims, keepdim), x.shape), share),)


register(OpDef("prod", "reduce", _reduce_infer("prod"),
               lambda a, dims, keepdim: np.asarray(np.prod(a, axis=dims, keepdims=keepdim,
                                                           dtype=np.int64 if a.dtype.kind in "bi" else a.dtype)),
               _prod_grad))


def _argmax_infer(a: TensorType, dim: int, keepdim: bool) -> TensorType:
    if not 0 <= dim < max(a.ndim, 1) or (a.ndim and a.shape[dim] == 0):
        raise ShapeError(f"argmax: cannot reduce dim {dim} of shape {list(a.shape)}")
    if a.dtype == "bool":
        raise ShapeError("argmax: not implemented for bool")
    shape = tuple(1 if i == dim else s for i, s in enumerate(a.shape) if keepdim or i != dim)
    return TensorType(shape, "int64")


def _argmax(a: np.ndarray, dim: int, keepdim: bool) -> np.ndarray:
    """The first index of the maximum along `dim`; NaN counts as the maximum (as PyTorch)."""
    if a.ndim == 0:
        return np.zeros((), np.int64)
    return np.asarray(np.argmax(a, axis=dim, keepdims=keepdim), dtype=np.int64)


register(OpDef("argmax", "reduce", _argmax_infer, _argmax, None,
               doc="first index of the largest value along dim (NaN is largest); not differentiable"))
