"""matmul and one_hot.

matmul keeps a tile of outputs in vector registers, in the register-tile functions of
microkernel.py that every matmul of a module shares. When M, N and K are all at least
MIN_PACKED_SIZE it packs b into panels and runs the outer-product tile for every transpose
(microkernel.py); smaller matmuls pick a form from which operand dim is unit-stride:
- op(b) rows unit-stride (no transpose_b): outer products. An MR x (NV vectors) tile of
  out accumulates a[i, k] (broadcast) * b[k, j:j+NV*lanes] over k; then one-vector tiles, and
  the columns left over as one masked vector; an out of fewer than MR rows is one shorter tile.
- transpose_b with a's K unit-stride (`x @ W.T`, the Linear layer) and a depth of at least
  MIN_DOT_DEPTH: dot products. An MR x NR tile of outputs accumulates SIMD vectors over k (each
  vector of a used NR times, each of b MR times), summed across lanes at the end.
- both transposed, or shallower: a plain i-j-k loop, each sum in a register.
Tile sizes are for the host's register file (kernel.vector_unit); shapes are static, so
remainder rows and columns become smaller tiles.

matmul_epilogue is the same kernel with its body applied to each final value (`_finish`),
reading the extra operands at that output's row and column. The body runs per element with the
scalar expressions of elementwise.SCALAR_OPS, so every elementwise op can be in it, as a loop
over values already stored (`finish_tile`), which the loop vectoriser widens: over each
outer-product tile just stored (still in L1), over the whole output after the dot-product tiles
(a few columns wide) and over each row of the i-k-j form.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import llvmlite.ir as ir

from ..ops.linalg import epilogue_strides
from .elementwise import emit_body
from .microkernel import dot_products, emit_packed, outer_product, panel_tile
from .kernel import (FAST, PTR, REASSOC, Kernel, LoweringError, add, element, for_range, i64, itemsize, llvm_type,
                     load, store, strided_loops, vector_unit)
from .threads import MIN_FLOPS_PER_THREAD, num_threads, run_indexed, run_parts, split

MIN_ELEMENTS_PER_ROW_PART = 1 << 17
# Packing b into panels (microkernel.py) pays once each packed element is used by 64 rows of a
# and tiles are full: measured 1.1-2.2x faster than the forms below at M, N, K >= 128 on one core,
# 1.2-3x slower at 16 x 784 @ (128 x 784).T, 128 x 512 @ (10 x 512).T, 128 x 10 @ 10 x 512.
MIN_PACKED_SIZE = 64  # a part of a one-row matmul streams at least 512 KB of b
# With many rows the packing of b is paid once for all of them, so a narrow or shallow b (a
# convolution's weights: N output channels, K = C * kh * kw) still packs from this width and depth.
MIN_PACKED_WIDTH = 16
# Deep products (see _deep): from this many times deeper than wide; partial sums of the depth
# parts on the stack up to this size.
DEEP_RATIO = 32
MAX_PARTIAL_BYTES = 64 << 10
DEEP_BLOCK_BYTES = 128 << 10  # b's rows per depth block: stays in L2 (256 KB or more on x86) under all tiles

# Tiles measured best with 16 vector registers (AVX2, Zen 3); the 32-register (AVX-512)
# tiles are scaled from them and not measured.
#   dot products, rows of a x rows of b: 4x3 = 12 accumulators + 3 vectors of b + 1 of a
#   (3x4 spilled); with M == 1 the kernel streams b, and 1x8 reuses each vector of a 8 times.
#   outer products, rows x vectors of columns: 6x2 = 12 accumulators + 2 vectors of b + 1 splat.
DOT_TILE = {16: (4, 3), 32: (4, 6)}
SINGLE_ROW_DOT_TILE = (1, 8)
# a dot tile's sums end in horizontal reductions of whole vectors: shallower products are
# scalar sums in registers (W3's 10 x 3 @ 3 x 5 input gradient: its whole step's native time fell
# from 0.33 to 0.23 µs)
MIN_DOT_DEPTH = 8
OUTER_TILE = {16: (6, 2), 32: (8, 3)}


@dataclass(frozen=True)
class _Operands:
    """Element strides of op(a)[i, k] and op(b)[k, j] inside one batch, plus batch strides."""

    M: int
    N: int
    K: int
    a_row: int
    a_k: int
    b_k: int
    b_col: int
    a_batch: int
    b_batch: int


def _layout(k: Kernel) -> tuple[int, _Operands]:
    a, b = k.operands[:2]
    ta, tb = k.node.attr("transpose_a"), k.node.attr("transpose_b")
    M, N = k.node.shape[-2:]
    K = a.shape[-2] if ta else a.shape[-1]
    batch = math.prod(k.node.shape[:-2])
    b_batch = K * N if len(b.shape) > 2 and not k.node.attr_dict.get("packed_n", 0) else 0
    if not ta and b_batch == 0:  # a [..., M, K] @ b [K, N]: a's batch dims are just more rows
        M, batch = M * batch, 1
    return batch, _Operands(M, N, K, 1 if ta else K, M if ta else 1, 1 if tb else N, K if tb else 1, M * K, b_batch)


@dataclass(frozen=True)
class _Out:
    """Where one block of the matmul writes: its out[i, j] is element offset + i * N + j of out,
    and row + i, col + j of the output seen as [rows, N], where the epilogue reads its operands
    (a batch or a thread's part starts inside the output)."""

    offset: ir.Value
    row: ir.Value
    col: ir.Value


def _finish(k: Kernel, value: ir.Value, row: ir.Value, col: ir.Value) -> ir.Value:
    """out[row, col] as stored: the product itself for matmul, the body applied to it for
    matmul_epilogue."""
    node = k.node
    if node.op != "matmul_epilogue":
        return value
    bld = k.builder
    extras = []
    for ptr, operand in zip(k.ins[2:], k.operands[2:]):
        row_stride, col_stride = epilogue_strides(operand.shape, node.shape)
        offset = add(bld, add(bld, i64(0), row, row_stride), col, col_stride)
        extras.append(load(bld, ptr, llvm_type(operand.dtype), offset))
    return emit_body(bld, node, [value, *extras])


def _blocks(total: int, size: int) -> list[tuple[int, int, int]]:
    """(count, size, start) of the full blocks of `size` and of the remainder block."""
    blocks = [(total // size, size, 0), (1, total % size, total - total % size)]
    return [block for block in blocks if block[0] and block[1]]


def packs_b(M: int, N: int, K: int) -> bool:
    """Whether a matmul of out [M, N] (all batches' rows) over depth K takes the packed
    micro-kernel (prepare.py packs a weight for it once, ahead of the calls)."""
    return M >= MIN_PACKED_SIZE and min(N, K) >= min(MIN_PACKED_SIZE, MIN_PACKED_WIDTH)


def emit_matmul(k: Kernel) -> None:
    batch, ops = _layout(k)
    if batch == 1 and _deep(k, ops):
        _emit_deep(k, ops)
        return
    dots = ops.a_k == 1 and ops.K >= MIN_DOT_DEPTH
    strategy = _outer_tiles if ops.b_col == 1 else _dot_tiles if dots else _plain
    prepacked = k.node.attr_dict.get("packed_n", 0) > 0
    if prepacked and (batch != 1 or k.operands[1].shape[2] != panel_tile(llvm_type(k.node.dtype))[1] * panel_tile(
            llvm_type(k.node.dtype))[2]):
        raise LoweringError(f"matmul: panels {list(k.operands[1].shape)} do not fit this host's micro-kernel")
    if prepacked or packs_b(ops.M, ops.N, ops.K):
        strategy = emit_packed
        if batch == 1:
            _packed_parts(k, ops)
            return
    if batch == 1:
        _row_parts(k, strategy, ops)
        return
    b = k.builder
    with for_range(b, batch, "batch") as t:
        out = _Out(add(b, i64(0), t, ops.M * ops.N), add(b, i64(0), t, ops.M), i64(0))
        strategy(k, ops, add(b, i64(0), t, ops.a_batch), add(b, i64(0), t, ops.b_batch), out)


def _deep(k: Kernel, ops: _Operands) -> bool:
    """A product far deeper than it is wide with rows of op(b) unit-stride: a convolution's weight
    gradient (dW [O, C * kernel] = sum over N * pixels), 50176 deep in W2's first layer. Row-block
    splits leave one thread and re-stream b per row; this form keeps all of out in registers."""
    lanes = vector_unit().lanes(llvm_type(k.node.dtype))
    splits = min(num_threads(), max(1, 2 * ops.M * ops.N * ops.K // MIN_FLOPS_PER_THREAD))
    return (ops.b_col == 1 and ops.K >= DEEP_RATIO * max(ops.M, ops.N, lanes)
            and splits * ops.M * ops.N * itemsize(k.node.dtype) <= MAX_PARTIAL_BYTES)


def _emit_deep(k: Kernel, ops: _Operands) -> None:
    """Depth split across threads, each part's sums into its own slice of a stack buffer (or out,
    for one part), then added up with the epilogue once the pool has run every part."""
    b, ty = k.builder, llvm_type(k.node.dtype)
    splits = split(ops.K, min(num_threads(), max(1, 2 * ops.M * ops.N * ops.K // MIN_FLOPS_PER_THREAD)))
    size = ops.M * ops.N
    sums = k.out
    if len(splits) > 1:
        sums = k.alloca(ir.ArrayType(ty, len(splits) * size), "partials")
        sums.type = PTR  # addressed as opaque `ptr`, like the kernel's buffers
    summing = Kernel(b, replace(k.node, op="matmul"), k.operands, sums, k.ins)  # parts store sums, not results
    run_parts(summing, [functools.partial(_deep_part, ops=ops, first=first, count=count, slot=p * size)
                        for p, (first, count) in enumerate(splits)])
    if len(splits) == 1 and k.node.op != "matmul_epilogue":
        return
    with for_range(b, ops.M, "i") as i, for_range(b, ops.N, "j") as j:
        at = add(b, add(b, i64(0), i, ops.N), j)
        total = load(b, sums, ty, at)
        for p in range(1, len(splits)):
            total = b.fadd(total, load(b, sums, ty, add(b, at, i64(p * size))), flags=FAST)
        store(b, _finish(k, total, i, j), k.out, at)


def _deep_part(k: Kernel, ops: _Operands, first: int, count: int, slot: int) -> None:
    """out[M, N] (at element `slot` of k.out) over depths first..first+count-1, in blocks whose
    rows of b stay in L2 while every tile passes over them: outer-product tiles of MR rows (fewer
    for a short out) by NV vectors, the last vector of a row masked."""
    b, ty = k.builder, llvm_type(k.node.dtype)
    lanes = vector_unit().lanes(ty)
    mr, nv = OUTER_TILE[vector_unit().registers]
    kc = max(1, min(count, DEEP_BLOCK_BYTES // (ops.N * itemsize(k.node.dtype))))
    out = _Out(i64(slot), i64(0), i64(0))
    full, partial = divmod(ops.N, lanes)
    blocks = [(1, kc, 0, False)] + [(n, size, kc + start, True) for n, size, start in _blocks(count - kc, kc)]
    for block_count, depth, block_start, accumulate in blocks:
        with for_range(b, block_count, "kb") as kb:
            k0 = add(b, i64(first + block_start), kb, depth)
            part = replace(ops, K=depth)
            a0, b0 = add(b, i64(0), k0, ops.a_k), add(b, i64(0), k0, ops.b_k)
            for row_count, rows, row_start in _blocks(ops.M, min(mr, ops.M)):
                with for_range(b, row_count, "it") as it:
                    i0 = add(b, i64(row_start), it, rows)
                    a_at = add(b, a0, i0, ops.a_row)
                    for col_count, group, col_start in _blocks(full, nv):
                        with for_range(b, col_count, "jt") as jt:
                            j0 = add(b, i64(col_start * lanes), jt, group * lanes)
                            out_at = add(b, add(b, out.offset, i0, ops.N), j0)
                            outer_product(k, part, a_at, k.ins[1], add(b, b0, j0), ops.b_k, out_at, depth, rows,
                                          group * lanes, accumulate)
                    if partial:  # the last columns: one masked vector
                        out_at = add(b, add(b, out.offset, i0, ops.N), i64(full * lanes))
                        outer_product(k, part, a_at, k.ins[1], add(b, b0, i64(full * lanes)), ops.b_k, out_at,
                                      depth, rows, partial, accumulate)


def _row_parts(k: Kernel, strategy, ops: _Operands) -> None:
    """One part per thread, each a block of rows of out (whole register tiles where possible).
    Rows of op(a) are a fixed stride apart whatever the transposes, so a block of rows is the
    same computation with M smaller and a and out offset. A single row (batch-1 inference)
    splits its columns instead: that kernel streams b from memory, so it pays from a smaller size."""
    if ops.M == 1:
        threads = min(num_threads(), max(1, ops.N * ops.K // MIN_ELEMENTS_PER_ROW_PART))
        # with one row, ops.N is only the width: out's row stride is never multiplied by a row
        return _run_blocks(k, split(ops.N, threads, 8), lambda part, start, count: _part(
            strategy, replace(ops, N=count), part, i64(0), _scaled(part, start, ops.b_col), start, i64(0), start))
    threads = min(num_threads(), max(1, 2 * ops.M * ops.N * ops.K // MIN_FLOPS_PER_THREAD))
    tile = OUTER_TILE[vector_unit().registers][0] if strategy is _outer_tiles else DOT_TILE[vector_unit().registers][0]
    rows = split(ops.M, threads, tile if ops.M >= 2 * tile else 1)
    _run_blocks(k, rows, functools.partial(_row_block, strategy, ops))


def _packed_parts(k: Kernel, ops: _Operands) -> None:
    """One part per thread: blocks of columns (equal ones if N splits evenly, else whole
    panels), so each thread packs only its share of b, or blocks of rows when out is too narrow
    for a few panels a thread."""
    mr, nv, lanes = panel_tile(llvm_type(k.node.dtype))
    threads = min(num_threads(), max(1, 2 * ops.M * ops.N * ops.K // MIN_FLOPS_PER_THREAD))
    if ops.N >= 2 * threads * nv * lanes:
        origin = _Out(i64(0), i64(0), i64(0))
        prepacked = k.node.attr_dict.get("packed_n", 0) > 0

        def columns_part(part: Kernel, start: ir.Value, count: int) -> None:
            emit_packed(part, ops, i64(0), i64(0), origin, start, count)
        if not prepacked:  # each part packs its own panels, from its first column
            return _run_blocks(k, split(ops.N, threads) if ops.N % threads == 0 else split(ops.N, threads, nv * lanes),
                               columns_part)
        # equal shares of whole vectors (W1's 512 columns: 256 each, not 240 and 272 in whole panels
        # of 48); a part starting inside a prepacked panel is emitted with that start (its first
        # tiles are narrower)
        columns = split(ops.N, threads, lanes)
        if all(start % (nv * lanes) == 0 for start, _ in columns):
            return _run_blocks(k, columns, columns_part)
        return run_parts(k, [functools.partial(columns_part, start=i64(start), count=count) for start, count in columns])
    _run_blocks(k, split(ops.M, threads, mr), functools.partial(_row_block, emit_packed, ops))


def _run_blocks(k: Kernel, blocks: list[tuple[int, int]], emit_block) -> None:
    """emit_block(kernel, start, count) for each (start, count) block, one per thread: emitted
    once with its start computed from the part's index when the blocks are equal (the common
    case: the code of one part, not of each), else once per part."""
    if len({count for _, count in blocks}) == 1:
        count = blocks[0][1]
        return run_indexed(k, len(blocks), lambda part, index: emit_block(part, _scaled(part, index, count), count))
    run_parts(k, [functools.partial(lambda part, start, count: emit_block(part, i64(start), count), start=start,
                                    count=count) for start, count in blocks])


def _scaled(k: Kernel, index: ir.Value, stride: int) -> ir.Value:
    """index * stride, folded when the index is a constant (a single part)."""
    if isinstance(index, ir.Constant):
        return i64(index.constant * stride)
    return add(k.builder, i64(0), index, stride)


def _row_block(strategy, ops: _Operands, k: Kernel, start: ir.Value, count: int) -> None:
    """Rows start..start+count-1 of out."""
    a_offset, out_offset = _scaled(k, start, ops.a_row), _scaled(k, start, ops.N)
    _part(strategy, replace(ops, M=count), k, a_offset, i64(0), out_offset, start, i64(0))


def _part(strategy, ops: _Operands, k: Kernel, a_offset: ir.Value, b_offset: ir.Value, out_offset: ir.Value,
          row: ir.Value, col: ir.Value) -> None:
    """One block of the matmul: `strategy` on `ops` with a, b and out starting at these elements,
    out's first element at output row `row`, column `col`."""
    strategy(k, ops, a_offset, b_offset, _Out(out_offset, row, col))


def _outer_tiles(k: Kernel, ops: _Operands, a0: ir.Value, b0: ir.Value, out: _Out) -> None:
    """Register tiles of MR rows (fewer for a short out) by NV vectors, then one-vector tiles,
    then the last columns as one masked vector: every sum stays in a register over the whole
    depth. (Columns past the vectors once went i-k-j through out itself; with a masked vector
    each k stored and reloaded, 512 x 10 outputs of a W1 weight gradient cost 8 cycles a k.)"""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    lanes = vector_unit().lanes(ty)
    mr, nv = OUTER_TILE[vector_unit().registers]
    # whole tiles of nv vectors, then one-vector tiles (the function the packed remainders use
    # too: for a small matmul one function fewer beats a two-vector tile), then the rest; the
    # tile column loop is outermost so a panel of b stays in cache while all rows of a pass over it
    full, rest = divmod(ops.N // lanes, nv)
    groups = [(full, nv * lanes, 0), (rest, lanes, full * nv * lanes), (1, ops.N % lanes, ops.N - ops.N % lanes)]
    for col_count, width, col_start in groups:
        if not (col_count and width):
            continue
        for row_count, rows, row_start in _blocks(ops.M, min(mr, ops.M)):
            with for_range(bld, col_count, "jt") as jt, for_range(bld, row_count, "it") as it:
                i0 = add(bld, i64(row_start), it, rows)
                j0 = add(bld, i64(col_start), jt, width)
                out_at = add(bld, add(bld, out.offset, i0, ops.N), j0)
                outer_product(k, ops, add(bld, a0, i0, ops.a_row), k.ins[1], add(bld, b0, j0), ops.b_k, out_at, ops.K,
                              rows, width)
                finish_tile(k, out, i0, j0, ops.N, rows, width)


def finish_tile(k: Kernel, out: _Out, i0: ir.Value, j0: ir.Value, N: int, rows: int, cols: int) -> None:
    """The epilogue over the rows x cols of out already stored from out[i0, j0] (out's row stride
    N), still in L1: a loop the loop vectoriser widens, so the body's math (fastmath.py) runs on
    whole vectors. Nothing for a plain matmul."""
    if k.node.op != "matmul_epilogue":
        return
    bld, ty = k.builder, llvm_type(k.node.dtype)
    with for_range(bld, rows, "er") as r, for_range(bld, cols, "ec") as c:
        i, j = add(bld, i0, r), add(bld, j0, c)
        dst = add(bld, add(bld, out.offset, i, N), j)
        store(bld, _finish(k, load(bld, k.out, ty, dst), add(bld, out.row, i), add(bld, out.col, j)), k.out, dst)


def _dot_tiles(k: Kernel, ops: _Operands, a0: ir.Value, b0: ir.Value, out: _Out) -> None:
    dot_products(k, ops, a0, b0, out.offset)
    # over the stored sums: applied to each sum, it stayed scalar
    finish_tile(k, out, i64(0), i64(0), ops.N, ops.M, ops.N)


def _plain(k: Kernel, ops: _Operands, a0: ir.Value, b0: ir.Value, out: _Out) -> None:
    """i-j-k with strided loads of both operands (transpose_a and transpose_b)."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    acc = k.alloca(ty)
    with for_range(bld, ops.M, "i") as i, for_range(bld, ops.N, "j") as j:
        bld.store(ir.Constant(ty, 0.0), acc)
        with for_range(bld, ops.K, "k") as kk:
            x = load(bld, k.ins[0], ty, add(bld, add(bld, a0, i, ops.a_row), kk, ops.a_k))
            y = load(bld, k.ins[1], ty, add(bld, add(bld, b0, j, ops.b_col), kk, ops.b_k))
            bld.store(bld.fadd(bld.load(acc, typ=ty), bld.fmul(x, y, flags=FAST), flags=REASSOC), acc)
        value = _finish(k, bld.load(acc, typ=ty), add(bld, out.row, i), add(bld, out.col, j))
        store(bld, value, k.out, add(bld, add(bld, out.offset, i, ops.N), j))


def emit_one_hot(k: Kernel) -> None:
    """out[p, c] = (a[p] == c): indices outside [0, C) match no c and give a zero row."""
    bld, ty = k.builder, llvm_type(k.node.dtype)
    classes = k.node.attr("num_classes")
    one, zero = ir.Constant(ty, 1), ir.Constant(ty, 0)
    with for_range(bld, k.operands[0].size, "p") as p:
        index = load(bld, k.ins[0], llvm_type("int64"), p)
        with for_range(bld, classes, "c") as c:
            selected = bld.select(bld.icmp_signed("==", index, c), one, zero)
            store(bld, selected, k.out, add(bld, add(bld, i64(0), p, classes), c))


def emit_pack_panels(k: Kernel) -> None:
    """out[p, kk, c] = op(b)[kk, p * NR + c], zero past N: a weight in the micro-kernel's panels."""
    bld, node = k.builder, k.node
    (b,) = k.operands
    ty = llvm_type(node.dtype)
    _, depth, nr = node.shape
    n = b.shape[0] if node.attr("transpose_b") else b.shape[1]
    s_k, s_j = (1, depth) if node.attr("transpose_b") else (n, 1)  # op(b)[kk, j] is b[kk * s_k + j * s_j]
    full, cols = divmod(n, nr)
    with strided_loops(bld, [full, depth, nr], [[depth * nr, nr, 1], [nr * s_j, s_k, s_j]]) as (dst, src):
        store(bld, load(bld, k.ins[0], ty, src), k.out, dst)
    if cols:  # the last panel: its columns, then zeros
        first = full * depth * nr
        with strided_loops(bld, [depth, cols], [[nr, 1], [s_k, s_j]], [i64(first), i64(full * nr * s_j)]) as (dst, src):
            store(bld, load(bld, k.ins[0], ty, src), k.out, dst)
        with strided_loops(bld, [depth, nr - cols], [[nr, 1]], [i64(first + cols)]) as (dst,):
            store(bld, ir.Constant(ty, 0.0), k.out, dst)
