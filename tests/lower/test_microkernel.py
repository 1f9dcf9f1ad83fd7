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
from graphc.lower.kernel import VectorUnit
from graphc.ops.fused import Body
from harness import op_graph, run_op
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
