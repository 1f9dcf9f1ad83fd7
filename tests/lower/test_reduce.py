"""sum and amax over every subset of dims of a 3-d tensor, with and without keepdim."""
import itertools

import numpy as np
import pytest

from harness import run_op, tolerance

SUBSETS = [dims for r in range(4) for dims in itertools.combinations(range(3), r)]


@pytest.mark.parametrize("dims", SUBSETS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["sum", "amax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_reductions(op, dims, keepdim, dtype):
    x = np.random.default_rng(1).uniform(-1, 1, (5, 6, 37)).astype(dtype)
    native, expected = run_op(op, [x], dims=dims, keepdim=keepdim)
    np.testing.assert_allclose(native, expected, **tolerance(dtype))


@pytest.mark.parametrize("dims", [(0,), (2,), (0, 2), (0, 1, 2)], ids=str)
def test_integer_and_bool_reductions(dims):
    rng = np.random.default_rng(2)
    ints, bools = rng.integers(-1000, 1000, (4, 3, 9)), rng.random((4, 3, 9)) > 0.5
    for op, x in (("sum", ints), ("amax", ints), ("sum", bools)):
        native, expected = run_op(op, [x], dims=dims, keepdim=False)
        assert native.dtype == expected.dtype
        np.testing.assert_array_equal(native, expected)


def test_reductions_propagate_nan_and_sum_empty_dims_to_zero():
    x = np.ones((3, 4), np.float32)
    x[1, 2] = np.nan
    for dims in ((0,), (1,)):
        native, expected = run_op("amax", [x], dims=dims, keepdim=False)
        np.testing.assert_array_equal(native, expected)
    native, expected = run_op("sum", [np.ones((3, 0), np.float32)], dims=(1,), keepdim=True)
    np.testing.assert_array_equal(native, expected)


def test_long_float32_sum_is_accurate():
    x = np.random.default_rng(3).uniform(0, 1, (2, 100_000)).astype(np.float32)
    native, expected = run_op("sum", [x], dims=(1,), keepdim=False)
    np.testing.assert_allclose(native, x.astype(np.float64).sum(1), rtol=1e-5)


@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_argmax_keeps_the_first_of_ties_and_of_nans(dim, keepdim, dtype):
    x = np.random.default_rng(3).integers(-2, 3, (4, 5, 6)).astype(dtype)
    if dtype != "int64":
        x[1, 2, :3] = x[0, :2, 4] = x[2, 3, 3] = np.nan
    native, expected = run_op("argmax", [x], dim=dim, keepdim=keepdim)
    np.testing.assert_array_equal(native, expected)


def test_bool_any_is_amax():
    x = np.random.default_rng(4).random((3, 4, 5)) > 0.8
    native, expected = run_op("amax", [x], dims=(0, 2), keepdim=False)
    np.testing.assert_array_equal(native, expected)
    np.testing.assert_array_equal(native, x.any(axis=(0, 2)))
