"""convolution: direct loops, output pixels in vector lanes, windows read straight from x.

out[n, o, oh, ow] = body(sum over c, kh, kw of w[o, (c, kh, kw)] * x[n, c, ih, iw]), ih = oh * sh +
kh * dh - ph, iw = ow + kw * dw - pw (stride 1 along the last dim). A register tile holds MR output
channels by R output rows by a few vectors of consecutive ow; each step of the (c, kh, kw) loop
loads one vector of x per row and vector (a shifted row of the input: no im2col is stored), one
broadcast weight per channel, and does MR x R x vectors FMAs. Zero padding is a lane mask of the
masked loads: fixed at compile time along the width, and-ed with the input row's validity. The
epilogue body runs over the tile just stored (in L1), so bias, folded BatchNorm and ReLU cost no
pass over memory, and the result is written channels first: no permute.

Each tile shape is one private noinline function (like microkernel.py's). Images split across the
thread pool; a batch smaller than the pool splits the output channels.
"""
from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Sequence

import llvmlite.ir as ir

from .elementwise import broadcast_strides, emit_body
from .kernel import (FAST, I64, PTR, Kernel, add, add_constant, contiguous_strides, for_range, i64, llvm_type, load,
                     masked_load, masked_store, splat, store, vector_unit)
from .threads import MIN_FLOPS_PER_THREAD, num_threads, run_parts, split

MAX_UNROLLED_WIDTH = 16  # kernel columns unrolled in the tile's inner loop (a 16-wide kernel: 16 x tile code)
MAX_TILE_ROWS = 16

_tile_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# Measured on a 2-vCPU Xeon (Ice Lake server, AVX-512: 16 float lanes), 2 threads, conv + ReLU in
# eval mode, im2col time / direct time (the machine was shared, so ratios within one run):
#   16x16x32x32 -> 32 3x3 p1: 2.46     16x32x32x32 -> 32 3x3 p1: 2.20    64x1x28x28 -> 6 5x5 p2: 4.33
#   4x3x64x64 -> 64 3x3 p1: 3.32       4x64x56x56 -> 64 3x3 p1: 2.03     16x64x28x28 -> 128 1x1: 1.90
#   16x32x100 -> 64 k3 p1 (1-d): 3.82  (rows of whole vectors)
#   64x6x14x14 -> 16 5x5 (OW 10): 1.98  32x16x10x10 -> 32 3x3 p1 (OW 10): 1.55
#   8x128x14x14 -> 128 3x3 p1 (OW 14): 1.11
#   16x128x7x7 -> 128 3x3 p1 (OW 7): 0.64   16x256x4x4 -> 256 3x3 p1 (OW 4): 0.43
# The direct kernel's vectors run along a row of output pixels, so its FMA efficiency is the share
# of lanes a row fills (OW over whole vectors: 1, 0.875, 0.625, 0.44, 0.25 above); im2col pays a
# gather and a permute but keeps its tiles full. The direct kernel won from 0.625 and lost at 0.44.
MIN_LANE_USE = 0.5


def direct_pays(x_shape: Sequence[int], channels: int, geometry, dtype: str) -> bool:
    """Whether the direct kernel computes this convolution (else the im2col gather and matmul do):
    unit stride along the width, 1-d or 2-d, and rows of output pixels that fill at least
    MIN_LANE_USE of the host's vectors (see the measurements above)."""
    kernel, stride, dilation, padding = geometry
    if len(kernel) not in (1, 2) or stride[-1] != 1 or kernel[-1] > MAX_UNROLLED_WIDTH:
        return False
    if dtype not in ("float32", "float64"):
        return False
    width = x_shape[-1] + sum(padding[-1]) - dilation[-1] * (kernel[-1] - 1)
    lanes = vector_unit().lanes(llvm_type(dtype))
    return width / (-(-width // lanes) * lanes) >= MIN_LANE_USE


class _Geometry:
    """The convolution seen as 2-d (a 1-d one has one row), with its register tiling."""

    def __init__(self, node, x_shape: Sequence[int], lanes: int, registers: int):
        kernel, stride, dilation, padding = (node.attr(a) for a in ("kernel", "stride", "dilation", "padding"))
        two = (lambda t, one: tuple(t)) if len(kernel) == 2 else (lambda t, one: (one,) + tuple(t))
        self.N, self.C = x_shape[:2]
        self.H, self.W = two(x_shape[2:], 1)
        self.KH, self.KW = two(kernel, 1)
        self.sh, _ = two(stride, 1)
        self.dh, self.dw = two(dilation, 1)
        (self.ph, _), (self.pw, _) = two(padding, (0, 0))
        self.O = node.shape[1]
        self.OH, self.OW = two(node.shape[2:], 1)
        self.K = self.C * self.KH * self.KW
        self.lanes = lanes
        self.vectors = -(-self.OW // lanes)  # vectors of ow per output row
        self.mr, self.rows, self.group = tile_shape(self.O, self.OH, self.vectors, registers)
        # rows whose input row can fall into the padding need a select on every load
        self.rows_may_pad = self.ph > 0 or (self.OH - 1) * self.sh + (self.KH - 1) * self.dh - self.ph >= self.H


def tile_shape(channels: int, rows: int, vectors: int, registers: int) -> tuple[int, int, int]:
    """(MR output channels, R output rows, vectors of a row) of the tile with the fewest issue
    cycles over the whole output: a step of the inner loop costs max(FMAs, loads) / 2 (two FMA
    and two load ports) plus one for the loop; the tile's accumulators and its loaded vectors
    must fit the registers with one broadcast."""
    best = None
    for mr in range(1, min(channels, 16) + 1):
        for r in range(1, min(rows, MAX_TILE_ROWS) + 1):
            for g in ([vectors] if r > 1 else range(1, vectors + 1)):
                if mr * r * g + r * g + 1 > registers:
                    continue
                cost = 0
                for o_count, o_size, _ in _blocks(channels, mr):
                    for r_count, r_size, _ in _blocks(rows, r):
                        for g_count, g_size, _ in _blocks(vectors, g):
                            step = max(o_size * r_size * g_size, o_size + r_size * g_size) / 2 + 1
                            cost += o_count * r_count * g_count * step
                if best is None or cost < best[0]:
                    best = (cost, mr, r, g)
    return best[1:]


def _blocks(total: int, size: int) -> list[tuple[int, int, int]]:
    """(count, size, start) of the full blocks of `size` and of the remainder block."""
    blocks = [(total // size, size, 0), (1, total % size, total - total % size)]
    return [block for block in blocks if block[0] and block[1]]


def emit_convolution(k: Kernel) -> None:
    ty = llvm_type(k.node.dtype)
    unit = vector_unit()
    g = _Geometry(k.node, k.operands[0].shape, unit.lanes(ty), unit.registers)
    flops = 2 * g.N * g.O * g.OH * g.OW * g.K
    threads = min(num_threads(), max(1, flops // MIN_FLOPS_PER_THREAD))
    if g.N >= threads:
        parts = [functools.partial(_emit_range, g=g, images=(first, count), channels=(0, g.O))
                 for first, count in split(g.N, threads)]
    else:
        parts = [functools.partial(_emit_range, g=g, images=(0, g.N), channels=(first, count))
                 for first, count in split(g.O, threads, g.mr)]
    run_parts(k, parts)


def _emit_range(k: Kernel, g: _Geometry, images: tuple[int, int], channels: tuple[int, int]) -> None:
    """Every tile of images first..first+count-1 and output channels first..first+count-1."""
    b = k.builder
    with for_range(b, images[1], "n") as n:
        n = add(b, i64(images[0]), n)
        for o_count, o_size, o_start in _blocks(channels[1], g.mr):
            with for_range(b, o_count, "ot") as ot:
                o0 = add(b, i64(channels[0] + o_start), ot, o_size)
                for r_count, r_size, r_start in _blocks(g.OH, g.rows):
                    with for_range(b, r_count, "rt") as rt:
                        oh0 = add(b, i64(r_start), rt, r_size)
                        for g_count, g_size, g_start in _blocks(g.vectors, g.group):
                            for group in range(g_count):
                                first = g_start + group * g_size
                                tile = _tile_function(k, g, o_size, r_size, tuple(range(first, first + g_size)))
                                b.call(tile, [k.out, *k.ins, n, o0, oh0])


def _tile_function(k: Kernel, g: _Geometry, mr: int, rows: int, vectors: tuple[int, ...]) -> ir.Function:
    """`void (ptr out, ptr x, ptr w, ptr extras..., i64 n, i64 o0, i64 oh0)`: the tile of output
    channels o0..o0+mr-1, rows oh0..oh0+rows-1 and the given vectors of ow, epilogue included."""
    module = k.builder.module
    key = (k.node, k.operands, mr, rows, vectors)
    tiles = _tile_functions.setdefault(module, {})
    if key not in tiles:
        kind = ir.FunctionType(ir.VoidType(), [PTR] * (1 + len(k.ins)) + [I64] * 3)
        name = module.get_unique_name(f"{k.builder.function.name}.tile{mr}x{rows}x{vectors[0]}-{vectors[-1]}")
        fn = ir.Function(module, kind, name)
        fn.linkage = "private"
        fn.attributes.add("noinline")
        fn.attributes.add("nounwind")
        out, *ins = fn.args[:1 + len(k.ins)]
        n, o0, oh0 = fn.args[1 + len(k.ins):]
        bld = ir.IRBuilder(fn.append_basic_block("entry"))
        _tile(Kernel(bld, k.node, k.operands, out, tuple(ins)), g, n, o0, oh0, mr, rows, vectors)
        bld.ret_void()
        tiles[key] = fn
    return tiles[key]


def _lane_mask(g: _Geometry, first: int) -> list[bool]:
    """Lanes of a vector of x starting at column `first` (maybe negative) that lie inside its row."""
    return [0 <= first + j < g.W for j in range(g.lanes)]


def _tile(k: Kernel, g: _Geometry, n, o0, oh0, mr: int, rows: int, vectors: tuple[int, ...]) -> None:
    b, ty = k.builder, llvm_type(k.node.dtype)
    lanes = g.lanes
    vector = ir.VectorType(ty, lanes)
    zero = ir.Constant(vector, None)
    accs = [[[k.alloca(vector) for _ in vectors] for _ in range(rows)] for _ in range(mr)]
    for acc in (a for per_channel in accs for per_row in per_channel for a in per_row):
        b.store(zero, acc)
    image = add(b, i64(0), n, g.C * g.H * g.W)
    weight_rows = [add(b, i64(m * g.K), o0, g.K) for m in range(mr)]
    first_rows = [add_constant(b, add(b, i64(0), oh0, g.sh), r * g.sh - g.ph) for r in range(rows)]
    with contextlib.ExitStack() as loops:
        c = loops.enter_context(for_range(b, g.C, "c"))
        kh = loops.enter_context(for_range(b, g.KH, "kh"))
        plane = add(b, image, c, g.H * g.W)
        row_starts, row_valid = [], []
        for first in first_rows:
            ih = b.add(first, kh if g.dh == 1 else b.mul(kh, i64(g.dh)), flags=("nsw",))  # may be negative
            valid = b.icmp_unsigned("<", ih, i64(g.H)) if g.rows_may_pad else None  # negative: huge unsigned
            row_valid.append(valid)
            row_starts.append(add(b, plane, b.select(valid, ih, i64(0)) if valid is not None else ih, g.W))
        tap = add(b, add(b, i64(0), c, g.KH * g.KW), kh, g.KW)
        for kw in range(g.KW):
            shift = kw * g.dw - g.pw
            loaded = []
            for start, valid in zip(row_starts, row_valid):
                per_row = []
                for v in vectors:
                    bits = _lane_mask(g, v * lanes + shift)
                    per_row.append(masked_load(b, k.ins[0], ty, add_constant(b, start, v * lanes + shift), bits, valid))
                loaded.append(per_row)
            weight_tap = add(b, tap, i64(kw))
            for m in range(mr):
                w = splat(b, load(b, k.ins[1], ty, add(b, weight_rows[m], weight_tap)), lanes)
                for r in range(rows):
                    for j, x in enumerate(loaded[r]):
                        acc = accs[m][r][j]
                        b.store(b.fadd(b.load(acc, typ=vector), b.fmul(w, x, flags=FAST), flags=FAST), acc)
    out_plane = g.OH * g.OW
    first_out = add(b, add(b, add(b, i64(0), n, g.O * out_plane), o0, out_plane), oh0, g.OW)
    for m in range(mr):
        for r in range(rows):
            for j, v in enumerate(vectors):
                value = b.load(accs[m][r][j], typ=vector)
                dst = add(b, first_out, i64(m * out_plane + r * g.OW + v * lanes))
                masked_store(b, value, k.out, dst, min(lanes, g.OW - v * lanes))
    if k.node.attr("body") is not None:
        _epilogue(k, g, n, o0, oh0, mr, rows, vectors)


def _epilogue(k: Kernel, g: _Geometry, n, o0, oh0, mr: int, rows: int, vectors: tuple[int, ...]) -> None:
    """The body over the tile just stored: a loop LLVM vectorises along ow."""
    b, ty = k.builder, llvm_type(k.node.dtype)
    shape = k.node.shape
    out_strides = contiguous_strides(shape)
    extra = []
    for operand in k.operands[2:]:
        strides = broadcast_strides(operand.shape, shape)
        if len(shape) == 3:  # 1-d: no row dim
            strides = strides[:2] + [0] + strides[2:]
        extra.append(strides)
    if len(shape) == 3:
        out_strides = out_strides[:2] + [0] + out_strides[2:]
    first = vectors[0] * g.lanes
    width = min(g.OW, (vectors[-1] + 1) * g.lanes) - first
    with for_range(b, mr, "em") as m, for_range(b, rows, "er") as r, for_range(b, width, "ew") as w:
        o, oh, ow = add(b, o0, m), add(b, oh0, r), add(b, i64(first), w)

        def offset(strides):
            return add(b, add(b, add(b, add(b, i64(0), n, strides[0]), o, strides[1]), oh, strides[2]), ow, strides[3])
        dst = offset(out_strides)
        values = [load(b, k.out, ty, dst)]
        values += [load(b, ptr, llvm_type(op.dtype), offset(s)) for ptr, op, s in zip(k.ins[2:], k.operands[2:], extra)]
        store(b, emit_body(b, k.node, values), k.out, dst)
