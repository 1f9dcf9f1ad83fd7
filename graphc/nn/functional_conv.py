"""Convolution and pooling functions (re-exported by graphc.nn.functional), built on the window ops.

- conv: window_gather (im2col) into [N, *out, C * kernel], one matmul against the weight
  [O, C * kernel] transposed (the Linear layer's form, so the bias is a matmul epilogue), and a
  permute to [N, O, *out]. Groups become a batched matmul over the group dim. Gradients come
  from the gather/scatter and matmul rules.
- max and average pools: one `pool` op (graphc/ops/pool.py) with the window geometry in its
  attrs, read in place by its kernel: the maximum (padding -inf), or the sum times a constant of
  reciprocal divisors. Its gradient is one `pool_backward` op.
- adaptive pools: bins of one size (the input a multiple of the output) are that `pool`; else
  each channel is a batch item of one channel, so the gather's [N * C, *out, 1, *kernel] with
  PyTorch's variable bins as tables (shorter bins padded) is already [N, C, *out, kernel] and a
  reduction over the last dim finishes it: amax (padding reads -inf) or sum.

Tables and divisors depend on shapes only, so they are small constants of the traced graph.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..ops import functions as fn
from ..ops.pool import pool
from ..ops.window import adaptive_bins, adaptive_table, window_gather, window_table
from ..tensor import Tensor, as_tensor


def _tuple(value: Any, dims: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * dims
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * dims
    if len(value) != dims:
        raise ValueError(f"expected {name} to be a single integer value or a list of {dims} values")
    return value


def _tables(sizes: Sequence[int], kernel, stride, padding, dilation, mode: str = "zeros") -> list[Tensor]:
    return [as_tensor(window_table(*args, mode)) for args in zip(sizes, kernel, stride, padding, dilation)]


def _batched(name: str, input: Tensor, dims: int) -> tuple[Tensor, bool]:
    """`input` with a batch dim (PyTorch takes unbatched [C, *size] too), and whether one was added."""
    if input.ndim == dims + 1:
        return input.unsqueeze(0), True
    if input.ndim != dims + 2:
        raise RuntimeError(f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to {name}, "
                           f"but got input of size: {list(input.shape)}")
    return input, False


# --- convolution ----------------------------------------------------------------------------
def conv_padding(padding: Any, dims: int, kernel: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """(low, high) per dim from an int, a tuple, 'valid' or 'same' (the extra one goes high, as in PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * dims
        if padding != "same":
            raise ValueError(f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in _tuple(padding, dims, "padding"))


def convolution(input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any,
                groups: int, dims: int, mode: str = "zeros") -> Tensor:
    """N-d convolution (cross-correlation, as PyTorch's) with `mode` padding ('zeros', 'circular',
    'reflect', 'replicate')."""
    name = f"conv{dims}d"
    x, unbatched = _batched(name, input, dims)
    if weight.ndim != dims + 2:
        raise RuntimeError(f"Expected {dims + 2}-dimensional weight for {name}, but got weight of size "
                           f"{list(weight.shape)}")
    out_channels, group_channels, *kernel = weight.shape
    if groups < 1 or out_channels % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size {list(weight.shape)} instead")
    channels = x.shape[1]
    if channels != group_channels * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(x.shape)} to have {group_channels * groups} channels, but got {channels} "
                           "channels instead")
    stride, dilation = _tuple(stride, dims, "stride"), _tuple(dilation, dims, "dilation")
    pads = conv_padding(padding, dims, kernel, stride, dilation)
    tables = _tables(x.shape[2:], kernel, stride, pads, dilation, mode)
    windows = window_gather(x, tables, 0.0)  # [N, *out, C, *kernel]
    n, out = x.shape[0], tuple(windows.shape[1:1 + dims])
    positions, per_group = math.prod(out), group_channels * math.prod(kernel)
    if groups == 1:
        y = fn.matmul(fn.reshape(windows, (n, positions, per_group)), fn.reshape(weight, (out_channels, per_group)),
                      False, True)  # [N, P, O]
        if bias is not None:
            y = fn.add(y, bias)
        y = fn.permute(y, (0, 2, 1))
    else:
        by_group = fn.permute(fn.reshape(windows, (n * positions, groups, per_group)), (1, 0, 2))
        w = fn.reshape(weight, (groups, out_channels // groups, per_group))
        y = fn.matmul(by_group, w, False, True)  # [G, N * P, O / G]
        y = fn.permute(fn.reshape(y, (groups, n, positions, out_channels // groups)), (1, 0, 3, 2))
        if bias is not None:
            y = fn.add(fn.reshape(y, (n, out_channels, positions)), fn.reshape(bias, (out_channels, 1)))
    y = fn.reshape(y, (n, out_channels) + out)
    return y.squeeze(0) if unbatched else y


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    return convolution(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    return convolution(input, weight, bias, stride, padding, dilation, groups, 2)


# --- pooling --------------------------------------------------------------------------------
def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: with ceil_mode the last window may run past the input, but
    must start inside it or its left padding."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pool_geometry(name: str, x: Tensor, dims: int, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _tuple(kernel_size, dims, "kernel_size")
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
        _tuple(stride, dims, "stride")
    padding, dilation = _tuple(padding, dims, "padding"), _tuple(dilation, dims, "dilation")
    for k, p, d in zip(kernel, padding, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={d}")
    sizes = x.shape[x.ndim - dims:]
    outs = [pool_output_size(*args, ceil_mode) for args in zip(sizes, kernel, stride, padding, dilation)]
    if min(outs) < 1:
        raise RuntimeError(f"{name}: output size is too small for input of size {list(x.shape)}")
    # the high padding that makes the floor rule give `outs` (more than `padding` in ceil mode)
    pads = [(p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p))  # below 0 the floor rule drops the tail anyway
            for n, o, k, s, p, d in zip(sizes, outs, kernel, stride, padding, dilation)]
    return kernel, stride, padding, dilation, pads


def _pool(x: Tensor, dims: int, tables: Sequence[Tensor], pad_value: float, reduce) -> Tensor:
    """reduce(windows, -1) of every channel's windows: channels become batch items of one channel."""
    lead = tuple(x.shape[:x.ndim - dims])
    items = fn.reshape(x, (-1, 1) + tuple(x.shape[x.ndim - dims:]))
    windows = window_gather(items, tables, pad_value)
    outs = tuple(windows.shape[1:1 + dims])
    return reduce(fn.reshape(windows, lead + outs + (-1,)), -1)


def _checked_pool_input(name: str, input: Tensor, dims: int) -> None:
    if input.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(f"{name}: Expected {dims + 1}D or {dims + 2}D input tensor, but got {list(input.shape)}")


def _no_indices(return_indices: bool) -> None:
    if return_indices:
        raise NotImplementedError("graphc pools do not return indices (return_indices=True)")


def max_pool(input: Tensor, dims: int, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False) -> Tensor:
    """One `pool` op: the maximum of each window, padding -inf. The gradient of tied maxima is
    shared equally among them (amax's rule over windows); PyTorch gives it all to the first."""
    name = f"max_pool{dims}d"
    _checked_pool_input(name, input, dims)
    _no_indices(return_indices)
    kernel, stride, _, dilation, pads = _pool_geometry(name, input, dims, kernel_size, stride, padding, dilation,
                                                       ceil_mode)
    return pool(input, "max", kernel, stride, dilation, pads)


def _reciprocal(x: Tensor, divisors: np.ndarray) -> Tensor:
    return as_tensor(np.asarray(1.0 / divisors, dtype=str(x.dtype)))


def avg_pool(input: Tensor, dims: int, kernel_size, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True, divisor_override=None) -> Tensor:
    """Window sums (a `pool` op) times 1 / divisor, PyTorch's divisor per output position: the window clipped to
    the padded input (count_include_pad) or to the input itself, unless divisor_override."""
    name = f"avg_pool{dims}d"
    _checked_pool_input(name, input, dims)
    sizes = input.shape[input.ndim - dims:]
    kernel, stride, padding, dilation, pads = _pool_geometry(name, input, dims, kernel_size, stride, padding, 1,
                                                             ceil_mode)
    sums = pool(input, "sum", kernel, stride, dilation, pads)
    if divisor_override:
        return fn.mul(sums, _reciprocal(input, np.asarray(float(divisor_override))))
    lengths = []
    for n, o, k, s, p in zip(sizes, sums.shape[sums.ndim - dims:], kernel, stride, padding):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        lengths.append(end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0))
    divisors = lengths[0] if dims == 1 else np.multiply.outer(*lengths)
    return fn.mul(sums, _reciprocal(input, divisors))


def _adaptive_sizes(input: Tensor, dims: int, output_size) -> list[int]:
    sizes = input.shape[input.ndim - dims:]
    outs = (output_size,) * dims if isinstance(output_size, int) or output_size is None else tuple(output_size)
    if len(outs) != dims:
        raise ValueError(f"output_size must have {dims} elements, got {output_size}")
    return [int(n if o is None else o) for n, o in zip(sizes, outs)]


MAX_UNIFORM_BIN = 32  # a pool kernel unrolls a row of its window: wider bins stay gathered


def _uniform_bins(sizes: Sequence[int], outs: Sequence[int]) -> tuple[int, ...] | None:
    """The bin size per dim when every bin has it (the size a multiple of the output size): the
    adaptive pool is then a plain pool with that kernel and stride."""
    if any(n % o or n // o > MAX_UNIFORM_BIN for n, o in zip(sizes, outs)):
        return None
    return tuple(n // o for n, o in zip(sizes, outs))


def adaptive_avg_pool(input: Tensor, dims: int, output_size) -> Tensor:
    """Sums over PyTorch's bins (start floor(i * n / out), end ceil((i + 1) * n / out)) over their lengths."""
    _checked_pool_input(f"adaptive_avg_pool{dims}d", input, dims)
    sizes, outs = input.shape[input.ndim - dims:], _adaptive_sizes(input, dims, output_size)
    if all(o == 1 for o in outs):  # global pooling: a mean over the spatial dims, no window copy
        return fn.mean(input, tuple(range(input.ndim - dims, input.ndim)), keepdim=True)
    bins = _uniform_bins(sizes, outs)
    if bins is not None:
        sums = pool(input, "sum", bins, bins, (1,) * dims, ((0, 0),) * dims)
        return fn.mul(sums, _reciprocal(input, np.asarray(float(math.prod(bins)))))
    tables = [as_tensor(adaptive_table(n, o)) for n, o in zip(sizes, outs)]
    sums = _pool(input, dims, tables, 0.0, fn.sum)
    lengths = [end - start for start, end in (adaptive_bins(n, o) for n, o in zip(sizes, outs))]
    divisors = lengths[0] if dims == 1 else np.multiply.outer(*lengths)
    return fn.mul(sums, _reciprocal(input, divisors))


def adaptive_max_pool(input: Tensor, dims: int, output_size, return_indices=False) -> Tensor:
    _checked_pool_input(f"adaptive_max_pool{dims}d", input, dims)
    _no_indices(return_indices)
    sizes, outs = input.shape[input.ndim - dims:], _adaptive_sizes(input, dims, output_size)
    bins = _uniform_bins(sizes, outs)
    if bins is not None:
        return pool(input, "max", bins, bins, (1,) * dims, ((0, 0),) * dims)
    tables = [as_tensor(adaptive_table(n, o)) for n, o in zip(sizes, outs)]
    return _pool(input, dims, tables, -math.inf, fn.amax)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False) -> Tensor:
    return max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False) -> Tensor:
    return max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    return avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    return avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    return adaptive_avg_pool(input, 1, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    return adaptive_avg_pool(input, 2, output_size)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices=False) -> Tensor:
    return adaptive_max_pool(input, 1, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices=False) -> Tensor:
    return adaptive_max_pool(input, 2, output_size, return_indices)
