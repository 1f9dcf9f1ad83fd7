"""runtime.jit: hand-written IR compiled for the host and checked against numpy."""

import ctypes
import math

import numpy as np
import pytest

from runtime import jit

# out[i] = a[i] + b[i]; a plain loop the vectoriser should turn into AVX-512/AVX2 code.
ADD_IR = """
define void @add(ptr noalias %a, ptr noalias %b, ptr noalias %out, i64 %n) {
entry:
  %empty = icmp sle i64 %n, 0
  br i1 %empty, label %done, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %pa = getelementptr inbounds float, ptr %a, i64 %i
  %pb = getelementptr inbounds float, ptr %b, i64 %i
  %po = getelementptr inbounds float, ptr %out, i64 %i
  %x = load float, ptr %pa, align 4
  %y = load float, ptr %pb, align 4
  %sum = fadd float %x, %y
  store float %sum, ptr %po, align 4
  %next = add nuw nsw i64 %i, 1
  %more = icmp slt i64 %next, %n
  br i1 %more, label %loop, label %done
done:
  ret void
}
"""

# e[i] = expf(x[i]), t[i] = tanhf(x[i]); calls into libm, resolved at load time.
MATH_IR = """
declare float @expf(float)
declare float @tanhf(float)

define void @exp_tanh(ptr noalias %x, ptr noalias %e, ptr noalias %t, i64 %n) {
entry:
  %empty = icmp sle i64 %n, 0
  br i1 %empty, label %done, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %px = getelementptr inbounds float, ptr %x, i64 %i
  %pe = getelementptr inbounds float, ptr %e, i64 %i
  %pt = getelementptr inbounds float, ptr %t, i64 %i
  %v = load float, ptr %px, align 4
  %ev = call float @expf(float %v)
  %tv = call float @tanhf(float %v)
  store float %ev, ptr %pe, align 4
  store float %tv, ptr %pt, align 4
  %next = add nuw nsw i64 %i, 1
  %more = icmp slt i64 %next, %n
  br i1 %more, label %loop, label %done
done:
  ret void
}
"""


def call_arrays(native: jit.NativeModule, name: str, *arrays: np.ndarray) -> None:
    """Call `void name(ptr..., i64 n)` with numpy buffers, n taken from the first array."""
    signature = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * len(arrays), ctypes.c_int64)
    signature(native.address(name))(*(a.ctypes.data for a in arrays), arrays[0].size)


def run_add(native: jit.NativeModule, n: int = 1003) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, n), dtype=np.float32)
    out = np.zeros(n, np.float32)
    call_arrays(native, "add", a, b, out)
    np.testing.assert_array_equal(out, a + b)


def run_exp_tanh(native: jit.NativeModule) -> None:
    x = np.linspace(-8, 8, 1001, dtype=np.float32)
    e, t = np.zeros_like(x), np.zeros_like(x)
    call_arrays(native, "exp_tanh", x, e, t)
    np.testing.assert_allclose(e, np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(t, np.tanh(x), rtol=1e-6)


def test_add_matches_numpy():
    run_add(jit.compile_ir(ADD_IR))


def test_add_handles_empty_and_short_arrays():
    native = jit.compile_ir(ADD_IR)
    for n in (0, 1, 7, 17):
        run_add(native, n)


def test_expf_and_tanhf_match_numpy():
    run_exp_tanh(jit.compile_ir(MATH_IR))


@pytest.mark.parametrize("name", jit.MATH_SYMBOLS)
def test_math_symbol_resolves(name):
    single = name.endswith("f")
    ctype, c_type = ("float", ctypes.c_float) if single else ("double", ctypes.c_double)
    arity = 2 if name.startswith("pow") else 1
    params = ", ".join(f"{ctype} %p{k}" for k in range(arity))
    args = ", ".join(f"{ctype} %p{k}" for k in range(arity))
    ir_text = f"""
declare {ctype} @{name}({", ".join([ctype] * arity)})
define {ctype} @call({params}) {{
  %r = call {ctype} @{name}({args})
  ret {ctype} %r
}}
"""
    native = jit.compile_ir(ir_text)
    function = ctypes.CFUNCTYPE(c_type, *[c_type] * arity)(native.address("call"))
    inputs = (1.5, 0.75)[:arity]
    expected = getattr(math, name.removesuffix("f") if single else name)(*inputs)
    assert function(*inputs) == pytest.approx(expected, rel=1e-6)


def test_assembly_uses_wide_vector_registers():
    for text in (jit.compile_ir(ADD_IR).assembly(), jit.assembly(ADD_IR)):
        assert "add" in text
        assert "zmm" in text or "ymm" in text


def test_optimized_ir_is_vectorised():
    text = jit.optimized_ir(ADD_IR)
    assert "<16 x float>" in text or "<8 x float>" in text


def test_assembly_leaves_module_usable():
    native = jit.compile_ir(ADD_IR)
    native.assembly()
    native.assembly()
    run_add(native)


def test_parse_error_raises_with_llvm_message():
    with pytest.raises(ValueError, match="(?s)could not parse.*expected type"):
        jit.optimize("define void @f( {")


def test_verifier_error_raises_with_llvm_message():
    bad = """
define i32 @f(i1 %c) {
entry:
  br i1 %c, label %then, label %join
then:
  %x = add i32 1, 2
  br label %join
join:
  ret i32 %x
}
"""
    with pytest.raises(ValueError, match="does not dominate"):
        jit.compile_ir(bad)


def test_missing_function_raises_key_error():
    with pytest.raises(KeyError, match="no function named 'nope'"):
        jit.compile_ir(ADD_IR).address("nope")


@pytest.mark.parametrize(
    "ir_text, name, run", [(ADD_IR, "add", run_add), (MATH_IR, "exp_tanh", run_exp_tanh)]
)
def test_object_code_round_trip(ir_text, name, run):
    obj = jit.object_code(ir_text)
    assert isinstance(obj, bytes) and obj
    loaded = jit.load_object(obj, jit.optimized_ir(ir_text))
    run(loaded)
    assert name in loaded.assembly()


def test_object_without_ir_has_no_assembly():
    with pytest.raises(ValueError, match="without its IR"):
        jit.load_object(jit.object_code(ADD_IR)).assembly()


def test_many_modules_compiled_and_dropped():
    for _ in range(50):
        native = jit.compile_ir(ADD_IR)
        run_add(native, 33)
        del native
