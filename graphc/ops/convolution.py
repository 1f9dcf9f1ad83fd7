"""convolution: a whole convolution layer as one kernel-level node, made by fuse_convolution.

x [N, C, *size] (zero padding), weight [O, C * prod(kernel)] (the matmul's right operand of the
im2col form, a folded BatchNorm's scale already in it) -> body(windows(x) @ weightᵀ, extra...)
laid out channels first, [N, O, *out]: the same value as window_gather, the matmul, its epilogue,
the permute back to NCHW and the elementwise work after it. `in0` of `body` is the convolution,
the operands after x and weight broadcast to [N, O, *out] (numpy rules) are `in1`, ...

The geometry (kernel, stride, dilation, padding as (low, high) per spatial dim) is in the attrs, so
a kernel can be specialised to it. Made after autodiff, so no gradient rule: the traced graph keeps
the gather and matmul, whose gradients (window_scatter, matmuls) the backward graph is built from.

convolution_weight_grad: the weight gradient dyᵀ @ windows(x) of the same im2col form, [O, C *
prod(kernel)], made by fuse_weight_gradient from the backward graph's matmul, so the windows are
never gathered.
"""
from __future__ import annotations

import math

import numpy as np

from . import fused
from .registry import OpDef, ShapeError, TensorType, broadcast_shapes, register
from .window import _gather_reference, window_table

Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...]]


def output_size(size: int, kernel: int, stride: int, dilation: int, padding: tuple[int, int]) -> int:
    return (size + padding[0] + padding[1] - dilation * (kernel - 1) - 1) // stride + 1


def _infer(x: TensorType, weight: TensorType, *extra: TensorType, kernel: tuple[int, ...],
           stride: tuple[int, ...], dilation: tuple[int, ...], padding: tuple[tuple[int, int], ...],
           body: fused.Body | None) -> TensorType:
    dims = len(kernel)
    if x.ndim != dims + 2 or weight.ndim != 2 or not (len(stride) == len(dilation) == len(padding) == dims):
        raise ShapeError(f"convolution: x {list(x.shape)}, weight {list(weight.shape)} do not fit a {dims}-d kernel")
    if weight.shape[1] != x.shape[1] * math.prod(kernel) or weight.dtype != x.dtype:
        raise ShapeError(f"convolution: weight {weight.dtype}{list(weight.shape)} does not match x "
                         f"{x.dtype}{list(x.shape)} and kernel {list(kernel)}")
    out = tuple(output_size(*args) for args in zip(x.shape[2:], kernel, stride, dilation, padding))
    if min(out) < 1:
        raise ShapeError(f"convolution: kernel {list(kernel)} does not fit x {list(x.shape)}")
    result = TensorType((x.shape[0], weight.shape[0]) + out, x.dtype)
    if body is None:
        if extra:
            raise ShapeError("convolution: operands after the weight need a body")
        return result
    broadcast_shapes("convolution", result.shape, *(t.shape for t in extra))
    applied = fused._infer(result, *extra, body=body)
    if (applied.shape, applied.dtype) != (result.shape, result.dtype):
        raise ShapeError(f"convolution: body {body!r} gives {applied.dtype}{list(applied.shape)}, not the "
                         f"convolution's {result.dtype}{list(result.shape)}")
    return result


def _reference(x: np.ndarray, weight: np.ndarray, *extra: np.ndarray, kernel, stride, dilation, padding, body):
    tables = [window_table(*args) for args in zip(x.shape[2:], kernel, stride, padding, dilation)]
    windows = _gather_reference(x, *tables, pad_value=0.0)  # [N, *out, C, *kernel]
    n, out = x.shape[0], windows.shape[1:1 + len(kernel)]
    product = windows.reshape(n, math.prod(out), -1) @ weight.T  # [N, P, O]
    value = np.ascontiguousarray(np.swapaxes(product, 1, 2)).reshape((n, weight.shape[0]) + tuple(out))
    return value if body is None else fused._reference(value, *extra, body=body)


register(OpDef("convolution", "matmul", _infer, _reference,
               doc="convolution: body(conv(x, weight), extra...) channels first in one kernel (zero padding)"))


def _weight_grad_infer(x: TensorType, dy: TensorType, kernel: tuple[int, ...], stride: tuple[int, ...],
                       dilation: tuple[int, ...], padding: tuple[tuple[int, int], ...]) -> TensorType:
    dims = len(kernel)
    if x.ndim != dims + 2 or dy.ndim != dims + 2 or not (len(stride) == len(dilation) == len(padding) == dims):
        raise ShapeError(f"convolution_weight_grad: x {list(x.shape)}, dy {list(dy.shape)} do not fit a {dims}-d "
                         "kernel")
    out = tuple(output_size(*args) for args in zip(x.shape[2:], kernel, stride, dilation, padding))
    if dy.shape[0] != x.shape[0] or dy.shape[2:] != out or dy.dtype != x.dtype:
        raise ShapeError(f"convolution_weight_grad: dy {dy.dtype}{list(dy.shape)} is not the output of a "
                         f"{list(kernel)} convolution of x {x.dtype}{list(x.shape)}")
    return TensorType((dy.shape[1], x.shape[1] * math.prod(kernel)), x.dtype)


def _weight_grad_reference(x: np.ndarray, dy: np.ndarray, kernel, stride, dilation, padding) -> np.ndarray:
    tables = [window_table(*args) for args in zip(x.shape[2:], kernel, stride, padding, dilation)]
    windows = _gather_reference(x, *tables, pad_value=0.0)  # [N, *out, C, *kernel]
    n, o = dy.shape[:2]
    positions = math.prod(dy.shape[2:])
    by_position = np.swapaxes(dy.reshape(n, o, positions), 1, 2).reshape(n * positions, o)
    return by_position.T @ windows.reshape(n * positions, -1)


register(OpDef("convolution_weight_grad", "matmul", _weight_grad_infer, _weight_grad_reference,
               doc="a convolution's weight gradient [O, C * prod(kernel)] from x and dy [N, O, *out], the "
                   "windows read from x in place (zero padding)"))
