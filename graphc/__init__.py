"""graphc: a static-graph compiler for PyTorch-style Module trees, lowered through LLVM."""
from . import ops  # noqa: F401  (fills the op table)
from .autograd import enable_grad, no_grad, set_grad_enabled, is_grad_enabled
from .device import device  # noqa: F811  (the class; the module stays graphc.device in sys.modules)
from .dtypes import bool_, double, float32, float64, int64, long, get_default_dtype, set_default_dtype
from .errors import CheckpointError, InputError, TraceError
from .ops.functions import exp, log, sqrt, tanh, sigmoid, relu, softmax, log_softmax, where, maximum
from .ops.functions import add, sub, mul, div, neg, pow
from .random import Generator, manual_seed, randperm, rand, randn, randint, zeros, ones, full, arange, zeros_like, ones_like, randn_like, empty, bernoulli
from .tensor import Size, Tensor, as_tensor, from_numpy, matmul, tensor
from .ops.registry import ShapeError

__version__ = "0.1.0"


def sum(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return input.sum(dim, keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return input.mean(dim, keepdim)


def reshape(input: Tensor, shape) -> Tensor:
    return input.reshape(shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return input.transpose(dim0, dim1)


def t(input: Tensor) -> Tensor:
    return input.t()


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return input.argmax(dim, keepdim)


from . import nn, optim, utils  # noqa: E402
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
