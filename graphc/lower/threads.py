"""Splitting one kernel into parts that run on the runtime's thread pool, inside the one call.

A kernel that splits emits `void <kernel>_parts(ptr context, i64 index)`, which unpacks the
kernel's buffer pointers from `context` and runs part `index`, and calls the runtime's
`graphc_parallel(parts_fn, context, count)` (runtime/pool.py). A ctypes call releases the GIL,
so the pool's native workers run truly in parallel; with no workers the parts run in turn.
"""
from __future__ import annotations

from typing import Callable, Sequence

import llvmlite.ir as ir

from runtime.abi import PARALLEL_ENTRY as ENTRY

from ..config import num_threads  # noqa: F401  (GRAPHC_NUM_THREADS, capped at the usable CPUs)
from .kernel import I64, PTR, Kernel, declare, i64

# A part must hold about 30 µs of work (2M flops at ~65 GFLOP/s): handing a part to a spinning
# worker costs about a microsecond, but a worker that went to sleep takes longer to wake.
MIN_FLOPS_PER_THREAD = 1 << 21


def split(total: int, parts: int, multiple: int = 1) -> list[tuple[int, int]]:
    """(start, count) of up to `parts` contiguous ranges of `total`, sizes multiples of `multiple`."""
    units = -(-total // multiple)
    parts = max(1, min(parts, units))
    ranges, start = [], 0
    for p in range(parts):
        count = min(total - start, (units * (p + 1) // parts - units * p // parts) * multiple)
        if count > 0:
            ranges.append((start, count))
            start += count
    return ranges


def run_parts(k: Kernel, parts: Sequence[Callable[[Kernel], None]]) -> None:
    """Emit the parts as one indexed function and hand it to the pool; one part runs inline."""
    if len(parts) == 1:
        parts[0](k)
        return

    def dispatch(part_kernel: Kernel, index: ir.Value) -> None:
        b = part_kernel.builder
        done = b.function.append_basic_block("done")
        switch = b.switch(index, done)
        for number, part in enumerate(parts):
            block = b.function.append_basic_block(f"part{number}")
            switch.add_case(i64(number), block)
            b.position_at_end(block)
            part(part_kernel)
            b.branch(done)
        b.position_at_end(done)
    _run(k, dispatch, len(parts))


def run_indexed(k: Kernel, count: int, part: Callable[[Kernel, ir.Value], None]) -> None:
    """`count` parts that are one computation at offsets of their i64 index (equal blocks of a
    kernel): emitted once, handed to the pool; one part runs inline with index 0."""
    if count == 1:
        part(k, i64(0))
        return
    _run(k, part, count)


def _run(k: Kernel, body: Callable[[Kernel, ir.Value], None], count: int) -> None:
    """Call the pool on `<kernel>_parts`, whose body runs part `index` of `count`."""
    def part(b: ir.IRBuilder, pointers: list[ir.Value], index: ir.Value) -> None:
        body(Kernel(b, k.node, k.operands, pointers[0], tuple(pointers[1:])), index)
    _pool_call(k.builder, (k.out, *k.ins), count, part)


def run_ranges(b: ir.IRBuilder, pointers: Sequence[ir.Value], total: int, parts: int,
               emit_range: Callable[[ir.IRBuilder, list[ir.Value], ir.Value, ir.Value | int], None]) -> None:
    """emit_range(builder, pointers, start, count) over 0..total-1 cut into up to `parts` ranges
    of one size (the last one shorter), handed to the pool as one function of the part index;
    `pointers` are what the ranges read and write (seen by the part as its `pointers`)."""
    chunk = -(-total // max(1, min(parts, total)))
    parts = -(-total // chunk)
    if parts == 1:
        emit_range(b, list(pointers), i64(0), total)
        return

    def part(bb: ir.IRBuilder, inside: list[ir.Value], index: ir.Value) -> None:
        start = bb.mul(index, i64(chunk), flags=("nuw", "nsw"))
        count: ir.Value | int = chunk
        if total % chunk:  # the last range is the rest (at least one)
            last = bb.icmp_unsigned("==", index, i64(parts - 1))
            count = bb.select(last, i64(total - (parts - 1) * chunk), i64(chunk))
        emit_range(bb, inside, start, count)
    _pool_call(b, pointers, parts, part)


def _pool_call(b: ir.IRBuilder, pointers: Sequence[ir.Value], count: int,
               part: Callable[[ir.IRBuilder, list[ir.Value], ir.Value], None]) -> None:
    """graphc_parallel(<function>_parts, context, count): the context holds `pointers`, which
    the parts function unpacks before `part(builder, pointers, index)` runs part `index`."""
    context_type = ir.ArrayType(PTR, len(pointers))
    entry = b.function.entry_basic_block
    with b.goto_block(entry):
        if entry.instructions:
            b.position_before(entry.instructions[0])
        context = b.alloca(context_type, name="context")
    for j, ptr in enumerate(pointers):
        b.store(ptr, b.gep(context, [i64(0), i64(j)], inbounds=True))
    module = b.module
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, I64]), module.get_unique_name(f"{b.function.name}_parts"))
    fn.linkage = "internal"
    fb = ir.IRBuilder(fn.append_basic_block("entry"))
    inside = [fb.load(fb.gep(fn.args[0], [i64(0), i64(j)], inbounds=True, source_etype=context_type), typ=PTR)
              for j in range(len(pointers))]
    part(fb, inside, fn.args[1])
    fb.ret_void()
    parallel = declare(module, ENTRY, ir.VoidType(), [PTR, PTR, I64])
    b.call(parallel, [fn, context, i64(count)])
