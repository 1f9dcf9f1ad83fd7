"""pool and pool_backward: windows read in place, output pixels in vector lanes.

A plane (one channel of one image, [H, W]; a 1-d pool has one row) is walked row of outputs by
row. A vector holds consecutive output columns ow; for each window offset (kh, kw) it is one
load of the input row ih = oh * sh + kh * dh - ph at columns ow * sw + kw * dw - pw: contiguous
for stride 1 along the width, else every sw-th lane of a sw-times wider load, picked by a
shuffle. Padding is the load's mask: its columns are fixed at compile time, its rows a runtime
condition (rows_may_pad). Masked lanes read -inf for max and 0 for sum, which is what the
padding holds, so the result is the reduction over the padded window.

pool keeps one accumulator per vector of a row in a register and stores the pooled row once:
no windows array is stored. pool_backward zeroes the input gradient's plane, then per vector of
outputs finds the element each window routes g to (for max, the one PyTorch's scan picks: the
first element greater than all before it, or the last NaN; every element for sum), over the
same masked loads, and adds g there into the rows it came from,
as masked read-modify-writes through the inverse shuffle. Within one offset the lanes write
distinct columns, and the offsets run one after the other, so overlapping windows add up. When
the windows tile the input exactly (LeNet's 2x2 pools), each element is stored once instead:
no zeroing, no read.

Vectors whose loads are all in bounds and full (the interior of a wide row) run as a loop; the
first and last vectors of a row, with their padding masks, are unrolled. Planes split across
the thread pool.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import llvmlite.ir as ir

from .kernel import (I64, Kernel, add, add_constant, for_range, i64, lane_mask, llvm_type, masked_load, masked_store,
                     splat, store, vector_unit)
from .reduce import maximum
from .threads import num_threads, run_parts, split

MIN_ELEMENTS_PER_PART = 1 << 16  # input elements a thread reads, about 20 µs; fewer run inline
FILL = {"max": -math.inf, "sum": 0.0}


@dataclass(frozen=True)
class _Geometry:
    """A pool seen as 2-d over planes of [H, W] (a 1-d pool has H = 1), with its vectors of ow."""

    planes: int
    H: int
    W: int
    OH: int
    OW: int
    KH: int
    KW: int
    sh: int
    sw: int
    dh: int
    dw: int
    ph: int
    pw: int
    lanes: int

    @staticmethod
    def of(node, x_shape: Sequence[int], out_shape: Sequence[int], lanes: int) -> "_Geometry":
        dims = len(node.attr("kernel"))

        def two(values, one):
            return tuple(values) if dims == 2 else (one,) + tuple(values)
        (H, W), (OH, OW) = two(x_shape[len(x_shape) - dims:], 1), two(out_shape[len(out_shape) - dims:], 1)
        (KH, KW), (sh, sw), (dh, dw) = (two(node.attr(a), 1) for a in ("kernel", "stride", "dilation"))
        (ph, _), (pw, _) = two(node.attr("padding"), (0, 0))
        return _Geometry(math.prod(x_shape[:len(x_shape) - dims]), H, W, OH, OW, KH, KW, sh, sw, dh, dw, ph, pw, lanes)

    @property
    def tiles_exactly(self) -> bool:
        """Whether the windows cover the input once each, no padding, no gaps, no overlap (a 2x2
        pool of stride 2 over even sizes): then each input element is written once, not added to."""
        return (self.dh == self.dw == 1 and self.ph == self.pw == 0 and (self.sh, self.sw) == (self.KH, self.KW)
                and (self.H, self.W) == (self.OH * self.KH, self.OW * self.KW))

    @property
    def rows_may_pad(self) -> bool:
        """Whether some window row falls into the padding (then each row load has a condition)."""
        return self.ph > 0 or (self.OH - 1) * self.sh + (self.KH - 1) * self.dh - self.ph >= self.H

    def column(self, ow: int, kw: int) -> int:
        """The input column (maybe negative) that output column `ow` reads at kernel column `kw`."""
        return ow * self.sw + kw * self.dw - self.pw

    def bits(self, ow: int, kw: int) -> list[bool]:
        """The lanes of the (sw-times wide) load for the vector starting at output column `ow`."""
        first, used = self.column(ow, kw), min(self.lanes, self.OW - ow)
        return [i % self.sw == 0 and i // self.sw < used and 0 <= first + i < self.W
                for i in range(self.lanes * self.sw)]

    def vector_runs(self) -> list[tuple[int, int, bool]]:
        """(first vector, count, whether its loads are full) over a row's vectors of ow: full
        vectors in a row become one loop."""
        runs: list[tuple[int, int, bool]] = []
        for v in range(-(-self.OW // self.lanes)):
            full = all(all(self.bits(v * self.lanes, kw)[::self.sw]) for kw in range(self.KW))
            if runs and full and runs[-1][2]:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1, True)
            else:
                runs.append((v, 1, full))
        return runs


def _geometry(k: Kernel, x_shape: Sequence[int], out_shape: Sequence[int]) -> tuple[_Geometry, ir.Type]:
    ty = llvm_type(k.node.dtype)
    return _Geometry.of(k.node, x_shape, out_shape, vector_unit().lanes(ty)), ty


class _Row:
    """Loads and read-modify-writes of one input row for a vector of output columns."""

    def __init__(self, k: Kernel, g: _Geometry, ty: ir.Type, plane: ir.Value, oh: ir.Value, kh: ir.Value):
        b = k.builder
        self.b, self.g, self.ty = b, g, ty
        ih = b.add(add(b, i64(0), oh, g.sh), kh if g.dh == 1 else b.mul(kh, i64(g.dh)), flags=("nsw",))
        ih = add_constant(b, ih, -g.ph)  # may be negative
        self.valid = b.icmp_unsigned("<", ih, i64(g.H)) if g.rows_may_pad else None  # negative: huge unsigned
        self.start = add(b, add(b, i64(0), plane, g.H * g.W), b.select(self.valid, ih, i64(0)) if self.valid else ih,
                         g.W)

    def _picks(self) -> ir.Constant:
        return ir.Constant(ir.VectorType(ir.IntType(32), self.g.lanes), [i * self.g.sw for i in range(self.g.lanes)])

    def load(self, ptr: ir.Value, ow: ir.Value, first: int, kw: int, fill: float) -> ir.Value:
        """x at this row's window columns for the vector of output columns ow..ow+lanes-1, where
        `first` is ow when it is a compile-time column (else the vector is full)."""
        b, g = self.b, self.g
        bits = g.bits(first, kw)
        offset = add_constant(b, add(b, self.start, ow, g.sw), g.column(0, kw))
        wide = masked_load(b, ptr, self.ty, offset, bits, self.valid, fill)
        if g.sw == 1:
            return wide
        return b.shuffle_vector(wide, ir.Constant(wide.type, None), self._picks())

    def inside(self, first: int, kw: int) -> ir.Value:
        """The lanes `load` reads from the input rather than the padding (an i1 per lane)."""
        b, g = self.b, self.g
        bits = g.bits(first, kw)
        mask = lane_mask(bits)
        if self.valid is not None:
            mask = b.and_(mask, splat(b, self.valid, len(bits)))
        if g.sw == 1:
            return mask
        return b.shuffle_vector(mask, ir.Constant(mask.type, None), self._picks())

    def add_into(self, ptr: ir.Value, ow: ir.Value, first: int, kw: int, value: ir.Value) -> None:
        """ptr[window columns] += value's lanes, the inverse of `load` (= when the windows tile
        the input exactly)."""
        b, g = self.b, self.g
        bits = g.bits(first, kw)
        offset = add_constant(b, add(b, self.start, ow, g.sw), g.column(0, kw))
        if g.sw > 1:
            spread = [i // g.sw if i % g.sw == 0 else g.lanes for i in range(g.lanes * g.sw)]  # lane `lanes`: zero
            value = b.shuffle_vector(value, ir.Constant(value.type, None),
                                     ir.Constant(ir.VectorType(ir.IntType(32), len(spread)), spread))
        if not g.tiles_exactly:
            value = b.fadd(masked_load(b, ptr, self.ty, offset, bits, self.valid), value)
        masked_store(b, value, ptr, offset, bits, self.valid)


# emit(ow: i64 first output column, first: its compile-time value or of a full vector) for one vector of a row
VectorBody = Callable[[ir.Value, int], None]


def _each_vector(b: ir.IRBuilder, g: _Geometry, body: VectorBody) -> None:
    for first, count, full in g.vector_runs():
        if not full or count == 1:
            for v in range(first, first + count):
                body(i64(v * g.lanes), v * g.lanes)
            continue
        with for_range(b, count, "v") as v:
            body(add(b, i64(first * g.lanes), v, g.lanes), first * g.lanes)  # full: every such vector's bits agree


def _split_planes(k: Kernel, g: _Geometry, emit_part) -> None:
    elements = g.planes * g.H * g.W
    threads = min(num_threads(), max(1, elements // MIN_ELEMENTS_PER_PART))
    run_parts(k, [functools.partial(emit_part, first=first, count=count) for first, count in split(g.planes, threads)])


def _combine(reduce: str) -> Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]:
    return maximum if reduce == "max" else lambda b, acc, x: b.fadd(acc, x)


def _splat_constant(ty: ir.Type, lanes: int, value: float) -> ir.Constant:
    return ir.Constant(ir.VectorType(ty, lanes), [ir.Constant(ty, value)] * lanes)


def emit_pool(k: Kernel) -> None:
    g, ty = _geometry(k, k.operands[0].shape, k.node.shape)
    reduce = k.node.attr("reduce")
    fill, combine = FILL[reduce], _combine(reduce)
    vector_ty = ir.VectorType(ty, g.lanes)

    def part(k: Kernel, first: int, count: int) -> None:
        b = k.builder
        acc = k.alloca(vector_ty)
        with for_range(b, count, "plane") as p, for_range(b, g.OH, "oh") as oh:
            plane = add(b, i64(first), p)

            def vector(ow: ir.Value, first_ow: int) -> None:
                b.store(_splat_constant(ty, g.lanes, fill), acc)
                with for_range(b, g.KH, "kh") as kh:
                    row = _Row(k, g, ty, plane, oh, kh)
                    for kw in range(g.KW):
                        b.store(combine(b, b.load(acc, typ=vector_ty), row.load(k.ins[0], ow, first_ow, kw, fill)), acc)
                dst = add(b, add(b, add(b, i64(0), plane, g.OH * g.OW), oh, g.OW), ow)
                masked_store(b, b.load(acc, typ=vector_ty), k.out, dst, min(g.lanes, g.OW - first_ow))
            _each_vector(b, g, vector)

    _split_planes(k, g, part)


def _position(b: ir.IRBuilder, ty: ir.Type, g: _Geometry, kh: ir.Value, kw: int) -> ir.Value:
    """Window offset (kh, kw) as kh * KW + kw in every lane, in the float type (exact below 2^24)."""
    return splat(b, b.uitofp(add(b, i64(kw), kh, g.KW), ty), g.lanes)


def emit_pool_backward(k: Kernel) -> None:
    """dx of pool from g (and, for max, x and the pooled out), see the module docstring."""
    g, ty = _geometry(k, k.node.shape, k.operands[0].shape)
    reduce = k.node.attr("reduce")
    vector_ty = ir.VectorType(ty, g.lanes)
    nothing, none_yet = _splat_constant(ty, g.lanes, 0.0), _splat_constant(ty, g.lanes, -1.0)

    def part(k: Kernel, first: int, count: int) -> None:
        b = k.builder
        grad, saved = k.ins[0], k.ins[1:]
        if not g.tiles_exactly:
            with for_range(b, count * g.H * g.W, "z") as z:
                store(b, ir.Constant(ty, 0.0), k.out, add(b, i64(first * g.H * g.W), z))
        best, picked = k.alloca(vector_ty, "best"), k.alloca(vector_ty, "picked")
        with for_range(b, count, "plane") as p, for_range(b, g.OH, "oh") as oh:
            plane = add(b, i64(first), p)

            def vector(ow: ir.Value, first_ow: int) -> None:
                at = add(b, add(b, add(b, i64(0), plane, g.OH * g.OW), oh, g.OW), ow)
                used = [j < min(g.lanes, g.OW - first_ow) for j in range(g.lanes)]
                share = masked_load(b, grad, ty, at, used)
                if reduce == "max":  # the element PyTorch's scan takes: greater than all before it, or NaN
                    x = saved[0]
                    b.store(_splat_constant(ty, g.lanes, -math.inf), best)
                    b.store(none_yet, picked)
                    with for_range(b, g.KH, "kh") as kh:
                        row = _Row(k, g, ty, plane, oh, kh)
                        for kw in range(g.KW):
                            value, so_far, taken = (row.load(x, ow, first_ow, kw, FILL["max"]),
                                                    b.load(best, typ=vector_ty), b.load(picked, typ=vector_ty))
                            first_inside = b.and_(b.fcmp_ordered("==", taken, none_yet), row.inside(first_ow, kw))
                            take = b.or_(b.or_(b.fcmp_ordered(">", value, so_far), b.fcmp_unordered("uno", value, value)),
                                         first_inside)  # the scan starts at the window's first element inside
                            b.store(b.select(take, value, so_far), best)
                            b.store(b.select(take, _position(b, ty, g, kh, kw), taken), picked)
                with for_range(b, g.KH, "kh") as kh:
                    row = _Row(k, g, ty, plane, oh, kh)
                    for kw in range(g.KW):
                        if reduce == "max":
                            chosen = b.fcmp_ordered("==", b.load(picked, typ=vector_ty), _position(b, ty, g, kh, kw))
                            row.add_into(k.out, ow, first_ow, kw, b.select(chosen, share, nothing))
                        else:
                            row.add_into(k.out, ow, first_ow, kw, share)
            _each_vector(b, g, vector)

    _split_planes(k, g, part)
