"""Kernels of check ops: `i1 k<id>_<check>(ptr in, ptr detail)` returns 1 when the check fails,
after writing what the message reports (the offending value, or its position) to `detail`; the
entry point then returns its status."""
from __future__ import annotations

from typing import Callable

import llvmlite.ir as ir

from .kernel import I1, I64, Kernel, i64, llvm_type, load


# failing(builder, element value, its flat index) -> (i1 that is 1 when it fails, the i64 to report)
Failing = Callable[[ir.IRBuilder, ir.Value, ir.Value], tuple[ir.Value, ir.Value]]


def _scan(k: Kernel, detail: ir.Value, failing: Failing) -> None:
    """Visit the elements in order; the first that fails writes its report to `detail` and returns 1."""
    b, count = k.builder, k.operands[0].size
    if count == 0:
        b.ret(ir.Constant(I1, 0))
        return
    before = b.block
    loop, fail, step, done = (b.append_basic_block(n) for n in ("scan", "fail", "next", "done"))
    b.branch(loop)
    b.position_at_end(loop)
    index = b.phi(I64, "i")
    index.add_incoming(i64(0), before)
    bad, reported = failing(b, load(b, k.ins[0], llvm_type(k.operands[0].dtype), index), index)
    b.cbranch(bad, fail, step)
    b.position_at_end(step)
    following = b.add(index, i64(1))
    index.add_incoming(following, step)
    b.cbranch(b.icmp_unsigned("<", following, i64(count)), loop, done)
    b.position_at_end(fail)
    b.store(reported, detail)
    b.ret(ir.Constant(I1, 1))
    b.position_at_end(done)
    b.ret(ir.Constant(I1, 0))


def emit_check_index(k: Kernel, detail: ir.Value) -> None:
    """The first index outside [0, high) other than `ignore` fails, reporting its value."""
    high, ignore = k.node.attr("high"), k.node.attr("ignore")

    def failing(b: ir.IRBuilder, value: ir.Value, index: ir.Value) -> tuple[ir.Value, ir.Value]:
        outside = b.or_(b.icmp_signed("<", value, i64(0)), b.icmp_signed(">=", value, i64(high)))
        return b.and_(outside, b.icmp_signed("!=", value, i64(ignore))), value
    _scan(k, detail, failing)


def emit_check_range(k: Kernel, detail: ir.Value) -> None:
    """The first value not in [low, high] fails (ordered compares: NaN fails), reporting its position."""
    ty = llvm_type(k.operands[0].dtype)
    low, high = ir.Constant(ty, k.node.attr("low")), ir.Constant(ty, k.node.attr("high"))

    def failing(b: ir.IRBuilder, value: ir.Value, index: ir.Value) -> tuple[ir.Value, ir.Value]:
        inside = b.and_(b.fcmp_ordered(">=", value, low), b.fcmp_ordered("<=", value, high))
        return b.not_(inside), index
    _scan(k, detail, failing)
