"""PyTorch's tensor functions with its names, arguments and errors (`graphc.cat`, `graphc.max`,
...), written with the op functions so each works eagerly, traced and differentiated.
`Tensor` methods of the same names call these."""
from __future__ import annotations

import builtins
import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from .ops import functions as F
from .tensor import Tensor, as_tensor


def _dim(dim: int, ndim: int, extra: int = 0) -> int:
    """`dim` made non-negative for a tensor of `ndim` dims (+ `extra` new ones), with torch's error."""
    size = builtins.max(ndim + extra, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], "
                         f"but got {dim})")
    return dim % size


# --- reductions that return indices --------------------------------------------------------
class _ReturnType(NamedTuple):
    values: Tensor
    indices: Tensor

    def __repr__(self) -> str:
        return f"graphc.return_types.{type(self).__name__}(\nvalues={self.values!r},\nindices={self.indices!r})"


class return_types:  # noqa: N801  (PyTorch's name: torch.return_types.max)
    """The named tuples of (values, indices) that max and min along a dim return."""

    class max(_ReturnType):  # noqa: A003
        pass

    class min(_ReturnType):  # noqa: A003
        pass


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """First index of the largest element (NaN counts as largest) along `dim`, or in the
    flattened tensor when `dim` is None."""
    if dim is None:
        return F.argmax(F.reshape(input, (-1,)), 0)
    return F.argmax(input, _dim(dim, input.ndim), keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return argmax(_negated(input, "argmin"), dim, keepdim)


def _negated(input: Tensor, name: str) -> Tensor:
    if input.dtype == "bool":
        raise RuntimeError(f"{name}: not implemented for 'Bool'")
    return F.neg(input)


def _max_along(input: Tensor, dim: int, keepdim: bool) -> tuple[Tensor, Tensor]:
    """(values, indices): the gradient goes to the element at the index only, as PyTorch's."""
    dim = _dim(dim, input.ndim)
    indices = F.argmax(input, dim, keepdim=True)
    if input.ndim == 0:
        return input, F.reshape(indices, ())
    iota = as_tensor(np.arange(input.shape[dim]).reshape([-1] + [1] * (input.ndim - dim - 1)))
    lowest = float("-inf") if input.dtype.startswith("float") else np.iinfo(np.int64).min
    values = F.amax(F.where(F.eq(indices, iota), input, lowest), dim, keepdim)
    return values, indices if keepdim else F.reshape(indices, values.shape)


def max(input: Tensor, dim: Any = None, keepdim: bool = False):  # noqa: A001
    """max(x): the largest value (0-d); max(x, dim): (values, indices); max(x, y): maximum."""
    if isinstance(dim, Tensor):
        return F.maximum(input, dim)
    if dim is None:
        return F.amax(input)
    return return_types.max(*_max_along(input, dim, keepdim))


def min(input: Tensor, dim: Any = None, keepdim: bool = False):  # noqa: A001
    if isinstance(dim, Tensor):
        return F.minimum(input, dim)
    if dim is None:
        return F.neg(F.amax(_negated(input, "min")))
    values, indices = _max_along(_negated(input, "min"), dim, keepdim)
    return return_types.min(F.neg(values), indices)


def amin(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return F.neg(F.amax(_negated(input, "amin"), dim, keepdim))


def _reduce_dtype(input: Tensor, dtype: Any) -> Tensor:
    from .dtypes import canonical
    return input if dtype is None else F.cast(input, canonical(dtype))


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A001
    return F.sum(_reduce_dtype(input, dtype), dim, keepdim)


def prod(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError("prod(): argument 'dim' must be int")
    return F.prod(_reduce_dtype(input, dtype), dim, keepdim)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    input = _reduce_dtype(input, dtype)
    if not input.dtype.startswith("float"):
        name = {"int64": "Long", "bool": "Bool"}[input.dtype]
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating point or "
                           f"complex dtype. Got: {name}")
    return F.mean(input, dim, keepdim)


def _correction(dim: Any, unbiased: Any, correction: Any) -> tuple[Any, float]:
    if isinstance(dim, bool):  # var(x, unbiased)
        dim, unbiased = None, dim
    if correction is not None and unbiased is not None:
        raise RuntimeError("var: cannot specify both unbiased and correction")
    if correction is None:
        correction = 0 if unbiased is False else 1
    return dim, float(correction)


def var(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    dim, correction = _correction(dim, unbiased, correction)
    return F.var(input, dim, correction, keepdim)


def std(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    return F.sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return F.all(input, dim, keepdim)


def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return F.any(input, dim, keepdim)


# --- joining and splitting -----------------------------------------------------------------
def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    dim = _dim(dim, tensors[0].ndim)
    for k, t in enumerate(tensors):
        if t.ndim != tensors[0].ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {tensors[0].ndim} and {t.ndim}")
        for d in range(t.ndim):
            if d != dim and t.shape[d] != tensors[0].shape[d]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size "
                                   f"{tensors[0].shape[d]} but got size {t.shape[d]} for tensor number {k} in the list.")
    return F.cat(tensors, dim)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for k, t in enumerate(tensors):
        if tuple(t.shape) != tuple(tensors[0].shape):
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} at "
                               f"entry 0 and {list(t.shape)} at entry {k}")
    dim = _dim(dim, tensors[0].ndim, extra=1)
    return F.cat([unsqueeze(t, dim) for t in tensors], dim)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    dim = _dim(dim, input.ndim)
    n = input.shape[dim]
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    start = start % n if start < 0 else start
    if length < 0 or start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return _along(input, dim, start, length)


def _along(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    starts = tuple(start if d == dim else 0 for d in range(input.ndim))
    shape = tuple(length if d == dim else s for d, s in enumerate(input.shape))
    return F.slice(input, starts, (1,) * input.ndim, shape)


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    dim = _dim(dim, tensor.ndim)
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0 and not (size == 0 and n == 0):
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={size}")
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                               f"dimension {dim}), but got split_sizes={sizes}")
    parts, start = [], 0
    for s in sizes:
        parts.append(_along(tensor, dim, start, s))
        start += s
    return tuple(parts)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = input.shape[_dim(dim, input.ndim)]
    return split(input, builtins.max(math.ceil(n / chunks), 1) if n else 0, dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    dim = _dim(dim, input.ndim)
    return tuple(squeeze(part, dim) for part in split(input, 1, dim))


# --- shapes --------------------------------------------------------------------------------
def unsqueeze(input: Tensor, dim: int) -> Tensor:
    dim = _dim(dim, input.ndim, extra=1)
    return F.reshape(input, tuple(input.shape[:dim]) + (1,) + tuple(input.shape[dim:]))


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Drops the size-1 dims among `dim` (an int or a tuple; all dims when None)."""
    if dim is None:
        dims = range(input.ndim)
    else:
        dims = {_dim(d, input.ndim) for d in ((dim,) if isinstance(dim, int) else dim)}
    if input.ndim == 0:
        return input
    return F.reshape(input, tuple(s for d, s in enumerate(input.shape) if not (d in dims and s == 1)))


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    dim = _dim(dim, input.ndim)
    sizes = tuple(int(s) for s in sizes)
    if -1 in sizes:
        sizes = F.resolve_shape(sizes, input.shape[dim])
    if math.prod(sizes) != input.shape[dim]:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({input.shape[dim]}) in the input tensor")
    return F.reshape(input, tuple(input.shape[:dim]) + tuple(sizes) + tuple(input.shape[dim + 1:]))


def reshape(input: Tensor, shape: Sequence[int]) -> Tensor:
    return F.reshape(input, shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return F.reshape(input, (1,))
    start, end = _dim(start_dim, input.ndim), _dim(end_dim, input.ndim)
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    return F.reshape(input, tuple(input.shape[:start]) + (-1,) + tuple(input.shape[end + 1:]))


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    dims = tuple(int(d) for d in dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {input.ndim} is not "
                           f"equal to len(dims) = {len(dims)}")
    normalized = tuple(_dim(d, input.ndim) for d in dims)
    if len(set(normalized)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return F.permute(input, normalized)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    if input.ndim == 0:
        return input
    return F.transpose(input, _dim(dim0, input.ndim), _dim(dim1, input.ndim))


def t(input: Tensor) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return F.transpose(input, 0, 1) if input.ndim == 2 else input


def flip(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Reversed along `dims`: a slice with step -1 from the last element of each."""
    dims = {_dim(d, input.ndim) for d in ((dims,) if isinstance(dims, int) else dims)}
    starts = tuple(n - 1 if d in dims and n else 0 for d, n in enumerate(input.shape))
    steps = tuple(-1 if d in dims else 1 for d in range(input.ndim))
    return F.slice(input, starts, steps, input.shape) if dims and input.numel() else input


def repeat(input: Tensor, sizes: Sequence[int]) -> Tensor:
    """Tiles: each dim d of the (left-padded) input expanded along a new dim before it, then merged."""
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    interleaved = F.reshape(input, tuple(v for s in shape for v in (1, s)))
    tiled = F.expand(interleaved, tuple(v for r, s in zip(sizes, shape) for v in (r, s)))
    return F.reshape(tiled, tuple(r * s for r, s in zip(sizes, shape)))


# --- products ------------------------------------------------------------------------------
def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    _check_inner("mm", input, mat2)
    return F.matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError(f"batch2 must be a 3D tensor")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{input.shape[0]}, "
                           f"{input.shape[2]}] but got: [{mat2.shape[0]}, {mat2.shape[1]}].")
    _check_inner("bmm", input, mat2)
    return F.matmul(input, mat2)


def _check_inner(name: str, a: Tensor, b: Tensor) -> None:
    if a.shape[-1] != b.shape[-2]:
        rows = "x".join(str(s) for s in a.shape[-2:])
        cols = "x".join(str(s) for s in b.shape[-2:])
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows} and {cols})")


# --- elementwise ---------------------------------------------------------------------------
def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    return F.clamp(input, min, max)


clip = clamp


def clamp_min(input: Tensor, min: Any) -> Tensor:  # noqa: A002
    return F.clamp(input, min, None)


def clamp_max(input: Tensor, max: Any) -> Tensor:  # noqa: A002
    return F.clamp(input, None, max)


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001
    """Half to even; with decimals, round(x * 10**decimals) / 10**decimals as PyTorch computes it."""
    if not decimals:
        return F.round(input)
    scale = 10.0 ** decimals
    return F.div(F.round(F.mul(input, scale)), scale)


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    return where(mask, value, input)


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    return F.where(F.to_bool(condition), input, other)
