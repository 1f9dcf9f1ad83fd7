"""Elementwise ops and reductions at special values (±0, ±inf, NaN, denormals, large) against PyTorch.

Each case runs four ways: torch (the oracle), eager graphc, graphc.compile on one-element inputs
(scalar code) and graphc.compile on a batch holding every case of the op (the vectorised loop).
Forward values and the gradients of `out.sum()` must agree: NaN where torch has NaN, zeros with
torch's sign, infinities exactly, other values to a few ulp.
"""
import functools
import itertools
import math

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.ops import functions as F

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy warns at NaN and inf

NAN, INF = math.nan, math.inf
DTYPES = ("float32", "float64")


def specials(dtype: str) -> dict[str, float]:
    finfo = np.finfo(dtype)
    return {"+0": 0.0, "-0": -0.0, "nan": NAN, "inf": INF, "-inf": -INF,
            "denormal": float(finfo.smallest_subnormal), "-denormal": -float(finfo.smallest_subnormal),
            "1.5": 1.5, "-2": -2.0, "large": 100.0, "-large": -100.0, "huge": float(finfo.max) / 2,
            "1e-300": 1e-300, "-1e-300": -1e-300}  # the last two: float64 -> float32 gives ±0


UNARY_VALUES = ("+0", "-0", "nan", "inf", "-inf", "denormal", "-denormal", "1.5", "-2", "large", "-large", "huge")
PAIR_VALUES = ("+0", "-0", "nan", "inf", "-inf", "denormal", "1.5", "-2")
PAIRS = list(itertools.product(PAIR_VALUES, PAIR_VALUES))
WHERE_VALUES = ("+0", "-0", "nan", "inf", "-2")
WHERE_CASES = list(itertools.product((True, False), WHERE_VALUES, WHERE_VALUES))
CAST_VALUES = {"float32": ("+0", "-0", "nan", "inf", "-inf", "denormal", "-denormal", "1.5", "-2", "huge"),
               "float64": ("+0", "-0", "nan", "inf", "-inf", "denormal", "-denormal", "1.5", "-2", "huge",
                           "1e-300", "-1e-300")}

UNARY = {"neg": (F.neg, torch.neg), "exp": (F.exp, torch.exp), "log": (F.log, torch.log),
         "sqrt": (F.sqrt, torch.sqrt), "tanh": (F.tanh, torch.tanh), "sigmoid": (F.sigmoid, torch.sigmoid),
         "relu": (F.relu, torch.relu)}
BINARY = {"add": (F.add, torch.add), "sub": (F.sub, torch.sub), "mul": (F.mul, torch.mul),
          "div": (F.div, torch.div), "pow": (F.pow, torch.pow), "maximum": (F.maximum, torch.maximum),
          "gt": (F.gt, torch.gt), "ge": (F.ge, torch.ge), "eq": (F.eq, torch.eq)}
CASTS = {"int64": torch.int64, "bool": torch.bool, "float32": torch.float32, "float64": torch.float64}

# The one exception: torch's max of -0.0 and +0.0 is either zero, by operand order and by whether
# its scalar or its vector loop meets the pair (amax and max differ too), so for these ties only
# "a zero" is checked. graphc's maximum gives IEEE 754's +0.0 (tested below); its amax may give
# either zero, which keeps the reduction fast (lower/reduce.py).
ZERO_TIES = {("maximum", "+0,-0"), ("maximum", "-0,+0"), ("amax", "+0,-0"), ("amax", "-0,+0")}


class Apply(nn.Module):
    """A model whose forward is one op function, for graphc.compile."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


@functools.cache
def compiled(fn):
    return graphc.compile(Apply(fn))


def differentiable(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def run_torch(fn, arrays, upstream=None):
    """(output, gradients of the float inputs) of `fn`; the gradient flowing into the output is
    `upstream`, or ones (the gradient of `out.sum()`)."""
    ts = [torch.tensor(a, requires_grad=differentiable(a)) for a in arrays]
    out = fn(*ts)
    if out.dtype.is_floating_point:
        out.backward(torch.ones_like(out) if upstream is None else torch.tensor(upstream))
    return out.detach().numpy(), [t.grad.numpy() if t.grad is not None else np.zeros_like(a)
                                  for t, a in zip(ts, arrays) if differentiable(a)]


def run_graphc(fn, arrays, upstream=None):
    ts = [graphc.tensor(a, requires_grad=differentiable(a)) for a in arrays]
    out = fn(*ts)
    if out.dtype.is_floating_point:
        out.backward(graphc.tensor(np.ones_like(out.detach().numpy()) if upstream is None else upstream))
    return out.detach().numpy(), [t.grad.numpy() if t.grad is not None else np.zeros_like(a)
                                  for t, a in zip(ts, arrays) if differentiable(a)]


def agree(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Equal as PyTorch users see values: NaN positions, sign of zero, infinities, a few ulp."""
    if want.dtype.kind != "f":
        return got == want
    finfo = np.finfo(want.dtype)
    # a few units of the smallest denormal: denormal results carry few significant bits
    close = np.isclose(got, want, rtol=8 * finfo.eps, atol=8 * float(finfo.smallest_subnormal))
    zero = (got == 0) & (np.signbit(got) == np.signbit(want))
    return np.where(np.isnan(want), np.isnan(got), np.where(want == 0, zero, close))


def differences(got: np.ndarray, want: np.ndarray, what: str) -> list[str]:
    got, want = np.asarray(got), np.asarray(want)
    if (got.dtype, got.shape) != (want.dtype, want.shape):
        return [f"{what}: graphc {got.dtype}{list(got.shape)}, torch {want.dtype}{list(want.shape)}"]
    return [] if agree(got, want).all() else [f"{what}: graphc {got.tolist()}, torch {want.tolist()}"]


def compare(got, want, how: str, zero_sign: bool = True) -> list[str]:
    """Differences between graphc's and torch's (forward, gradients); `zero_sign=False` takes
    the forward's zeros as equal whatever their sign."""
    forward = (got[0], want[0]) if zero_sign else (got[0] + 0.0, want[0] + 0.0)  # -0.0 + 0.0 is +0.0
    found = differences(*forward, f"{how} forward")
    for k, (g, w) in enumerate(zip(got[1], want[1])):
        found += differences(g, w, f"{how} gradient of input {k}")
    return found


def check(fn, torch_fn, arrays, batch=None, zero_sign: bool = True) -> None:
    """Torch against eager and one-element compiled runs of `arrays`, and against the compiled batch
    run (`batch`: graphc's and torch's results at this case), when the op has one."""
    want = run_torch(torch_fn, arrays)
    found = (compare(run_graphc(fn, arrays), want, "eager", zero_sign)
             + compare(run_graphc(compiled(fn), arrays), want, "compiled", zero_sign))
    if batch is not None:
        found += compare(*batch, "compiled batch", zero_sign)
    assert not found, "\n".join(found)


@functools.cache
def batch_run(fn, torch_fn, cases: tuple[tuple, ...], dtypes: tuple[str, ...]):
    """Every case of an op in one long batch (the vectorised loop body), run compiled and by
    torch; returns the (graphc, torch) results at a case index."""
    reps = -(-(len(cases) + 128) // len(cases))
    columns = [np.tile(np.array(column, d), reps) for column, d in zip(zip(*cases), dtypes)]
    results = run_graphc(compiled(fn), columns), run_torch(torch_fn, columns)

    def at(i: int):
        return tuple((out[i:i + 1], [g[i:i + 1] for g in grads]) for out, grads in results)
    return at


def check_case(fn, torch_fn, cases: list[tuple], dtypes: tuple[str, ...], case: tuple, zero_sign: bool = True):
    """`case`, one of an op's `cases` (tuples of operand values), alone and in the batch of all."""
    at = batch_run(fn, torch_fn, tuple(cases), dtypes)
    arrays = [np.array([v], d) for v, d in zip(case, dtypes)]
    check(fn, torch_fn, arrays, at(cases.index(case)), zero_sign)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", UNARY_VALUES)
@pytest.mark.parametrize("name", UNARY)
def test_unary(name, value, dtype):
    values = specials(dtype)
    cases = [(values[v],) for v in UNARY_VALUES]
    check_case(*UNARY[name], cases, (dtype,), (values[value],))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a,b", PAIRS, ids=[f"{a},{b}" for a, b in PAIRS])
@pytest.mark.parametrize("name", BINARY)
def test_binary(name, a, b, dtype):
    values = specials(dtype)
    cases = [(values[x], values[y]) for x, y in PAIRS]
    check_case(*BINARY[name], cases, (dtype, dtype), (values[a], values[b]),
               zero_sign=(name, f"{a},{b}") not in ZERO_TIES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cond,a,b", WHERE_CASES, ids=[f"{c},{a},{b}" for c, a, b in WHERE_CASES])
def test_where(cond, a, b, dtype):
    values = specials(dtype)
    cases = [(c, values[x], values[y]) for c, x, y in WHERE_CASES]
    check_case(F.where, torch.where, cases, ("bool", dtype, dtype), (cond, values[a], values[b]))


@functools.cache
def cast_to(dtype: str):
    """The cast as a graphc function and a torch function (cached: one compiled model per dtype)."""
    return (lambda x: F.cast(x, dtype)), (lambda x: x.to(CASTS[dtype]))


@pytest.mark.parametrize("source,target,value", [(source, target, value) for source, names in CAST_VALUES.items()
                                                 for target in CASTS if target != source for value in names])
def test_cast(source, target, value):
    values = specials(source)
    cases = [(values[v],) for v in CAST_VALUES[source]]
    check_case(*cast_to(target), cases, (source,), (values[value],))


REDUCTIONS = {"sum": (lambda x, dim: x.sum(dim), lambda x, dim: x.sum(dim)),
              "amax": (lambda x, dim: x.amax(dim), lambda x, dim: torch.amax(x, dim))}
REDUCTION_CASES = ("-0,-0", "-0,+0", "+0,-0", "-0", "nan,1.5", "1.5,nan", "nan,nan", "inf,-inf", "-inf,-inf",
                   "nan,inf", "-2,-2", "inf,inf", "denormal,-denormal")
# row: the reduced dim is innermost (an accumulator per output); column: the kept dim is innermost
# (the output accumulates in input order); long: the values, then 64 neutral ones (vectorised).
LAYOUTS = ("row", "column", "long")


@functools.cache
def reduce_over(name: str, dim: int):
    fn, torch_fn = REDUCTIONS[name]
    return (lambda x: fn(x, dim)), (lambda x: torch_fn(x, dim))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", REDUCTION_CASES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction(name, case, layout, dtype):
    values = [specials(dtype)[v] for v in case.split(",")]
    if layout == "long":
        values += [-0.0 if name == "sum" else -INF] * 64
    x = np.array(values, dtype)
    x, dim = (np.repeat(x[:, None], 3, axis=1), 0) if layout == "column" else (x[None, :], 1)
    check(*reduce_over(name, dim), [x], zero_sign=(name, case) not in ZERO_TIES)


def maximum_with_zero(x):
    return F.maximum(x, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_maximum_of_opposite_zeros_is_positive_zero(dtype):
    """IEEE 754's maximum (+0.0 > -0.0), in either operand order, eagerly and compiled."""
    a, b = np.array([0.0, -0.0] * 40, dtype), np.array([-0.0, 0.0] * 40, dtype)
    with graphc.no_grad():
        for fn in (F.maximum, compiled(F.maximum)):
            for x, y in ((a, b), (a[:1], b[:1]), (b[:1], a[:1])):
                out = fn(graphc.tensor(x), graphc.tensor(y)).numpy()
                assert (out == 0).all() and not np.signbit(out).any(), (fn, x, y, out)
        for fn in (maximum_with_zero, compiled(maximum_with_zero)):  # the 0.0 a constant in the kernel
            for x in (-a, -a[:1]):
                out = fn(graphc.tensor(x)).numpy()
                assert (out == 0).all() and not np.signbit(out).any(), (fn, x, out)


UPSTREAM = {"-0": -0.0, "nan": NAN, "inf": INF, "-1.5": -1.5}


@pytest.mark.parametrize("g", UPSTREAM)
@pytest.mark.parametrize("name", [*UNARY, "add", "sub", "mul", "div", "pow", "maximum"])
def test_special_upstream_gradients(name, g):
    """Special values arriving from upstream pass through each gradient rule as in torch."""
    fn, torch_fn = UNARY.get(name) or BINARY[name]
    arrays = [np.array([1.5], "float32")] + ([np.array([-2.0], "float32")] if name in BINARY else [])
    upstream = np.array([UPSTREAM[g]], "float32")
    want = run_torch(torch_fn, arrays, upstream)
    found = (compare(run_graphc(fn, arrays, upstream), want, "eager")
             + compare(run_graphc(compiled(fn), arrays, upstream), want, "compiled"))
    assert not found, "\n".join(found)


# Expressions with a constant operand: in compiled code LLVM sees the constant, and fast-math
# flags would let it rewrite 0 - x as -x (wrong at x = +0.0) or -(x - 1) as 1 - x (wrong at 1).
CONSTANT_OPERANDS = {
    "0-x": (lambda x: F.sub(0.0, x), lambda x: 0.0 - x),
    "-(x-1)": (lambda x: F.neg(F.sub(x, 1.0)), lambda x: -(x - 1.0)),
    "(0-x)*1": (lambda x: F.mul(F.sub(0.0, x), 1.0), lambda x: (0.0 - x) * 1.0),
    "x*0": (lambda x: F.mul(x, 0.0), lambda x: x * 0.0),
    "x+0": (lambda x: F.add(x, 0.0), lambda x: x + 0.0),
    "x+(-0)": (lambda x: F.add(x, -0.0), lambda x: x + -0.0),
    "x-0": (lambda x: F.sub(x, 0.0), lambda x: x - 0.0),
    "x-(-0)": (lambda x: F.sub(x, -0.0), lambda x: x - -0.0),
}


@pytest.mark.parametrize("fn,torch_fn", list(CONSTANT_OPERANDS.values()), ids=list(CONSTANT_OPERANDS))
def test_constant_operands_keep_the_sign_of_zero(fn, torch_fn):
    x = np.tile(np.array([0.0, -0.0, 1.0, -1.0, NAN, INF, -INF], "float32"), 20)
    with graphc.no_grad():
        found = differences(compiled(fn)(graphc.tensor(x)).numpy(), torch_fn(torch.tensor(x)).numpy(), "compiled")
    assert not found, found
