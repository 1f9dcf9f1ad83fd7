"""Tensor factories and graphc's random generator (seeded by `manual_seed`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .arrays import c_contiguous
from .tensor import Tensor, _flat_sizes

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed graphc's generator (used by randn, rand and nn.init)."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    return _generator


class Generator:
    """A random generator of its own (PyTorch's `torch.Generator`), over numpy's: samplers and
    `random_split` given one draw from it, so their order repeats whatever else draws numbers."""

    default_seed = 67280421310721  # PyTorch's initial seed for a new generator

    def __init__(self, device: Any = "cpu") -> None:
        if str(device) != "cpu":
            raise ValueError(f"graphc.Generator: device={device!r}, but graphc runs on the cpu only")
        self.manual_seed(self.default_seed)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self._numpy = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    @property
    def device(self) -> str:
        return "cpu"

    def __repr__(self) -> str:
        return f"<graphc.Generator seed={self._seed}>"


def numpy_generator(generator: Generator | None = None) -> np.random.Generator:
    """The numpy generator behind `generator`, or graphc's global one (as reseeded by `manual_seed`)."""
    return _generator if generator is None else generator._numpy


def randperm(n: int, generator: Generator | None = None, dtype: Any = "int64") -> Tensor:
    """A random permutation of 0..n-1."""
    return Tensor._wrap(c_contiguous(numpy_generator(generator).permutation(int(n)), dtypes.canonical(dtype)))


def draw_keys(count: int) -> list[np.ndarray]:
    """`count` fresh 64-bit keys for random_uniform (int64 scalars), drawn from graphc's generator."""
    bits = _generator.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=count,
                               dtype=np.int64, endpoint=True)
    return [np.array(b) for b in bits]


def next_key() -> Tensor:
    """The key of one random op: drawn now when eager; while tracing, a graph input of role rng
    that the compiled model's runner fills with a fresh key on every call."""
    from .ops.dispatch import active_recorder
    recorder = active_recorder()
    if recorder is not None:
        return recorder.random_key()
    return Tensor._wrap(draw_keys(1)[0])


def bernoulli(input: Tensor, p: float | None = None) -> Tensor:
    """1 with probability `input` (or `p`) per element, else 0, in input's dtype; the draw is
    random_uniform under a fresh key, so it is the same eagerly and compiled."""
    from .ops import functions as F
    dtype = str(input.dtype) if input.dtype.is_floating_point else "float64"
    uniform = F.random_uniform(next_key(), tuple(input.shape), dtype)
    return F.cast(F.lt(uniform, input if p is None else p), str(input.dtype))


def _make(data: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    target = dtypes.canonical(dtype) if dtype is not None else dtypes.get_default_dtype()
    t = Tensor._wrap(c_contiguous(data, dtype=target))
    return t.requires_grad_() if requires_grad else t


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(_generator.standard_normal(_flat_sizes(size)), dtype, requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(_generator.random(_flat_sizes(size)), dtype, requires_grad)


def randint(low: int, high: int | None = None, size: tuple = (), dtype: Any = "int64") -> Tensor:
    if high is None:
        low, high = 0, low
    return Tensor._wrap(c_contiguous(_generator.integers(low, high, size=tuple(size)), dtypes.canonical(dtype)))


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(_flat_sizes(size)), dtype, requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.ones(_flat_sizes(size)), dtype, requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size: Any, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.full(_flat_sizes((size,)), fill_value), dtype, requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    data = np.arange(start, end, step) if end is not None else np.arange(start)
    return Tensor._wrap(data.astype(dtypes.canonical(dtype) if dtype else
                                    ("int64" if data.dtype.kind in "iu" else dtypes.get_default_dtype())))


def zeros_like(t: Tensor, dtype: Any = None) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype)


def ones_like(t: Tensor, dtype: Any = None) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype)


def randn_like(t: Tensor, dtype: Any = None) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype)
