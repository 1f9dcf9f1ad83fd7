"""graphc: a static-graph compiler for PyTorch-style Module trees, lowered through LLVM."""
from . import ops  # noqa: F401  (fills the op table)
from .autograd import enable_grad, no_grad, set_grad_enabled, is_grad_enabled
from .device import device  # noqa: F811  (the class; the module stays graphc.device in sys.modules)
from .dtypes import bool_, double, float32, float64, int64, long, get_default_dtype, set_default_dtype
from .errors import CheckpointError, InputError, TraceError
from .ops.functions import cos, sin, exp, log, sqrt, tanh, sigmoid, relu, softmax, log_softmax, maximum, minimum, abs
from .ops.functions import add, sub, mul, div, neg, pow, log1p, expm1, floor, ceil, sign, square, rsqrt
from .ops.functions import reciprocal, eq, ne, lt, le, gt, ge, logical_not, logical_and, logical_or, logical_xor
from .random import Generator, bernoulli, manual_seed, randperm, rand, randn, randint, zeros, ones, full, arange
from .random import linspace, eye, empty, zeros_like, ones_like, full_like, empty_like, randn_like, rand_like
from .tensor import Size, Tensor, as_tensor, from_numpy, matmul, tensor
from .ops.registry import ShapeError
from .api import (all, amin, any, argmax, argmin, bmm, cat, chunk, clamp, clamp_max, clamp_min, clip, concat, masked_fill, round,
                  concatenate, flatten, flip, max, mean, min, mm, narrow, permute, prod, repeat, reshape, return_types, split,
                  squeeze, stack, std, sum, t, transpose, unbind, unflatten, unsqueeze, var, where)
from .dtypes import bool_ as bool, float as float  # noqa: A001  (PyTorch's dtype names graphc.bool, graphc.float)

__version__ = "0.1.0"


def numel(input: Tensor) -> int:
    return input.numel()


def amax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return input.amax(dim, keepdim)


from . import accelerator, nn, optim, utils  # noqa: E402
from .serialization import load, save  # noqa: E402
from .trace import InputSpec, Program, trace  # noqa: E402

_COMPILED = {"compile": "compiled", "CompiledModule": "compiled", "compile_train_step": "train_step",
             "TrainStep": "train_step"}


def __getattr__(name: str):
    """The compile API loads on first use: eager code never loads LLVM, and runtime (which
    builds on graphc's IR and lowering) can be imported before or after graphc."""
    if name in _COMPILED:
        import importlib
        return getattr(importlib.import_module(f".{_COMPILED[name]}", __name__), name)
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_COMPILED))
