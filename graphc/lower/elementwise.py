"""Elementwise ops: a table of scalar expressions and one broadcasting loop that applies them.

`SCALAR_OPS[op](builder, args, node)` returns the op's value for one element from the loaded
operand scalars (bool is i8 in memory and in these expressions). Elementwise fusion composes
these expressions inside a single `emit_map` loop.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import llvmlite.ir as ir

from ..ir import Node
from ..ops.fused import evaluate
from .fastmath import erf_f32, exp_f32, expm1_f32, log1p_f32, log_f32, tanh_f32
from .kernel import (FAST, I8, Kernel, LoweringError, add, call_math, collapse, contiguous_strides, i64, is_float,
                     itemsize, llvm_type, load, store, strided_loops)
from .threads import num_threads, run_ranges

# bytes a map reads and writes per thread before it splits (a part costs ~1 µs to hand over;
# 256 KB stream in 10-20 µs on one core)
MIN_MAP_BYTES_PER_THREAD = 256 << 10

ScalarOp = Callable[[ir.IRBuilder, list, Node], ir.Value]


def _binary(float_op: str, int_op: str | None = None) -> ScalarOp:
    def emit(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
        x, y = args
        if is_float(x.type):
            return getattr(b, float_op)(x, y, flags=FAST)
        if int_op is None:
            raise LoweringError(f"{node.op} is not lowered for dtype {node.dtype}")
        return getattr(b, int_op)(x, y)
    return emit


def _math(name: str) -> ScalarOp:
    def emit(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
        if not is_float(args[0].type):
            raise LoweringError(f"{node.op} is not lowered for dtype {node.dtype}")
        return call_math(b, name, *args)
    return emit


def _compare(float_cmp: str, int_cmp: str) -> ScalarOp:
    # ordered float compares: any NaN gives False, as in numpy; bools (0/1) compare like ints
    def emit(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
        x, y = args
        bit = b.fcmp_ordered(float_cmp, x, y) if is_float(x.type) else b.icmp_signed(int_cmp, x, y)
        return b.zext(bit, I8)
    return emit


def _maximum(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
    x, y = args
    if is_float(x.type):
        return call_math(b, "llvm.maximum", x, y)  # IEEE 754: NaN propagates, +0.0 > -0.0, as the reference
    return b.select(b.icmp_signed(">", x, y), x, y)


def _neg(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
    (x,) = args
    return b.fneg(x, flags=FAST) if is_float(x.type) else b.neg(x)


def _exp(x: ir.Value, b: ir.IRBuilder) -> ir.Value:
    return exp_f32(b, x) if isinstance(x.type, ir.FloatType) else call_math(b, "llvm.exp", x)


def _float32_fast(fast, name: str) -> ScalarOp:
    """float32 through the vectorisable version in fastmath.py, float64 through libm."""
    slow = _math(name)

    def emit(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
        return fast(b, args[0]) if isinstance(args[0].type, ir.FloatType) else slow(b, args, node)
    return emit


def _sigmoid(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
    (x,) = args
    one = ir.Constant(x.type, 1.0)
    exp = _exp(b.fneg(x, flags=FAST), b)
    return b.fdiv(one, b.fadd(one, exp, flags=FAST), flags=FAST)


def _relu(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
    (x,) = args
    zero = ir.Constant(x.type, 0)
    negative = b.fcmp_ordered("<", x, zero) if is_float(x.type) else b.icmp_signed("<", x, zero)
    return b.select(negative, zero, x)  # NaN is not < 0, so it passes through as in numpy


def _where(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
    cond, x, y = args
    return b.select(b.icmp_unsigned("!=", cond, ir.Constant(cond.type, 0)), x, y)


def _cast(b: ir.IRBuilder, args: list, node: Node) -> ir.Value:
    (x,) = args
    src, dst = x.type, llvm_type(node.dtype)
    if node.dtype == "bool":  # nonzero -> 1
        zero = ir.Constant(src, 0)
        bit = b.fcmp_unordered("!=", x, zero) if is_float(src) else b.icmp_unsigned("!=", x, zero)
        return b.zext(bit, I8)
    if src == dst:
        return x
    if is_float(src) and is_float(dst):
        return b.fpext(x, dst) if isinstance(dst, ir.DoubleType) else b.fptrunc(x, dst)
    if is_float(src):
        return b.fptosi(x, dst)
    if is_float(dst):
        return b.uitofp(x, dst) if src == I8 else b.sitofp(x, dst)
    return b.zext(x, dst)  # bool -> int64


SCALAR_OPS: dict[str, ScalarOp] = {
    "add": _binary("fadd", "add"),  # int64 wraps around, as in numpy
    "sub": _binary("fsub", "sub"),
    "mul": _binary("fmul", "mul"),
    "div": _binary("fdiv"),
    "pow": _math("llvm.pow"),
    "maximum": _maximum,
    "neg": _neg,
    "exp": _float32_fast(exp_f32, "llvm.exp"),
    "log": _float32_fast(log_f32, "llvm.log"),
    "log1p": _float32_fast(log1p_f32, "log1p"),  # float64: libm log1p
    "expm1": _float32_fast(expm1_f32, "expm1"),  # float64: libm expm1
    "sqrt": _math("llvm.sqrt"),
    "cos": _math("llvm.cos"),
    "sin": _math("llvm.sin"),
    "floor": _math("llvm.floor"),
    "ceil": _math("llvm.ceil"),
    "round": _math("llvm.roundeven"),
    "tanh": _float32_fast(tanh_f32, "tanh"),  # float64: libm tanh
    "sigmoid": _sigmoid,
    "erf": _float32_fast(erf_f32, "erf"),  # float64: libm erf
    "relu": _relu,
    "gt": _compare(">", ">"),
    "ge": _compare(">=", ">="),
    "eq": _compare("==", "=="),
    "where": _where,
    "cast": _cast,
}


def broadcast_strides(shape: Sequence[int], out_shape: Sequence[int]) -> list[int]:
    """Element strides of a contiguous `shape` read at the indices of `out_shape` (numpy rules):
    missing leading dims and size-1 dims step by 0."""
    lead = len(out_shape) - len(shape)
    return [0] * lead + [0 if n == 1 else s for n, s in zip(shape, contiguous_strides(shape))]


def map_parts(shape: Sequence[int], nodes: Sequence[Node]) -> int:
    """Threads a map over `shape` reading and writing `nodes` splits across: memory-bound, it
    pays once each part moves MIN_MAP_BYTES_PER_THREAD (split, the SGD updates of W1's two large
    weights took its train step from 2.22 to 2.09 ms)."""
    moved = sum(math.prod(shape) * itemsize(n.dtype) for n in nodes)
    return min(num_threads(), max(1, moved // MIN_MAP_BYTES_PER_THREAD))


def _split_loops(b: ir.IRBuilder, sizes: list[int], strides: list[list[int]], pointers: Sequence[ir.Value], parts: int,
                 body: Callable[[ir.IRBuilder, list[ir.Value], list[ir.Value]], None]) -> None:
    """`body(builder, pointers, offsets)` inside strided_loops over sizes, the outermost loop cut
    into `parts` ranges on the thread pool (every operand is read at the index it is written
    at or through fixed strides, so the ranges are independent)."""
    if parts == 1 or not sizes:
        with strided_loops(b, sizes, strides) as offsets:
            body(b, list(pointers), offsets)
        return

    def emit_range(bb: ir.IRBuilder, inside: list[ir.Value], start: ir.Value, count) -> None:
        bases = [add(bb, i64(0), start, s[0]) for s in strides]
        with strided_loops(bb, [count, *sizes[1:]], strides, bases) as offsets:
            body(bb, inside, offsets)
    run_ranges(b, pointers, sizes[0], parts, emit_range)


def emit_map(k: Kernel, in_strides: Sequence[Sequence[int]], scalar: Callable[[ir.IRBuilder, list], ir.Value]) -> None:
    """out[i] = scalar(in0[i . s0], in1[i . s1], ...) over the contiguous output, with each
    operand read through its own element strides (broadcast: 0; permuted: reordered)."""
    sizes, strides = collapse(k.node.shape, [contiguous_strides(k.node.shape), *in_strides])

    def body(b: ir.IRBuilder, pointers: list[ir.Value], offsets: list[ir.Value]) -> None:
        out, *ins = pointers
        values = [load(b, ptr, llvm_type(n.dtype), off) for ptr, n, off in zip(ins, k.operands, offsets[1:])]
        store(b, scalar(b, values), out, offsets[0])
    _split_loops(k.builder, sizes, strides, (k.out, *k.ins), map_parts(k.node.shape, (k.node, *k.operands)), body)


def emit_elementwise(k: Kernel) -> None:
    """Any op of SCALAR_OPS, with numpy broadcasting of its operands to the output shape."""
    op = SCALAR_OPS[k.node.op]
    strides = [broadcast_strides(n.shape, k.node.shape) for n in k.operands]
    emit_map(k, strides, lambda b, values: op(b, values, k.node))


def emit_body(b: ir.IRBuilder, node: Node, values: list) -> ir.Value:
    """One element of a fused body (`node.attr("body")`) from its operands' scalar values: each
    step's expression from SCALAR_OPS, as if it were a node of its own."""
    def step(s: tuple, operands: list) -> ir.Value:
        op, _, attrs, dtype = s
        as_node = Node(node.id, op, (), attrs, node.shape, dtype, node.module_path, node.module_type, node.source)
        return SCALAR_OPS[op](b, operands, as_node)
    return evaluate(node.attr("body"), values, step)


def element_of(b: ir.IRBuilder, node: Node, values: list) -> ir.Value:
    """One element of an elementwise or fused node from its operands' scalar values."""
    return emit_body(b, node, values) if node.op == "fused" else SCALAR_OPS[node.op](b, values, node)


def emit_fused(k: Kernel) -> None:
    """A `fused` chain: the steps' scalar expressions composed inside one broadcasting loop."""
    strides = [broadcast_strides(n.shape, k.node.shape) for n in k.operands]
    emit_map(k, strides, lambda b, values: emit_body(b, k.node, values))


def emit_map_group(b: ir.IRBuilder, members: Sequence[Node], operands: Sequence[Node], ins: Sequence[ir.Value],
                   outputs: Sequence[Node], outs: Sequence[ir.Value]) -> None:
    """Several elementwise nodes of one shape in one loop: every operand element is loaded
    first (an output may be computed in place over an operand), then the members are evaluated
    in order, each reading the members before it from registers, then the outputs are stored."""
    shape = members[-1].shape
    strides = [broadcast_strides(n.shape, shape) for n in operands]
    sizes, collapsed = collapse(shape, [contiguous_strides(shape), *strides])

    def body(bb: ir.IRBuilder, pointers: list[ir.Value], offsets: list[ir.Value]) -> None:
        out_offset, *in_offsets = offsets
        values = {n.id: load(bb, ptr, llvm_type(n.dtype), off)
                  for ptr, n, off in zip(pointers[:len(ins)], operands, in_offsets)}
        for node in members:
            values[node.id] = element_of(bb, node, [values[i] for i in node.inputs])
        for node, ptr in zip(outputs, pointers[len(ins):]):
            store(bb, values[node.id], ptr, out_offset)
    _split_loops(b, sizes, collapsed, (*ins, *outs), map_parts(shape, (*outputs, *operands)), body)
