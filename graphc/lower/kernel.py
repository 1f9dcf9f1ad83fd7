"""What every kernel emitter shares: LLVM types of dtypes, the kernel context, counted loops.

A kernel is one internal LLVM function `void k<id>_<op>_<module path>(ptr out, ptr in0, ...)`
over contiguous row-major buffers of static shape. Emitters write its body with the helpers
here; the trip counts are Python ints, so every loop bound and stride is a constant (the matmul
micro-kernels, shared by kernels of different shapes, take theirs as arguments: microkernel.py).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Iterator, Sequence

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

from ..ir import Node

I64 = ir.IntType(64)
I32 = ir.IntType(32)
I8 = ir.IntType(8)
I1 = ir.IntType(1)
PTR = ir.PointerType()
LLVM_TYPES: dict[str, ir.Type] = {"float32": ir.FloatType(), "float64": ir.DoubleType(), "int64": I64, "bool": I8}

# Tolerances of graphc's float ops allow these; `reassoc` goes only on accumulations, so that
# reductions and dot products vectorise (a strict chain of fadds stays scalar). No `nsz`: the
# sign of zero is visible, as in PyTorch (0 - x, -(x - 1), sum([-0.0]), maximum(-0.0, 0.0)). No
# `arcp`: two divisions by one denormal b share 1/b = inf once fused, and 0 / b became 0 * inf = NaN.
FAST = ("contract",)
REASSOC = FAST + ("reassoc",)
NOWRAP = ("nuw", "nsw")


class LoweringError(RuntimeError):
    """A node could not be lowered; the message names the node (op, shapes, module path, source)."""


@dataclass(frozen=True)
class VectorUnit:
    """The host's SIMD registers, for kernels that vectorise by hand (register tiles).
    Code is compiled for the host CPU, so reading its features here is safe."""

    bits: int  # 512 with AVX-512, else 256
    registers: int  # 32 with AVX-512, else 16

    def lanes(self, ty: ir.Type) -> int:
        return self.bits // (32 if isinstance(ty, ir.FloatType) else 64)


@functools.cache
def vector_unit() -> VectorUnit:
    wide = llvm.get_host_cpu_features().get("avx512f", False)
    return VectorUnit(512, 32) if wide else VectorUnit(256, 16)


def llvm_type(dtype: str) -> ir.Type:
    try:
        return LLVM_TYPES[dtype]
    except KeyError:
        raise LoweringError(f"no LLVM type for dtype {dtype!r}") from None


def is_float(ty: ir.Type) -> bool:
    return isinstance(ty, (ir.FloatType, ir.DoubleType))


@functools.lru_cache(maxsize=4096)
def i64(value: int) -> ir.Constant:
    """The i64 constant `value`; constants are immutable operands, so one object serves every use."""
    return ir.Constant(I64, int(value))


def itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    """Row-major element strides of `shape`."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def declare(module: ir.Module, name: str, ret: ir.Type, args: Sequence[ir.Type]) -> ir.Function:
    """The function `name` in `module`, declared on first use (intrinsics, libm)."""
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, ir.FunctionType(ret, list(args)), name)


def call_math(b: ir.IRBuilder, base: str, *args: ir.Value) -> ir.Value:
    """Call a float intrinsic (`llvm.exp` -> `llvm.exp.f32`, `llvm.exp.v16f32` on a vector) or a
    libm function (`tanh` -> `tanhf`; scalars only)."""
    ty = args[0].type
    if base.startswith("llvm."):
        scalar = ty.element if isinstance(ty, ir.VectorType) else ty
        lanes = f"v{ty.count}" if isinstance(ty, ir.VectorType) else ""
        name = f"{base}.{lanes}{'f32' if isinstance(scalar, ir.FloatType) else 'f64'}"
    else:
        name = base + ("f" if isinstance(ty, ir.FloatType) else "")
    return b.call(declare(b.module, name, ty, [ty] * len(args)), list(args), fastmath=FAST)


def element(b: ir.IRBuilder, ptr: ir.Value, ty: ir.Type, offset: ir.Value) -> ir.Value:
    """Pointer to element `offset` of a buffer of `ty`."""
    return b.gep(ptr, [offset], inbounds=True, source_etype=ty)


def load(b: ir.IRBuilder, ptr: ir.Value, ty: ir.Type, offset: ir.Value, lanes: int = 1) -> ir.Value:
    """Element `offset` of a buffer of `ty`, or `lanes` consecutive elements as a vector."""
    loaded = ir.VectorType(ty, lanes) if lanes > 1 else ty
    return b.load(element(b, ptr, ty, offset), typ=loaded, align=_align(ty))


def store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, offset: ir.Value) -> None:
    """Store a scalar, or a vector to consecutive elements, at element `offset`."""
    ty = value.type.element if isinstance(value.type, ir.VectorType) else value.type
    b.store(value, element(b, ptr, ty, offset), align=_align(ty))


def _masked(b: ir.IRBuilder, what: str, vector: ir.VectorType) -> ir.Function:
    suffix = f"v{vector.count}{'f32' if isinstance(vector.element, ir.FloatType) else 'f64'}.p0"
    mask = ir.VectorType(I1, vector.count)
    if what == "load":
        return declare(b.module, f"llvm.masked.load.{suffix}", vector, [PTR, I32, mask, vector])
    return declare(b.module, f"llvm.masked.store.{suffix}", ir.VoidType(), [vector, PTR, I32, mask])


def lane_mask(bits: Sequence[bool]) -> ir.Constant:
    return ir.Constant(ir.VectorType(I1, len(bits)), [ir.Constant(I1, int(bit)) for bit in bits])


def masked_load(b: ir.IRBuilder, ptr: ir.Value, ty: ir.Type, offset: ir.Value, bits: Sequence[bool],
                condition: ir.Value | None = None, fill: float | None = None) -> ir.Value:
    """Lanes of `len(bits)` consecutive elements at `offset` where bits is true (and the runtime
    `condition`, when given, holds: an i1 for all lanes or a vector of i1, one per lane), zero
    (or `fill`) elsewhere; the other lanes are not read, so they may lie outside the buffer (the
    offset may even be negative). A runtime condition joins the mask rather than a select, which
    LLVM turns into branches around each load."""
    vector = ir.VectorType(ty, len(bits))
    passthrough = ir.Constant(vector, None if fill is None else [ir.Constant(ty, fill)] * len(bits))
    if not any(bits):
        return passthrough
    if all(bits) and condition is None:
        return load(b, ptr, ty, offset, len(bits))
    mask = lane_mask(bits)
    if condition is not None:
        per_lane = isinstance(condition.type, ir.VectorType)
        mask = b.and_(mask, condition if per_lane else splat(b, condition, len(bits)))
    address = b.gep(ptr, [offset], source_etype=ty)  # not inbounds: it may point before the buffer
    return b.call(_masked(b, "load", vector), [address, ir.Constant(I32, _align(ty)), mask, passthrough])


def masked_store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, offset: ir.Value,
                 used: int | Sequence[bool] | ir.Value, condition: ir.Value | None = None) -> None:
    """The first `used` lanes of a vector (or the lanes where bits `used` is true, or where the
    runtime vector of i1 `used` is; and where the i1 `condition` holds) stored to consecutive
    elements at `offset`; as in masked_load, lanes not stored may lie outside the buffer."""
    count, ty = value.type.count, value.type.element
    if isinstance(used, ir.Value):  # a runtime mask of a tile's first lanes: they start inside the buffer
        mask, inbounds = used, True
    else:
        bits = [lane < used for lane in range(count)] if isinstance(used, int) else list(used)
        if not any(bits):
            return
        if all(bits) and condition is None:
            return store(b, value, ptr, offset)
        # the first lanes of a vector start inside the buffer; other masks may point before it
        mask, inbounds = lane_mask(bits), isinstance(used, int)
    if condition is not None:
        mask = b.and_(mask, splat(b, condition, count))
    address = b.gep(ptr, [offset], inbounds=inbounds, source_etype=ty)
    b.call(_masked(b, "store", value.type), [value, address, ir.Constant(I32, _align(ty)), mask])


def splat(b: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    """A vector with `value` in every lane."""
    vector = ir.VectorType(value.type, lanes)
    first = b.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return b.shuffle_vector(first, ir.Constant(vector, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), lanes), None))


def _align(ty: ir.Type) -> int:
    return 1 if ty == I8 else 4 if isinstance(ty, ir.FloatType) else 8


def add(b: ir.IRBuilder, base: ir.Value, index: ir.Value, stride: int = 1) -> ir.Value:
    """base + index * stride in i64, folding the trivial cases so the IR stays readable."""
    if stride == 0:
        return base
    flags = NOWRAP if stride > 0 else ("nsw",)  # a negative step (flip) wraps as unsigned
    term = index if stride == 1 else b.mul(index, i64(stride), flags=flags)
    if isinstance(base, ir.Constant) and base.constant == 0:
        return term
    return b.add(base, term, flags=flags)


def add_constant(b: ir.IRBuilder, value: ir.Value, constant: int) -> ir.Value:
    """value + constant, where the constant may be negative (add's nuw would make that poison)."""
    return b.add(value, i64(constant), flags=("nsw",)) if constant < 0 else add(b, value, i64(constant))


@contextlib.contextmanager
def for_range(b: ir.IRBuilder, count: int | ir.Value, name: str = "i") -> Iterator[ir.Value]:
    """A counted loop 0..count-1 whose body is the with-block; yields the i64 index.

    The loop is emitted bottom-tested (do-while): no guard for count >= 1, no loop at all for
    count == 1, and for count == 0 the body is emitted into an unreachable block that LLVM
    deletes. A runtime i64 count (a micro-kernel shared by matmuls of several depths) must be
    at least 1: the caller guards it.
    """
    if count == 1:
        yield i64(0)
        return
    before = b.block
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.end")
    if count == 0:
        b.branch(done)
        b.position_at_end(body)
        yield i64(0)
        b.branch(done)
        b.position_at_end(done)
        return
    b.branch(body)
    b.position_at_end(body)
    index = b.phi(I64, name)
    index.add_incoming(i64(0), before)
    yield index
    following = b.add(index, i64(1), flags=NOWRAP)
    index.add_incoming(following, b.block)
    bound = count if isinstance(count, ir.Value) else i64(count)
    b.cbranch(b.icmp_unsigned("<", following, bound), body, done)
    b.position_at_end(done)


@contextlib.contextmanager
def strided_loops(b: ir.IRBuilder, sizes: Sequence[int], strides: Sequence[Sequence[int]],
                  bases: Sequence[ir.Value] | None = None) -> Iterator[list[ir.Value]]:
    """Nested loops over `sizes`; yields one element offset per operand (base + sum i_d * stride_d)."""
    offsets = list(bases) if bases is not None else [i64(0)] * len(strides)
    with contextlib.ExitStack() as stack:
        for d, n in enumerate(sizes):
            index = stack.enter_context(for_range(b, n, f"i{d}"))
            offsets = [add(b, off, index, s[d]) for off, s in zip(offsets, strides)]
        yield offsets


def collapse(sizes: Sequence[int], strides: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dims and merge each dim into the next inner one where every operand steps
    over the pair as one dim, so inner loops are as long (and unit-stride) as the layout allows."""
    dims: list[tuple[int, list[int]]] = []
    for d, n in enumerate(sizes):
        if n == 1:
            continue
        inner = [s[d] for s in strides]
        if dims and all(outer == step * n for outer, step in zip(dims[-1][1], inner)):
            dims[-1] = (dims[-1][0] * n, inner)
        else:
            dims.append((n, inner))
    return [n for n, _ in dims], [[s[o] for _, s in dims] for o in range(len(strides))]


@dataclass
class Kernel:
    """What an emitter gets: a builder in the kernel's entry block, the node, its operand
    nodes, and the output and input buffer pointers (in `node.inputs` order)."""

    builder: ir.IRBuilder
    node: Node
    operands: tuple[Node, ...]
    out: ir.Value
    ins: tuple[ir.Value, ...]

    def alloca(self, ty: ir.Type, name: str = "acc") -> ir.Value:
        """A stack slot in the entry block, which SROA turns into a register (phi)."""
        b = self.builder
        entry = b.function.entry_basic_block
        with b.goto_block(entry):
            if entry.instructions:
                b.position_before(entry.instructions[0])
            return b.alloca(ty, name=name)
