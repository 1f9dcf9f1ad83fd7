"""float32 exp, tanh and sigmoid from fastmath.py against numpy across their whole range."""
import numpy as np
import pytest

from harness import run_op


def grid(low, high, n=200_003):
    return np.linspace(low, high, n, dtype=np.float32)


SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 1e-8, -1e-8], np.float32)
CASES = {
    "exp": (np.exp, np.concatenate([grid(-110, 90), SPECIAL])),
    "tanh": (np.tanh, np.concatenate([grid(-20, 20), np.geomspace(1e-8, 1, 10_001, dtype=np.float32),
                                      -np.geomspace(1e-8, 1, 10_001, dtype=np.float32), SPECIAL])),
    "sigmoid": (lambda v: 1 / (1 + np.exp(-v)), np.concatenate([grid(-120, 120), SPECIAL])),
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_float32_math_is_accurate_everywhere(op):
    exact, x = CASES[op]
    with np.errstate(all="ignore"):
        expected = exact(x.astype(np.float64)).astype(np.float32)
    native, _ = run_op(op, [x])
    np.testing.assert_array_equal(np.isnan(native), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(native[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)])
    np.testing.assert_allclose(native[finite], expected[finite], rtol=3e-7, atol=np.finfo(np.float32).tiny)  # below: sigmoid flushes, as numpy float32 does
    zero = expected == 0
    np.testing.assert_array_equal(np.signbit(native[zero]), np.signbit(expected[zero]), err_msg="sign of zero")


def test_the_kernels_are_vectorised():
    from graphc.lower import lower
    from runtime.jit import optimized_ir
    from harness import op_graph
    for op in ("exp", "tanh"):
        text = optimized_ir(lower(op_graph(op, [np.zeros(1024, np.float32)])).ir_text)
        assert "x float>" in text and "@expf" not in text and "@tanhf" not in text, op
