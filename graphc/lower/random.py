"""random_uniform: the counter-based generator of graphc/ops/random.py in integer IR.

Each element is a handful of i64 multiplies, shifts and xors of (key, index), so the loop has no
carried state and vectorises; the bits and their scaling into [0, 1) equal the numpy reference's.
"""
from __future__ import annotations

import llvmlite.ir as ir

from ..ops.random import GOLDEN, MANTISSA_BITS, MIX1, MIX2
from .kernel import I64, Kernel, for_range, i64, llvm_type, load, store


def _mix(b: ir.IRBuilder, z: ir.Value, shift: int, factor: int | None) -> ir.Value:
    z = b.xor(z, b.lshr(z, i64(shift)))
    return z if factor is None else b.mul(z, ir.Constant(I64, factor - (1 << 64) if factor >= 1 << 63 else factor))


def emit_random_uniform(k: Kernel) -> None:
    """out[i] = top mantissa bits of splitmix64(key + (i + 1) * GOLDEN), times 2^-bits."""
    b, node = k.builder, k.node
    ty, bits = llvm_type(node.dtype), MANTISSA_BITS[node.dtype]
    key = load(b, k.ins[0], I64, i64(0))
    golden = ir.Constant(I64, GOLDEN - (1 << 64))
    scale = ir.Constant(ty, 2.0 ** -bits)
    with for_range(b, node.size, "i") as i:
        z = b.add(key, b.mul(b.add(i, i64(1)), golden))
        z = _mix(b, _mix(b, _mix(b, z, 30, MIX1), 27, MIX2), 31, None)
        top = b.lshr(z, i64(64 - bits))
        store(b, b.fmul(b.uitofp(top, ty), scale), k.out, i)  # both exact: no rounding to differ
