"""window_gather and window_scatter: loops over the windows array [N, *out, C, *kernel] in
memory order, the input position of each element read from the per-dim index tables
(graphc/ops/window.py; -1 marks padding).

Both walk the windows array contiguously (gather writes it, scatter reads it). Outer spatial
dims read their table entry at the loop level of their (out, kernel) pair. The innermost dim
is specialised when its table is a constant of the graph (as conv and pool tables are): its
output positions are split into runs where each row of the table is the previous one shifted
by a fixed step (a border run, the interior, the other border), and each run is a loop whose
kernel offsets are unrolled with their padding decided at compile time, so the interior is a
copy of short contiguous rows with no table load, mask or gather. A table of many runs
(adaptive bins) or not constant takes the general path: a table load and a select per element.

A padded gather element takes pad_value through a select at a clamped (in-bounds) address; a
scatter skips padding with a branch (adding zero somewhere would flip a -0.0). Batch items
touch disjoint parts of the image, so large kernels split the batch across the thread pool.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import llvmlite.ir as ir
import numpy as np

from ..ir.graph import literal_value
from .kernel import I1, I64, Kernel, add, contiguous_strides, for_range, i64, llvm_type, load, store
from .threads import num_threads, run_parts, split

MIN_ELEMENTS_PER_PART = 1 << 16  # about 30 µs of gathering
MAX_RUNS, MAX_UNROLLED_KERNEL = 8, 32  # beyond these the unrolled innermost dim costs more code than it saves


@dataclass(frozen=True)
class _Run:
    """Output positions start..start+count-1 of the innermost dim: position start+i at kernel
    offset k reads pattern[k] + i * step (pattern[k] < 0: padding)."""

    start: int
    count: int
    step: int
    pattern: tuple[int, ...]


def table_runs(table: np.ndarray) -> list[_Run]:
    """Split a table's rows into runs of rows that shift by one step, with the same padding."""
    runs: list[_Run] = []
    for o, row in enumerate(table.tolist()):
        if runs:
            last = runs[-1]
            valid = [k for k, v in enumerate(last.pattern) if v >= 0]
            if [v >= 0 for v in row] == [v >= 0 for v in last.pattern]:
                shifts = {row[k] - last.pattern[k] for k in valid}
                step = last.step if last.count > 1 else (shifts.pop() if len(shifts) == 1 else None)
                if step is not None and all(row[k] == last.pattern[k] + last.count * step for k in valid):
                    runs[-1] = _Run(last.start, last.count + 1, step, last.pattern)
                    continue
        runs.append(_Run(o, 1, 0, tuple(row)))
    return runs


# emit(flat offset in the windows array, image offset, i1 padding) for one element
Element = Callable[[ir.Value, ir.Value, ir.Value], None]


def _window_loops(k: Kernel, windows, image, first: int, count: int, element: Element) -> None:
    """Calls `element` for items first..first+count-1 of the windows array in memory order."""
    b = k.builder
    tables = [t.shape for t in k.operands[1:]]
    outs, kernels = [t[0] for t in tables], [t[1] for t in tables]
    dims, channels, spatial_strides = len(outs), image[1], contiguous_strides(image[2:])
    window_strides = contiguous_strides(windows)
    last = literal_value(k.operands[dims])
    runs = table_runs(last) if last is not None and kernels[-1] <= MAX_UNROLLED_KERNEL else []
    if len(runs) > MAX_RUNS:
        runs = []

    def table_entry(d: int, o: ir.Value, j: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(clamped input index, i1 padding) of table d at (o, j)."""
        index = load(b, k.ins[1 + d], I64, add(b, add(b, i64(0), o, kernels[d]), j))
        outside = b.icmp_signed("<", index, i64(0))
        return b.select(outside, i64(0), index), outside

    def inner(positions: list[ir.Value], flat: ir.Value, base: ir.Value, run: _Run | None) -> None:
        """Loops over c and kernel offsets under output position `positions`."""
        with contextlib.ExitStack() as stack:
            c = stack.enter_context(for_range(b, channels, "c"))
            flat = add(b, flat, c, window_strides[1 + dims])
            base = add(b, base, c, math.prod(image[2:]))
            padding = ir.Constant(I1, 0)
            for d in range(dims - 1 if run else dims):
                j = stack.enter_context(for_range(b, kernels[d], f"k{d}"))
                flat = add(b, flat, j, window_strides[2 + dims + d])
                index, outside = table_entry(d, positions[d], j)
                padding = b.or_(padding, outside)
                base = add(b, base, index, spatial_strides[d])
            if run is None:
                element(flat, base, padding)
                return
            shifted = add(b, i64(0), positions[-1], run.step * spatial_strides[-1])  # i * step, i within the run
            for j, source in enumerate(run.pattern):
                at = add(b, flat, i64(j))
                if source < 0:
                    element(at, base, ir.Constant(I1, 1))
                else:
                    element(at, add(b, add(b, base, shifted), i64(source * spatial_strides[-1])), padding)

    with for_range(b, count, "n") as n:
        n = add(b, i64(first), n)
        flat, base = add(b, i64(0), n, window_strides[0]), add(b, i64(0), n, math.prod(image[1:]))
        with contextlib.ExitStack() as stack:
            positions = []
            for d in range(dims - 1 if runs else dims):
                o = stack.enter_context(for_range(b, outs[d], f"o{d}"))
                positions.append(o)
                flat = add(b, flat, o, window_strides[1 + d])
            if not runs:
                inner(positions, flat, base, None)
            for run in runs:
                with for_range(b, run.count, "run") as i:
                    o = add(b, i64(run.start), i)
                    inner(positions + [i], add(b, flat, o, window_strides[dims]), base, run)


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

        def element(flat: ir.Value, source: ir.Value, padding: ir.Value) -> None:
            if isinstance(padding, ir.Constant) and padding.constant:
                store(b, pad, k.out, flat)
            else:
                store(b, b.select(padding, pad, load(b, k.ins[0], ty, source)), k.out, flat)
        _window_loops(k, k.node.shape, x.shape, first, count, element)

    _batch_parts(k, part, x.shape[0], k.node.size)


def emit_window_scatter(k: Kernel) -> None:
    col = k.operands[0]
    ty = llvm_type(k.node.dtype)
    item = math.prod(k.node.shape[1:])

    def part(k: Kernel, first: int, count: int) -> None:
        b = k.builder
        with for_range(b, count * item, "z") as z:
            store(b, ir.Constant(ty, 0.0), k.out, add(b, i64(first * item), z))

        def element(flat: ir.Value, target: ir.Value, padding: ir.Value) -> None:
            if isinstance(padding, ir.Constant) and padding.constant:
                return
            with b.if_then(b.not_(padding)) if not isinstance(padding, ir.Constant) else contextlib.nullcontext():
                store(b, b.fadd(load(b, k.out, ty, target), load(b, k.ins[0], ty, flat)), k.out, target)
        _window_loops(k, col.shape, k.node.shape, first, count, element)

    _batch_parts(k, part, col.shape[0], col.size)
