"""Normalisation layers with PyTorch's arguments, initialisation, buffers, state_dict keys and reprs.

BatchNorm's running statistics are buffers written in place by `F.batch_norm` (`copy_`), and
`num_batches_tracked` is incremented in place: eagerly that changes the arrays, and while tracing
the writes become graph updates (trace.Tracer.write), so compiled code updates them too, and only
when a call succeeds.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _dtype(dtype: Any) -> str:
    return str(dtypes.canonical(dtype)) if dtype is not None else dtypes.get_default_dtype()


def _affine_parameters(module: Module, affine: bool, bias: bool, shape: tuple[int, ...], dtype: str) -> None:
    """`weight` (and `bias` unless bias=False) of `shape` when affine, else both registered as None."""
    module.register_parameter("weight", Parameter(np.empty(shape, dtype=dtype)) if affine else None)
    module.register_parameter("bias", Parameter(np.empty(shape, dtype=dtype)) if affine and bias else None)


def _reset_affine(module: Module) -> None:
    """PyTorch's init for every normalisation layer: weight ones, bias zeros."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """BatchNorm over dim 1 (the channels) of [N, C, ...] inputs; subclasses check the rank."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = _dtype(dtype)
        _affine_parameters(self, affine, bias, (num_features,), dtype)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(np.zeros((num_features,), dtype=dtype)))
            self.register_buffer("running_var", Tensor._wrap(np.ones((num_features,), dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.zeros((), dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    _RANKS: tuple[int, ...] = ()  # the input ranks a subclass accepts, and how its error names them
    _EXPECTED = ""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in self._RANKS:
            raise ValueError(f"expected {self._EXPECTED} input (got {input.ndim}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor: float | Tensor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.copy_(self.num_batches_tracked + 1)
            if self.momentum is None:  # a cumulative average: 1 / batches seen, read from the buffer
                factor = 1.0 / self.num_batches_tracked.to(input.dtype)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep else None, self.running_var if keep else None,
                            self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Inputs [N, C] or [N, C, L]."""

    _RANKS, _EXPECTED = (2, 3), "2D or 3D"


class BatchNorm2d(_BatchNorm):
    """Inputs [N, C, H, W]."""

    _RANKS, _EXPECTED = (4,), "4D"


class LayerNorm(Module):
    """Normalises over the trailing `normalized_shape` dims; weight ones and bias zeros of that shape."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.normalized_shape = F._shape_tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_parameters(self, elementwise_affine, bias, self.normalized_shape, _dtype(dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalises each sample's channels in groups; per-channel weight ones and bias zeros."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _affine_parameters(self, affine, bias, (num_channels,), _dtype(dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.bias is not None}"
