"""Data-movement ops. reshape and detach are aliases (no code, see buffers.py); permute and
expand are strided copies through the elementwise loop."""
from __future__ import annotations

from .elementwise import broadcast_strides, emit_map
from .kernel import Kernel, contiguous_strides


def emit_permute(k: Kernel) -> None:
    """out = transpose(a, dims) made contiguous: read `a` with its strides reordered by dims."""
    (a,) = k.operands
    strides = contiguous_strides(a.shape)
    emit_map(k, [[strides[d] for d in k.node.attr("dims")]], lambda b, values: values[0])


def emit_expand(k: Kernel) -> None:
    """out = broadcast_to(a, shape) made contiguous: broadcast dims are read with stride 0."""
    (a,) = k.operands
    emit_map(k, [broadcast_strides(a.shape, k.node.shape)], lambda b, values: values[0])
