"""Convolution, pooling and their gradients written with array operations only (shifted slices,
einsum, pad, reshape), so the same code runs as numpy and under jax.jit as `xp`."""
from __future__ import annotations

from typing import Any


def conv2d(xp: Any, x: Any, weight: Any, bias: Any, padding: int = 0) -> Any:
    """Stride-1 cross-correlation as PyTorch's conv2d: one einsum per kernel tap."""
    if padding:
        x = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = weight.shape[2:]
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = 0
    for i in range(kh):
        for j in range(kw):
            out = out + xp.einsum("nchw,oc->nohw", x[:, :, i:i + oh, j:j + ow], weight[:, :, i, j])
    return out + bias[None, :, None, None]


def conv2d_grads(xp: Any, x: Any, weight: Any, grad: Any, padding: int = 0) -> tuple[Any, Any, Any]:
    """(d input, d weight, d bias) of conv2d given d output."""
    if padding:
        x = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = weight.shape[2:]
    oh, ow = grad.shape[2:]
    h, w = x.shape[2:]
    d_weight = xp.stack([xp.stack([xp.einsum("nchw,nohw->oc", x[:, :, i:i + oh, j:j + ow], grad)
                                   for j in range(kw)], -1) for i in range(kh)], -2)
    d_x = 0
    for i in range(kh):
        for j in range(kw):
            part = xp.einsum("nohw,oc->nchw", grad, weight[:, :, i, j])
            d_x = d_x + xp.pad(part, ((0, 0), (0, 0), (i, h - oh - i), (j, w - ow - j)))
    if padding:
        d_x = d_x[:, :, padding:-padding, padding:-padding]
    return d_x, d_weight, grad.sum(axis=(0, 2, 3))


def max_pool2(xp: Any, x: Any) -> Any:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def max_pool2_grad(xp: Any, x: Any, out: Any, grad: Any) -> Any:
    """Gradient of max_pool2 (random inputs have no ties within a window)."""
    up = lambda t: xp.repeat(xp.repeat(t, 2, axis=2), 2, axis=3)  # noqa: E731
    return (x == up(out)) * up(grad)
