"""The matmul micro-kernels, shared by every matmul of a module, and the packed-panel matmul.

Register tiles. An outer-product tile accumulates rows x (vectors of columns) of out in vector
registers, each step broadcasting one element of op(a) per row against the vectors of a row of
b; a dot-product tile accumulates rows x cols SIMD vectors along k (rows of a against rows of b,
both unit-stride in k) and sums each across lanes at the end. Each is one private noinline
function per module and register-tile shape, whatever the kernel calling it: the depth and the
strides of a, b and out are i64 arguments, the pointers point at the tile's first elements, and
a remainder's width (and a dot tile's rows and columns) is an argument too. (A k-stride of a
known to be 1 measured no faster than one read from an argument: 140 GFLOP/s both, 8 x 48 tiles
on one Ice Lake core.) LLVM's time grows with every function and line: W1's train step went
from 10,300 lines in 47 functions (a tile function per kernel, depth block, tile and last block)
to about 3,100 in 40, its eight matmul kernels sharing five tile functions; a call costs little
beside rows x cols x depth FMAs. The epilogue (`linalg.finish_tile`) is the caller's, a loop
over the tile just stored, still in L1.

Packed panels (BLIS-style): a block of op(b), at most PACK_BYTES, is copied into contiguous
panels of NR columns (K rows each, zero-padded past N) in a stack buffer; then an MR x NR
outer-product tile runs over each panel. Packing is what makes the transposes one kernel:
op(b)[k, j] is read through its strides once, while copying, and op(a)[i, k] is one strided
scalar load per FMA row. Blocks run
  columns of out (NC) > depth (KC, one packed block) > rows (MR tiles) > panels (NR columns),
so the tile's rows of a stay in L1 while every panel of the block (in L2) passes under them.
Every depth block starts from zero and, unless it is the first (a runtime flag), adds out's
partial sums; the last block then runs the epilogue.
"""
from __future__ import annotations

import weakref
from typing import Callable

import llvmlite.ir as ir

from .kernel import (FAST, I64, NOWRAP, PTR, REASSOC, Kernel, add, declare, element, for_range, i64, llvm_type, load,
                     masked_load, masked_store, splat, store, vector_unit)

# rows x vectors of columns: MR * NV accumulators + NV vectors of b + 1 broadcast of a must fit
PANEL_TILE = {16: (6, 2), 32: (8, 3)}
PACK_BYTES = 256 << 10  # the packed block of b; on the stack, so threads each have their own
MAX_DEPTH = 256  # KC: a tile's rows of a (MR x KC) stay in L1 across a block's panels

_pack_buffers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_tiles: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> {tile key: function}
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


def _shared(module: ir.Module, key: tuple, name: str, args: list[tuple[str, ir.Type]],
            emit: Callable[..., None]) -> ir.Function:
    """The module's tile function for `key`, emitted on first use by emit(builder, *arguments).
    Its pointers never overlap (out is no operand of a matmul), so they are noalias."""
    tiles = _tiles.setdefault(module, {})
    if key not in tiles:
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ty for _, ty in args]), module.get_unique_name(name))
        fn.linkage = "private"  # a helper of the matmul kernels, not a kernel (no symbol at all)
        fn.attributes.add("noinline")
        fn.attributes.add("nounwind")
        for arg, (arg_name, _) in zip(fn.args, args):
            arg.name = arg_name
            if arg.type == PTR:
                arg.add_attribute("noalias")
        bld = ir.IRBuilder(fn.append_basic_block("entry"))
        emit(bld, *fn.args)
        bld.ret_void()
        tiles[key] = fn
    return tiles[key]


def _suffix(ty: ir.Type) -> str:
    return "f32" if isinstance(ty, ir.FloatType) else "f64"


def _times(bld: ir.IRBuilder, count: int, stride: ir.Value) -> ir.Value:
    """count * stride for a Python int count and a runtime stride, folding 0 and 1."""
    return i64(0) if count == 0 else stride if count == 1 else bld.mul(i64(count), stride, flags=NOWRAP)


def _zeroed(bld: ir.IRBuilder, ty: ir.Type, rows: int, cols: int) -> list[list[ir.Value]]:
    """rows x cols stack slots of `ty` set to zero (SROA turns them into registers)."""
    slots = [[bld.alloca(ty) for _ in range(cols)] for _ in range(rows)]
    for slot in (slot for row in slots for slot in row):
        bld.store(ir.Constant(ty, None), slot)
    return slots


def outer_tile(module: ir.Module, ty: ir.Type, rows: int, vectors: int, partial: bool) -> ir.Function:
    """`void (ptr out, ptr a, ptr b, i64 depth, i64 a_row, i64 a_k, i64 b_row, i64 out_row, i1
    accumulate, i64 used_cols)`: out[r * out_row + c] = (that value, if accumulate) + sum over
    kk < depth of a[r * a_row + kk * a_k] * b[kk * b_row + c], for r < rows and c < vectors *
    lanes, or c < used_cols (within the last vector) when `partial`: that vector's lanes past it
    are masked, so b's and out's columns there are neither read nor written (b may be a packed
    panel or a row-major matrix); every remainder width of a tile shares one function."""
    lanes = vector_unit().lanes(ty)
    vector = ir.VectorType(ty, lanes)

    def emit(bld, out, a, b, depth, a_row, a_k, b_row, out_row, accumulate, used_cols):
        masks = [None] * vectors
        if partial:  # the last vector's lanes below used_cols
            lane_index = ir.Constant(ir.VectorType(I64, lanes), [i64(lane) for lane in range(lanes)])
            left = bld.sub(used_cols, i64((vectors - 1) * lanes), flags=NOWRAP)
            masks[-1] = bld.icmp_unsigned("<", lane_index, splat(bld, left, lanes))
        everywhere = [True] * lanes
        accs = _zeroed(bld, vector, rows, vectors)
        a_rows = [_times(bld, r, a_row) for r in range(rows)]
        with bld.if_then(bld.icmp_unsigned("!=", depth, i64(0))), for_range(bld, depth, "k") as kk:
            b_at = bld.mul(kk, b_row, flags=NOWRAP)
            b_vals = [masked_load(bld, b, ty, add(bld, b_at, i64(v * lanes)), everywhere, mask)
                      for v, mask in enumerate(masks)]
            a_at = bld.mul(kk, a_k, flags=NOWRAP)
            for base, row_accs in zip(a_rows, accs):
                x = splat(bld, load(bld, a, ty, add(bld, base, a_at)), lanes)
                for y, acc in zip(b_vals, row_accs):
                    bld.store(bld.fadd(bld.load(acc, typ=vector), bld.fmul(x, y, flags=FAST), flags=FAST), acc)
        out_rows = [_times(bld, r, out_row) for r in range(rows)]
        with bld.if_then(accumulate):  # a later depth block: add out's partial sums
            for start, row_accs in zip(out_rows, accs):
                for v, (acc, mask) in enumerate(zip(row_accs, masks)):
                    partial_sums = masked_load(bld, out, ty, add(bld, start, i64(v * lanes)), everywhere, mask)
                    bld.store(bld.fadd(bld.load(acc, typ=vector), partial_sums, flags=FAST), acc)
        for start, row_accs in zip(out_rows, accs):
            for v, (acc, mask) in enumerate(zip(row_accs, masks)):
                value = bld.load(acc, typ=vector)
                masked_store(bld, value, out, add(bld, start, i64(v * lanes)), lanes if mask is None else mask)

    name = f"outer_tile_{_suffix(ty)}_{rows}x{vectors * lanes}{'_partial' if partial else ''}"
    args = [("out", PTR), ("a", PTR), ("b", PTR), ("depth", I64), ("a_row", I64), ("a_k", I64), ("b_row", I64),
            ("out_row", I64), ("accumulate", BOOL), ("used_cols", I64)]
    return _shared(module, ("outer", str(ty), lanes, rows, vectors, partial), name, args, emit)


def outer_product(k: Kernel, ops, a_at: ir.Value, b: ir.Value, b_at: ir.Value, b_row: int, out_at: ir.Value,
                  depth: int, rows: int, cols: int, accumulate: ir.Value | bool = False) -> None:
    """One call of a shared outer-product tile: out[out_at + r * N + c] (+)= sum over kk < depth
    of op(a)[a_at + r * a_row + kk * a_k] * b[b_at + kk * b_row + c] (ops from linalg._layout:
    its N is out's row stride). A tile narrower than the host's NV vectors is a remainder: the
    partial function of its vector count, which every remainder width of that count shares
    (two one-vector tiles in its place measured 3 % slower on 128 x 512 x 512 matmuls)."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    _, nv, lanes = panel_tile(ty)
    tile = outer_tile(bld.module, ty, rows, -(-cols // lanes), cols < nv * lanes)
    if isinstance(accumulate, bool):
        accumulate = ir.Constant(BOOL, accumulate)
    bld.call(tile, [element(bld, k.out, ty, out_at), element(bld, k.ins[0], ty, a_at), element(bld, b, ty, b_at),
                    i64(depth), i64(ops.a_row), i64(ops.a_k), i64(b_row), i64(ops.N), accumulate, i64(cols)])


def dot_tile(module: ir.Module, ty: ir.Type, rows: int, cols: int, partial_depth: bool) -> ir.Function:
    """`void (ptr out, ptr a, ptr b, i64 depth, i64 a_row, i64 b_row, i64 out_row, i64 used_rows,
    i64 used_cols)`: out[r * out_row + c] = sum over kk < depth of a[r * a_row + kk] *
    b[c * b_row + kk] for r < used_rows <= rows and c < used_cols <= cols: SIMD vectors along k
    with one accumulator per pair of rows (each vector of a used cols times, each of b rows
    times), a last partial vector masked when `partial_depth` (depth % lanes may be nonzero),
    then summed across lanes. Rows and columns past the used ones repeat the last used one, so
    they compute and store its value again: a remainder tile needs no function of its own."""
    lanes = vector_unit().lanes(ty)
    vector = ir.VectorType(ty, lanes)
    across = declare(module, f"llvm.vector.reduce.fadd.v{lanes}{_suffix(ty)}", ty, [ty, vector])

    def emit(bld, out, a, b, depth, a_row, b_row, out_row, used_rows, used_cols):
        accs = _zeroed(bld, vector, rows, cols)
        row_of = [_clamped(bld, r, used_rows) for r in range(rows)]
        a_rows = [bld.mul(r, a_row, flags=NOWRAP) for r in row_of]
        b_rows = [bld.mul(_clamped(bld, c, used_cols), b_row, flags=NOWRAP) for c in range(cols)]

        def step(at: ir.Value, mask: ir.Value | None) -> None:
            everywhere = [True] * lanes
            b_vals = [masked_load(bld, b, ty, add(bld, base, at), everywhere, mask) for base in b_rows]
            for base, slots in zip(a_rows, accs):
                x = masked_load(bld, a, ty, add(bld, base, at), everywhere, mask)
                for y, acc in zip(b_vals, slots):
                    bld.store(bld.fadd(bld.load(acc, typ=vector), bld.fmul(x, y, flags=FAST), flags=REASSOC), acc)

        steps = bld.lshr(depth, i64(lanes.bit_length() - 1))
        with bld.if_then(bld.icmp_unsigned("!=", steps, i64(0))), for_range(bld, steps, "kv") as s:
            step(bld.mul(s, i64(lanes), flags=NOWRAP), None)
        if partial_depth:
            rest = bld.and_(depth, i64(lanes - 1))
            with bld.if_then(bld.icmp_unsigned("!=", rest, i64(0))):  # the last depths: one masked vector
                lane_index = ir.Constant(ir.VectorType(I64, lanes), [i64(lane) for lane in range(lanes)])
                mask = bld.icmp_unsigned("<", lane_index, splat(bld, rest, lanes))
                step(bld.mul(steps, i64(lanes), flags=NOWRAP), mask)
        columns = [_clamped(bld, c, used_cols) for c in range(cols)]
        for r, slots in zip(row_of, accs):
            start = bld.mul(r, out_row, flags=NOWRAP)
            for c, acc in zip(columns, slots):
                total = bld.call(across, [ir.Constant(ty, -0.0), bld.load(acc, typ=vector)], fastmath=REASSOC)
                store(bld, total, out, add(bld, start, c))

    args = [("out", PTR), ("a", PTR), ("b", PTR), ("depth", I64), ("a_row", I64), ("b_row", I64), ("out_row", I64),
            ("used_rows", I64), ("used_cols", I64)]
    name = f"dot_tile_{_suffix(ty)}_{rows}x{cols}{'_partial' if partial_depth else ''}"
    return _shared(module, ("dot", str(ty), lanes, rows, cols, partial_depth), name, args, emit)


def _clamped(bld: ir.IRBuilder, index: int, used: ir.Value) -> ir.Value:
    """min(index, used - 1): the row or column a tile's index `index` computes."""
    if index == 0:
        return i64(0)
    last = bld.sub(used, i64(1), flags=NOWRAP)
    return bld.select(bld.icmp_unsigned("<", i64(index), used), i64(index), last)


def dot_products(k: Kernel, ops, a0: ir.Value, b0: ir.Value, out_offset: ir.Value) -> None:
    """out[i, j] = sum over k of op(a)[i, k] * op(b)[k, j] with both unit-stride in k, over
    balanced tiles of the host's dot shape (ops.M == 1: one row of the widest, a duplicate dot
    product costs nothing beside streaming b), calls of one shared dot tile."""
    from .linalg import DOT_TILE, SINGLE_ROW_DOT_TILE

    bld, ty = k.builder, llvm_type(k.node.dtype)
    lanes = vector_unit().lanes(ty)
    mr, nr = SINGLE_ROW_DOT_TILE if ops.M == 1 else DOT_TILE[vector_unit().registers]
    rows = _balanced(ops.M, mr)
    cols = nr if ops.M == 1 else _balanced(ops.N, nr)
    tile = dot_tile(bld.module, ty, rows, cols, ops.K % lanes != 0)
    row_tiles, col_tiles = -(-ops.M // rows), -(-ops.N // cols)
    with for_range(bld, row_tiles, "it") as it, for_range(bld, col_tiles, "jt") as jt:
        i0, j0 = bld.mul(it, i64(rows), flags=NOWRAP), bld.mul(jt, i64(cols), flags=NOWRAP)
        used_rows = _at_most(bld, bld.sub(i64(ops.M), i0, flags=NOWRAP), rows)
        used_cols = _at_most(bld, bld.sub(i64(ops.N), j0, flags=NOWRAP), cols)
        pointers = [element(bld, k.out, ty, add(bld, add(bld, out_offset, i0, ops.N), j0)),
                    element(bld, k.ins[0], ty, add(bld, a0, i0, ops.a_row)),
                    element(bld, k.ins[1], ty, add(bld, b0, j0, ops.b_col))]
        bld.call(tile, [*pointers, i64(ops.K), i64(ops.a_row), i64(ops.b_col), i64(ops.N), used_rows, used_cols])


def _balanced(total: int, most: int) -> int:
    """The tile size of at most `most` that splits `total` into the fewest, most equal tiles."""
    return -(-total // -(-total // most))


def _at_most(bld: ir.IRBuilder, value: ir.Value, most: int) -> ir.Value:
    return bld.select(bld.icmp_unsigned("<", value, i64(most)), value, i64(most))


def _pack_buffer(k: Kernel, ty: ir.Type) -> ir.Value:
    """One PACK_BYTES stack buffer per LLVM function (a threaded kernel's parts share a function)."""
    fn = k.builder.function
    if fn not in _pack_buffers:
        slot = k.alloca(ir.ArrayType(ir.IntType(8), PACK_BYTES), "packed")
        slot.align = 64
        slot.type = PTR  # addressed as opaque `ptr`, like the kernel's buffers
        _pack_buffers[fn] = slot
    return _pack_buffers[fn]


def emit_packed(k: Kernel, ops, a0: ir.Value, b0: ir.Value, out, first_col: ir.Value = i64(0),
                width: int | None = None) -> None:
    """out[i, first_col:first_col + width] for all ops.M rows (ops from linalg._layout: its N is
    out's row stride; `out` a linalg._Out; first_col may be a part's runtime offset)."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    mr, nv, lanes = panel_tile(ty)
    nr = nv * lanes
    width = ops.N if width is None else width
    depth_blocks = -(-ops.K // MAX_DEPTH)
    kc = -(-ops.K // depth_blocks)
    nc = max(nr, PACK_BYTES // (kc * (4 if isinstance(ty, ir.FloatType) else 8)) // nr * nr)
    nc = min(nc, -(-width // nr) * nr)
    prepacked = k.node.attr_dict.get("packed_n", 0) > 0  # b is pack_panels(b): the panels of all of op(b)
    buf = k.ins[1] if prepacked else _pack_buffer(k, ty)
    # a part of prepacked panels may start inside a panel (a thread's equal share of whole vectors)
    lead = first_col.constant % nr if prepacked and isinstance(first_col, ir.Constant) else 0
    for col_count, cols, col_start in _blocks(width, nc):
        with for_range(bld, col_count, "jc") as jc:
            j0 = add(bld, add(bld, first_col, i64(col_start)), jc, cols)
            for depth_count, depth, depth_start, last in _depths(ops.K, kc):
                with for_range(bld, depth_count, "pc") as pc:
                    k0 = add(bld, i64(depth_start), pc, depth)
                    accumulate = (ir.Constant(BOOL, k0.constant != 0) if isinstance(k0, ir.Constant)
                                  else bld.icmp_unsigned("!=", k0, i64(0)))
                    if not prepacked:
                        _pack(k, ops, b0, buf, k0, j0, depth, cols, nr)
                    _block(k, ops, a0, buf, out, k0, j0, depth, cols, accumulate, last, prepacked, lead)


def _depths(K: int, kc: int) -> list[tuple[int, int, int, bool]]:
    """(count, size, start, last) of the depth blocks: every block but the last in one loop (the
    first of them starts from zero, the tile reads that as a runtime flag), then the last (with
    the epilogue)."""
    sizes = [kc] * (K // kc) + ([K % kc] if K % kc else [])
    blocks = [(len(sizes) - 1, kc, 0, False)] if len(sizes) > 1 else []
    return blocks + [(1, sizes[-1], K - sizes[-1], True)]


def _pack(k: Kernel, ops, b0, buf, k0, j0, depth: int, cols: int, nr: int) -> None:
    """buf[(p * depth + kk) * nr + c] = op(b)[k0 + kk, j0 + p * nr + c], zero past `cols`: one
    call of the module's shared packing function."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    pack = pack_function(bld.module, ty, nr, ops.b_col == 1)
    source = element(bld, k.ins[1], ty, add(bld, add(bld, b0, k0, ops.b_k), j0, ops.b_col))
    bld.call(pack, [buf, source, i64(depth), i64(cols), i64(ops.b_k if ops.b_col == 1 else ops.b_col)])


def pack_function(module: ir.Module, ty: ir.Type, nr: int, unit_cols: bool) -> ir.Function:
    """`void (ptr buf, ptr b, i64 depth, i64 cols, i64 stride)`: the panels of NR columns of a
    depth x cols block of op(b), buf[(p * depth + kk) * nr + c] = op(b)[kk, p * nr + c], zero
    past cols. op(b)[kk, j] is b[kk * stride + j] when unit_cols: each row of a panel is NR / lanes
    vectors, masked past cols (the masked lanes load zeros, which pad the last panel); else
    b[j * stride + kk] (b transposed): columns are copied, then the last panel padded."""
    lanes = vector_unit().lanes(ty)
    lane_index = ir.Constant(ir.VectorType(I64, lanes), [i64(lane) for lane in range(lanes)])

    def emit(bld, buf, b, depth, cols, stride):
        panels = bld.udiv(bld.add(cols, i64(nr - 1), flags=NOWRAP), i64(nr))
        with for_range(bld, panels, "p") as p:  # cols >= 1, so at least one panel
            first = bld.mul(p, i64(nr), flags=NOWRAP)
            left = bld.sub(cols, first, flags=NOWRAP)
            width = bld.select(bld.icmp_unsigned("<", left, i64(nr)), left, i64(nr))
            base = bld.mul(bld.mul(p, depth, flags=NOWRAP), i64(nr), flags=NOWRAP)
            if unit_cols:
                _pack_rows(bld, ty, lane_index, buf, b, depth, stride, first, width, base, nr)
            else:
                _pack_columns(bld, ty, buf, b, depth, stride, first, width, base, nr)

    name = f"pack_{_suffix(ty)}_{nr}_{'rows' if unit_cols else 'columns'}"
    args = [("buf", PTR), ("b", PTR), ("depth", I64), ("cols", I64), ("stride", I64)]
    return _shared(module, ("pack", str(ty), nr, unit_cols), name, args, emit)


def _pack_rows(bld, ty, lane_index, buf, b, depth, stride, first, width, base, nr: int) -> None:
    """One panel, row by row: vectors of b's row masked past `width` (lanes at or past it load zero)."""
    lanes = lane_index.type.count
    masks = [bld.icmp_signed("<", lane_index, splat(bld, bld.sub(width, i64(v), flags=("nsw",)), lanes))
             for v in range(0, nr, lanes)]
    with for_range(bld, depth, "kk") as kk:
        src = bld.add(bld.mul(kk, stride, flags=NOWRAP), first, flags=NOWRAP)
        dst = add(bld, base, kk, nr)
        for v, mask in zip(range(0, nr, lanes), masks):
            store(bld, masked_load(bld, b, ty, add(bld, src, i64(v)), [True] * lanes, mask), buf, add(bld, dst, i64(v)))


def _pack_columns(bld, ty, buf, b, depth, stride, first, width, base, nr: int) -> None:
    """One panel of b transposed: a full panel in squares of lanes x lanes (columns loaded as
    vectors along the depth, transposed in registers, stored as rows of the panel), the depths
    past the last square and partial panels element by element, zeros past `width`. (Element by
    element, packing W1's 784 x 512 weight for a train step's forward cost 50 µs of 450.)"""
    lanes = vector_unit().lanes(ty)
    squares = bld.udiv(depth, i64(lanes))
    vectorised = bld.and_(bld.icmp_unsigned("==", width, i64(nr)), bld.icmp_unsigned("!=", squares, i64(0)))
    with bld.if_then(vectorised), for_range(bld, squares, "ks") as ks:
        k0 = bld.mul(ks, i64(lanes), flags=NOWRAP)
        for g in range(0, nr, lanes):
            columns = [load(bld, b, ty, add(bld, bld.mul(bld.add(first, i64(g + c), flags=NOWRAP), stride, flags=NOWRAP),
                                            k0), lanes) for c in range(lanes)]
            for e, row in enumerate(_transposed(bld, columns)):
                store(bld, row, buf, add(bld, add(bld, base, add(bld, k0, i64(e)), nr), i64(g)))
    done = bld.select(vectorised, bld.mul(squares, i64(lanes), flags=NOWRAP), i64(0))  # depths packed above
    with bld.if_then(bld.icmp_unsigned("<", done, depth)), for_range(bld, width, "c") as c:
        src = bld.mul(bld.add(first, c, flags=NOWRAP), stride, flags=NOWRAP)
        with for_range(bld, bld.sub(depth, done, flags=NOWRAP), "kk") as kk:
            at = bld.add(done, kk, flags=NOWRAP)
            store(bld, load(bld, b, ty, add(bld, src, at)), buf, add(bld, add(bld, base, at, nr), c))
    with bld.if_then(bld.icmp_unsigned("<", width, i64(nr))), for_range(bld, depth, "kz") as kk:
        start = add(bld, add(bld, base, kk, nr), width)
        with for_range(bld, bld.sub(i64(nr), width, flags=NOWRAP), "cz") as c:
            store(bld, ir.Constant(ty, 0.0), buf, add(bld, start, c))


def _transposed(bld: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """The transpose of a square of vectors (rows[r][e] -> out[e][r]): for each bit h of the
    index, rows i and i + h swap their off-diagonal h x h blocks, two shuffles per pair."""
    rows, lanes = list(rows), len(rows)
    h = lanes // 2
    while h:
        low = [e if not e & h else lanes + e - h for e in range(lanes)]
        high = [e + h if not e & h else lanes + e for e in range(lanes)]
        for i in range(lanes):
            if not i & h:
                j = i + h
                rows[i], rows[j] = (bld.shuffle_vector(rows[i], rows[j], _lanes(mask)) for mask in (low, high))
        h //= 2
    return rows


def _lanes(indices: list[int]) -> ir.Constant:
    return ir.Constant(ir.VectorType(ir.IntType(32), len(indices)), indices)


def _block(k: Kernel, ops, a0, buf, out, k0, j0, depth: int, cols: int, accumulate: ir.Value, last: bool,
           prepacked: bool = False, lead: int = 0) -> None:
    """Every tile of out rows 0..M-1, columns j0..j0+cols-1 over one packed depth block (rows
    k0.. of the panels of all of op(b) when `prepacked`, column j0 `lead` columns into its panel;
    else the block just packed into buf), then the epilogue over each tile of the last block."""
    from .linalg import finish_tile

    bld, ty = k.builder, llvm_type(k.node.dtype)
    mr, nv, lanes = panel_tile(ty)
    nr = nv * lanes
    first = min(nr - lead, cols) if lead else 0  # the rest of j0's panel, then whole panels
    segments = ([(1, first, 0)] if first else []) + [(count, width, first + start)
                                                      for count, width, start in _blocks(cols - first, nr)]
    for row_count, rows, row_start in _blocks(ops.M, mr):
        for panel_count, panel_cols, panel_start in segments:
            with for_range(bld, row_count, "ir") as it, for_range(bld, panel_count, "jr") as jp:
                i0 = add(bld, i64(row_start), it, rows)
                j = add(bld, add(bld, j0, i64(panel_start)), jp, nr)
                if prepacked:  # panel j / nr of op(b), from row k0, column j % nr: [panels, K, NR]
                    start = add(bld, add(bld, bld.urem(j, i64(nr)), bld.udiv(j, i64(nr)), ops.K * nr), k0, nr)
                else:
                    start = add(bld, i64(0), add(bld, i64(panel_start // nr), jp), depth * nr)
                a_at = add(bld, add(bld, a0, i0, ops.a_row), k0, ops.a_k)
                out_at = add(bld, add(bld, out.offset, i0, ops.N), j)
                outer_product(k, ops, a_at, buf, start, nr, out_at, depth, rows, panel_cols, accumulate)
                if last:
                    finish_tile(k, out, i0, j, ops.N, rows, panel_cols)
