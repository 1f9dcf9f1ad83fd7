"""slice, slice_scatter and cat lowered alone, against their numpy references: windows with
steps of either sign (flip), along every dim."""
import numpy as np
import pytest

from harness import run_op

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 5, 6)).astype(np.float32)

WINDOWS = [  # starts, steps, shape
    ((0, 0, 0), (1, 1, 1), (4, 5, 1)), ((3, 4, 5), (-1, -1, -1), (4, 5, 6)), ((0, 4, 0), (1, -2, 3), (4, 3, 2)),
    ((2, 0, 5), (-2, 1, -1), (2, 5, 6)), ((1, 1, 1), (1, 1, 1), (0, 3, 2)),
]


@pytest.mark.parametrize("starts,steps,shape", WINDOWS, ids=str)
def test_slice_and_its_scatter_match_numpy(starts, steps, shape):
    native, expected = run_op("slice", [X], starts=starts, steps=steps, shape=shape)
    np.testing.assert_array_equal(native, expected)
    g = rng.standard_normal(shape).astype(np.float32)
    native, expected = run_op("slice_scatter", [g], starts=starts, steps=steps, shape=X.shape)
    np.testing.assert_array_equal(native, expected)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_cat_along_each_dim(dim):
    parts = [X, np.take(X, [0], axis=dim), np.take(X, [1, 2], axis=dim)]
    native, expected = run_op("cat", parts, dim=dim)
    np.testing.assert_array_equal(native, expected)
