"""Elementwise ops (numpy broadcasting). Each entry: name, reference, gradient rule."""
from __future__ import annotations

import math

import numpy as np

from . import functions as F
from .registry import OpDef, ShapeError, TensorType, broadcast_shapes, register


def _elementwise(name: str, reference, gradient=None, out_dtype: str | None = None, doc: str = "") -> None:
    def infer(*types: TensorType, **attrs) -> TensorType:
        dtypes = {t.dtype for t in types[1:]} if name == "where" else {t.dtype for t in types}
        if len(dtypes) > 1:
            raise ShapeError(f"{name}: operands have different dtypes {sorted(dtypes)}")
        return TensorType(broadcast_shapes(name, *(t.shape for t in types)), out_dtype or dtypes.pop())
    register(OpDef(name, "elementwise", infer, reference, gradient, doc))


def _unary(name: str, reference, gradient, doc: str = "") -> None:
    _elementwise(name, reference, gradient, doc=doc)


# --- binary arithmetic: d(a op b) ---------------------------------------------------------
_elementwise("add", np.add, lambda ins, out, g: (F.sum_to(g, ins[0].shape), F.sum_to(g, ins[1].shape)))
_elementwise("sub", np.subtract, lambda ins, out, g: (F.sum_to(g, ins[0].shape), F.sum_to(F.neg(g), ins[1].shape)))
_elementwise("mul", np.multiply, lambda ins, out, g: (F.sum_to(F.mul(g, ins[1]), ins[0].shape),
                                                      F.sum_to(F.mul(g, ins[0]), ins[1].shape)))
_elementwise("div", np.divide, lambda ins, out, g: (F.sum_to(F.div(g, ins[1]), ins[0].shape),
                                                    F.sum_to(F.neg(F.div(F.mul(g, out), ins[1])), ins[1].shape)))


def _pow_grad(ins, out, g):
    # as PyTorch: no gradient through a zero exponent (x^0 is 1 even at x = 0, inf, nan), nor to
    # the exponent at a zero base with b >= 0 (where out * log(a) would be 0 * -inf)
    a, b = ins
    da = F.where(F.eq(b, 0.0), 0.0, F.mul(g, F.mul(b, F.pow(a, F.sub(b, 1.0)))))
    db = F.mul(g, F.mul(out, F.log(a)))
    db = F.where(F.eq(a, 0.0), F.where(F.ge(b, 0.0), 0.0, db), db)
    return F.sum_to(da, a.shape), F.sum_to(db, b.shape)


def _maximum_grad(ins, out, g):
    # as PyTorch: ties share the gradient equally; a NaN operand passes it to both inputs
    a, b = ins
    shared = F.where(F.eq(a, b), F.mul(g, 0.5), g)
    return (F.sum_to(F.where(F.gt(b, a), 0.0, shared), a.shape),
            F.sum_to(F.where(F.gt(a, b), 0.0, shared), b.shape))


def _maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.maximum with IEEE 754's +0.0 > -0.0 (np.maximum returns b of two equal zeros), as the
    lowering's llvm.maximum does."""
    return np.where((a == 0) & (b == 0), a + b, np.maximum(a, b))  # -0 + -0 is the one -0 sum


_elementwise("pow", np.power, _pow_grad)
_elementwise("maximum", _maximum, _maximum_grad)

# --- unary math: y = f(x), dx = g * f'(x) ------------------------------------------------
_unary("neg", np.negative, lambda ins, out, g: (F.neg(g),))
_unary("exp", np.exp, lambda ins, out, g: (F.mul(g, out),))
_unary("log", np.log, lambda ins, out, g: (F.div(g, ins[0]),))
_unary("log1p", np.log1p, lambda ins, out, g: (F.div(g, F.add(ins[0], 1.0)),))  # log(1 + x), exact near 0
_unary("expm1", np.expm1, lambda ins, out, g: (F.mul(g, F.add(out, 1.0)),))  # exp(x) - 1, exact near 0
_unary("sqrt", np.sqrt, lambda ins, out, g: (F.div(g, F.mul(out, 2.0)),))
_unary("cos", np.cos, lambda ins, out, g: (F.neg(F.mul(g, F.sin(ins[0]))),))
_unary("sin", np.sin, lambda ins, out, g: (F.mul(g, F.cos(ins[0])),))
_unary("tanh", np.tanh, lambda ins, out, g: (F.mul(g, F.sub(1.0, F.mul(out, out))),))
# steps: the gradient is zero wherever it exists, as PyTorch's
_unary("floor", np.floor, lambda ins, out, g: (F.mul(g, 0.0),))
_unary("ceil", np.ceil, lambda ins, out, g: (F.mul(g, 0.0),))
_unary("round", np.round, lambda ins, out, g: (F.mul(g, 0.0),), doc="half to even, as numpy and PyTorch")
_unary("sigmoid", lambda x: (1.0 / (1.0 + np.exp(-x))).astype(x.dtype),
       lambda ins, out, g: (F.mul(g, F.mul(out, F.sub(1.0, out))),))
# erf'(x) = 2/sqrt(pi) exp(-x^2); the reference is libm's erf (math.erf) element by element
_unary("erf", lambda x: np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=x.dtype),
       lambda ins, out, g: (F.mul(g, F.mul(F.exp(F.neg(F.mul(ins[0], ins[0]))), 2.0 / math.sqrt(math.pi))),))
# relu(-0.0) is -0.0 and relu(nan) is nan; the gradient is zeroed where out <= 0, so NaN passes it
_unary("relu", lambda x: np.where(x < 0, x.dtype.type(0), x),
       lambda ins, out, g: (F.where(F.ge(0.0, out), 0.0, g),))

# --- comparisons and selection (not differentiable in the condition) ------------------------
_elementwise("gt", np.greater, out_dtype="bool")
_elementwise("ge", np.greater_equal, out_dtype="bool")
_elementwise("eq", np.equal, out_dtype="bool")
_elementwise("where", np.where, lambda ins, out, g: (
    None,
    F.sum_to(F.where(ins[0], g, 0.0), ins[1].shape),
    F.sum_to(F.where(ins[0], 0.0, g), ins[2].shape)))


def _cast_infer(a: TensorType, dtype: str) -> TensorType:
    return TensorType(a.shape, dtype)


register(OpDef("cast", "elementwise", _cast_infer, lambda a, dtype: a.astype(dtype),
               lambda ins, out, g, dtype: (F.cast(g, ins[0].dtype) if ins[0].dtype.startswith("float") else None,)))
