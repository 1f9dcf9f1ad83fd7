"""Checks: ops that pass their input through unchanged and fail when a precondition is broken.

A check raises its error eagerly (the numpy reference raises it); in native code its kernel
reports the failure as a status the entry point returns, and the runtime raises the same error
naming the module path, before any result or state is committed. Users read the checked value,
so dead-code elimination keeps a check exactly as long as its value matters.
"""
from __future__ import annotations

import numpy as np

from .registry import OpDef, ShapeError, TensorType, register

from runtime.abi import CHECK_ERRORS  # the errors a check may raise, by name (the artifact carries names)


def _index_infer(a: TensorType, high: int, ignore: int, message: str, error: str) -> TensorType:
    if a.dtype != "int64":
        raise ShapeError(f"check_index: expected int64 indices, got {a.dtype}")
    if error not in CHECK_ERRORS:
        raise ShapeError(f"check_index: unknown error type {error!r}")
    return a


def out_of_range(a: np.ndarray, high: int, ignore: int) -> np.ndarray:
    """The indices of `a` outside [0, high) other than `ignore`, in order."""
    return a[(a != ignore) & ((a < 0) | (a >= high))]


def _index_reference(a: np.ndarray, high: int, ignore: int, message: str, error: str) -> np.ndarray:
    bad = out_of_range(a, high, ignore)
    if bad.size:
        raise CHECK_ERRORS[error](message.format(value=int(bad.flat[0])))
    return a


register(OpDef("check_index", "check", _index_infer, _index_reference, None,
               doc="x, failing unless every element other than `ignore` lies in [0, high)"))


def _range_infer(a: TensorType, low: float, high: float, message: str, error: str) -> TensorType:
    if not a.dtype.startswith("float"):
        raise ShapeError(f"check_range: expected floating point values, got {a.dtype}")
    if error not in CHECK_ERRORS:
        raise ShapeError(f"check_range: unknown error type {error!r}")
    return a


def outside_range(a: np.ndarray, low: float, high: float) -> np.ndarray:
    """The flat positions of `a` not in [low, high], in order; NaN is never in range."""
    return np.flatnonzero(~((a >= low) & (a <= high)))


def _range_reference(a: np.ndarray, low: float, high: float, message: str, error: str) -> np.ndarray:
    bad = outside_range(a, low, high)
    if bad.size:
        raise CHECK_ERRORS[error](message.format(value=int(bad[0])))
    return a


# the value passes through, and so does its gradient: a checked input may be trained
register(OpDef("check_range", "check", _range_infer, _range_reference, lambda ins, out, g, **attrs: (g,),
               doc="x, failing unless every element lies in [low, high] (NaN fails); {value} is its flat position"))
