"""window_gather and window_scatter: loops over the windows array [N, *out, C, *kernel] in
memory order, the input position of each element read from the per-dim index tables
(graphc/ops/window.py; -1 marks padding).

Both walk the windows array contiguously (gather writes it, scatter reads it), kernel offsets
innermost, so a window row of the image is read (or added to) in order. Table entries are
loaded at the loop level of their (out, kernel) pair, where LLVM hoists them out of the inner
loops. A padded gather element takes pad_value through a select at a clamped (in-bounds)
address, so the inner loop has no branch; a scatter skips padding with a branch (adding zero
somewhere would flip a -0.0). Batch items touch disjoint parts of the image, so large kernels
split the batch across the thread pool.
"""
from __future__ import annotations

import contextlib
import functools
import math

import llvmlite.ir as ir

from .kernel import I1, I64, Kernel, add, contiguous_strides, for_range, i64, llvm_type, load, store
from .threads import num_threads, run_parts, split

MIN_ELEMENTS_PER_PART = 1 << 16  # about 30 µs of gathering


@contextlib.contextmanager
def _window_loops(k: Kernel, windows, image, first: int, count: int):
    """Loops over items first..first+count-1 of the windows array in memory order; yields
    (offset in the windows array, offset in the image, i1 the element is padding)."""
    b = k.builder
    outs, kernels = [t.shape[0] for t in k.operands[1:]], [t.shape[1] for t in k.operands[1:]]
    dims, channels, spatial_strides = len(outs), image[1], contiguous_strides(image[2:])
    window_strides = contiguous_strides(windows)
    image_item, image_channel = math.prod(image[1:]), math.prod(image[2:])
    with contextlib.ExitStack() as stack:
        n = stack.enter_context(for_range(b, count, "n"))
        n = add(b, i64(first), n)
        flat, base = add(b, i64(0), n, window_strides[0]), add(b, i64(0), n, image_item)
        positions = []
        for d in range(dims):
            o = stack.enter_context(for_range(b, outs[d], f"o{d}"))
            positions.append(o)
            flat = add(b, flat, o, window_strides[1 + d])
        c = stack.enter_context(for_range(b, channels, "c"))
        flat, base = add(b, flat, c, window_strides[1 + dims]), add(b, base, c, image_channel)
        padding = ir.Constant(I1, 0)
        for d in range(dims):
            j = stack.enter_context(for_range(b, kernels[d], f"k{d}"))
            flat = add(b, flat, j, window_strides[2 + dims + d])
            index = load(b, k.ins[1 + d], I64, add(b, add(b, i64(0), positions[d], kernels[d]), j))
            outside = b.icmp_signed("<", index, i64(0))
            padding = b.or_(padding, outside)
            base = add(b, base, b.select(outside, i64(0), index), spatial_strides[d])
        yield flat, base, padding


def _batch_parts(k: Kernel, emit_part, batch: int, elements: int) -> None:
    threads = min(num_threads(), max(1, elements // MIN_ELEMENTS_PER_PART))
    run_parts(k, [functools.partial(emit_part, first=first, count=count)
                  for first, count in split(batch, threads)])


def emit_window_gather(k: Kernel) -> None:
    x = k.operands[0]
    ty = llvm_type(k.node.dtype)
    pad = ir.Constant(ty, k.node.attr("pad_value"))

    def part(k: Kernel, first: int, count: int) -> None:
        b = k.builder
        with _window_loops(k, k.node.shape, x.shape, first, count) as (flat, source, padding):
            store(b, b.select(padding, pad, load(b, k.ins[0], ty, source)), k.out, flat)

    _batch_parts(k, part, x.shape[0], k.node.size)


def emit_window_scatter(k: Kernel) -> None:
    col = k.operands[0]
    ty = llvm_type(k.node.dtype)
    item = math.prod(k.node.shape[1:])

    def part(k: Kernel, first: int, count: int) -> None:
        b = k.builder
        with for_range(b, count * item, "z") as z:
            store(b, ir.Constant(ty, 0.0), k.out, add(b, i64(first * item), z))
        with _window_loops(k, col.shape, k.node.shape, first, count) as (flat, target, padding):
            with b.if_then(b.not_(padding)):
                total = b.fadd(load(b, k.out, ty, target), load(b, k.ins[0], ty, flat))
                store(b, total, k.out, target)

    _batch_parts(k, part, col.shape[0], col.size)
