"""Tensor: a numpy array with autograd in eager mode, or a symbolic value while tracing.

Both kinds go through the same op functions (`graphc.ops.functions`), so a model's forward is
one piece of code whether it runs, is traced, or is differentiated.
"""
from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from . import autograd, dtypes
from .arrays import c_contiguous
from .device import CPU, device, split_to_arguments
from .errors import TraceError
from .inplace import InPlace


_DTYPE_NAMES = {"f": "float32", "d": "float64", "l": "int64", "q": "int64", "?": "bool"}  # str(dtype) is slow


class _Counter:
    """A process-wide count that compiled runners compare with the value they last saw."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> None:
        self.count += 1


# The times a tensor's array was replaced (`t.data = ...`) or a module's parameter, buffer or
# child was (re)assigned: compiled runners re-gather their parameter arrays only when it changed,
# so a call costs the same however many parameters a model has. In-place updates keep the array.
_Rebinds = _Counter()
# In-place writes into tensors' arrays (`copy_`, optimizer steps, load_state_dict, compiled
# updates): a prepare graph (graphc/prepare.py) computes again only when this or rebinds() changed.
_Writes = _Counter()
# Changes of a module's train/eval mode or of a Parameter's requires_grad: compiled callers work out
# the part of their specialisation key these decide only when it moved, so a call costs the same
# however many modules and parameters a model has.
_Modes = _Counter()


def rebinds() -> int:
    return _Rebinds.count


def writes() -> int:
    return _Writes.count


def modes() -> int:
    return _Modes.count


class Size(tuple):
    """The shape of a tensor, printed as PyTorch prints it."""

    def __repr__(self) -> str:
        return f"graphc.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


class Tensor(InPlace):
    __slots__ = ("_data", "_node", "_recorder", "_shape", "_dtype", "requires_grad", "grad", "_grad_fn",
                 "_hooks", "_retains_grad", "__weakref__")

    def __init__(self, *args: Any) -> None:
        """Legacy constructor: `Tensor(3, 5)` makes a 3x5 float tensor, `Tensor(data)` copies data."""
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = np.array(_unwrap(args[0]), dtype=dtypes.get_default_dtype())
        else:
            data = np.zeros(tuple(int(a) for a in _flat_sizes(args)), dtype=dtypes.get_default_dtype())
        self._init(data)

    def _init(self, data: np.ndarray | None, node: int | None = None, recorder: Any = None,
              shape: tuple = (), dtype: str = "float32") -> None:
        self._data, self._node, self._recorder = data, node, recorder
        if data is not None:
            shape, dtype = data.shape, _DTYPE_NAMES.get(data.dtype.char) or str(data.dtype)
        self._shape, self._dtype = tuple(shape), dtype
        self.requires_grad, self.grad, self._grad_fn = False, None, None
        self._hooks, self._retains_grad = (), False

    @classmethod
    def _wrap(cls, data: np.ndarray) -> "Tensor":
        """A tensor over `data` (an array): every compiled call's results come through here."""
        t = cls.__new__(cls)
        t._data, t._node, t._recorder, t._shape = data, None, None, data.shape
        t._dtype = _DTYPE_NAMES.get(data.dtype.char) or str(data.dtype)
        t.requires_grad, t.grad, t._grad_fn, t._hooks, t._retains_grad = False, None, None, (), False
        return t

    @classmethod
    def _symbolic(cls, recorder: Any, node: int, shape: tuple[int, ...], dtype: str) -> "Tensor":
        t = cls.__new__(cls)
        t._init(None, node, recorder, shape, dtype)
        return t

    # --- metadata -----------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        if not self._shape:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return self._shape[_api._dim(dim, self.ndim)]

    @property
    def dtype(self) -> dtypes.dtype:
        return dtypes.canonical(self._dtype)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def dim(self) -> int:
        return len(self._shape)

    def numel(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def grad_fn(self):
        return self._grad_fn

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        _Rebinds.bump()
        self._data = as_tensor(value)._data
        self._shape, self._dtype = tuple(self._data.shape), str(self._data.dtype)

    @property
    def device(self) -> device:
        return CPU

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    # --- leaving the tensor world ----------------------------------------------------------
    def _concrete(self, what: str) -> np.ndarray:
        if self._node is not None:
            raise self._recorder.fail(TraceError(
                f"{what} needs a tensor's value, which a traced graph does not have; "
                "control flow may depend on shapes and non-tensor arguments only"))
        return self._data

    def numpy(self) -> np.ndarray:
        if self.requires_grad and autograd.is_grad_enabled() and self._grad_fn is not None:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._concrete("numpy()")

    def item(self) -> builtins.float | int | bool:
        data = self._concrete("item()")
        if data.size != 1:
            raise RuntimeError(f"a Tensor with {data.size} elements cannot be converted to Scalar")
        return data.reshape(()).item()

    def tolist(self) -> Any:
        return self._concrete("tolist()").tolist()

    def __bool__(self) -> bool:
        data = self._concrete("bool() of a tensor (an `if` or `while` on a tensor)")
        if data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(data.reshape(()))

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its number (`f"{loss:.4f}"`), as in PyTorch."""
        if self._node is None and not self._shape:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self._concrete("conversion to a numpy array")
        return data if dtype is None else data.astype(dtype)

    def __repr__(self) -> str:
        if self._node is not None:
            return f"Tensor(symbolic %{self._node}, shape={list(self._shape)}, dtype={self.dtype!r})"
        body = _format_data(self._data)
        extras = []
        if self._dtype not in ("float32", "int64", "bool"):
            extras.append(f"dtype={self.dtype!r}")
        if self._grad_fn is not None:
            extras.append(f"grad_fn={self._grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # --- autograd ---------------------------------------------------------------------------
    def backward(self, gradient: Any = None) -> None:
        autograd.backward(self, gradient)

    def detach(self) -> "Tensor":
        if self._node is not None:
            return _fn.apply("detach", self)
        return Tensor._wrap(self._data)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not self._dtype.startswith("float"):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        self._retains_grad = True

    def register_hook(self, hook) -> None:
        self._hooks = (*self._hooks, hook)

    # --- in-place helpers used by init, optimizers and state_dict ------------------------
    def _set(self, value: Any) -> "Tensor":
        recorder = _dispatch.active_recorder()
        if recorder is not None and (_dispatch.is_symbolic(value) or recorder.tracks(self)):
            recorder.write(self, value)  # while tracing: a buffer update in the graph (trace.Tracer.write)
            return self
        np.copyto(self._concrete("an in-place update"), np.asarray(_unwrap(value), dtype=self._dtype))
        _Writes.bump()
        return self

    def clone(self) -> "Tensor":
        if self._node is not None:
            return _fn.apply("detach", self) if not self.requires_grad else self * 1
        out = Tensor._wrap(self._data.copy())
        return out if not (self.requires_grad and autograd.is_grad_enabled()) else self * 1

    def contiguous(self) -> "Tensor":
        """Self when the data is C-contiguous in native byte order, else a tensor holding such a
        copy, through which gradients flow unchanged. Traced values are laid out by the compiler."""
        if self._node is not None:
            return self
        data = c_contiguous(self._data)
        if data is self._data:
            return self
        out = Tensor._wrap(data)
        if self.requires_grad and autograd.is_grad_enabled():
            out.requires_grad = True
            out._grad_fn = autograd.GradFn("clone", (self,), lambda grad: (grad,))
        return out

    def is_contiguous(self) -> bool:
        """PyTorch's test: row-major without gaps, ignoring strides of size-1 dimensions."""
        return self._node is not None or self._data.flags.c_contiguous

    # --- dtype conversion -------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """PyTorch's spellings: to(dtype), to(device), to(device, dtype), to(other), keywords;
        only the CPU exists, so a device is checked and otherwise changes nothing."""
        _device, dtype, like = split_to_arguments(args, kwargs)
        dtype = like.dtype if like is not None and dtype is None else dtype
        out = self if dtype is None else _fn.cast(self, dtypes.canonical(dtype))
        return out.clone() if kwargs.get("copy") and out is self else out

    def type(self, dtype: Any = None) -> Any:
        if dtype is None:
            return {"float32": "graphc.FloatTensor", "float64": "graphc.DoubleTensor", "int64": "graphc.LongTensor",
                    "bool": "graphc.BoolTensor"}[self._dtype]
        return _fn.cast(self, dtypes.canonical(dtype))

    def type_as(self, other: "Tensor") -> "Tensor":
        return _fn.cast(self, other.dtype)

    def float(self) -> "Tensor":
        return _fn.cast(self, "float32")

    def double(self) -> "Tensor":
        return _fn.cast(self, "float64")

    def long(self) -> "Tensor":
        return _fn.cast(self, "int64")

    def int(self) -> "Tensor":
        """int64: graphc has no int32 (PyTorch's int() gives int32)."""
        return _fn.cast(self, "int64")

    def bool(self) -> "Tensor":
        return _fn.cast(self, "bool")

    def cpu(self) -> "Tensor":
        return self

    # --- arithmetic -----------------------------------------------------------------------
    def __add__(self, o): return _fn.add(self, o)
    def __radd__(self, o): return _fn.add(o, self)
    def __sub__(self, o): return _fn.sub(self, o)
    def __rsub__(self, o): return _fn.sub(o, self)
    def __mul__(self, o): return _fn.mul(self, o)
    def __rmul__(self, o): return _fn.mul(o, self)
    def __truediv__(self, o): return _fn.div(self, o)
    def __rtruediv__(self, o): return _fn.div(o, self)
    def __pow__(self, o): return _fn.pow(self, o)
    def __rpow__(self, o): return _fn.pow(o, self)
    def __neg__(self): return _fn.neg(self)
    def __pos__(self): return self
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(as_tensor(o), self)
    def __gt__(self, o): return _fn.gt(self, o)
    def __ge__(self, o): return _fn.ge(self, o)
    def __lt__(self, o): return _fn.lt(self, o)
    def __le__(self, o): return _fn.le(self, o)
    def __eq__(self, o): return False if o is None else _fn.eq(self, o)  # type: ignore[override]
    def __ne__(self, o): return True if o is None else _fn.ne(self, o)  # type: ignore[override]
    __hash__ = object.__hash__

    def add(self, o): return _fn.add(self, o)
    def sub(self, o): return _fn.sub(self, o)
    def mul(self, o): return _fn.mul(self, o)
    def div(self, o): return _fn.div(self, o)
    def pow(self, o): return _fn.pow(self, o)
    def neg(self): return _fn.neg(self)
    def exp(self): return _fn.exp(self)
    def log(self): return _fn.log(self)
    def sqrt(self): return _fn.sqrt(self)
    def tanh(self): return _fn.tanh(self)
    def cos(self): return _fn.cos(self)
    def sin(self): return _fn.sin(self)
    def sigmoid(self): return _fn.sigmoid(self)
    def relu(self): return _fn.relu(self)
    def abs(self): return _fn.abs(self)
    def matmul(self, o): return matmul(self, o)

    def log1p(self): return _fn.log1p(self)
    def expm1(self): return _fn.expm1(self)
    def floor(self): return _fn.floor(self)
    def ceil(self): return _fn.ceil(self)
    def round(self, decimals: int = 0): return _api.round(self, decimals=decimals)
    def sign(self): return _fn.sign(self)
    def square(self): return _fn.square(self)
    def rsqrt(self): return _fn.rsqrt(self)
    def reciprocal(self): return _fn.reciprocal(self)
    def maximum(self, o): return _fn.maximum(self, o)
    def minimum(self, o): return _fn.minimum(self, o)
    def clamp(self, min=None, max=None): return _fn.clamp(self, min, max)  # noqa: A002
    clip = clamp
    def clamp_min(self, min): return _fn.clamp(self, min, None)  # noqa: A002
    def clamp_max(self, max): return _fn.clamp(self, None, max)  # noqa: A002
    def where(self, condition, other): return _api.where(condition, self, other)
    def masked_fill(self, mask, value): return _api.where(mask, value, self)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        from .random import zeros
        return zeros(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        from .random import ones
        return ones(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        from .random import full
        return full(size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        from .random import check_device
        check_device(device)
        return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)
    def mm(self, o): return _api.mm(self, o)
    def bmm(self, o): return _api.bmm(self, o)

    def eq(self, o): return _fn.eq(self, o)
    def ne(self, o): return _fn.ne(self, o)
    def lt(self, o): return _fn.lt(self, o)
    def le(self, o): return _fn.le(self, o)
    def gt(self, o): return _fn.gt(self, o)
    def ge(self, o): return _fn.ge(self, o)
    def logical_not(self): return _fn.logical_not(self)
    def logical_and(self, o): return _fn.logical_and(self, o)
    def logical_or(self, o): return _fn.logical_or(self, o)
    def logical_xor(self, o): return _fn.logical_xor(self, o)

    def _bool_only(self, o: Any, name: str) -> None:
        if self._dtype != "bool" or (isinstance(o, Tensor) and o._dtype != "bool"):
            raise TypeError(f"{name} is supported on bool tensors only (graphc has no bitwise integer ops)")

    def __invert__(self):
        self._bool_only(None, "~")
        return _fn.logical_not(self)

    def __and__(self, o):
        self._bool_only(o, "&")
        return _fn.logical_and(self, o)

    def __or__(self, o):
        self._bool_only(o, "|")
        return _fn.logical_or(self, o)

    def __xor__(self, o):
        self._bool_only(o, "^")
        return _fn.logical_xor(self, o)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None): return _api.sum(self, dim, keepdim, dtype=dtype)
    def mean(self, dim=None, keepdim: bool = False, *, dtype=None): return _api.mean(self, dim, keepdim, dtype=dtype)
    def prod(self, dim=None, keepdim: bool = False, *, dtype=None): return _api.prod(self, dim, keepdim, dtype=dtype)
    def amax(self, dim=None, keepdim: bool = False): return _fn.amax(self, dim, keepdim)
    def amin(self, dim=None, keepdim: bool = False): return _api.amin(self, dim, keepdim)
    def max(self, dim=None, keepdim: bool = False): return _api.max(self, dim, keepdim)
    def min(self, dim=None, keepdim: bool = False): return _api.min(self, dim, keepdim)
    def argmax(self, dim=None, keepdim: bool = False): return _api.argmax(self, dim, keepdim)
    def argmin(self, dim=None, keepdim: bool = False): return _api.argmin(self, dim, keepdim)
    def all(self, dim=None, keepdim: bool = False): return _fn.all(self, dim, keepdim)
    def any(self, dim=None, keepdim: bool = False): return _fn.any(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        return _api.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        return _api.std(self, dim, unbiased, keepdim, correction=correction)

    def softmax(self, dim: int): return _fn.softmax(self, dim)
    def log_softmax(self, dim: int): return _fn.log_softmax(self, dim)

    # --- shapes ---------------------------------------------------------------------------
    def reshape(self, *shape): return _fn.reshape(self, _flat_sizes(shape))
    def view(self, *shape): return _fn.reshape(self, _flat_sizes(shape))
    def view_as(self, other): return _fn.reshape(self, other.shape)
    def reshape_as(self, other): return _fn.reshape(self, other.shape)
    def expand(self, *shape): return _fn.expand(self, _flat_sizes(shape))
    def expand_as(self, other): return _fn.expand(self, other.shape)
    def permute(self, *dims): return _api.permute(self, _flat_sizes(dims))
    def transpose(self, dim0: int, dim1: int): return _api.transpose(self, dim0, dim1)
    def t(self) -> "Tensor": return _api.t(self)
    def repeat(self, *sizes): return _api.repeat(self, _flat_sizes(sizes))
    def flip(self, *dims): return _api.flip(self, _flat_sizes(dims))
    def flatten(self, start_dim: int = 0, end_dim: int = -1): return _api.flatten(self, start_dim, end_dim)
    def unflatten(self, dim: int, sizes): return _api.unflatten(self, dim, sizes)
    def unsqueeze(self, dim: int): return _api.unsqueeze(self, dim)
    def squeeze(self, dim=None): return _api.squeeze(self, dim)
    def narrow(self, dim: int, start: int, length: int): return _api.narrow(self, dim, start, length)
    def split(self, split_size, dim: int = 0): return _api.split(self, split_size, dim)
    def chunk(self, chunks: int, dim: int = 0): return _api.chunk(self, chunks, dim)
    def unbind(self, dim: int = 0): return _api.unbind(self, dim)

    @property
    def T(self) -> "Tensor":
        return _fn.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> "Tensor":
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got {self.ndim}-D tensor.")
        return _fn.transpose(self, -2, -1)

    def __getitem__(self, index: Any) -> "Tensor":
        """Basic indexing (ints, slices, None, ...) is a strided slice, traced and differentiated;
        tensors, lists and bools as indices (advanced indexing) work eagerly."""
        basic = basic_index(index, self._shape)
        if basic is not None:
            return _fn.reshape(_fn.slice(self, basic.starts, basic.steps, basic.window), basic.shape)
        data = self._concrete("advanced indexing (tensors, lists or bools as indices)")
        index = _numpy_index(index)
        out = Tensor._wrap(c_contiguous(data[index]))
        if self.requires_grad and autograd.is_grad_enabled():
            shape, dtype = self._shape, self._dtype

            def backward(g):
                full = np.zeros(shape, dtype=dtype)
                np.add.at(full, index, g._data)
                return (Tensor._wrap(full),)
            out.requires_grad = True
            out._grad_fn = autograd.GradFn("index", (self,), backward)
        return out

    def __iter__(self):
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._shape[0]))


def _format_data(data: np.ndarray) -> str:
    """Numbers printed as PyTorch prints them: `1.`, `0.5000` or `1.0000e-05`, right-aligned."""
    if data.dtype.kind != "f" or data.size == 0:
        return np.array2string(data, separator=", ", prefix="tensor(")
    finite = np.abs(data[np.isfinite(data)])
    if finite.size and np.all(finite == np.round(finite)) and finite.max() < 1e8:
        fmt = "{:.0f}."
    elif finite.size and (finite.max() >= 1e8 or finite[finite > 0].min(initial=1.0) < 1e-4):
        fmt = "{:.4e}"
    else:
        fmt = "{:.4f}"
    width = max(len(fmt.format(v)) if np.isfinite(v) else len(str(v)) for v in data.flat)
    return np.array2string(data, separator=", ", prefix="tensor(", max_line_width=80, formatter={
        "float_kind": lambda v: (fmt.format(v) if np.isfinite(v) else str(v)).rjust(width)})


def _is_dtype(value: Any) -> bool:
    try:
        dtypes.canonical(value)
        return True
    except TypeError:
        return False


def _numpy_index(index: Any) -> Any:
    """An index with tensors replaced by their arrays (numpy then does advanced indexing)."""
    if isinstance(index, tuple):
        return tuple(_numpy_index(i) for i in index)
    if isinstance(index, Tensor):
        return index._concrete("indexing with a tensor")
    return index


def _unwrap(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value._concrete("conversion")
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor, say
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        return [_unwrap(v) for v in value]
    return value


def _flat_sizes(sizes: Sequence[Any]) -> tuple[int, ...]:
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    return tuple(int(s) for s in sizes)


def _default_dtype_of(data: Any) -> str:
    if isinstance(data, np.ndarray):
        return str(dtypes.canonical(data.dtype))
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return dtypes.get_default_dtype()
    return str(dtypes.canonical(arr.dtype)) if arr.dtype.kind in "biu" else dtypes.get_default_dtype()


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (lists give float32/int64, arrays keep their dtype)."""
    data = _unwrap(data)
    target = dtypes.canonical(dtype) if dtype is not None else _default_dtype_of(data)
    t = Tensor._wrap(np.array(data, dtype=target, copy=True))
    return t.requires_grad_(requires_grad) if requires_grad else t


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None:
        return data
    if isinstance(data, np.ndarray) and data.dtype.name in ("float32", "float64", "int64", "bool") and dtype is None:
        return Tensor._wrap(data)
    return tensor(data, dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    return Tensor._wrap(array)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """PyTorch's matmul rules for 1-D operands and broadcast batches, on top of the 2-D/batched op."""
    if a.ndim == 1 and b.ndim == 1:
        return _fn.sum(_fn.mul(a, b))
    if a.ndim == 1:
        return matmul(a.unsqueeze(0), b).squeeze(-2)
    if b.ndim == 1:
        return matmul(a, b.unsqueeze(1)).squeeze(-1)
    if b.ndim > 2 and a.shape[:-2] != b.shape[:-2]:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = _fn.expand(a, batch + tuple(a.shape[-2:]))
        b = _fn.expand(b, batch + tuple(b.shape[-2:]))
    return _fn.matmul(a, b)


from .ops import dispatch as _dispatch, functions as _fn  # noqa: E402  (op functions need Tensor defined first)
from . import api as _api  # noqa: E402
from .indexing import basic_index  # noqa: E402
