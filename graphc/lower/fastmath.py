"""float32 exp and tanh written as plain arithmetic, so the loop vectoriser can vectorise them.

`llvm.exp.f32` and `tanhf` become one libm call per element (tanh measured 7x slower than
numpy on 128x512). These are the Cephes single-precision algorithms (about 1 ulp in range):
exp reduces x = n ln2 + r with |r| <= ln2/2, evaluates a degree-6 polynomial for e^r and scales
by 2^n in two halves, so results near the overflow and underflow ends stay right; tanh uses an
odd polynomial below 0.625 and 1 - 2/(e^2|x| + 1) above, at |x| with x's sign put back. NaN passes
through. float64 keeps libm.
"""
from __future__ import annotations

import llvmlite.ir as ir

from .kernel import FAST, call_math

F32 = ir.FloatType()
I32 = ir.IntType(32)

EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
TANH_POLY = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1)
LOG2E, LN2_HI, LN2_LO = 1.44269504088896341, 0.693359375, -2.12194440e-4
EXP_LOW, EXP_HIGH = -104.0, 89.0  # beyond these e^x is 0 or inf in float32 anyway


def _c(value: float) -> ir.Constant:
    return ir.Constant(F32, value)


def _horner(b: ir.IRBuilder, x: ir.Value, coefficients: tuple[float, ...]) -> ir.Value:
    result = _c(coefficients[0])
    for c in coefficients[1:]:
        result = b.fadd(b.fmul(result, x, flags=FAST), _c(c), flags=FAST)
    return result


def _clamp(b: ir.IRBuilder, x: ir.Value, low: float, high: float) -> ir.Value:
    x = b.select(b.fcmp_ordered("<", x, _c(low)), _c(low), x)
    return b.select(b.fcmp_ordered(">", x, _c(high)), _c(high), x)


def _power_of_two(b: ir.IRBuilder, n: ir.Value) -> ir.Value:
    """2^n for an i32 n in [-126, 127], built from its exponent bits."""
    return b.bitcast(b.shl(b.add(n, ir.Constant(I32, 127)), ir.Constant(I32, 23)), F32)


def exp_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    clamped = _clamp(b, x, EXP_LOW, EXP_HIGH)
    n = call_math(b, "llvm.rint", b.fmul(clamped, _c(LOG2E), flags=FAST))
    r = b.fsub(b.fsub(clamped, b.fmul(n, _c(LN2_HI))), b.fmul(n, _c(LN2_LO)))  # exact steps: no FAST
    p = _horner(b, r, EXP_POLY)
    e_r = b.fadd(b.fadd(b.fmul(b.fmul(p, r, flags=FAST), r, flags=FAST), r, flags=FAST), _c(1.0), flags=FAST)
    whole = b.fptosi(n, I32)
    half = b.ashr(whole, ir.Constant(I32, 1))  # 2^n = 2^half * 2^(n - half): each factor a normal float
    scaled = b.fmul(b.fmul(e_r, _power_of_two(b, half)), _power_of_two(b, b.sub(whole, half)))
    return b.select(b.fcmp_unordered("uno", x, x), x, scaled)


def tanh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    # tanh is odd: evaluated at |x| and given x's sign, so tanh(-0.0) is -0.0 as in torch
    magnitude = call_math(b, "llvm.fabs", x)
    z = b.fmul(magnitude, magnitude, flags=FAST)
    small = b.fadd(magnitude, b.fmul(b.fmul(magnitude, z, flags=FAST), _horner(b, z, TANH_POLY), flags=FAST),
                   flags=FAST)
    e = exp_f32(b, b.fmul(magnitude, _c(2.0), flags=FAST))
    large = b.fsub(_c(1.0), b.fdiv(_c(2.0), b.fadd(e, _c(1.0), flags=FAST), flags=FAST), flags=FAST)
    result = call_math(b, "llvm.copysign", b.select(b.fcmp_ordered("<", magnitude, _c(0.625)), small, large), x)
    return b.select(b.fcmp_unordered("uno", x, x), x, result)
