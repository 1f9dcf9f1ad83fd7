"""softmax and log_softmax along one dim: ops of their own, so the lowering makes each one row
kernel (max, sum of exponentials and the result in three passes over a row that stays in cache)
instead of five kernels with two broadcasts; their gradients are written with other ops."""
from __future__ import annotations

import numpy as np

from . import functions as F
from .registry import OpDef, ShapeError, TensorType, register


def _infer(name: str):
    def infer(a: TensorType, dim: int) -> TensorType:
        if not 0 <= dim < max(a.ndim, 1):
            raise ShapeError(f"{name}: dim {dim} out of range for shape {list(a.shape)}")
        if not a.dtype.startswith("float"):
            raise ShapeError(f"{name}: expected a floating point input, got {a.dtype}")
        return a
    return infer


def _shifted(a: np.ndarray, dim: int) -> np.ndarray:
    if a.ndim == 0:
        return a - a
    with np.errstate(invalid="ignore"):  # a row of -inf gives NaN, as in PyTorch
        return a - np.amax(a, axis=dim, keepdims=True)


def _softmax_ref(a: np.ndarray, dim: int) -> np.ndarray:
    e = np.exp(_shifted(a, dim))
    return (e / (np.sum(e, axis=dim, keepdims=True) if a.ndim else e)).astype(a.dtype)


def _log_softmax_ref(a: np.ndarray, dim: int) -> np.ndarray:
    shifted = _shifted(a, dim)
    total = np.sum(np.exp(shifted), axis=dim, keepdims=True) if a.ndim else np.exp(shifted)
    return (shifted - np.log(total)).astype(a.dtype)


def _dims(out, dim: int) -> tuple[int, ...]:
    return (dim,) if out.ndim else ()


def _softmax_grad(ins, out, g, dim):
    # d softmax: out * (g - sum(g * out))
    return (F.mul(out, F.sub(g, F.sum(F.mul(g, out), _dims(out, dim), keepdim=True))),)


def _log_softmax_grad(ins, out, g, dim):
    # d log_softmax: g - softmax * sum(g), softmax being exp(out)
    return (F.sub(g, F.mul(F.exp(out), F.sum(g, _dims(out, dim), keepdim=True))),)


register(OpDef("softmax", "row", _infer("softmax"), _softmax_ref, _softmax_grad))
register(OpDef("log_softmax", "row", _infer("log_softmax"), _log_softmax_ref, _log_softmax_grad))
