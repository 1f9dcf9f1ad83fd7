"""Data-movement ops. reshape and detach are aliases (no code, see graphc/program/plan.py); permute, expand
and slice are strided reads through the elementwise loop; slice_scatter and cat are strided
writes of each input into its window of the output."""
from __future__ import annotations

from typing import Sequence

import llvmlite.ir as ir

from .elementwise import broadcast_strides, emit_map
from .kernel import Kernel, collapse, contiguous_strides, for_range, i64, llvm_type, load, store, strided_loops


def emit_permute(k: Kernel) -> None:
    """out = transpose(a, dims) made contiguous: read `a` with its strides reordered by dims."""
    (a,) = k.operands
    strides = contiguous_strides(a.shape)
    emit_map(k, [[strides[d] for d in k.node.attr("dims")]], lambda b, values: values[0])


def emit_expand(k: Kernel) -> None:
    """out = broadcast_to(a, shape) made contiguous: broadcast dims are read with stride 0."""
    (a,) = k.operands
    emit_map(k, [broadcast_strides(a.shape, k.node.shape)], lambda b, values: values[0])


def _window(shape: Sequence[int], starts: Sequence[int], steps: Sequence[int]) -> tuple[int, list[int]]:
    """Element offset of a window's first element in a contiguous `shape`, and its strides."""
    strides = contiguous_strides(shape)
    return sum(s * n for s, n in zip(starts, strides)), [n * st for n, st in zip(strides, steps)]


def _copy(k: Kernel, src: ir.Value, src_base: int, src_strides: Sequence[int], shape: Sequence[int],
          dst_base: int, dst_strides: Sequence[int]) -> None:
    """dst[dst_base + i . dst_strides] = src[src_base + i . src_strides] over the indices of `shape`."""
    b, ty = k.builder, llvm_type(k.node.dtype)
    sizes, strides = collapse(shape, [src_strides, dst_strides])
    with strided_loops(b, sizes, strides, [i64(src_base), i64(dst_base)]) as (read, write):
        store(b, load(b, src, ty, read), k.out, write)


def emit_slice(k: Kernel) -> None:
    """out = a[starts + i * steps]: one strided read per output element."""
    (a,) = k.operands
    base, strides = _window(a.shape, k.node.attr("starts"), k.node.attr("steps"))
    _copy(k, k.ins[0], base, strides, k.node.shape, 0, contiguous_strides(k.node.shape))


def emit_slice_scatter(k: Kernel) -> None:
    """out = zeros, then g written into the window (the window is usually most of out)."""
    (g,) = k.operands
    b = k.builder
    with for_range(b, k.node.size) as i:
        store(b, ir.Constant(llvm_type(k.node.dtype), 0), k.out, i)
    base, strides = _window(k.node.shape, k.node.attr("starts"), k.node.attr("steps"))
    _copy(k, k.ins[0], 0, contiguous_strides(g.shape), g.shape, base, strides)


def emit_cat(k: Kernel) -> None:
    """Each input copied into its slab of the output along `dim`."""
    dim, offset = k.node.attr("dim"), 0
    out_strides = contiguous_strides(k.node.shape)
    for src, operand in zip(k.ins, k.operands):
        _copy(k, src, 0, contiguous_strides(operand.shape), operand.shape, offset * out_strides[dim], out_strides)
        offset += operand.shape[dim]
