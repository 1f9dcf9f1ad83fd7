"""convolution: direct loops, output pixels in vector lanes, windows read from packed input rows.

out[n, o, oh, ow] = body(sum over c, kh, kw of w[o, (c, kh, kw)] * x[n, c, ih, iw]), ih = oh * sh +
kh * dh - ph, iw = ow + kw * dw - pw (stride 1 along the last dim). A register tile holds MR output
channels by R output rows by a few vectors of consecutive ow; each step of the (c, kh, kw) loop
loads one vector per row and vector (a shifted row of the input: no im2col is stored), one
broadcast weight per channel, and does MR x R x vectors FMAs. The input rows a block of R output
rows reads are first packed (`_pack_rows`): each row contiguous, padded with zeros on both sides,
so the tile's loads need no masks, and every channel tile of the block reads them from L1. (Read
in place, the planes of a 32 x 32 image are 4 KB apart, so the same row of every channel falls in
one L1 set: W4's convolutions ran 20 % faster once their rows were packed, 3.51 -> 2.96 ms on one
Emerald Rapids core.) The epilogue body runs over the tile just stored (in L1), so bias, folded
BatchNorm and ReLU cost no pass over memory, and the result is written channels first: no permute.

Each tile shape is one private noinline function (like microkernel.py's). Images split across the
thread pool; a batch smaller than the pool splits the output channels.
"""
from __future__ import annotations

import functools
import weakref
from typing import Sequence

import llvmlite.ir as ir

from .elementwise import broadcast_strides, emit_body
from .kernel import (FAST, I64, NOWRAP, PTR, Kernel, add, add_constant, contiguous_strides, for_range, i64, itemsize,
                     llvm_type, load, masked_load, masked_store, splat, store, vector_unit)
from .threads import MIN_FLOPS_PER_THREAD, num_threads, run_parts, split

MAX_UNROLLED_WIDTH = 16  # kernel columns unrolled in the tile's inner loop (a 16-wide kernel: 16 x tile code)
MAX_TILE_ROWS = 16
MAX_PACKED_BYTES = 32 << 10  # a block of packed input rows, read by every channel tile, stays in L1

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
        # a block of output rows reads P input rows; packed (_pack_rows), each is S elements: `left`
        # zeros (the padding, as many whole vectors), the row, then zeros to past the last column
        # any tap reads (that of the last vector of output pixels)
        self.P = (self.rows - 1) * self.sh + (self.KH - 1) * self.dh + 1
        self.left = -(-self.pw // lanes) * lanes
        reach = self.vectors * lanes + (self.KW - 1) * self.dw - self.pw
        self.S = self.left + -(-max(self.W, reach) // lanes) * lanes
        self.C_block = max(1, min(self.C, MAX_PACKED_BYTES // (self.P * self.S * itemsize(node.dtype))))
        # packed rows that can fall into the padding (or below the last row) are masked
        self.rows_may_pad = self.ph > 0 or (-(-self.OH // self.rows) * self.rows - 1) * self.sh + (
            self.KH - 1) * self.dh - self.ph >= self.H


def tile_shape(channels: int, rows: int, vectors: int, registers: int) -> tuple[int, int, int]:
    """(MR output channels, R output rows, vectors of a row) of the tile with the fewest issue
    cycles over the whole output: a step of the inner loop costs max(FMAs, loads) / 2 (two FMA
    and two load ports) plus one for the loop; the tile's accumulators and its loaded vectors
    must fit the registers with one broadcast and registers // 16 to spare. (With AVX-512's 32,
    a 4 x 3 x 2 tile left one: LLVM loaded the next tap's rows early and spilled two of them to
    the stack each step; the 6 x 2 x 2 tile it gets now ran W4's convolutions 7-10 % faster.
    AVX2's 6 x 1 x 2 tile leaves one of 16 and compiles without spills.)"""
    best = None
    spare = registers // 16
    for mr in range(1, min(channels, 16) + 1):
        for r in range(1, min(rows, MAX_TILE_ROWS) + 1):
            for g in ([vectors] if r > 1 else range(1, vectors + 1)):
                if mr * r * g + r * g + 1 + spare > registers:
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
    """Every tile of images first..first+count-1 and output channels first..first+count-1: for
    each block of output rows, its input rows are packed once, then every channel tile reads them."""
    b = k.builder
    buf = k.alloca(ir.ArrayType(llvm_type(k.node.dtype), g.C_block * g.P * g.S), "rows")
    buf.align = 64
    buf.type = PTR  # addressed as opaque `ptr`, like the kernel's buffers
    with for_range(b, images[1], "n") as n:
        n = add(b, i64(images[0]), n)
        for r_count, r_size, r_start in _blocks(g.OH, g.rows):
            with for_range(b, r_count, "rt") as rt:
                oh0 = add(b, i64(r_start), rt, r_size)
                for c_count, c_size, c_start in _blocks(g.C, g.C_block):
                    with for_range(b, c_count, "cb") as cb:
                        c0 = add(b, i64(c_start), cb, c_size)
                        _pack_rows(k, g, buf, n, oh0, c0, c_size)
                        for o_count, o_size, o_start in _blocks(channels[1], g.mr):
                            with for_range(b, o_count, "ot") as ot:
                                o0 = add(b, i64(channels[0] + o_start), ot, o_size)
                                for g_count, g_size, g_start in _blocks(g.vectors, g.group):
                                    for group in range(g_count):
                                        first = g_start + group * g_size
                                        tile = _tile_function(k, g, o_size, r_size,
                                                              tuple(range(first, first + g_size)))
                                        b.call(tile, [k.out, buf, *k.ins[1:], n, o0, oh0, c0, i64(c_size)])


def _pack_rows(k: Kernel, g: _Geometry, buf: ir.Value, n, oh0, c0, channels: int) -> None:
    """buf[(c * P + p) * S + left + col] = x[n, c0 + c, oh0 * sh - ph + p, col] for col in [0, W),
    zero outside the input (the padding) up to the row's S elements: whole aligned vectors, so a
    tile's loads need no masks, and its rows are contiguous (in x, planes of 4 KB put every
    plane's row in the same L1 set)."""
    b, ty = k.builder, llvm_type(k.node.dtype)
    first_row = add_constant(b, add(b, i64(0), oh0, g.sh), -g.ph)
    with for_range(b, channels, "pc") as c, for_range(b, g.P, "pr") as p:
        ih = b.add(first_row, p, flags=("nsw",))  # may be negative
        valid = b.icmp_unsigned("<", ih, i64(g.H)) if g.rows_may_pad else None  # negative: huge unsigned
        plane = add(b, add(b, i64(0), n, g.C * g.H * g.W), add(b, c0, c), g.H * g.W)
        start = add(b, plane, b.select(valid, ih, i64(0)) if valid is not None else ih, g.W)
        row = add(b, add(b, i64(0), c, g.P * g.S), p, g.S)
        for j in range(0, g.S, g.lanes):
            col = j - g.left
            value = masked_load(b, k.ins[0], ty, add_constant(b, start, col), _lane_mask(g, col), valid)
            store(b, value, buf, add_constant(b, row, j))


def _tile_function(k: Kernel, g: _Geometry, mr: int, rows: int, vectors: tuple[int, ...]) -> ir.Function:
    """`void (ptr out, ptr rows, ptr w, ptr extras..., i64 n, i64 o0, i64 oh0, i64 c0, i64 channels)`:
    the tile of output channels o0..o0+mr-1, rows oh0..oh0+rows-1 and the given vectors of ow over
    input channels c0..c0+channels-1 (packed rows, see _pack_rows), added to out's partial sums
    unless c0 is 0, the epilogue included once the last channel is in."""
    module = k.builder.module
    key = (k.node, k.operands, mr, rows, vectors)
    tiles = _tile_functions.setdefault(module, {})
    if key not in tiles:
        kind = ir.FunctionType(ir.VoidType(), [PTR] * (1 + len(k.ins)) + [I64] * 5)
        name = module.get_unique_name(f"{k.builder.function.name}.tile{mr}x{rows}x{vectors[0]}-{vectors[-1]}")
        fn = ir.Function(module, kind, name)
        fn.linkage = "private"
        fn.attributes.add("noinline")
        fn.attributes.add("nounwind")
        out, *ins = fn.args[:1 + len(k.ins)]
        for arg in (out, ins[0]):
            arg.add_attribute("noalias")
        n, o0, oh0, c0, channels = fn.args[1 + len(k.ins):]
        bld = ir.IRBuilder(fn.append_basic_block("entry"))
        _tile(Kernel(bld, k.node, k.operands, out, tuple(ins)), g, n, o0, oh0, c0, channels, mr, rows, vectors)
        bld.ret_void()
        tiles[key] = fn
    return tiles[key]


def _lane_mask(g: _Geometry, first: int) -> list[bool]:
    """Lanes of a vector of x starting at column `first` (maybe negative) that lie inside its row."""
    return [0 <= first + j < g.W for j in range(g.lanes)]


def _tile(k: Kernel, g: _Geometry, n, o0, oh0, c0, channels, mr: int, rows: int, vectors: tuple[int, ...]) -> None:
    b, ty = k.builder, llvm_type(k.node.dtype)
    lanes = g.lanes
    vector = ir.VectorType(ty, lanes)
    zero = ir.Constant(vector, None)
    accs = [[[k.alloca(vector) for _ in vectors] for _ in range(rows)] for _ in range(mr)]
    for acc in (a for per_channel in accs for per_row in per_channel for a in per_row):
        b.store(zero, acc)
    weight_rows = [add(b, add(b, i64(m * g.K), o0, g.K), c0, g.KH * g.KW) for m in range(mr)]
    with for_range(b, channels, "c") as c, for_range(b, g.KH, "kh") as kh:  # im2col's order: c, kh, kw
        # packed row r * sh + kh * dh of channel c; its column 0 is element `left`
        row = add(b, add(b, i64(g.left), c, g.P * g.S), kh, g.dh * g.S)
        tap = add(b, add(b, i64(0), c, g.KH * g.KW), kh, g.KW)
        for kw in range(g.KW):
            shift = kw * g.dw - g.pw
            loaded = [[load(b, k.ins[0], ty, add_constant(b, row, r * g.sh * g.S + v * lanes + shift), lanes)
                       for v in vectors] for r in range(rows)]
            weight_tap = add(b, tap, i64(kw))
            for m in range(mr):
                w = splat(b, load(b, k.ins[1], ty, add(b, weight_rows[m], weight_tap)), lanes)
                for r in range(rows):
                    for j, x in enumerate(loaded[r]):
                        acc = accs[m][r][j]
                        b.store(b.fadd(b.load(acc, typ=vector), b.fmul(w, x, flags=FAST), flags=FAST), acc)
    out_plane = g.OH * g.OW
    first_out = add(b, add(b, add(b, i64(0), n, g.O * out_plane), o0, out_plane), oh0, g.OW)
    places = [(accs[m][r][j], add(b, first_out, i64(m * out_plane + r * g.OW + v * lanes)),
               min(lanes, g.OW - v * lanes)) for m in range(mr) for r in range(rows) for j, v in enumerate(vectors)]
    if g.C_block < g.C:  # a later block of input channels: add out's partial sums
        with b.if_then(b.icmp_unsigned("!=", c0, i64(0))):
            for acc, dst, used in places:
                partial_sums = masked_load(b, k.out, ty, dst, [lane < used for lane in range(lanes)])
                b.store(b.fadd(b.load(acc, typ=vector), partial_sums, flags=FAST), acc)
    for acc, dst, used in places:
        masked_store(b, b.load(acc, typ=vector), k.out, dst, used)
    if k.node.attr("body") is None:
        return
    if g.C_block == g.C:
        _epilogue(k, g, n, o0, oh0, mr, rows, vectors)
        return
    with b.if_then(b.icmp_unsigned("==", b.add(c0, channels, flags=NOWRAP), i64(g.C))):  # the last block
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
