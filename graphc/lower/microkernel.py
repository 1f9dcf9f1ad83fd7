"""The packed-panel matmul: one register-tiled micro-kernel for every transpose combination.

BLIS-style: a block of op(b), at most PACK_BYTES, is copied into contiguous panels of NR columns
(K rows each, zero-padded past N) in a stack buffer; then an MR x NR tile of out accumulates in
MR * NV vector registers, each step broadcasting MR elements of op(a) against NV vectors of the
panel. Packing is what makes the transposes one kernel: op(b)[k, j] is read through its strides
once, while copying, and op(a)[i, k] is one strided scalar load per FMA row. Blocks run
  columns of out (NC) > depth (KC, one packed block) > rows (MR tiles) > panels (NR columns),
so the tile's rows of a stay in L1 while every panel of the block (in L2) passes under them.
The first depth block starts from zero, later ones add out's partial sums, and the last applies
the epilogue (`linalg._finish`) to the accumulators before the stores. Shapes are static, so
remainder rows, panels, columns and depths are smaller, separately emitted tiles.
"""
from __future__ import annotations

import weakref

import llvmlite.ir as ir

from .kernel import FAST, PTR, Kernel, add, for_range, i64, llvm_type, load, splat, store, vector_unit

# rows x vectors of columns: MR * NV accumulators + NV vectors of b + 1 broadcast of a must fit
PANEL_TILE = {16: (6, 2), 32: (8, 3)}
PACK_BYTES = 256 << 10  # the packed block of b; on the stack, so threads each have their own
MAX_DEPTH = 256  # KC: a tile's rows of a (MR x KC) stay in L1 across a block's panels

_pack_buffers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def panel_tile(ty: ir.Type) -> tuple[int, int, int]:
    """(MR, NV, lanes) of the host's register file; a tile is MR rows by NV * lanes columns."""
    unit = vector_unit()
    mr, nv = PANEL_TILE[unit.registers]
    return mr, nv, unit.lanes(ty)


def _blocks(total: int, size: int) -> list[tuple[int, int, int]]:
    """(count, size, start) of the full blocks of `size` and of the remainder block."""
    blocks = [(total // size, size, 0), (1, total % size, total - total % size)]
    return [block for block in blocks if block[0] and block[1]]


def _pack_buffer(k: Kernel, ty: ir.Type) -> ir.Value:
    """One PACK_BYTES stack buffer per LLVM function (a threaded kernel's parts share a function)."""
    fn = k.builder.function
    if fn not in _pack_buffers:
        slot = k.alloca(ir.ArrayType(ir.IntType(8), PACK_BYTES), "packed")
        slot.align = 64
        slot.type = PTR  # addressed as opaque `ptr`, like the kernel's buffers
        _pack_buffers[fn] = slot
    return _pack_buffers[fn]


def emit_packed(k: Kernel, ops, a0: ir.Value, b0: ir.Value, out, first_col: int = 0, width: int | None = None) -> None:
    """out[i, first_col:first_col + width] for all ops.M rows (ops from linalg._layout: its N is
    out's row stride; `out` a linalg._Out)."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    mr, nv, lanes = panel_tile(ty)
    nr = nv * lanes
    width = ops.N - first_col if width is None else width
    depth_blocks = -(-ops.K // MAX_DEPTH)
    kc = -(-ops.K // depth_blocks)
    nc = max(nr, PACK_BYTES // (kc * (4 if isinstance(ty, ir.FloatType) else 8)) // nr * nr)
    nc = min(nc, -(-width // nr) * nr)
    buf = _pack_buffer(k, ty)
    for col_count, cols, col_start in _blocks(width, nc):
        with for_range(bld, col_count, "jc") as jc:
            j0 = add(bld, i64(first_col + col_start), jc, cols)
            for depth_count, depth, depth_start, first, last in _depths(ops.K, kc):
                with for_range(bld, depth_count, "pc") as pc:
                    k0 = add(bld, i64(depth_start), pc, depth)
                    _pack(k, ops, b0, buf, k0, j0, depth, cols, nr)
                    _block(k, ops, a0, buf, out, k0, j0, depth, cols, first, last)


def _depths(K: int, kc: int) -> list[tuple[int, int, int, bool, bool]]:
    """(count, size, start, first, last) of the depth blocks: the first (from zero), the middle
    ones (one loop), the last (with the epilogue)."""
    sizes = [kc] * (K // kc) + ([K % kc] if K % kc else [])
    if len(sizes) == 1:
        return [(1, sizes[0], 0, True, True)]
    middle = len(sizes) - 2
    blocks = [(1, kc, 0, True, False)]
    if middle:
        blocks.append((middle, kc, kc, False, False))
    blocks.append((1, sizes[-1], K - sizes[-1], False, True))
    return blocks


def _pack(k: Kernel, ops, b0, buf, k0, j0, depth: int, cols: int, nr: int) -> None:
    """buf[(p * depth + kk) * nr + c] = op(b)[k0 + kk, j0 + p * nr + c], zero past `cols`."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    for panel_count, panel_cols, panel_start in _blocks(cols, nr):
        with for_range(bld, panel_count, "pp") as p:
            first = add(bld, i64(panel_start // nr), p)
            base = add(bld, i64(0), first, depth * nr)
            if ops.b_col == 1:  # rows of op(b) are unit-stride: copy rows of the panel
                with for_range(bld, depth, "kk") as kk:
                    src = add(bld, add(bld, b0, add(bld, k0, kk), ops.b_k), add(bld, j0, first, nr))
                    dst = add(bld, base, kk, nr)
                    with for_range(bld, panel_cols, "c") as c:
                        store(bld, load(bld, k.ins[1], ty, add(bld, src, c)), buf, add(bld, dst, c))
            else:  # columns of op(b) are unit-stride (b transposed): copy columns of the panel
                with for_range(bld, panel_cols, "c") as c:
                    src = add(bld, add(bld, b0, add(bld, add(bld, j0, first, nr), c), ops.b_col), k0, ops.b_k)
                    with for_range(bld, depth, "kk") as kk:
                        value = load(bld, k.ins[1], ty, add(bld, src, kk, ops.b_k))
                        store(bld, value, buf, add(bld, add(bld, base, kk, nr), c))
            if panel_cols < nr:
                with for_range(bld, depth, "kz") as kk:
                    with for_range(bld, nr - panel_cols, "cz") as c:
                        store(bld, ir.Constant(ty, 0.0), buf, add(bld, add(bld, base, kk, nr), add(bld, c, i64(panel_cols))))


def _block(k: Kernel, ops, a0, buf, out, k0, j0, depth: int, cols: int, first: bool, last: bool) -> None:
    """Every tile of out rows 0..M-1, columns j0..j0+cols-1 over one packed depth block."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    mr, nv, lanes = panel_tile(ty)
    nr = nv * lanes
    for row_count, rows, row_start in _blocks(ops.M, mr):
        for panel_count, panel_cols, panel_start in _blocks(cols, nr):
            with for_range(bld, row_count, "ir") as it, for_range(bld, panel_count, "jr") as jp:
                i0 = add(bld, i64(row_start), it, rows)
                panel = add(bld, i64(panel_start // nr), jp)
                j = add(bld, j0, panel, nr)
                _tile(k, ops, a0, buf, out, i0, j, k0, add(bld, i64(0), panel, depth * nr), depth, rows,
                      panel_cols, first, last)


def _tile(k: Kernel, ops, a0, buf, out, i0, j0, k0, panel, depth: int, rows: int, cols: int,
          first: bool, last: bool) -> None:
    """The micro-kernel: out[i0:i0+rows, j0:j0+cols] (+)= op(a)[rows, k0:k0+depth] @ panel."""
    from .linalg import _finish

    bld, ty = k.builder, llvm_type(k.node.dtype)
    _, nv, lanes = panel_tile(ty)
    nr = nv * lanes
    vectors = -(-cols // lanes)
    vector = ir.VectorType(ty, lanes)
    accs = [[k.alloca(vector) for _ in range(vectors)] for _ in range(rows)]
    for acc in (acc for row in accs for acc in row):
        bld.store(ir.Constant(vector, None), acc)
    a_rows = [add(bld, add(bld, a0, add(bld, i0, i64(r)), ops.a_row), k0, ops.a_k) for r in range(rows)]
    with for_range(bld, depth, "k") as kk:
        step = add(bld, panel, kk, nr)
        b_vals = [load(bld, buf, ty, add(bld, step, i64(v * lanes)), lanes) for v in range(vectors)]
        for base, row in zip(a_rows, accs):
            x = splat(bld, load(bld, k.ins[0], ty, add(bld, base, kk, ops.a_k)), lanes)
            for y, acc in zip(b_vals, row):
                bld.store(bld.fadd(bld.load(acc, typ=vector), bld.fmul(x, y, flags=FAST), flags=FAST), acc)
    for r, row in enumerate(accs):
        i = add(bld, i0, i64(r))
        out_row = add(bld, add(bld, out.offset, i, ops.N), j0)
        for v, acc in enumerate(row):
            value, col, dst = bld.load(acc, typ=vector), add(bld, j0, i64(v * lanes)), add(bld, out_row, i64(v * lanes))
            used = min(lanes, cols - v * lanes)
            if used == lanes:
                if not first:
                    value = bld.fadd(value, load(bld, k.out, ty, dst, lanes), flags=FAST)
                if last:
                    value = _finish(k, value, add(bld, out.row, i), add(bld, out.col, col))
                store(bld, value, k.out, dst)
                continue
            for lane in range(used):  # the last columns of out: lane by lane
                element = bld.extract_element(value, ir.Constant(ir.IntType(32), lane))
                at = add(bld, dst, i64(lane))
                if not first:
                    element = bld.fadd(element, load(bld, k.out, ty, at), flags=FAST)
                if last:
                    element = _finish(k, element, add(bld, out.row, i), add(bld, add(bld, out.col, col), i64(lane)))
                store(bld, element, k.out, at)
