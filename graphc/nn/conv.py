"""Conv1d and Conv2d with PyTorch's arguments, checks, initialisation, attributes and repr."""
from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional_conv as C
from . import init
from .module import Module
from .modules import add_weight_and_bias

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Weight [out_channels, in_channels / groups, *kernel_size], bias [out_channels]."""

    dims = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        kernel_size, stride = C._tuple(kernel_size, self.dims, "kernel_size"), C._tuple(stride, self.dims, "stride")
        dilation = C._tuple(dilation, self.dims, "dilation")
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = C._tuple(padding, self.dims, "padding")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {set(PADDING_MODES)}, but got padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.transposed, self.output_padding, self.padding_mode = False, (0,) * self.dims, padding_mode
        add_weight_and_bias(self, (out_channels, in_channels // groups, *kernel_size), bias, dtype)

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) on the weight, U(+-1/sqrt(fan_in)) on the bias."""
        init.layer_default_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        # non-zero padding modes pad by `padding` and convolve the padded input, as PyTorch's F.pad + conv
        return C.convolution(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                             self.dims, self.padding_mode)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    dims = 1


class Conv2d(_ConvNd):
    dims = 2
