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


def check_device(device: Any) -> None:
    """graphc runs on the CPU: accept None, 'cpu' (or 'cpu:0') and any object whose str is one of those."""
    if device is not None and str(device) not in ("cpu", "cpu:0"):
        raise RuntimeError(f"graphc runs on the CPU only: device {str(device)!r} is not available "
                           "(use device='cpu')")
def _make(data: np.ndarray, dtype: Any, requires_grad: bool, device: Any = None) -> Tensor:
    check_device(device)
    target = dtypes.canonical(dtype) if dtype is not None else dtypes.get_default_dtype()
    t = Tensor._wrap(c_contiguous(data, dtype=target))
    return t.requires_grad_() if requires_grad else t


def _tracing() -> bool:
    from .ops.dispatch import active_recorder
    return active_recorder() is not None


def _traced_uniform(shape: tuple[int, ...], dtype: Any, device: Any) -> Tensor:
    """Uniform [0, 1) numbers drawn by the compiled program on every call (random_uniform under a
    fresh key), not one draw baked into the graph as a constant at trace time."""
    from .ops import functions as F
    check_device(device)
    return F.random_uniform(next_key(), shape, str(dtypes.canonical(dtype) if dtype is not None
                                                   else dtypes.get_default_dtype()))


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal numbers; in a traced forward made per call by Box-Muller from two uniform
    draws, sqrt(-2 log(1 - u1)) cos(2 pi u2) (1 - u1 is never 0)."""
    if _tracing():
        from .ops import functions as F
        shape = _flat_sizes(size)
        u1, u2 = _traced_uniform(shape, dtype, device), _traced_uniform(shape, dtype, device)
        radius = F.sqrt(F.mul(F.log(F.sub(1.0, u1)), -2.0))
        return F.mul(radius, F.cos(F.mul(u2, 2.0 * np.pi)))
    return _make(_generator.standard_normal(_flat_sizes(size)), dtype, requires_grad, device)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    if _tracing():
        return _traced_uniform(_flat_sizes(size), dtype, device)
    return _make(_generator.random(_flat_sizes(size)), dtype, requires_grad, device)


def randint(low: int, high: int | None = None, size: tuple = (), dtype: Any = "int64", device: Any = None,
            requires_grad: bool = False) -> Tensor:
    if high is None:
        low, high = 0, low
    if _tracing():  # per call: floor(low + u (high - low)), u in [0, 1) drawn in float64
        from .ops import functions as F
        u = _traced_uniform(tuple(size), "float64", device)
        return F.cast(F.floor(F.add(F.mul(u, float(high - low)), float(low))), str(dtypes.canonical(dtype)))
    return _make(_generator.integers(low, high, size=tuple(size)), dtype, requires_grad, device)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(_flat_sizes(size)), dtype, requires_grad, device)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.ones(_flat_sizes(size)), dtype, requires_grad, device)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros: graphc's empty tensors are initialised, so no garbage can leak into results."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _scalar_dtype(value: Any) -> str:
    """The dtype PyTorch infers from a Python number: bool, int64, or the default float."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int64"
    return dtypes.get_default_dtype()


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    if hasattr(fill_value, "item"):
        fill_value = fill_value.item()
    return _make(np.full(_flat_sizes((size,)), fill_value), dtype or _scalar_dtype(fill_value), requires_grad, device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Integers when start, end and step are all ints, else the default float dtype (as PyTorch)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    numbers = (start, end, step)
    inferred = "int64" if all(_scalar_dtype(v) in ("int64", "bool") for v in numbers) else None
    count = max(0, int(np.ceil((end - start) / step)))
    return _make(start + step * np.arange(count, dtype=np.float64 if inferred is None else np.int64),
                 dtype or inferred, requires_grad, device)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    if steps < 0:
        raise RuntimeError("linspace(): number of steps must be non-negative")
    return _make(np.linspace(start, end, int(steps)), dtype, requires_grad, device)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.eye(n, n if m is None else m), dtype, requires_grad, device)


def _like(maker, input: Tensor, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    return maker(tuple(input.shape), dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


def zeros_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(zeros, input, dtype, device, requires_grad)


def ones_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(ones, input, dtype, device, requires_grad)


def empty_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(empty, input, dtype, device, requires_grad)


def randn_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(randn, input, dtype, device, requires_grad)


def rand_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _like(rand, input, dtype, device, requires_grad)


def full_like(input: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)
