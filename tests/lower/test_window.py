"""window_gather and window_scatter: native kernels against the numpy references, and the
references against a direct loop over windows, for every kind of table."""
import itertools

import numpy as np
import pytest

from graphc.ir import GraphBuilder
from graphc.lower.window import MAX_RUNS, table_runs
from graphc.ops import OPS, TensorType
from graphc.ops.window import adaptive_table, window_table
from harness import Native, run_op, tolerance

rng = np.random.default_rng(3)


def tables_1d(size):
    return {
        "plain": window_table(size, 3, 1, (0, 0), 1),
        "strided-padded": window_table(size, 3, 2, (1, 1), 1),
        "dilated": window_table(size, 2, 1, (2, 2), 2),
        "ceil-overhang": window_table(size, 2, 2, (0, 1), 1),
        "circular": window_table(size, 3, 1, (2, 2), 1, "circular"),
        "reflect": window_table(size, 3, 1, (2, 2), 1, "reflect"),
        "replicate": window_table(size, 3, 1, (2, 2), 1, "replicate"),
        "adaptive-up": adaptive_table(size, size + 3),
        "adaptive-down": adaptive_table(size, 3),
    }


CASES = sorted(tables_1d(5))


def run_with_constant_tables(op, x, tables, **attrs):
    """(native, reference) of `op` over input x with the tables as graph constants, as conv and
    pools make them (the kernel then unrolls the innermost dim's runs)."""
    b = GraphBuilder()
    ids = [b.input("x", "data", x.shape, str(x.dtype))] + [b.constant(t) for t in tables]
    out = OPS[op].infer(TensorType(x.shape, str(x.dtype)), *(TensorType(t.shape, "int64") for t in tables), **attrs)
    graph = b.finish([b.add(op, ids, attrs, out.shape, out.dtype, module_path="test.layer")])
    (native,) = Native(graph)(x)
    return native, OPS[op].reference(x, *tables, **attrs)


def direct_gather(x, tables, pad_value):
    n, c = x.shape[:2]
    outs, kernels = [t.shape[0] for t in tables], [t.shape[1] for t in tables]
    out = np.empty((n, *outs, c, *kernels), x.dtype)
    for o in itertools.product(*map(range, outs)):
        for j in itertools.product(*map(range, kernels)):
            index = [t[a, b] for t, a, b in zip(tables, o, j)]
            value = pad_value if min(index) < 0 else x[(slice(None), slice(None), *index)]
            out[(slice(None), *o, slice(None), *j)] = value
    return out


def test_tables_follow_pytorch_padding_modes():
    assert window_table(4, 3, 1, (2, 2), 1, "reflect")[:, 0].tolist() == [2, 1, 0, 1, 2, 3]
    assert window_table(4, 3, 1, (2, 2), 1, "circular")[:, 0].tolist() == [2, 3, 0, 1, 2, 3]
    assert window_table(4, 3, 1, (2, 2), 1, "replicate")[:, 0].tolist() == [0, 0, 0, 1, 2, 3]
    assert window_table(4, 3, 1, (1, 1), 1)[:, 0].tolist() == [-1, 0, 1, 2]
    # bins of 5 -> 3: [0, 2), [1, 4), [3, 5); of 2 -> 3: [0, 1), [0, 2), [1, 2)
    assert adaptive_table(5, 3).tolist() == [[0, 1, -1], [1, 2, 3], [3, 4, -1]]
    assert adaptive_table(2, 3).tolist() == [[0, -1], [0, 1], [1, -1]]


@pytest.mark.parametrize("h,w", [("plain", "strided-padded"), ("dilated", "circular"), ("reflect", "replicate"),
                                 ("adaptive-up", "adaptive-down"), ("ceil-overhang", "plain")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gather_2d(h, w, dtype):
    x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
    tables = [tables_1d(5)[h], tables_1d(6)[w]]
    native, expected = run_op("window_gather", [x, *tables], pad_value=-np.inf)
    np.testing.assert_array_equal(expected, direct_gather(x, tables, -np.inf))
    np.testing.assert_array_equal(native, expected)


@pytest.mark.parametrize("name", CASES)
def test_gather_and_scatter_1d(name):
    x = rng.standard_normal((3, 2, 7)).astype(np.float32)
    table = tables_1d(7)[name]
    native, expected = run_op("window_gather", [x, table], pad_value=0.0)
    np.testing.assert_array_equal(native, expected)
    windows = rng.standard_normal(expected.shape).astype(np.float32)
    native, expected = run_op("window_scatter", [windows, table], size=(7,))
    np.testing.assert_allclose(native, expected, **tolerance("float32"))


@pytest.mark.parametrize("h,w", [("strided-padded", "dilated"), ("reflect", "circular"), ("adaptive-up", "plain")])
def test_scatter_is_the_adjoint_of_gather(h, w):
    """<gather(x), y> == <x, scatter(y)>: the scatter adds each window element where the gather read it."""
    x = rng.standard_normal((2, 3, 5, 6))
    tables = [tables_1d(5)[h], tables_1d(6)[w]]
    gathered, _ = run_op("window_gather", [x, *tables], pad_value=0.0)
    y = rng.standard_normal(gathered.shape)
    scattered, expected = run_op("window_scatter", [y, *tables], size=(5, 6))
    np.testing.assert_allclose(scattered, expected, **tolerance("float64"))
    np.testing.assert_allclose((gathered * y).sum(), (x * scattered).sum(), rtol=1e-12)


def test_large_gather_splits_over_the_batch():
    x = rng.standard_normal((8, 4, 28, 28)).astype(np.float32)
    tables = [window_table(28, 5, 1, (2, 2), 1)] * 2
    native, expected = run_op("window_gather", [x, *tables], pad_value=0.0)
    np.testing.assert_array_equal(native, expected)
    native, expected = run_op("window_scatter", [expected, *tables], size=(28, 28))
    np.testing.assert_allclose(native, expected, **tolerance("float32"))


def test_runs_of_a_padded_strided_table():
    runs = table_runs(window_table(7, 3, 2, (1, 1), 1))  # rows [-1 0 1] [1 2 3] [3 4 5] [5 6 -1]
    assert [(r.start, r.count, r.step, r.pattern) for r in runs] == [
        (0, 1, 0, (-1, 0, 1)), (1, 2, 2, (1, 2, 3)), (3, 1, 0, (5, 6, -1))]
    assert len(table_runs(window_table(100, 5, 1, (2, 2), 1))) == 5  # two borders each side, one interior
    assert len(table_runs(adaptive_table(10, 7))) > 1


@pytest.mark.parametrize("h,w", [("plain", "strided-padded"), ("dilated", "circular"), ("reflect", "replicate"),
                                 ("adaptive-up", "adaptive-down"), ("ceil-overhang", "dilated")])
def test_constant_tables_take_the_unrolled_path_and_agree(h, w):
    x = rng.standard_normal((3, 2, 5, 9)).astype(np.float32)
    tables = [tables_1d(5)[h], tables_1d(9)[w]]
    native, expected = run_with_constant_tables("window_gather", x, tables, pad_value=-np.inf)
    np.testing.assert_array_equal(native, expected)
    windows = rng.standard_normal(expected.shape).astype(np.float32)
    native, expected = run_with_constant_tables("window_scatter", windows, tables, size=(5, 9))
    np.testing.assert_allclose(native, expected, **tolerance("float32"))


@pytest.mark.parametrize("name", CASES)
def test_constant_1d_tables(name):
    x = rng.standard_normal((2, 3, 7))
    table = tables_1d(7)[name]
    native, expected = run_with_constant_tables("window_gather", x, [table], pad_value=0.0)
    np.testing.assert_array_equal(native, expected)
    native, expected = run_with_constant_tables("window_scatter", expected, [table], size=(7,))
    np.testing.assert_allclose(native, expected, **tolerance("float64"))


def test_a_table_of_many_runs_takes_the_general_path():
    table = adaptive_table(40, 27)
    assert len(table_runs(table)) > MAX_RUNS
    x = rng.standard_normal((2, 2, 3, 40)).astype(np.float32)
    native, expected = run_with_constant_tables("window_gather", x, [tables_1d(3)["plain"], table], pad_value=0.0)
    np.testing.assert_array_equal(native, expected)
