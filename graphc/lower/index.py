"""gather_rows and scatter_add_rows: row copies and row accumulations at int64 indices.

Indices are in range by the time these run (users' indices pass a check_index first), so the
kernels do no bounds tests; each row is a unit-stride loop LLVM vectorises.
"""
from __future__ import annotations

import math

import llvmlite.ir as ir

from .kernel import I64, FAST, Kernel, add, for_range, i64, llvm_type, load, store


def emit_gather_rows(k: Kernel) -> None:
    """out[p, :] = table[indices[p], :] over the flattened index positions p."""
    b = k.builder
    table, indices = k.operands
    row, ty = math.prod(table.shape[1:]), llvm_type(k.node.dtype)
    with for_range(b, indices.size, "p") as p:
        start = b.mul(load(b, k.ins[1], I64, p), i64(row))
        with for_range(b, row, "r") as r:
            store(b, load(b, k.ins[0], ty, add(b, start, r)), k.out, add(b, add(b, i64(0), p, row), r))


def emit_scatter_add_rows(k: Kernel) -> None:
    """out = 0, then out[indices[p], :] += values[p, :] for p in order."""
    b = k.builder
    values, indices = k.operands
    ty = llvm_type(k.node.dtype)
    row = math.prod(k.node.shape[1:])
    zero = ir.Constant(ty, 0)
    with for_range(b, k.node.size, "z") as z:
        store(b, zero, k.out, z)
    with for_range(b, indices.size, "p") as p:
        start = b.mul(load(b, k.ins[1], I64, p), i64(row))
        with for_range(b, row, "r") as r:
            at = add(b, start, r)
            total = b.fadd(load(b, k.out, ty, at), load(b, k.ins[0], ty, add(b, add(b, i64(0), p, row), r)), flags=FAST)
            store(b, total, k.out, at)
