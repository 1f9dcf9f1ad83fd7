"""float32 math of fastmath.py against numpy's float64 over the whole float32 line, in ulps, as
elementwise kernels and applied to vectors directly; the kernels vectorise and call no libm."""
import ctypes
import math
import re

import llvmlite.ir as ir
import numpy as np
import pytest

from graphc.lower import fastmath, lower
from graphc.lower.kernel import PTR, I64, for_range, load, store, vector_unit
from harness import op_graph, run_op
from runtime.jit import compile_ir, optimized_ir

F32 = np.float32
ERF = np.frompyfunc(math.erf, 1, 1)
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 0.5, 2.0, 1e-30, -1e-30, 1e-8, -1e-8,
                    np.finfo(F32).tiny, np.finfo(F32).smallest_subnormal, -np.finfo(F32).smallest_subnormal,
                    np.finfo(F32).max, -np.finfo(F32).max, 88.72, 88.73, -87.33, -103.9, -104.1, 3.9, 4.1], F32)


def _sweep() -> np.ndarray:
    """Every 4099th float32 bit pattern (both signs: denormals, tiny, huge, inf, NaNs), dense
    grids where the functions change form (around 0, 1, the branch points) and special values."""
    patterns = np.arange(0, 2 ** 32, 4099, dtype=np.uint64).astype(np.uint32).view(F32)
    near = [np.linspace(-6, 6, 200_001, dtype=F32), np.linspace(0, 2, 100_001, dtype=F32),
            np.geomspace(1e-12, 1, 20_001, dtype=F32), -np.geomspace(1e-12, 1, 20_001, dtype=F32),
            np.linspace(-1, -0.9, 10_001, dtype=F32)]
    return np.concatenate([patterns, *near, SPECIAL])


SWEEP = _sweep()


def _exp_in_float32(v: np.ndarray) -> np.ndarray:
    """e^v, inf where float32 overflows: sigmoid(x) below -88.72 is 1 / (1 + inf) = 0, as torch's."""
    e = np.exp(v)
    return np.where(e > np.finfo(F32).max, np.inf, e)
# op -> (float64 reference, the most ulps from its float32 rounding over SWEEP)
ULPS = {"exp": (np.exp, 1), "expm1": (np.expm1, 1), "log": (np.log, 1), "log1p": (np.log1p, 1),
        "tanh": (np.tanh, 1), "erf": (lambda v: ERF(v).astype(np.float64), 1),
        "sigmoid": (lambda v: 1 / (1 + _exp_in_float32(-v)), 2)}
FUNCTIONS = {"exp": fastmath.exp_f32, "expm1": fastmath.expm1_f32, "log": fastmath.log_f32,
             "log1p": fastmath.log1p_f32, "tanh": fastmath.tanh_f32, "erf": fastmath.erf_f32}


def ordered(a: np.ndarray) -> np.ndarray:
    """float32 values as integers in the order of the floats, one apart per ulp (+0 and -0 both 0)."""
    bits = a.view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def expected(op: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return ULPS[op][0](x.astype(np.float64)).astype(F32)


def check_ulps(op: str, x: np.ndarray, got: np.ndarray) -> None:
    want, bound = expected(op, x), ULPS[op][1]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{op}: NaN where numpy has NaN")
    infinite = np.isinf(want)
    np.testing.assert_array_equal(got[infinite], want[infinite], err_msg=f"{op}: infinities exactly")
    zero = want == 0
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]), err_msg=f"{op}: sign of zero")
    finite = np.isfinite(want)
    ulps = np.abs(ordered(got[finite]) - ordered(want[finite]))
    worst = int(np.argmax(ulps))
    assert ulps[worst] <= bound, f"{op}({x[finite][worst]!r}) = {got[finite][worst]!r}, not {want[finite][worst]!r}"


@pytest.mark.parametrize("op", sorted(ULPS))
def test_float32_kernels_are_accurate_to_the_ulp_everywhere(op):
    native, _ = run_op(op, [SWEEP])
    check_ulps(op, SWEEP, native)


def vector_kernel(function, lanes: int, vectors: int) -> ir.Module:
    """`void apply(ptr out, ptr in)`: out = function(in) over `vectors` <lanes x float> values,
    each applied as one vector, as an epilogue would apply it to a register accumulator."""
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR]), "apply")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    out, src = fn.args
    with for_range(b, vectors) as i:
        offset = b.mul(i, ir.Constant(I64, lanes))
        store(b, function(b, load(b, src, ir.FloatType(), offset, lanes)), out, offset)
    b.ret_void()
    return module


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_functions_take_vectors(name):
    lanes = vector_unit().lanes(ir.FloatType())
    x = SWEEP[: len(SWEEP) // lanes * lanes].copy()
    module = vector_kernel(FUNCTIONS[name], lanes, len(x) // lanes)
    assert set(re.findall(r"call \S+ @\"?([\w.]+)", str(module))) <= {
        f"llvm.{f}.v{lanes}f32" for f in ("rint", "fabs", "copysign")}  # vector intrinsics only
    native = compile_ir(str(module))
    out = np.empty_like(x)
    ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(native.address("apply"))(out.ctypes.data, x.ctypes.data)
    check_ulps(name, x, out)


@pytest.mark.parametrize("op", sorted(ULPS))
def test_the_kernels_are_vectorised_without_libm(op):
    text = optimized_ir(lower(op_graph(op, [np.zeros(1024, F32)])).ir_text)
    assert "x float>" in text, op
    assert "@llvm.exp." not in text and "@llvm.log." not in text and not any(
        f"@{name}f(" in text for name in ("exp", "log", "tanh", "erf", "log1p", "expm1")), op
