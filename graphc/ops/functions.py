"""Op functions: the one set of functions used by eager code, traced code and gradient rules.

Each forwards to `apply`, which computes with the numpy reference on real arrays or records a
node on symbolic tensors. Composite functions (sum_to, softmax, ...) are written with them.
"""
from __future__ import annotations

import builtins
from typing import Any, Sequence

from ..dtypes import get_default_dtype
from .dispatch import apply, is_symbolic  # noqa: F401  (is_symbolic is part of this API)


def _binary(name: str):
    def fn(a: Any, b: Any):
        return apply(name, a, b, promote=True)
    fn.__name__ = name
    return fn


add, sub, mul, pow, maximum = (_binary(n) for n in ("add", "sub", "mul", "pow", "maximum"))


def div(a: Any, b: Any):
    """True division: integer operands divide as the default float dtype, as in PyTorch."""
    if builtins.all(getattr(x, "dtype", "float32") in ("int64", "bool") or isinstance(x, int) for x in (a, b)):
        a, b = (cast(x, get_default_dtype()) if hasattr(x, "dtype") else float(x) for x in (a, b))
    return apply("div", a, b, promote=True)


gt, ge, eq = (_binary(n) for n in ("gt", "ge", "eq"))


def lt(a, b): return gt(b, a)
def le(a, b): return ge(b, a)
def ne(a, b): return eq(eq(a, b), False)


def minimum(a, b):
    """-max(-a, -b): keeps NaN, -0.0 < +0.0 and tied gradients shared, as maximum does."""
    return neg(maximum(neg(a), neg(b)))


def abs(a):  # noqa: A001
    """max(a, -a): abs(-0.0) is +0.0, NaN stays NaN, and the gradient at 0 is 0 (as PyTorch's)."""
    return maximum(a, neg(a))


def clamp(a, min=None, max=None):  # noqa: A002
    """PyTorch's clamp: the gradient passes where min <= a <= max (bounds included) and nowhere
    else, not at NaN either; the value outside is the bound (NaN stays NaN), read without a gradient."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    outside = a
    if min is not None:
        outside = where(lt(outside, min), min, outside)
    if max is not None:
        outside = where(gt(outside, max), max, outside)
    outside = detach(outside)
    out = a if max is None else where(le(a, max), a, outside)
    return out if min is None else where(ge(a, min), out, outside)


def neg(a): return apply("neg", a)
def exp(a): return apply("exp", a)
def log(a): return apply("log", a)
def log1p(a): return apply("log1p", a)
def expm1(a): return apply("expm1", a)
def sqrt(a): return apply("sqrt", a)
def tanh(a): return apply("tanh", a)
def cos(a): return apply("cos", a)
def sin(a): return apply("sin", a)
def sigmoid(a): return apply("sigmoid", a)
def erf(a): return apply("erf", a)
def relu(a): return apply("relu", a)
def floor(a): return apply("floor", a)
def ceil(a): return apply("ceil", a)
def round(a): return apply("round", a)  # noqa: A001


def where(cond, a, b):
    return apply("where", cond, a, b, promote=True)


def cast(a, dtype: str):
    return a if a.dtype == dtype else apply("cast", a, dtype=str(dtype))


def normalize_dims(dims, ndim: int) -> tuple[int, ...]:
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
        out.append(d % max(ndim, 1))
    return tuple(sorted(set(out)))


def sum(a, dims=None, keepdim: bool = False):
    return apply("sum", a, dims=normalize_dims(dims, a.ndim), keepdim=bool(keepdim))


def amax(a, dims=None, keepdim: bool = False):
    return apply("amax", a, dims=normalize_dims(dims, a.ndim), keepdim=bool(keepdim))


def prod(a, dims=None, keepdim: bool = False):
    return apply("prod", a, dims=normalize_dims(dims, a.ndim), keepdim=bool(keepdim))


def mean(a, dims=None, keepdim: bool = False):
    dims = normalize_dims(dims, a.ndim)
    count = 1
    for d in dims:
        count *= a.shape[d]
    return mul(sum(a, dims, keepdim), 1.0 / count)


def resolve_shape(shape: Sequence[int], size: int) -> tuple[int, ...]:
    """Replace one -1 by what makes the element count match (PyTorch's view rule and errors)."""
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or size % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {size}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {size}")
    return shape


def reshape(a, shape: Sequence[int]):
    shape = resolve_shape(shape, a.numel())
    return a if tuple(a.shape) == shape else apply("reshape", a, shape=shape)


def permute(a, dims: Sequence[int]):
    dims = tuple(d % max(a.ndim, 1) for d in dims)
    return a if dims == tuple(range(a.ndim)) else apply("permute", a, dims=dims)


def transpose(a, dim0: int, dim1: int):
    dims = list(range(a.ndim))
    d0, d1 = dim0 % a.ndim, dim1 % a.ndim
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(a, dims)


def expand(a, shape: Sequence[int]):
    lead = len(shape) - a.ndim
    shape = tuple(a.shape[i - lead] if s == -1 else int(s) for i, s in enumerate(shape))
    return a if tuple(a.shape) == shape else apply("expand", a, shape=shape)


def slice(a, starts: Sequence[int], steps: Sequence[int], shape: Sequence[int]):  # noqa: A001
    """The strided window of `shape` at `starts`, `steps` apart (a copy; negative steps flip)."""
    starts, steps, shape = (tuple(int(v) for v in x) for x in (starts, steps, shape))
    if shape == tuple(a.shape) and builtins.all(s > 0 for s in steps):
        return a
    return apply("slice", a, starts=starts, steps=steps, shape=shape)


def slice_scatter(g, starts: Sequence[int], steps: Sequence[int], shape: Sequence[int]):
    """Zeros of `shape` holding `g` in the window that `slice` reads."""
    starts, steps, shape = (tuple(int(v) for v in x) for x in (starts, steps, shape))
    if shape == tuple(g.shape) and builtins.all(s > 0 for s in steps):
        return g
    return apply("slice_scatter", g, starts=starts, steps=steps, shape=shape)


def cat(tensors: Sequence[Any], dim: int = 0):
    """Tensors joined along `dim`, promoted to one dtype first (as torch.cat)."""
    from .dispatch import _RANK
    like = builtins.max((t.dtype for t in tensors), key=_RANK.__getitem__)
    tensors = [cast(t, like) for t in tensors]
    return tensors[0] if len(tensors) == 1 else apply("cat", *tensors, dim=int(dim))


def argmax(a, dim: int, keepdim: bool = False):
    return apply("argmax", a, dim=int(dim), keepdim=bool(keepdim))


def sum_to(g, shape: Sequence[int]):
    """Sum a broadcast gradient back down to `shape` (the inverse of broadcasting)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    return reshape(sum(g, dims, keepdim=True), shape) if dims else reshape(g, shape)


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False):
    return apply("matmul", a, b, transpose_a=bool(transpose_a), transpose_b=bool(transpose_b))


def check_index(indices, high: int, ignore: int, message: str, error: str = "IndexError"):
    """`indices`, raising `error(message.format(value=v))` for the first v outside [0, high) other
    than `ignore`, eagerly and from native code alike."""
    return apply("check_index", indices, high=int(high), ignore=int(ignore), message=message, error=error)


def check_range(values, low: float, high: float, message: str, error: str = "RuntimeError"):
    """`values`, raising `error(message.format(value=i))` for the first flat position i whose
    value is outside [low, high] or NaN, eagerly and from native code alike."""
    return apply("check_range", values, low=float(low), high=float(high), message=message, error=error)


def gather_rows(table, indices):
    """table[indices]: rows of `table` picked by int64 `indices` (assumed in range)."""
    return apply("gather_rows", table, indices)


def scatter_add_rows(values, indices, rows: int):
    """A zero table of `rows` rows with each row of `values` added at its index: gather's transpose."""
    return apply("scatter_add_rows", values, indices, rows=int(rows))


def random_uniform(key, shape: Sequence[int], dtype: str):
    """Uniform numbers in [0, 1), a pure function of the int64 scalar `key` and the element index."""
    return apply("random_uniform", key, shape=tuple(int(s) for s in shape), dtype=str(dtype))


def one_hot(indices, num_classes: int, dtype: str = "float32"):
    return apply("one_hot", indices, num_classes=int(num_classes), dtype=dtype)


def softmax(a, dim: int):
    return apply("softmax", a, dim=normalize_dims(dim, a.ndim)[0] if a.ndim else 0)


def log_softmax(a, dim: int):
    return apply("log_softmax", a, dim=normalize_dims(dim, a.ndim)[0] if a.ndim else 0)


def detach(a):
    return a.detach()


def square(a): return mul(a, a)
def reciprocal(a): return div(1.0, a)
def rsqrt(a): return div(1.0, sqrt(a))


def sign(a):
    """-1, 0 or 1 (NaN stays NaN); its gradient is zero, as PyTorch's."""
    if a.dtype == "bool":
        return a
    zero = mul(a, 0)  # 0 with a's dtype, NaN where a is NaN, and a zero gradient
    return where(gt(a, 0), add(zero, 1), where(lt(a, 0), sub(zero, 1), zero))


def to_bool(a):
    return cast(a, "bool")


def logical_not(a): return eq(to_bool(a), False)
def logical_and(a, b): return where(to_bool(a), to_bool(b), False)
def logical_or(a, b): return where(to_bool(a), True, to_bool(b))
def logical_xor(a, b): return ne(to_bool(a), to_bool(b))


def any(a, dims=None, keepdim: bool = False):  # noqa: A001
    """True where some element along dims is nonzero: the max of a bool tensor."""
    return amax(to_bool(a), dims, keepdim)


def all(a, dims=None, keepdim: bool = False):  # noqa: A001
    return logical_not(any(logical_not(a), dims, keepdim))


def var(a, dims=None, correction: float = 1, keepdim: bool = False):
    """Sum of squared deviations over (N - correction), N the number of reduced elements."""
    dims = normalize_dims(dims, a.ndim)
    count = 1
    for d in dims:
        count *= a.shape[d]
    deviation = sub(a, mean(a, dims, keepdim=True))
    return div(sum(square(deviation), dims, keepdim), float(count - correction) if count > correction else 0.0)


def torch_type_name(dtype: str) -> str:
    return {"bool": "Bool", "int64": "Long", "float32": "Float", "float64": "Double"}[str(dtype)]
