"""gather_rows and scatter_add_rows: reference, compiled and shape rules."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from graphc.ops import functions as F


class Gather(gnn.Module):
    def forward(self, table, indices):
        return F.gather_rows(table, indices)


class Scatter(gnn.Module):
    def __init__(self, rows):
        super().__init__()
        self.rows = rows

    def forward(self, values, indices):
        return F.scatter_add_rows(values, indices, self.rows)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_gather_rows_compiled_equals_reference(dtype):
    table = graphc.tensor((np.arange(5 * 2 * 3) - 7).reshape(5, 2, 3).astype(dtype))
    indices = graphc.tensor([[4, 0, 4], [1, 1, 2]])
    expected = table.numpy()[indices.numpy()]
    np.testing.assert_array_equal(F.gather_rows(table, indices).numpy(), expected)
    with graphc.no_grad():
        np.testing.assert_array_equal(graphc.compile(Gather())(table, indices).numpy(), expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scatter_add_rows_compiled_equals_reference(dtype):
    values = graphc.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype))
    indices = graphc.tensor([[0, 5, 0], [2, 5, 5]])
    expected = np.zeros((6, 4), dtype)
    np.add.at(expected, indices.numpy(), values.numpy())
    np.testing.assert_allclose(F.scatter_add_rows(values, indices, 6).numpy(), expected, rtol=1e-6)
    with graphc.no_grad():
        np.testing.assert_allclose(graphc.compile(Scatter(6))(values, indices).numpy(), expected, rtol=1e-6)


def test_shape_rules():
    with pytest.raises(graphc.ShapeError, match="int64 indices"):
        F.gather_rows(graphc.randn(3, 2), graphc.tensor([0.0]))
    with pytest.raises(graphc.ShapeError, match="do not start with"):
        F.scatter_add_rows(graphc.randn(3, 2), graphc.tensor([0, 1]), 4)
