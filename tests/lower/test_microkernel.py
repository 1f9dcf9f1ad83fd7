"""The packed-panel micro-kernel (lower/microkernel.py): every transpose, remainders in every
dimension, both float dtypes, batches, threaded parts and epilogues, against numpy. The size rule
is switched off (MIN_PACKED_SIZE = 1) so small shapes take the packed path too."""
import itertools
import re

import numpy as np
import pytest

import graphc.lower.linalg as linalg
import graphc.lower.microkernel as microkernel
from graphc.lower import lower
from graphc.ir import GraphBuilder
from graphc.lower.kernel import VectorUnit, llvm_type
from graphc.ops import OPS
from graphc.ops.fused import Body
from harness import Native, op_graph, run_op
from test_linalg import operands

rng = np.random.default_rng(11)
TRANSPOSES = list(itertools.product([False, True], repeat=2))


@pytest.fixture(autouse=True)
def always_packed(monkeypatch):
    monkeypatch.setattr(linalg, "MIN_PACKED_SIZE", 1)


def tolerance(dtype, K):
    return {"rtol": 1e-5, "atol": 1e-5 * max(1, K) ** 0.5} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}


# (M, K, N): every remainder of MR rows, NR-column panels (and a partial vector), and depth
SHAPES = [(m, k, n) for m, k, n in itertools.product([1, 3, 17, 67], [1, 7, 129], [1, 5, 33, 130])
          if (m, k, n) in {(1, 7, 5), (3, 1, 33), (17, 7, 130), (67, 129, 1), (67, 1, 5), (17, 129, 33),
                           (3, 129, 130), (67, 7, 33), (1, 129, 130), (17, 1, 1), (67, 129, 130), (3, 7, 5)}]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ta, tb", TRANSPOSES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_packed_matmul_matches_numpy(shape, ta, tb, dtype):
    m, k, n = shape
    a, b = operands((m, k), (k, n), ta, tb, dtype)
    native, expected = run_op("matmul", [a, b], transpose_a=ta, transpose_b=tb)
    np.testing.assert_allclose(native, expected, **tolerance(dtype, k))


@pytest.mark.parametrize("ta, tb", TRANSPOSES)
def test_depth_blocks_accumulate_in_out(ta, tb):
    """K = 600: three depth blocks (first, middle, last) summed through out."""
    a, b = operands((19, 600), (600, 70), ta, tb, "float32")
    native, expected = run_op("matmul", [a, b], transpose_a=ta, transpose_b=tb)
    np.testing.assert_allclose(native, expected, **tolerance("float32", 600))


def test_column_blocks_wider_than_one_pack():
    """K * N beyond the pack buffer: several column blocks, each packed in turn."""
    a, b = operands((9, 300), (300, 1000), False, False, "float32")
    native, expected = run_op("matmul", [a, b], transpose_a=False, transpose_b=False)
    np.testing.assert_allclose(native, expected, **tolerance("float32", 300))


@pytest.mark.parametrize("a_shape, b_shape, tb", [((2, 3, 17, 7), (7, 33), False), ((3, 17, 9), (3, 9, 20), False),
                                                  ((3, 17, 9), (3, 9, 20), True)])
def test_batched_operands(a_shape, b_shape, tb):
    a, b = operands(a_shape, b_shape, False, tb, "float64")
    native, expected = run_op("matmul", [a, b], transpose_a=False, transpose_b=tb)
    np.testing.assert_allclose(native, expected, **tolerance("float64", a_shape[-1]))


@pytest.mark.parametrize("ta, tb", TRANSPOSES)
@pytest.mark.parametrize("m, n", [(67, 130), (130, 17)])  # split by columns, then by rows
def test_threaded_parts(monkeypatch, m, n, ta, tb):
    monkeypatch.setattr(linalg, "MIN_FLOPS_PER_THREAD", 1)
    monkeypatch.setattr(linalg, "num_threads", lambda: 3)
    a, b = operands((m, 129), (129, n), ta, tb, "float32")
    assert "_parts" in lower(op_graph("matmul", [a, b], transpose_a=ta, transpose_b=tb)).ir_text
    native, expected = run_op("matmul", [a, b], transpose_a=ta, transpose_b=tb)
    np.testing.assert_allclose(native, expected, **tolerance("float32", 129))


@pytest.mark.parametrize("threads, n", [(2, 230), (3, 330)])
@pytest.mark.parametrize("unit", [VectorUnit(512, 32), VectorUnit(256, 16)])
def test_prepacked_columns_split_in_equal_vectors(monkeypatch, threads, n, unit):
    """Prepacked panels split by columns in shares of whole vectors: with 48-column panels the
    parts of 230 and 330 columns start 16 and 32 columns into a panel."""
    monkeypatch.setattr(linalg, "MIN_FLOPS_PER_THREAD", 1)
    monkeypatch.setattr(linalg, "num_threads", lambda: threads)
    monkeypatch.setattr(microkernel, "vector_unit", lambda: unit)
    a, b = operands((67, 129), (129, n), False, False, "float32")
    mr, nv, lanes = microkernel.panel_tile(llvm_type("float32"))
    panels = OPS["pack_panels"].reference(b, transpose_b=False, nr=nv * lanes)
    native, expected = run_op("matmul", [a, panels], transpose_a=False, transpose_b=False, packed_n=n)
    np.testing.assert_allclose(native, expected, **tolerance("float32", 129))


def body(dtype, *steps):
    return Body(tuple((op, args, (), dtype) for op, args in steps))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ta, tb", TRANSPOSES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(17, 600, 33), (67, 7, 130)], ids=str)
def test_epilogue_on_accumulators(shape, relu, ta, tb, dtype):
    """bias (+ relu) applied once, after the last depth block, on full and partial vectors."""
    m, k, n = shape
    a, b = operands((m, k), (k, n), ta, tb, dtype)
    bias = rng.uniform(-1, 1, (n,)).astype(dtype)
    steps = [("add", ("in0", "in1"))] + ([("relu", ("s0",))] if relu else [])
    native, expected = run_op("matmul_epilogue", [a, b, bias], transpose_a=ta, transpose_b=tb,
                              body=body(dtype, *steps))
    np.testing.assert_allclose(native, expected, **tolerance(dtype, k))


def test_packed_only_for_large_shapes(monkeypatch):
    monkeypatch.setattr(linalg, "MIN_PACKED_SIZE", 64)
    small = op_graph("matmul", operands((16, 784), (784, 128), False, True, "float32"),
                     transpose_a=False, transpose_b=True)
    large = op_graph("matmul", operands((128, 784), (784, 512), False, True, "float32"),
                     transpose_a=False, transpose_b=True)
    assert "packed" not in lower(small).ir_text and "packed" in lower(large).ir_text


@pytest.mark.parametrize("unit", [VectorUnit(512, 32), VectorUnit(256, 16)])
def test_tile_follows_the_vector_unit(monkeypatch, unit):
    """MR x NV accumulators of <lanes x float>, lanes and tile read from vector_unit()."""
    monkeypatch.setattr(microkernel, "vector_unit", lambda: unit)
    a, b = operands((67, 129), (129, 130), False, False, "float32")
    ir_text = lower(op_graph("matmul", [a, b], transpose_a=False, transpose_b=False)).ir_text
    lanes = unit.bits // 32
    other = 256 // 32 if lanes == 16 else 512 // 32
    mr, nv = microkernel.PANEL_TILE[unit.registers]
    assert f"<{lanes} x float>" in ir_text and f"<{other} x float>" not in ir_text
    assert mr * nv + nv + 1 <= unit.registers
    assert len(re.findall(rf"fmul contract <{lanes} x float>", ir_text)) >= mr * nv


def matmuls_graph(specs):
    """One graph of several matmuls, each (a shape, b shape, transpose_a, transpose_b) as stored."""
    g, outputs = GraphBuilder(), []
    for n, (a_shape, b_shape, ta, tb) in enumerate(specs):
        a = g.input(f"a{n}", "data", a_shape, "float32")
        b = g.input(f"b{n}", "data", b_shape, "float32")
        m = a_shape[1] if ta else a_shape[0]
        cols = b_shape[0] if tb else b_shape[1]
        outputs.append(g.add("matmul", (a, b), {"transpose_a": ta, "transpose_b": tb}, (m, cols), "float32",
                             module_path=f"layer{n}"))
    return g.finish(outputs)


def tile_definitions(ir_text):
    return re.findall(r'define private void @"(outer_tile_[^"]*)"', ir_text)


def check_matmuls(graph, specs):
    inputs = [rng.uniform(-1, 1, shape).astype(np.float32) for spec in specs for shape in spec[:2]]
    for n, native in enumerate(Native(graph)(*inputs)):
        a, b = inputs[2 * n], inputs[2 * n + 1]
        expected = (a.T if specs[n][2] else a) @ (b.T if specs[n][3] else b)
        np.testing.assert_allclose(native, expected, **tolerance("float32", a.size // native.shape[0]))


def test_matmuls_of_one_tile_shape_share_one_tile_function():
    """Different depths (one and two depth blocks), strides and transposes, whole register
    tiles only: the module holds one tile function, called by every kernel."""
    mr, nv, lanes = microkernel.panel_tile(microkernel.llvm_type("float32"))
    m, n = 8 * mr, 2 * nv * lanes
    specs = [((m, 300), (300, n), False, False), ((m, 200), (n, 200), False, True), ((300, m), (300, n), True, False)]
    graph = matmuls_graph(specs)
    assert tile_definitions(lower(graph).ir_text) == [f"outer_tile_f32_{mr}x{nv * lanes}"]
    check_matmuls(graph, specs)


def test_remainder_widths_of_one_vector_count_share_a_tile():
    """Column remainders of one and a half vectors and of two vectors run the two-vector partial
    tile, half a vector the one-vector one: two functions for three widths, beside the whole tile."""
    mr, nv, lanes = microkernel.panel_tile(microkernel.llvm_type("float32"))
    nr = nv * lanes
    widths = [nr + lanes + lanes // 2, nr + 2 * lanes, nr + lanes // 2] if nv > 2 else [nr + lanes // 2, nr + lanes]
    specs = [((mr, 70), (70, n), False, False) if j % 2 == 0 else ((mr, 70), (n, 70), False, True)
             for j, n in enumerate(widths)]
    graph = matmuls_graph(specs)
    expected = {f"outer_tile_f32_{mr}x{nr}", f"outer_tile_f32_{mr}x{lanes}_partial"}
    if nv > 2:
        expected.add(f"outer_tile_f32_{mr}x{2 * lanes}_partial")
    assert sorted(tile_definitions(lower(graph).ir_text)) == sorted(expected)
    check_matmuls(graph, specs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(67, 100, 50), (64, 37, 96), (70, 16, 48)], ids=str)
@pytest.mark.parametrize("unit", [VectorUnit(512, 32), VectorUnit(256, 16)])
def test_transposed_packing_in_squares_follows_the_vector_unit(monkeypatch, unit, shape, dtype):
    """A transposed b packs full panels in lanes x lanes squares transposed in registers, the
    depths past the squares and partial panels element by element: every combination, for
    either register file (x @ W.T at batch >= 64 takes the packed kernel)."""
    monkeypatch.setattr(microkernel, "vector_unit", lambda: unit)
    m, k, n = shape
    a, b = operands((m, k), (k, n), False, True, dtype)
    native, expected = run_op("matmul", [a, b], transpose_a=False, transpose_b=True)
    np.testing.assert_allclose(native, expected, **tolerance(dtype, k))
