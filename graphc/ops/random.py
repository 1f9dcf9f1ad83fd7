"""random_uniform: counter-based random numbers, a pure function of (64-bit key, element index).

Element i of the output is splitmix64's finaliser applied to key + (i + 1) * golden ratio, its top
24 (float32) or 53 (float64) bits scaled into [0, 1). The numpy reference and the LLVM emitter
compute the same integers, so eager and compiled runs draw identical numbers for the same key.
The key is an int64 scalar (its bits read as unsigned): eagerly drawn from graphc's generator,
in compiled graphs a graph input of role `rng`, filled per call by the runners.
"""
from __future__ import annotations

import numpy as np

from .registry import OpDef, ShapeError, TensorType, register

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MANTISSA_BITS = {"float32": 24, "float64": 53}


def random_bits(key: np.ndarray, count: int) -> np.ndarray:
    """The 64 random bits of elements 0..count-1 for `key` (uint64, wrapping arithmetic)."""
    k = np.asarray(key, dtype=np.int64).reshape(()).view(np.uint64)
    z = k + (np.arange(1, count + 1, dtype=np.uint64) * np.uint64(GOLDEN))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def _uniform_infer(key: TensorType, shape: tuple[int, ...], dtype: str) -> TensorType:
    if key.dtype != "int64" or key.shape != ():
        raise ShapeError(f"random_uniform: the key must be an int64 scalar, got {key.dtype}{list(key.shape)}")
    if dtype not in MANTISSA_BITS:
        raise ShapeError(f"random_uniform: dtype must be float32 or float64, got {dtype}")
    return TensorType(tuple(shape), dtype)


def _uniform_reference(key: np.ndarray, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    bits = MANTISSA_BITS[dtype]
    top = random_bits(key, int(np.prod(shape, dtype=np.int64))) >> np.uint64(64 - bits)
    return (top.astype(dtype) * np.asarray(2.0 ** -bits, dtype)).reshape(shape)  # both steps exact


register(OpDef("random_uniform", "random", _uniform_infer, _uniform_reference, None,
               doc="uniform numbers in [0, 1) of `shape`, a pure function of the key and the element index"))
