"""Kernels of check ops: `i1 k<id>_check_index(ptr in, ptr detail)` returns 1 when the check
fails, after writing the offending value to `detail`; the entry point then returns its status."""
from __future__ import annotations

import llvmlite.ir as ir

from .kernel import I1, I64, Kernel, i64, load


def emit_check_index(k: Kernel, detail: ir.Value) -> None:
    """Scan the indices in order; the first outside [0, high) other than `ignore` fails."""
    b, node = k.builder, k.node
    count, high, ignore = k.operands[0].size, node.attr("high"), node.attr("ignore")
    if count == 0:
        b.ret(ir.Constant(I1, 0))
        return
    before = b.block
    loop, fail, step, done = (b.append_basic_block(n) for n in ("scan", "fail", "next", "done"))
    b.branch(loop)
    b.position_at_end(loop)
    index = b.phi(I64, "i")
    index.add_incoming(i64(0), before)
    value = load(b, k.ins[0], I64, index)
    outside = b.or_(b.icmp_signed("<", value, i64(0)), b.icmp_signed(">=", value, i64(high)))
    bad = b.and_(outside, b.icmp_signed("!=", value, i64(ignore)))
    b.cbranch(bad, fail, step)
    b.position_at_end(step)
    following = b.add(index, i64(1))
    index.add_incoming(following, step)
    b.cbranch(b.icmp_unsigned("<", following, i64(count)), loop, done)
    b.position_at_end(fail)
    b.store(value, detail)
    b.ret(ir.Constant(I1, 1))
    b.position_at_end(done)
    b.ret(ir.Constant(I1, 0))
