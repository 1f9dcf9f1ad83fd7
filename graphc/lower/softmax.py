"""softmax and log_softmax as one row kernel each.

Per row along `dim` (rows are strided when dim is not innermost): the maximum, then the sum of
exp(x - max) (softmax stores the exponentials as it goes), then the result: e / sum, or
x - max - log(sum). Three passes over a row that stays in cache, one pass over memory; a row of
-inf gives NaN and a NaN propagates, as in the reference.
"""
from __future__ import annotations

import math
from typing import Sequence

import llvmlite.ir as ir

from ..ir import Node
from .elementwise import SCALAR_OPS, broadcast_strides, element_of
from .kernel import (FAST, REASSOC, Kernel, add, contiguous_strides, for_range, i64, llvm_type, load, store,
                     strided_loops)
from .reduce import REDUCTIONS, maximum


def emit_row_softmax(k: Kernel) -> None:
    b, node = k.builder, k.node
    shape, dim = node.shape or (1,), node.attr("dim")
    rows, size, inner = math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:])
    ty = llvm_type(node.dtype)
    exp = SCALAR_OPS["exp"]
    largest, total = k.alloca(ty, "max"), k.alloca(ty, "sum")
    with for_range(b, rows, "row") as r, for_range(b, inner, "col") as c:
        start = add(b, add(b, i64(0), r, size * inner), c)

        def each(body) -> None:
            with for_range(b, size, "d") as d:
                offset = add(b, start, d, inner)
                body(offset, load(b, k.ins[0], ty, offset))

        b.store(ir.Constant(ty, float("-inf")), largest)
        each(lambda offset, x: b.store(maximum(b, b.load(largest, typ=ty), x), largest))
        top = b.load(largest, typ=ty)
        b.store(ir.Constant(ty, 0.0), total)

        def accumulate(offset, x) -> None:
            e = exp(b, [b.fsub(x, top, flags=FAST)], node)
            if node.op == "softmax":
                store(b, e, k.out, offset)
            b.store(b.fadd(b.load(total, typ=ty), e, flags=REASSOC), total)
        each(accumulate)
        s = b.load(total, typ=ty)
        if node.op == "softmax":
            with for_range(b, size, "d") as d:
                offset = add(b, start, d, inner)
                store(b, b.fdiv(load(b, k.out, ty, offset), s, flags=FAST), k.out, offset)
        else:
            log_sum = SCALAR_OPS["log"](b, [s], node)
            each(lambda offset, x: store(b, b.fsub(b.fsub(x, top, flags=FAST), log_sum, flags=FAST), k.out, offset))


def emit_log_softmax_reduction(k: Kernel, row: Node, x: ir.Value, row_out: ir.Value | None, producer: Node,
                               operands: Sequence[tuple[Node, ir.Value]], producer_out: ir.Value | None,
                               reduction: Node, out: ir.Value) -> None:
    """log_softmax along the last dim, an elementwise `producer` reading it and a reduction of
    that along the same dim, in one row kernel (cross-entropy's pick of the target's
    log-probability): per row the maximum, the sum of exponentials, then one pass that forms
    each log-probability, evaluates the producer on it and accumulates the result. The
    log-probabilities and the producer's values are stored only when other kernels read them."""
    b = k.builder
    shape = row.shape
    lead, size = shape[:-1], shape[-1]
    ty, out_ty = llvm_type(row.dtype), llvm_type(reduction.dtype)
    identity, combine = REDUCTIONS[reduction.op](out_ty)
    exp = SCALAR_OPS["exp"]
    strides = [contiguous_strides(shape), *(broadcast_strides(n.shape, shape) for n, _ in operands)]
    lead_strides = [s[:-1] for s in strides] + [contiguous_strides(lead)]
    largest, total, acc = k.alloca(ty, "max"), k.alloca(ty, "sum"), k.alloca(out_ty, "acc")
    with strided_loops(b, lead, lead_strides) as (start, *bases, dst):
        def each(body) -> None:
            with for_range(b, size, "d") as d:
                offset = add(b, start, d)
                body(d, offset, load(b, x, ty, offset))

        b.store(ir.Constant(ty, float("-inf")), largest)
        each(lambda d, offset, v: b.store(maximum(b, b.load(largest, typ=ty), v), largest))
        top = b.load(largest, typ=ty)
        b.store(ir.Constant(ty, 0.0), total)
        each(lambda d, offset, v: b.store(b.fadd(b.load(total, typ=ty), exp(b, [b.fsub(v, top, flags=FAST)], row),
                                                flags=REASSOC), total))
        log_sum = SCALAR_OPS["log"](b, [b.load(total, typ=ty)], row)
        b.store(identity, acc)

        def last(d, offset, v) -> None:
            logp = b.fsub(b.fsub(v, top, flags=FAST), log_sum, flags=FAST)
            if row_out is not None:
                store(b, logp, row_out, offset)
            values = {row.id: logp}
            for (node, ptr), base, s in zip(operands, bases, strides[1:]):
                values.setdefault(node.id, load(b, ptr, llvm_type(node.dtype), add(b, base, d, s[-1])))
            result = element_of(b, producer, [values[i] for i in producer.inputs])
            if producer_out is not None:
                store(b, result, producer_out, offset)
            b.store(combine(b, b.load(acc, typ=out_ty), result), acc)
        each(last)
        store(b, b.load(acc, typ=out_ty), out, dst)
