"""float32 exp, log, log1p, expm1, tanh and erf written as plain arithmetic, so they vectorise.

`llvm.exp.f32`, `llvm.log.f32` and libm's `tanhf`, `erff`, `log1pf`, `expm1f` become one scalar
call per element, even inside a vectorised loop (tanh measured 7x slower than numpy on 128x512).
Each function here takes a float or a vector of floats (constants splat to the operand's type, the
integer steps use i32 of the same width), so a kernel can apply it to a loaded scalar, which
the loop vectoriser widens, or to a vector accumulator directly. float64 keeps libm.

- exp (Cephes expf): x = n ln2 + r with |r| <= ln2/2, e^r = 1 + r + r^2 P(r), scaled by 2^n in
  two halves so results near the overflow and underflow ends stay right.
- expm1: the same reduction, 2^n (e^r - 1) + (2^n - 1) written as (P' + (1 - 2^-n)) 2^n, so
  near 0 (n = 0) it is r + r^2 P(r) with no cancellation.
- log (Cephes logf): x = m 2^e with m in [sqrt(1/2), sqrt(2)) read from the bits (denormals
  scaled by 2^23 first), log(m) = f - f^2/2 + f^3 P(f) with f = m - 1, plus e ln2 in two parts.
- log1p: the log of u = 1 + x, with f = x itself where u needs no scaling, elsewhere plus the
  rounding of u, (x - (u - 1)) / u.
- tanh (Cephes tanhf): an odd polynomial below 0.625, 1 - 2 / (e^2|x| + 1) above.
- erf: x + x (P(x^2) - 1) below 1 (2/sqrt(pi) is not a float32: its rounding would cost an
  ulp), 1 - e^-x^2 Q(1/x) / x from 1 to 4 (erf rounds to 1 from 3.92). P (degree 6 in x^2, on
  [0, 1], relative error) and Q (degree 6 in 1/x, on [1, 4], error weighted by e^-x^2 / x, so
  erf's absolute error) were fitted for graphc by Lawson's reweighted least squares on 4000
  Chebyshev nodes against mpmath: 1.2e-9 relative for P, under 0.01 ulp of erf for Q.
Each is within 1 ulp of the float32 rounding of numpy's float64 result over a sweep of all
float32 inputs (tests/lower/test_fastmath.py); NaN passes through all of them.
"""
from __future__ import annotations

import llvmlite.ir as ir

from .kernel import FAST, call_math

EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
LOG_POLY = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
            -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)
TANH_POLY = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1)
ERF_POLY = (7.854220893932506e-05, -0.0008010311285033822, 0.005188342649489641, -0.02685382030904293,
            0.1128358542919159, -0.3761262595653534, 0.1283791657386189)  # P(z) - 1
ERFC_POLY = (-0.01591840758919716, 0.10908112674951553, -0.3253079056739807, 0.5369606018066406,
             -0.4755341112613678, 0.03715139999985695, 0.561150848865509)
LOG2E, LN2_HI, LN2_LO = 1.44269504088896341, 0.693359375, -2.12194440e-4
SQRT_HALF = 0.70710678118654752
EXP_LOW, EXP_HIGH = -104.0, 89.0  # beyond these e^x is 0 or inf in float32 anyway
EXPM1_LOW = -30.0  # e^x - 1 is -1 in float32 below -17.4
SMALLEST_NORMAL = 2.0 ** -126
ERF_ONE = 4.0  # erf(x) rounds to 1 in float32 from 3.92


def _c(x: ir.Value, value: float) -> ir.Constant:
    """`value` in x's type: a float, or a vector with it in every lane."""
    return ir.Constant(x.type, value)


def _int_type(x: ir.Value) -> ir.Type:
    """i32, or a vector of i32 as wide as x: the integer view of a float32 value."""
    return ir.VectorType(ir.IntType(32), x.type.count) if isinstance(x.type, ir.VectorType) else ir.IntType(32)


def _horner(b: ir.IRBuilder, x: ir.Value, coefficients: tuple[float, ...]) -> ir.Value:
    result = _c(x, coefficients[0])
    for c in coefficients[1:]:
        result = b.fadd(b.fmul(result, x, flags=FAST), _c(x, c), flags=FAST)
    return result


def _clamp(b: ir.IRBuilder, x: ir.Value, low: float, high: float) -> ir.Value:
    x = b.select(b.fcmp_ordered("<", x, _c(x, low)), _c(x, low), x)
    return b.select(b.fcmp_ordered(">", x, _c(x, high)), _c(x, high), x)


def _nan_passes(b: ir.IRBuilder, x: ir.Value, result: ir.Value) -> ir.Value:
    return b.select(b.fcmp_unordered("uno", x, x), x, result)


def _power_of_two(b: ir.IRBuilder, n: ir.Value, like: ir.Value) -> ir.Value:
    """2^n for an i32 n in [-126, 127], built from its exponent bits, in like's type."""
    return b.bitcast(b.shl(b.add(n, _c(n, 127)), _c(n, 23)), like.type)


def _reduce(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(n as i32, r, e^r - 1) with x = n ln2 + r, |r| <= ln2/2, for x inside the exp range."""
    n = call_math(b, "llvm.rint", b.fmul(x, _c(x, LOG2E), flags=FAST))
    r = b.fsub(b.fsub(x, b.fmul(n, _c(x, LN2_HI))), b.fmul(n, _c(x, LN2_LO)))  # exact steps: no FAST
    p = _horner(b, r, EXP_POLY)
    return b.fptosi(n, _int_type(x)), r, b.fadd(b.fmul(b.fmul(p, r, flags=FAST), r, flags=FAST), r, flags=FAST)


def _scale(b: ir.IRBuilder, value: ir.Value, n: ir.Value) -> ir.Value:
    """value * 2^n for n in [-252, 254]: 2^half * 2^(n - half), each factor a normal float."""
    half = b.ashr(n, _c(n, 1))
    return b.fmul(b.fmul(value, _power_of_two(b, half, value)), _power_of_two(b, b.sub(n, half), value))


def exp_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    n, _, e_r_minus_1 = _reduce(b, _clamp(b, x, EXP_LOW, EXP_HIGH))
    return _nan_passes(b, x, _scale(b, b.fadd(e_r_minus_1, _c(x, 1.0), flags=FAST), n))


def expm1_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    n, _, e_r_minus_1 = _reduce(b, _clamp(b, x, EXPM1_LOW, EXP_HIGH))
    # 1 - 2^-n is exact for n <= 24 and rounds to 1 above: 2^-min(n, 30) stays a normal float
    capped = b.select(b.icmp_signed(">", n, _c(n, 30)), _c(n, 30), n)
    offset = b.fsub(_c(x, 1.0), _power_of_two(b, b.neg(capped), x))
    result = _scale(b, b.fadd(e_r_minus_1, offset, flags=FAST), n)
    # e^r - 1 of -0.0 is +0.0: zeros give themselves back, as expm1(-0.0) = -0.0
    return _nan_passes(b, x, b.select(b.fcmp_ordered("==", x, _c(x, 0.0)), x, result))


def _decompose(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(e, f) with x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), for x > 0 (denormals too)."""
    denormal = b.fcmp_ordered("<", x, _c(x, SMALLEST_NORMAL))  # and x <= 0, whose log is replaced
    bits = b.bitcast(b.select(denormal, b.fmul(x, _c(x, 2.0 ** 23)), x), _int_type(x))
    exponent = b.sub(b.lshr(bits, _c(bits, 23)), b.select(denormal, _c(bits, 126 + 23), _c(bits, 126)))
    mantissa = b.bitcast(b.or_(b.and_(bits, _c(bits, 0x007FFFFF)), _c(bits, 0x3F000000)), x.type)  # in [0.5, 1)
    below = b.fcmp_ordered("<", mantissa, _c(x, SQRT_HALF))  # then 2m, one less in the exponent
    e = b.fsub(b.sitofp(exponent, x.type), b.select(below, _c(x, 1.0), _c(x, 0.0)))
    return e, b.fsub(b.fadd(mantissa, b.select(below, mantissa, _c(x, 0.0))), _c(x, 1.0))  # exact: 2m - 1 or m - 1


def _log_reduced(b: ir.IRBuilder, e: ir.Value, f: ir.Value) -> ir.Value:
    """log(2^e (1 + f)) = f - f^2/2 + f^3 P(f) + e ln2, the small part of ln2 added first."""
    z = b.fmul(f, f, flags=FAST)
    y = b.fmul(b.fmul(f, z, flags=FAST), _horner(b, f, LOG_POLY), flags=FAST)
    y = b.fsub(b.fadd(y, b.fmul(e, _c(f, LN2_LO), flags=FAST), flags=FAST), b.fmul(z, _c(f, 0.5), flags=FAST), flags=FAST)
    return b.fadd(b.fadd(f, y, flags=FAST), b.fmul(e, _c(f, LN2_HI), flags=FAST), flags=FAST)


def _log_specials(b: ir.IRBuilder, x: ir.Value, result: ir.Value) -> ir.Value:
    """log(inf) = inf, log(x < 0) = NaN, log(±0) = -inf, NaN passes; result elsewhere."""
    result = b.select(b.fcmp_ordered("==", x, _c(x, float("inf"))), x, result)
    result = b.select(b.fcmp_ordered("<", x, _c(x, 0.0)), _c(x, float("nan")), result)
    return _nan_passes(b, x, b.select(b.fcmp_ordered("==", x, _c(x, 0.0)), _c(x, float("-inf")), result))


def log_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return _log_specials(b, x, _log_reduced(b, *_decompose(b, x)))


def log1p_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    u = b.fadd(x, _c(x, 1.0))
    e, f = _decompose(b, u)
    # where u needs no scaling (e = 0) its f is x itself, exactly; elsewhere log(u) is corrected by
    # log(1 + (1 + x - u) / u), the rounding of u (x - (u - 1) is exact)
    near = b.fcmp_ordered("==", e, _c(x, 0.0))
    correction = b.fdiv(b.fsub(x, b.fsub(u, _c(x, 1.0))), u, flags=FAST)
    result = b.fadd(_log_reduced(b, e, b.select(near, x, f)), b.select(near, _c(x, 0.0), correction), flags=FAST)
    return _log_specials(b, u, b.select(b.fcmp_ordered("==", x, _c(x, 0.0)), x, result))  # log1p(-0.0) = -0.0


def tanh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    # tanh is odd: evaluated at |x| and given x's sign, so tanh(-0.0) is -0.0 as in torch
    magnitude = call_math(b, "llvm.fabs", x)
    z = b.fmul(magnitude, magnitude, flags=FAST)
    small = b.fadd(magnitude, b.fmul(b.fmul(magnitude, z, flags=FAST), _horner(b, z, TANH_POLY), flags=FAST),
                   flags=FAST)
    e = exp_f32(b, b.fmul(magnitude, _c(x, 2.0), flags=FAST))
    large = b.fsub(_c(x, 1.0), b.fdiv(_c(x, 2.0), b.fadd(e, _c(x, 1.0), flags=FAST), flags=FAST), flags=FAST)
    result = call_math(b, "llvm.copysign", b.select(b.fcmp_ordered("<", magnitude, _c(x, 0.625)), small, large), x)
    return _nan_passes(b, x, result)


def erf_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    # erf is odd: evaluated at |x| (at most ERF_ONE) and given x's sign; x P(x^2) keeps -0.0
    magnitude = call_math(b, "llvm.fabs", x)
    magnitude = b.select(b.fcmp_ordered(">", magnitude, _c(x, ERF_ONE)), _c(x, ERF_ONE), magnitude)
    z = b.fmul(magnitude, magnitude, flags=FAST)
    small = b.fadd(x, b.fmul(x, _horner(b, z, ERF_POLY), flags=FAST), flags=FAST)  # x + x (P - 1): 2/sqrt(pi) inexact
    inverse = b.fdiv(_c(x, 1.0), magnitude, flags=FAST)
    tail = b.fmul(b.fmul(exp_f32(b, b.fneg(z)), inverse, flags=FAST), _horner(b, inverse, ERFC_POLY), flags=FAST)
    large = call_math(b, "llvm.copysign", b.fsub(_c(x, 1.0), tail, flags=FAST), x)
    return _nan_passes(b, x, b.select(b.fcmp_ordered("<", magnitude, _c(x, 1.0)), small, large))
