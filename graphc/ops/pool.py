"""pool and pool_backward: max and sum pooling over fixed windows, read in place.

pool(x) reduces every window of x [..., *size] (one or two trailing spatial dims; the leading
dims are independent planes) to one element of [..., *out]: "max" treats padding as -inf,
"sum" as 0 (average pools multiply by their divisors afterwards). The geometry (kernel, stride,
dilation, (low, high) padding per spatial dim) is in the attrs, a ceil-mode overhang being extra
high padding, so a kernel is specialised to it and never stores the windows.

pool_backward(g[, x, out]) is its input gradient, [..., *size]: "sum" sends g[o] to every
element of window o; "max" shares g[o] equally among the elements of window o equal to out[o]
(padding included: it holds -inf), exactly as amax's rule over gathered windows does, so
mask * (g / count) with a NaN maximum makes the window's gradient NaN too. PyTorch instead
gives all of it to the first maximum; with distinct values the two agree.

Both are written in terms of window_gather / window_scatter for the reference and the second
derivative, so they mean exactly what F.max_pool traced before them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import functions as F
from .registry import OpDef, ShapeError, TensorType, register
from .window import _gather_reference, _scatter_reference, window_gather, window_table

Padding = tuple[tuple[int, int], ...]
FILL = {"max": -math.inf, "sum": 0.0}


def _output_size(size: int, kernel: int, stride: int, dilation: int, padding: tuple[int, int]) -> int:
    return (size + padding[0] + padding[1] - dilation * (kernel - 1) - 1) // stride + 1


def _check(name: str, x: TensorType, reduce: str, kernel, stride, dilation, padding) -> tuple[int, ...]:
    """The pooled spatial shape, after checking the attrs against x."""
    dims = len(kernel)
    if reduce not in FILL:
        raise ShapeError(f"{name}: unknown reduction {reduce!r}")
    if dims not in (1, 2) or not (len(stride) == len(dilation) == len(padding) == dims) or x.ndim < dims + 1:
        raise ShapeError(f"{name}: x {list(x.shape)} does not fit a {len(kernel)}-d window {list(kernel)}")
    if x.dtype not in ("float32", "float64"):
        raise ShapeError(f"{name}: not implemented for {x.dtype}")
    out = tuple(_output_size(*args) for args in zip(x.shape[x.ndim - dims:], kernel, stride, dilation, padding))
    if min(out) < 1:
        raise ShapeError(f"{name}: window {list(kernel)} does not fit x {list(x.shape)}")
    return out


def _windows(x: np.ndarray, kernel, stride, dilation, padding, fill: float) -> np.ndarray:
    """[planes, *out, prod(kernel)] windows of x's planes (padding holds `fill`)."""
    dims = len(kernel)
    size = x.shape[x.ndim - dims:]
    tables = [window_table(*args) for args in zip(size, kernel, stride, padding, dilation)]
    planes = x.reshape((-1, 1) + size)
    gathered = _gather_reference(planes, *tables, pad_value=fill)  # [planes, *out, 1, *kernel]
    return gathered.reshape(gathered.shape[:1 + dims] + (-1,))


def _infer(x: TensorType, reduce: str, kernel, stride, dilation, padding) -> TensorType:
    out = _check("pool", x, reduce, kernel, stride, dilation, padding)
    return TensorType(x.shape[:x.ndim - len(kernel)] + out, x.dtype)


def _reference(x: np.ndarray, reduce: str, kernel, stride, dilation, padding) -> np.ndarray:
    windows = _windows(x, kernel, stride, dilation, padding, FILL[reduce])
    value = windows.max(-1) if reduce == "max" else windows.sum(-1)
    return value.reshape(x.shape[:x.ndim - len(kernel)] + value.shape[1:]).astype(x.dtype)


def _gradient(ins, out, g, reduce, kernel, stride, dilation, padding):
    (x,) = ins
    saved = (x, out) if reduce == "max" else ()
    return (pool_backward(g, saved, reduce, kernel, stride, dilation, padding, x.shape[x.ndim - len(kernel):]),)


def _backward_infer(g: TensorType, *saved: TensorType, reduce: str, kernel, stride, dilation, padding,
                    size) -> TensorType:
    dims = len(kernel)
    x = TensorType(g.shape[:g.ndim - dims] + tuple(size), g.dtype)
    out = _check("pool_backward", x, reduce, kernel, stride, dilation, padding)
    if g.shape[g.ndim - dims:] != out:
        raise ShapeError(f"pool_backward: gradient {list(g.shape)} is not the pooled shape of {list(x.shape)}")
    expected = [x, TensorType(g.shape, g.dtype)] if reduce == "max" else []
    if list(saved) != expected:
        raise ShapeError(f"pool_backward: {reduce} takes {[f'{t.dtype}{list(t.shape)}' for t in expected]} "
                         f"after the gradient, got {[f'{t.dtype}{list(t.shape)}' for t in saved]}")
    return x


def _shares(g: np.ndarray, x: np.ndarray | None, out: np.ndarray | None, reduce, kernel, stride, dilation,
            padding) -> np.ndarray:
    """What each window element receives, [planes, *out, prod(kernel)]."""
    dims = len(kernel)
    g = g.reshape((-1,) + g.shape[g.ndim - dims:] + (1,))
    count = math.prod(kernel)
    if reduce == "sum":
        return np.broadcast_to(g, g.shape[:-1] + (count,))
    windows = _windows(x, kernel, stride, dilation, padding, FILL["max"])
    plane = np.ones((1,) + x.shape[x.ndim - dims:], x.dtype)  # one plane: the padding is where its windows read 0
    inside = _windows(plane, kernel, stride, dilation, padding, 0.0) != 0
    chosen = np.argmax(_max_keys(np, windows, inside, out.reshape(g.shape), count), axis=-1)
    return (np.arange(count) == chosen[..., None]).astype(g.dtype) * g


def _max_keys(xp, windows, inside, pooled, count: int):
    """Per window element a key whose largest value is the element PyTorch's max pool picks: the
    last NaN if the window holds one, else the first element inside the input equal to the
    maximum (its scan starts at the first element inside and takes one greater than all before
    it, or NaN). `inside`: true off the padding. `xp`: numpy or graphc's ops."""
    position = np.arange(count)
    if xp is np:
        equal = np.where((windows == pooled) & inside, count - position, -1)
        return np.where(windows != windows, 2 * count + position, equal)
    from ..tensor import as_tensor
    nan_key, max_key = (as_tensor((2 * count + position).astype(np.float32)),
                        as_tensor((count - position).astype(np.float32)))
    equal = F.where(F.logical_and(F.eq(windows, pooled), inside), max_key, as_tensor(np.float32(-1)))
    return F.where(F.ne(windows, windows), nan_key, equal)


def _backward_reference(g: np.ndarray, *saved: np.ndarray, reduce, kernel, stride, dilation, padding,
                        size) -> np.ndarray:
    dims = len(kernel)
    x, out = saved if saved else (None, None)
    shares = _shares(g, x, out, reduce, kernel, stride, dilation, padding)
    tables = [window_table(*args) for args in zip(size, kernel, stride, padding, dilation)]
    windows = shares.reshape(shares.shape[:1 + dims] + (1,) + tuple(kernel))
    dx = _scatter_reference(np.ascontiguousarray(windows), *tables, size=tuple(size))  # [planes, 1, *size]
    return dx.reshape(g.shape[:g.ndim - dims] + tuple(size)).astype(g.dtype)


def _backward_gradient(ins, out, gx, reduce, kernel, stride, dilation, padding, size):
    """d/dg of the routing (it is linear in g): the sum pool of gx for "sum"; for "max", each
    window's gx at the element the pool picked. x and out only pick it: no gradient."""
    g, *saved = ins
    if reduce == "sum":
        return (pool(gx, "sum", kernel, stride, dilation, padding),) + (None,) * len(saved)
    x, pooled = saved
    dims = len(kernel)
    lead, outs = tuple(g.shape[:g.ndim - dims]), tuple(g.shape[g.ndim - dims:])
    from ..tensor import as_tensor  # the tensor module imports the op table
    tables = [as_tensor(window_table(*args)) for args in zip(size, kernel, stride, padding, dilation)]

    def windows(a, fill):
        gathered = window_gather(F.reshape(a, (-1, 1) + tuple(size)), tables, fill)
        return F.reshape(gathered, lead + outs + (-1,))
    keep = lead + outs + (1,)
    count = math.prod(kernel)
    ones = as_tensor(np.ones((1, 1) + tuple(size), x.dtype))  # one plane: the padding is where its windows read 0
    inside = F.ne(F.reshape(window_gather(ones, tables, 0.0), (1,) * len(lead) + outs + (-1,)), 0.0)
    chosen = F.argmax(_max_keys(F, windows(x, -math.inf), inside, F.reshape(pooled, keep), count), len(keep) - 1)
    mask = F.one_hot(chosen, count, x.dtype)
    return (F.sum(F.mul(mask, windows(gx, 0.0)), (len(keep) - 1,), False), None, None)


def pool(x, reduce: str, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int], padding: Padding):
    return F.apply("pool", x, reduce=reduce, kernel=tuple(kernel), stride=tuple(stride),
                   dilation=tuple(dilation), padding=tuple(tuple(p) for p in padding))


def pool_backward(g, saved: Sequence, reduce: str, kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int], padding: Padding, size: Sequence[int]):
    return F.apply("pool_backward", g, *saved, reduce=reduce, kernel=tuple(kernel), stride=tuple(stride),
                   dilation=tuple(dilation), padding=tuple(tuple(p) for p in padding),
                   size=tuple(int(s) for s in size))


register(OpDef("pool", "index", _infer, _reference, _gradient,
               doc="max or sum over the windows of x's last 1 or 2 dims, read in place (geometry in attrs)"))
register(OpDef("pool_backward", "index", _backward_infer, _backward_reference, _backward_gradient,
               doc="pool's input gradient: g routed to each window's elements (max: to the one PyTorch picks)"))
