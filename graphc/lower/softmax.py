"""softmax and log_softmax as one row kernel each.

Per row along `dim` (rows are strided when dim is not innermost): the maximum, then the sum of
exp(x - max) (softmax stores the exponentials as it goes), then the result: e / sum, or
x - max - log(sum). Three passes over a row that stays in cache, one pass over memory; a row of
-inf gives NaN and a NaN propagates, as in the reference.
"""
from __future__ import annotations

import math

import llvmlite.ir as ir

from .elementwise import SCALAR_OPS
from .kernel import FAST, REASSOC, Kernel, add, for_range, i64, llvm_type, load, store
from .reduce import _maximum


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
        each(lambda offset, x: b.store(_maximum(b, b.load(largest, typ=ty), x), largest))
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
