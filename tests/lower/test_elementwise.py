"""Every op of graphc.ops.OPS lowered alone and compared with its numpy reference."""
import numpy as np
import pytest

from graphc.ops import OPS
from harness import run_op, tolerance

rng = np.random.default_rng(0)


def values(shape, dtype, low=-3.0, high=3.0):
    return rng.uniform(low, high, shape).astype(dtype)


def with_ties(shape, dtype):
    """Small integers, so comparisons see equal values too."""
    return rng.integers(-2, 3, shape).astype(dtype)


# op -> dtype -> (inputs, attrs); dtypes of one op are those where the op is meaningful
def cases(op, dtype):
    s = (3, 17)
    unary = {"neg": (-3, 3), "exp": (-10, 10), "log": (0.01, 100), "sqrt": (0, 100), "tanh": (-6, 6), "cos": (-10, 10), "sin": (-10, 10),
             "sigmoid": (-20, 20), "relu": (-3, 3), "erf": (-5, 5), "log1p": (-0.9, 100), "expm1": (-10, 10),
             "floor": (-3, 3), "ceil": (-3, 3), "round": (-3, 3)}
    if op in unary:
        return [values(s, dtype, *unary[op])], {}
    if op in ("add", "sub", "mul", "div", "maximum"):
        return [values(s, dtype), values(s, dtype, 0.5, 3.0)], {}
    if op == "pow":
        return [values(s, dtype, 0.1, 4.0), values(s, dtype, -2.0, 3.0)], {}
    if op in ("gt", "ge", "eq"):
        return [with_ties(s, dtype), with_ties(s, dtype)], {}
    if op == "where":
        return [rng.random(s) > 0.5, values(s, dtype), values(s, dtype)], {}
    if op == "cast":
        target = {"float32": "float64", "float64": "float32", "int64": "float32", "bool": "float64"}[dtype]
        return [with_ties(s, dtype)], {"dtype": target}
    if op in ("sum", "amax", "prod"):
        return [values((4, 5, 6), dtype)], {"dims": (1,), "keepdim": False}
    if op in ("softmax", "log_softmax"):  # along a strided dim; a row of -inf and a NaN included
        x = values((4, 5, 6), dtype, -20, 20)
        x[0, :, 1], x[2, 3, 4] = -np.inf, np.nan
        return [x], {"dim": 1}
    if op == "matmul":
        return [values((5, 7), dtype), values((7, 3), dtype)], {"transpose_a": False, "transpose_b": False}
    if op == "pack_panels":  # W [N, K] as panels of 4 columns, the last one zero-padded
        return [values((10, 7), dtype)], {"transpose_b": True, "nr": 4}
    if op == "matmul_epilogue":  # relu(a @ b + bias)
        from graphc.ops.fused import Body
        body = Body((("add", ("in0", "in1"), (), dtype), ("relu", ("s0",), (), dtype)))
        return [values((5, 7), dtype), values((3, 7), dtype), values((3,), dtype)], \
            {"transpose_a": False, "transpose_b": True, "body": body}
    if op == "check_index":  # in range (or ignored): passes its input through
        return [np.array([[0, 3, -100], [2, 1, 1]])], {"high": 4, "ignore": -100, "error": "IndexError",
                                                     "message": "Target {value} is out of bounds."}
    if op == "check_range":  # in range, bounds included: passes its input through
        return [np.array([[0.0, 0.25, 1.0], [0.5, 1e-30, 0.999]], dtype)], {"low": 0.0, "high": 1.0,
                                                                            "error": "RuntimeError", "message": "m"}
    if op == "gather_rows":  # repeated and out-of-order rows
        return [values((5, 2, 3), dtype), np.array([[4, 0], [4, 2]])], {}
    if op == "scatter_add_rows":  # repeated indices add up
        return [values((2, 2, 3), dtype), np.array([[4, 0], [4, 4]]), ], {"rows": 6}
    if op == "random_uniform":  # bit for bit: the same integers, scaled exactly
        return [np.array(-123456789, np.int64)], {"shape": (3, 17), "dtype": dtype}
    if op == "one_hot":
        return [np.array([[0, 3, -100], [2, 9, 1]])], {"num_classes": 4, "dtype": dtype}
    if op in ("reshape", "detach"):  # aliases: lowered as outputs copied from their input
        return [values((2, 6), dtype)], {"shape": (3, 4)} if op == "reshape" else {}
    if op == "permute":
        return [values((2, 3, 4), dtype)], {"dims": (2, 0, 1)}
    if op == "slice":
        return [values((5, 6, 7), dtype)], {"starts": (1, 0, 2), "steps": (2, 1, 3), "shape": (2, 6, 2)}
    if op == "slice_scatter":
        return [values((2, 6, 2), dtype)], {"starts": (1, 0, 2), "steps": (2, 1, 3), "shape": (5, 6, 7)}
    if op == "cat":
        return [values((2, 3, 4), dtype), values((2, 1, 4), dtype), values((2, 5, 4), dtype)], {"dim": 1}
    if op == "argmax":
        return [with_ties((4, 5, 6), dtype)], {"dim": 1, "keepdim": False}
    if op == "expand":
        return [values((3, 1), dtype)], {"shape": (2, 3, 4)}
    if op == "fused":  # sigmoid(a * b + c) > 0.5 ? exp(a) : c, with b broadcast
        from graphc.ops.fused import Body
        body = Body((("mul", ("in0", "in1"), (), dtype), ("add", ("s0", "in2"), (), dtype),
                     ("sigmoid", ("s1",), (), dtype), ("gt", ("s2", "in3"), (), "bool"),
                     ("exp", ("in0",), (), dtype), ("where", ("s3", "s4", "in2"), (), dtype)))
        return [values(s, dtype), values((17,), dtype), values(s, dtype), np.asarray(0.5, dtype)], {"body": body}
    if op in ("window_gather", "window_scatter"):  # 3x3 windows, stride 2, one padded row and column each side
        from graphc.ops.window import window_table
        tables = [window_table(5, 3, 2, (1, 1), 1), window_table(6, 3, 2, (1, 1), 1)]
        if op == "window_gather":
            return [values((2, 3, 5, 6), dtype), *tables], {"pad_value": 0.0}
        return [values((2, 3, 3, 3, 3, 3), dtype), *tables], {"size": (5, 6)}
    if op in ("pool", "pool_backward"):  # 3x3 max windows, stride 2, one padded row and column each side
        attrs = {"reduce": "max", "kernel": (3, 3), "stride": (2, 2), "dilation": (1, 1),
                 "padding": ((1, 1), (1, 1))}
        x = values((2, 3, 5, 6), dtype)
        if op == "pool":
            return [x], attrs
        out = OPS["pool"].reference(x, **attrs)
        return [values(out.shape, dtype), x, out], {**attrs, "size": (5, 6)}
    if op == "convolution_weight_grad":  # 3x3, one padded row and column each side
        return [values((2, 3, 5, 6), dtype), values((2, 4, 5, 6), dtype)], \
            {"kernel": (3, 3), "stride": (1, 1), "dilation": (1, 1), "padding": ((1, 1), (1, 1))}
    if op == "convolution":  # relu(conv + bias): 3x3, one padded row and column each side
        from graphc.ops.fused import Body
        body = Body((("add", ("in0", "in1"), (), dtype), ("relu", ("s0",), (), dtype)))
        return [values((2, 3, 5, 6), dtype), values((4, 27), dtype), values((4, 1, 1), dtype)], \
            {"kernel": (3, 3), "stride": (1, 1), "dilation": (1, 1), "padding": ((1, 1), (1, 1)), "body": body}
    raise KeyError(f"no test case for op {op!r}: add one here")


DTYPES = {"check_index": ("int64",), "gather_rows": ("float32", "float64", "int64"), "gt": ("float32", "float64", "int64"), "eq": ("float32", "int64", "bool"),
          "add": ("float32", "float64", "int64"), "mul": ("float32", "float64", "int64"),
          "maximum": ("float32", "float64", "int64"), "neg": ("float32", "float64", "int64"),
          "cast": ("float32", "float64", "int64", "bool"), "relu": ("float32", "float64", "int64"),
          "sum": ("float32", "float64", "int64", "bool"), "amax": ("float32", "float64", "int64"), "prod": ("float32", "float64", "int64", "bool"),
          "slice": ("float32", "int64", "bool"), "slice_scatter": ("float32", "float64", "int64", "bool"),
          "cat": ("float32", "int64", "bool"), "argmax": ("float32", "float64", "int64")}


@pytest.mark.parametrize("op,dtype", [(op, d) for op in sorted(OPS) for d in DTYPES.get(op, ("float32", "float64"))])
def test_op_matches_numpy(op, dtype):
    inputs, attrs = cases(op, dtype)
    native, expected = run_op(op, inputs, **attrs)
    assert native.dtype == expected.dtype and native.shape == expected.shape
    if native.dtype.kind == "f" and op != "random_uniform":
        np.testing.assert_allclose(native, expected, equal_nan=True, **tolerance(native.dtype))
    else:
        np.testing.assert_array_equal(native, expected)


@pytest.mark.parametrize("shapes", [
    [(3, 4, 5), ()],          # scalar
    [(3, 4, 5), (5,)],        # row, missing leading dims
    [(3, 4, 5), (4, 1)],      # column
    [(3, 1, 5), (1, 4, 1)],   # both sides broadcast
    [(1,), (2, 3)],
    [(2, 3, 4), (2, 1, 4)],   # middle dim
    [(6, 1), (1, 1000)],      # outer product, long inner loop
    [(0, 3), (3,)],           # empty
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_broadcasting(shapes, dtype):
    a, b = (values(s, dtype) for s in shapes)
    for op in ("sub", "div", "maximum"):
        native, expected = run_op(op, [a, b])
        np.testing.assert_allclose(native, expected, **tolerance(dtype))
        native, expected = run_op(op, [b, a])
        np.testing.assert_allclose(native, expected, **tolerance(dtype))


def test_where_broadcasts_all_three_operands():
    cond, a, b = rng.random((4, 1, 6)) > 0.3, values((5, 1), "float32"), values((1, 5, 6), "float32")
    native, expected = run_op("where", [cond, a, b])
    np.testing.assert_array_equal(native, expected)


def test_nan_and_inf_follow_numpy():
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 1.0, -2.0], np.float32)
    y = np.array([1.0, np.nan, 0.0, 0.0, np.inf, np.nan], np.float32)
    for op in ("maximum", "gt", "ge", "eq"):
        native, expected = run_op(op, [x, y])
        np.testing.assert_array_equal(native, expected)
    for op in ("relu", "exp", "tanh", "sigmoid"):
        native, expected = run_op(op, [x])
        np.testing.assert_allclose(native, expected, rtol=1e-6)


def test_transcendentals_on_a_long_float32_vector():
    x = values((4099,), "float32", -8, 8)
    for op in ("exp", "tanh", "sigmoid"):
        native, expected = run_op(op, [x])
        np.testing.assert_allclose(native, expected, rtol=1e-5, atol=1e-7)
    native, expected = run_op("log", [np.abs(x) + 1e-3])
    np.testing.assert_allclose(native, expected, rtol=1e-5)
