"""matmul in all transpose combinations and batch layouts; one_hot."""
import numpy as np
import pytest

from harness import run_op

rng = np.random.default_rng(4)


def operands(a_shape, b_shape, ta, tb, dtype):
    """Arrays stored as the op reads them: the last two dims swapped when transposed."""
    def stored(shape, t):
        return shape[:-2] + (shape[-1], shape[-2]) if t else shape
    return (rng.uniform(-1, 1, stored(a_shape, ta)).astype(dtype),
            rng.uniform(-1, 1, stored(b_shape, tb)).astype(dtype))


SHAPES = [
    ((1, 9), (9, 13)),            # batch-1 Linear layer
    ((6, 7), (7, 9)),             # remainders of 4x4 tiles in both directions
    ((8, 33), (33, 16)),          # whole tiles
    ((13, 19), (19, 43)),         # remainders of outer-product tiles: rows, vectors, columns
    ((2, 3, 5, 7), (7, 6)),       # batched a, 2-d b
    ((3, 5, 7), (3, 7, 4)),       # batched a and b
    ((2, 1, 64), (2, 64, 1)),
    ((10, 5), (5, 3)),            # W3: fewer rows than a tile, one masked vector of columns
    ((10, 3), (3, 5)),            # W3's input gradient: too shallow for dot tiles
    ((1, 300), (300, 10)),        # a batch-1 last layer: one row, one masked vector
    ((40, 70), (70, 26)),         # tiles of rows over whole, one-vector and masked columns
    ((512, 128), (128, 10)),      # W1's fc3 weight gradient shape: masked columns under full row tiles
    ((17, 7), (7, 9)),            # depth below MIN_DOT_DEPTH
    ((70, 100), (100, 50)),       # packed: a partial last panel; transposed b packs past whole squares
    ((64, 37), (37, 96)),         # packed: whole panels, depth 37 = squares and a rest
]


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul(shapes, ta, tb, dtype):
    a, b = operands(*shapes, ta, tb, dtype)
    native, expected = run_op("matmul", [a, b], transpose_a=ta, transpose_b=tb)
    np.testing.assert_allclose(native, expected, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


def test_large_linear_layer():
    x, w = operands((33, 784), (784, 70), False, True, "float32")
    native, expected = run_op("matmul", [x, w], transpose_a=False, transpose_b=True)
    np.testing.assert_allclose(native, expected, rtol=1e-4, atol=1e-4)


# deep products (linalg._deep): a convolution's weight gradient, (N * pixels) x O transposed times
# (N * pixels) x C * kernel; split in depth across threads and in L2-sized depth blocks
DEEP = [((6, 6000), (6000, 25)), ((16, 6400), (6400, 150)), ((1, 4096), (4096, 7)), ((20, 3000), (3000, 17)),
        ((9, 70000), (70000, 16))]


@pytest.mark.parametrize("shapes", DEEP, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_deep_products(shapes, dtype):
    a, b = operands(*shapes, True, False, dtype)
    native, expected = run_op("matmul", [a, b], transpose_a=True, transpose_b=False)
    np.testing.assert_allclose(native, expected, rtol=1e-4 if dtype == "float32" else 1e-11, atol=1e-3)


def test_deep_product_with_an_epilogue():
    from graphc.ops.fused import Body
    a, b = operands((5, 9000), (9000, 19), True, False, "float32")
    bias = rng.uniform(-1, 1, 19).astype(np.float32)
    body = Body((("add", ("in0", "in1"), (), "float32"), ("relu", ("s0",), (), "float32")))
    native, expected = run_op("matmul_epilogue", [a, b, bias], transpose_a=True, transpose_b=False, body=body)
    np.testing.assert_allclose(native, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_one_hot_with_out_of_range_indices(dtype):
    labels = np.array([[0, 3, -100], [2, 4, 1]])
    native, expected = run_op("one_hot", [labels], num_classes=4, dtype=dtype)
    assert not native[0, 2].any() and not native[1, 1].any()
    np.testing.assert_array_equal(native, expected)
