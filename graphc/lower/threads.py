"""Splitting one kernel across threads with pthreads, inside the one native call.

A ctypes call releases the GIL, so native threads run truly in parallel. The kernel starts
one pthread per extra part, runs part 0 itself and joins; a part whose thread could not start
runs on the calling thread, so a failure to create threads costs speed, never results.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import llvmlite.ir as ir

from .kernel import I64, PTR, Kernel, declare, i64

I32 = ir.IntType(32)
# Starting and joining a pthread measured 90-170 µs here (a 2-vCPU VM; a C loop of create+join
# on an empty function), and two threads streaming the same weights share the memory bandwidth,
# so a part must hold about 1 ms of work (64M flops at ~65 GFLOP/s) before a second thread pays.
# A persistent pool is the next step; it would let mid-sized kernels split too.
MIN_FLOPS_PER_THREAD = 1 << 26


def num_threads() -> int:
    """GRAPHC_NUM_THREADS, else the CPUs this process may use."""
    try:
        return max(1, int(os.environ["GRAPHC_NUM_THREADS"]))
    except (KeyError, ValueError):
        return max(1, len(os.sched_getaffinity(0)))


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
    """Emit parts[1:] as thread functions started from this kernel, parts[0] inline, then join."""
    if len(parts) == 1:
        parts[0](k)
        return
    b, module = k.builder, k.builder.module
    pointers = (k.out, *k.ins)
    context = k.alloca(ir.ArrayType(PTR, len(pointers)), "context")
    for j, ptr in enumerate(pointers):
        b.store(ptr, b.gep(context, [i64(0), i64(j)], inbounds=True))
    create = declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
    join = declare(module, "pthread_join", I32, [I64, PTR])
    started = []
    for index, part in enumerate(parts[1:], 1):
        worker = _worker(k, part, f"{b.function.name}_part{index}", len(pointers))
        thread = k.alloca(I64, f"thread{index}")
        status = b.call(create, [thread, ir.Constant(PTR, None), worker, context])
        started.append((worker, thread, b.icmp_signed("==", status, ir.Constant(I32, 0))))
    parts[0](k)
    for worker, thread, ok in started:
        with b.if_else(ok) as (then, otherwise):
            with then:
                b.call(join, [b.load(thread, typ=I64), ir.Constant(PTR, None)])
            with otherwise:
                b.call(worker, [context])


def _worker(k: Kernel, part: Callable[[Kernel], None], name: str, count: int) -> ir.Function:
    """`ptr name(ptr context)`: unpacks the kernel's buffer pointers and runs one part."""
    fn = ir.Function(k.builder.module, ir.FunctionType(PTR, [PTR]), name)
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ptrs = [b.load(b.gep(fn.args[0], [i64(0), i64(j)], inbounds=True, source_etype=ir.ArrayType(PTR, count)), typ=PTR)
            for j in range(count)]
    part(Kernel(b, k.node, k.operands, ptrs[0], tuple(ptrs[1:])))
    b.ret(ir.Constant(PTR, None))
    return fn
