"""convolution_weight_grad: dW[o, (c, kh, kw)] = sum over n, oh, ow of dy[n, o, oh, ow] *
x[n, c, oh * sh + kh * dh - ph, ow + kw * dw - pw], with x's windows read in place.

Vector lanes hold consecutive ow, as in the forward direct kernel (convolution.py): a step loads
one vector of dy per output channel of the tile and one shifted vector of x per kernel column,
and does MR x KW FMAs into MR x KW vector accumulators (one (c, kh) row of taps, MR output
channels), summed across lanes at the end. Lanes past the row's end load dy as zero, so they add
nothing; x's padding is the load's mask (columns fixed at compile time, the row a runtime
condition). The tile runs over every image and output row, so dy and x stream through once per
tile; tiles ((c, kh) rows and channel blocks) split across the thread pool.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import llvmlite.ir as ir

from .convolution import MIN_LANE_USE, _blocks
from .kernel import (REASSOC, I64, Kernel, add, add_constant, declare, for_range, i64, llvm_type, masked_load,
                     store, vector_unit)
from .threads import MIN_FLOPS_PER_THREAD, num_threads, run_parts, split

MAX_KERNEL_WIDTH = 12  # KW accumulators per channel and KW loaded vectors must fit the registers


def direct_pays(x_shape: Sequence[int], dy_shape: Sequence[int], geometry, dtype: str) -> bool:
    """Whether the direct kernel computes this weight gradient (else the im2col matmul does):
    unit stride along the width, 1-d or 2-d, and rows of dy that fill at least MIN_LANE_USE of
    the host's vectors (the forward kernel's rule: the same loads, the same lane waste)."""
    kernel, stride, _, _ = geometry
    if len(kernel) not in (1, 2) or stride[-1] != 1 or kernel[-1] > MAX_KERNEL_WIDTH:
        return False
    if dtype not in ("float32", "float64"):
        return False
    width, lanes = dy_shape[-1], vector_unit().lanes(llvm_type(dtype))
    return width / (-(-width // lanes) * lanes) >= MIN_LANE_USE


class _Geometry:
    def __init__(self, node, x_shape: Sequence[int], dy_shape: Sequence[int], lanes: int, registers: int):
        kernel, stride, dilation, padding = (node.attr(a) for a in ("kernel", "stride", "dilation", "padding"))
        two = (lambda t, one: tuple(t)) if len(kernel) == 2 else (lambda t, one: (one,) + tuple(t))
        self.N, self.C = x_shape[:2]
        self.H, self.W = two(x_shape[2:], 1)
        self.O = dy_shape[1]
        self.OH, self.OW = two(dy_shape[2:], 1)
        self.KH, self.KW = two(kernel, 1)
        self.sh, _ = two(stride, 1)
        self.dh, self.dw = two(dilation, 1)
        (self.ph, _), (self.pw, _) = two(padding, (0, 0))
        self.K = self.C * self.KH * self.KW
        self.lanes = lanes
        self.vectors = -(-self.OW // lanes)
        # MR x KW accumulators, KW vectors of x, MR of dy
        self.mr = max(1, min(self.O, (registers - 1 - self.KW) // (self.KW + 1)))
        self.rows_may_pad = self.ph > 0 or (self.OH - 1) * self.sh + (self.KH - 1) * self.dh - self.ph >= self.H


def emit_convolution_weight_grad(k: Kernel) -> None:
    ty = llvm_type(k.node.dtype)
    unit = vector_unit()
    g = _Geometry(k.node, k.operands[0].shape, k.operands[1].shape, unit.lanes(ty), unit.registers)
    flops = 2 * g.O * g.K * g.N * g.OH * g.OW
    threads = min(num_threads(), max(1, flops // MIN_FLOPS_PER_THREAD))
    rows = g.C * g.KH
    if rows >= threads:
        parts = [functools.partial(_emit_part, g=g, rows=r, channels=(0, g.O)) for r in split(rows, threads)]
    else:
        parts = [functools.partial(_emit_part, g=g, rows=(0, rows), channels=c) for c in split(g.O, threads, g.mr)]
    run_parts(k, parts)


def _emit_part(k: Kernel, g: _Geometry, rows: tuple[int, int], channels: tuple[int, int]) -> None:
    """Tiles of tap rows rows[0]..+rows[1] (row r: c = r // KH, kh = r % KH) and the channels given."""
    b = k.builder
    with for_range(b, rows[1], "tr") as r:
        row = add(b, i64(rows[0]), r)
        c, kh = b.udiv(row, i64(g.KH)), b.urem(row, i64(g.KH))
        for o_count, o_size, o_start in _blocks(channels[1], g.mr):
            with for_range(b, o_count, "ot") as ot:
                _tile(k, g, c, kh, add(b, i64(channels[0] + o_start), ot, o_size), o_size)


def _tile(k: Kernel, g: _Geometry, c, kh, o0, mr: int) -> None:
    b, ty = k.builder, llvm_type(k.node.dtype)
    vector = ir.VectorType(ty, g.lanes)
    accs = [[k.alloca(vector) for _ in range(g.KW)] for _ in range(mr)]
    for acc in (a for per_channel in accs for a in per_channel):
        b.store(ir.Constant(vector, None), acc)
    out_plane = g.OH * g.OW
    with for_range(b, g.N, "n") as n, for_range(b, g.OH, "oh") as oh:
        ih = b.add(add(b, i64(0), oh, g.sh), kh if g.dh == 1 else b.mul(kh, i64(g.dh)), flags=("nsw",))
        ih = add_constant(b, ih, -g.ph)  # may be negative
        valid = b.icmp_unsigned("<", ih, i64(g.H)) if g.rows_may_pad else None  # negative: huge unsigned
        plane = add(b, add(b, i64(0), n, g.C * g.H * g.W), c, g.H * g.W)
        x_row = add(b, plane, b.select(valid, ih, i64(0)) if valid is not None else ih, g.W)
        dy_row = add(b, add(b, add(b, i64(0), n, g.O * out_plane), o0, out_plane), oh, g.OW)
        for v in range(g.vectors):
            used = min(g.lanes, g.OW - v * g.lanes)
            dys = [masked_load(b, k.ins[1], ty, add(b, dy_row, i64(m * out_plane + v * g.lanes)),
                               [j < used for j in range(g.lanes)]) for m in range(mr)]
            for kw in range(g.KW):
                first = v * g.lanes + kw * g.dw - g.pw
                bits = [j < used and 0 <= first + j < g.W for j in range(g.lanes)]
                xv = masked_load(b, k.ins[0], ty, add_constant(b, x_row, first), bits, valid)
                for m in range(mr):
                    acc = accs[m][kw]
                    b.store(b.fadd(b.load(acc, typ=vector), b.fmul(dys[m], xv, flags=REASSOC), flags=REASSOC), acc)
    name = f"llvm.vector.reduce.fadd.v{g.lanes}{'f32' if isinstance(ty, ir.FloatType) else 'f64'}"
    reduce = declare(b.module, name, ty, [ty, vector])
    taps = add(b, add(b, i64(0), c, g.KH * g.KW), kh, g.KW)
    for m in range(mr):
        out_row = add(b, add(b, i64(m * g.K), o0, g.K), taps)
        for kw in range(g.KW):
            total = b.call(reduce, [ir.Constant(ty, 0.0), b.load(accs[m][kw], typ=vector)], fastmath=REASSOC)
            store(b, total, k.out, add(b, out_row, i64(kw)))
