"""The packed-panel matmul: one register-tiled micro-kernel for every transpose combination.

BLIS-style: a block of op(b), at most PACK_BYTES, is copied into contiguous panels of NR columns
(K rows each, zero-padded past N) in a stack buffer; then an MR x NR tile of out accumulates in
MR * NV vector registers, each step broadcasting MR elements of op(a) against NV vectors of the
panel. Packing is what makes the transposes one kernel: op(b)[k, j] is read through its strides
once, while copying, and op(a)[i, k] is one strided scalar load per FMA row. Blocks run
  columns of out (NC) > depth (KC, one packed block) > rows (MR tiles) > panels (NR columns),
so the tile's rows of a stay in L1 while every panel of the block (in L2) passes under them.
Each tile shape is one private noinline function, called from every depth block, column block and
thread part (emitted once, it keeps the module and LLVM's O3 work small): every depth block starts
from zero and, unless it is the first (a runtime flag), adds out's partial sums; the last block
then runs the epilogue (`linalg._finish`) as a loop over the tile it just stored, still in L1.
Shapes are static, so remainder rows, panels, columns and depths are smaller tile functions.
"""
from __future__ import annotations

import weakref

import llvmlite.ir as ir

from .kernel import FAST, I64, PTR, Kernel, add, for_range, i64, llvm_type, load, splat, store, vector_unit

# rows x vectors of columns: MR * NV accumulators + NV vectors of b + 1 broadcast of a must fit
PANEL_TILE = {16: (6, 2), 32: (8, 3)}
PACK_BYTES = 256 << 10  # the packed block of b; on the stack, so threads each have their own
MAX_DEPTH = 256  # KC: a tile's rows of a (MR x KC) stay in L1 across a block's panels

_pack_buffers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_tile_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> {tile shape: function}
BOOL = ir.IntType(1)


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
    prepacked = k.node.attr_dict.get("packed_n", 0) > 0  # b is pack_panels(b): the panels of all of op(b)
    buf = k.ins[1] if prepacked else _pack_buffer(k, ty)
    for col_count, cols, col_start in _blocks(width, nc):
        with for_range(bld, col_count, "jc") as jc:
            j0 = add(bld, i64(first_col + col_start), jc, cols)
            for depth_count, depth, depth_start, last in _depths(ops.K, kc):
                with for_range(bld, depth_count, "pc") as pc:
                    k0 = add(bld, i64(depth_start), pc, depth)
                    accumulate = (ir.Constant(BOOL, k0.constant != 0) if isinstance(k0, ir.Constant)
                                  else bld.icmp_unsigned("!=", k0, i64(0)))
                    if not prepacked:
                        _pack(k, ops, b0, buf, k0, j0, depth, cols, nr)
                    _block(k, ops, a0, buf, out, k0, j0, depth, cols, accumulate, last, prepacked)


def _depths(K: int, kc: int) -> list[tuple[int, int, int, bool]]:
    """(count, size, start, last) of the depth blocks: every block but the last in one loop (the
    first of them starts from zero, the tile reads that as a runtime flag), then the last (with
    the epilogue)."""
    sizes = [kc] * (K // kc) + ([K % kc] if K % kc else [])
    blocks = [(len(sizes) - 1, kc, 0, False)] if len(sizes) > 1 else []
    return blocks + [(1, sizes[-1], K - sizes[-1], True)]


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


def _block(k: Kernel, ops, a0, buf, out, k0, j0, depth: int, cols: int, accumulate: ir.Value, last: bool,
           prepacked: bool = False) -> None:
    """Every tile of out rows 0..M-1, columns j0..j0+cols-1 over one packed depth block (rows
    k0.. of the panels of all of op(b) when `prepacked`, else the block just packed into buf)."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    mr, nv, lanes = panel_tile(ty)
    nr = nv * lanes
    for row_count, rows, row_start in _blocks(ops.M, mr):
        for panel_count, panel_cols, panel_start in _blocks(cols, nr):
            tile = _tile_function(k, ops, depth, rows, panel_cols, last)
            with for_range(bld, row_count, "ir") as it, for_range(bld, panel_count, "jr") as jp:
                i0 = add(bld, i64(row_start), it, rows)
                panel = add(bld, i64(panel_start // nr), jp)
                j = add(bld, j0, panel, nr)
                if prepacked:  # panel j / nr of op(b), from row k0: [panels, K, NR]
                    start = add(bld, add(bld, i64(0), bld.udiv(j, i64(nr)), ops.K * nr), k0, nr)
                else:
                    start = add(bld, i64(0), panel, depth * nr)
                bld.call(tile, [k.out, k.ins[0], buf, *k.ins[2:],
                                add(bld, add(bld, a0, i0, ops.a_row), k0, ops.a_k),
                                start,
                                add(bld, add(bld, out.offset, i0, ops.N), j),
                                add(bld, out.row, i0), add(bld, out.col, j), accumulate])


def _tile_function(k: Kernel, ops, depth: int, rows: int, cols: int, last: bool) -> ir.Function:
    """The micro-kernel as one internal function per shape of tile, called by every tile of that
    shape in every depth block, column block and thread part: emitted once, it keeps the module
    (and LLVM's work on it) small; its call costs little beside rows x cols x depth FMAs.
    `void (ptr out, ptr a, ptr packed, ptr extras..., i64 a_start, i64 panel, i64 out_start,
    i64 row, i64 col, i1 accumulate)`: out[rows, cols] = (out if accumulate) + op(a) @ panel."""
    module = k.builder.module
    last = last and k.node.op == "matmul_epilogue"  # without an epilogue the last block is like the others
    key = (k.node, k.operands, ops.a_row, ops.a_k, ops.N, depth, rows, cols, last, panel_tile(llvm_type(k.node.dtype)))
    tiles = _tile_functions.setdefault(module, {})
    if key not in tiles:
        extras = len(k.ins) - 2
        kind = ir.FunctionType(ir.VoidType(), [PTR] * (3 + extras) + [I64] * 5 + [BOOL])
        name = module.get_unique_name(f"{k.builder.function.name}.tile{rows}x{cols}x{depth}{'.last' if last else ''}")
        fn = ir.Function(module, kind, name)
        fn.linkage = "private"  # a helper of its kernel, not a kernel (no symbol at all)
        fn.attributes.add("noinline")
        fn.attributes.add("nounwind")
        out_ptr, a_ptr, buf, *rest = fn.args
        extra_ptrs, (a_start, panel, out_start, row, col, accumulate) = rest[:extras], rest[extras:]
        bld = ir.IRBuilder(fn.append_basic_block("entry"))
        tile = Kernel(bld, k.node, k.operands, out_ptr, (a_ptr, buf, *extra_ptrs))
        _tile(tile, ops, a_start, buf, out_start, row, col, panel, depth, rows, cols, accumulate, last)
        bld.ret_void()
        tiles[key] = fn
    return tiles[key]


def _tile(k: Kernel, ops, a_start, buf, out_start, row, col, panel, depth: int, rows: int, cols: int,
          accumulate: ir.Value, last: bool) -> None:
    """The micro-kernel: out[rows, cols] (+)= op(a)[rows, depth] @ panel, where op(a)[r, kk] is
    a at a_start + r * a_row + kk * a_k and out[r, c] is out at out_start + r * N + c (output row
    row + r, column col + c for the epilogue)."""
    from .linalg import _finish

    bld, ty = k.builder, llvm_type(k.node.dtype)
    _, nv, lanes = panel_tile(ty)
    nr = nv * lanes
    vectors = -(-cols // lanes)
    vector = ir.VectorType(ty, lanes)
    accs = [[k.alloca(vector) for _ in range(vectors)] for _ in range(rows)]
    for acc in (acc for row_accs in accs for acc in row_accs):
        bld.store(ir.Constant(vector, None), acc)
    a_rows = [add(bld, a_start, i64(r), ops.a_row) for r in range(rows)]
    with for_range(bld, depth, "k") as kk:
        step = add(bld, panel, kk, nr)
        b_vals = [load(bld, buf, ty, add(bld, step, i64(v * lanes)), lanes) for v in range(vectors)]
        for base, row_accs in zip(a_rows, accs):
            x = splat(bld, load(bld, k.ins[0], ty, add(bld, base, kk, ops.a_k)), lanes)
            for y, acc in zip(b_vals, row_accs):
                bld.store(bld.fadd(bld.load(acc, typ=vector), bld.fmul(x, y, flags=FAST), flags=FAST), acc)
    with bld.if_then(accumulate):  # a later depth block: add out's partial sums
        for r, row_accs in enumerate(accs):
            for v, acc in enumerate(row_accs):
                dst = add(bld, out_start, i64(r * ops.N + v * lanes))
                used = min(lanes, cols - v * lanes)
                if used == lanes:
                    bld.store(bld.fadd(bld.load(acc, typ=vector), load(bld, k.out, ty, dst, lanes), flags=FAST), acc)
                    continue
                value = ir.Constant(vector, None)
                for lane in range(used):
                    lane_index = ir.Constant(ir.IntType(32), lane)
                    value = bld.insert_element(value, load(bld, k.out, ty, add(bld, dst, i64(lane))), lane_index)
                bld.store(bld.fadd(bld.load(acc, typ=vector), value, flags=FAST), acc)
    for r, row_accs in enumerate(accs):
        for v, acc in enumerate(row_accs):
            value, dst = bld.load(acc, typ=vector), add(bld, out_start, i64(r * ops.N + v * lanes))
            used = min(lanes, cols - v * lanes)
            if used == lanes:
                store(bld, value, k.out, dst)
                continue
            for lane in range(used):  # the last columns of out: lane by lane
                store(bld, bld.extract_element(value, ir.Constant(ir.IntType(32), lane)), k.out, add(bld, dst, i64(lane)))
    if last:  # the epilogue over the tile just stored (in L1): a loop LLVM vectorises, not rows x cols copies
        with for_range(bld, rows, "er") as r, for_range(bld, cols, "ec") as c:
            dst = add(bld, add(bld, out_start, r, ops.N), c)
            store(bld, _finish(k, load(bld, k.out, ty, dst), add(bld, row, r), add(bld, col, c)), k.out, dst)
