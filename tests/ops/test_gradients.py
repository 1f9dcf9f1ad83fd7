"""Every gradient rule of the op table against central finite differences in float64,
eagerly and as a backward graph run by the reference interpreter."""
import numpy as np
import pytest

import graphc
from graphc.compiled import backward_feeds
from graphc.autodiff import build_backward, with_saved_outputs
from graphc.ir import interpret, verify
from graphc.ops import OPS
from graphc.ops import functions as F
from graphc.ops.pool import pool, pool_backward
from graphc.ops.window import adaptive_table, window_gather, window_scatter, window_table
from graphc.trace import trace

rng = np.random.default_rng(0)
WINDOW_TABLES = [graphc.tensor(window_table(5, 3, 2, (1, 1), 1, "reflect")), graphc.tensor(adaptive_table(4, 3))]


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape)


def signed(*shape):
    values = rng.uniform(0.2, 1.5, shape) * rng.choice([-1, 1], shape)
    return values


# 3x2 windows, stride (2, 1), dilation (1, 2), padded rows, a column of overhang (ceil mode)
POOL = dict(kernel=(3, 2), stride=(2, 1), dilation=(1, 2), padding=((1, 1), (0, 1)))
POOL_X = signed(2, 3, 5, 6)
POOL_OUT = pool(graphc.tensor(POOL_X), "max", **POOL).numpy()


# op name -> (function of tensors, list of float64 input arrays); each differentiable input is checked
CASES = {
    "add": (F.add, [signed(3, 4), signed(4)]),
    "sub": (F.sub, [signed(3, 1), signed(3, 4)]),
    "mul": (F.mul, [signed(2, 3), signed(2, 1)]),
    "div": (F.div, [signed(3, 4), positive(4)]),
    "pow": (F.pow, [positive(3, 4), signed(3, 4)]),
    "maximum": (F.maximum, [signed(3, 4), signed(3, 4)]),
    "neg": (F.neg, [signed(5)]),
    "exp": (F.exp, [signed(2, 3)]),
    "log": (F.log, [positive(2, 3)]),
    "sqrt": (F.sqrt, [positive(2, 3)]),
    "tanh": (F.tanh, [signed(2, 3)]),
    "cos": (F.cos, [signed(2, 3) * 3]),
    "sin": (F.sin, [signed(2, 3) * 3]),
    "sigmoid": (F.sigmoid, [signed(2, 3)]),
    "relu": (F.relu, [signed(2, 3)]),
    "where": (lambda a, b: F.where(F.gt(a, 0.0), a, b), [signed(3, 4), signed(4)]),
    "cast": (lambda a: F.cast(F.cast(a, "float32"), "float64"), [signed(3)]),
    "sum": (lambda a: F.sum(a, (0, 2), keepdim=False), [signed(2, 3, 4)]),
    "amax": (lambda a: F.amax(a, 1, keepdim=True), [signed(3, 5)]),
    "prod": (lambda a: F.prod(a, (0, 2)), [signed(2, 3, 4)]),
    "reshape": (lambda a: F.reshape(a, (4, 3)), [signed(2, 6)]),
    "permute": (lambda a: F.permute(a, (2, 0, 1)), [signed(2, 3, 4)]),
    "expand": (lambda a: F.expand(a, (2, 3, 4)), [signed(3, 1)]),
    "matmul": (lambda a, b: F.matmul(a, b), [signed(3, 4), signed(4, 5)]),
    "softmax": (lambda a: F.softmax(a, 1), [signed(3, 4, 2)]),
    "log_softmax": (lambda a: F.log_softmax(a, 0), [signed(3, 4)]),
    # reflect-padded strided rows, adaptive (overlapping, padded) columns
    "window_gather": (lambda a: window_gather(a, WINDOW_TABLES, 0.0), [signed(2, 3, 5, 4)]),
    "window_scatter": (lambda a: window_scatter(a, WINDOW_TABLES, (5, 4)), [signed(2, 3, 3, 3, 3, 2)]),
    "check_range": (lambda a: F.check_range(a, 0.0, 1.0, "out of range"), [rng.uniform(0.1, 0.9, (2, 3))]),
    "erf": (F.erf, [signed(2, 3) * 2]),
    "log1p": (F.log1p, [positive(2, 3) - 0.4]),
    "expm1": (F.expm1, [signed(2, 3)]),
    # repeated indices: the scatter adds both rows' gradients
    "gather_rows": (lambda t: F.gather_rows(t, graphc.tensor([[3, 0], [3, 1]])), [signed(4, 2, 3)]),
    "scatter_add_rows": (lambda v: F.scatter_add_rows(v, graphc.tensor([2, 0, 2]), 4), [signed(3, 2)]),
    "floor": (F.floor, [signed(2, 3) + 0.5]),  # away from the steps, where the derivative is 0
    "ceil": (F.ceil, [signed(2, 3) + 0.5]),
    "round": (F.round, [signed(2, 3) + 0.25]),
    "slice": (lambda a: F.slice(a, (1, 2, 1), (2, -1, 2), (2, 3, 2)), [signed(5, 3, 4)]),
    "slice_scatter": (lambda g: F.slice_scatter(g, (1, 2), (2, 1), (5, 4)), [signed(2, 2)]),
    "cat": (lambda a, b, c: F.cat([a, b, c], 1), [signed(2, 3), signed(2, 1), signed(2, 2)]),
    "pool": (lambda a: pool(a, "max", **POOL), [POOL_X]),
    # the routing of g through fixed maxima (x and out are constants: they only pick)
    "pool_backward": (lambda g: pool_backward(g, (graphc.tensor(POOL_X), graphc.tensor(POOL_OUT)), "max",
                                              size=(5, 6), **POOL), [signed(*POOL_OUT.shape)]),
}
MATMUL_VARIANTS = [
    (True, False, (4, 3), (4, 5)), (False, True, (3, 4), (5, 4)), (True, True, (4, 3), (5, 4)),
    (False, False, (2, 3, 4), (4, 5)), (False, True, (2, 3, 4), (5, 4)), (False, False, (2, 3, 4), (2, 4, 5)),
    (True, False, (2, 4, 3), (4, 5)), (True, True, (2, 4, 3), (5, 4)),  # batched a^T, shared b
]


LOOSE = {"cast": dict(eps=1e-2, rtol=1e-3, atol=1e-4)}  # float32 rounding inside the function


def numeric_grad(fn, arrays, k, weights, eps=1e-6):
    grad = np.zeros_like(arrays[k])
    for idx in np.ndindex(arrays[k].shape):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[k][idx] += eps
        minus[k][idx] -= eps
        f_plus = (fn(*[graphc.tensor(a) for a in plus]).numpy() * weights).sum()
        f_minus = (fn(*[graphc.tensor(a) for a in minus]).numpy() * weights).sum()
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def check_against_finite_differences(fn, arrays, rtol=1e-5, atol=1e-7, eps=1e-6):
    tensors = [graphc.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = rng.standard_normal(out.shape)
    (out * graphc.tensor(weights)).sum().backward()
    for k, t in enumerate(tensors):
        expected = numeric_grad(fn, arrays, k, weights, eps)
        got = np.zeros_like(expected) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"input {k}")
    return tensors, weights


def test_every_differentiable_op_has_a_case():
    differentiable = {name for name, op in OPS.items() if op.gradient is not None}
    assert differentiable <= set(CASES), differentiable - set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_gradient_matches_finite_differences(name):
    fn, arrays = CASES[name]
    check_against_finite_differences(fn, arrays, **LOOSE.get(name, {}))


@pytest.mark.parametrize("ta,tb,sa,sb", MATMUL_VARIANTS)
def test_matmul_variants(ta, tb, sa, sb):
    check_against_finite_differences(lambda a, b: F.matmul(a, b, ta, tb), [signed(*sa), signed(*sb)])


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_graph_matches_eager(name):
    fn, arrays = CASES[name]
    tensors, weights = check_against_finite_differences(fn, arrays, **LOOSE.get(name, {}))
    program = trace(lambda *xs: fn(*xs) * graphc.tensor(weights), *[graphc.tensor(a) for a in arrays])
    wrt = [n.id for n in program.graph.inputs]
    backward = build_backward(program.graph, wrt)
    verify(backward.graph)
    fwd = with_saved_outputs(program.graph, backward.saved)
    feed = backward_feed(fwd, backward, arrays, lambda spec: np.ones(spec.shape, spec.dtype))
    grads = dict(zip(backward.wrt, interpret(backward.graph, feed)))
    for node, t in zip(program.graph.inputs, tensors):
        expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        got = grads.get(node.id, np.zeros(t.shape))
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def backward_feed(forward, backward, arrays, seed):
    """The backward graph's inputs, bound by role (as the compiled runner binds them)."""
    outs = interpret(forward, arrays)
    feeds = backward_feeds(forward, backward)
    return [arrays[j] if kind == "input" else outs[j] if kind == "output" else seed(node)
            for (kind, j), node in zip(feeds.sources, backward.graph.inputs)]


def test_detach_stops_the_gradient_eagerly_and_in_backward_graphs():
    a = signed(4)
    x = graphc.tensor(a, requires_grad=True)
    F.mul(x, F.detach(x)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), a)
    program = trace(lambda t: F.sum(F.mul(t, F.detach(t))), graphc.tensor(a))
    backward = build_backward(program.graph, [program.graph.inputs[0].id])
    feed = backward_feed(with_saved_outputs(program.graph, backward.saved), backward, [a],
                         lambda node: np.ones((), "float64"))
    (grad,) = interpret(backward.graph, feed)
    np.testing.assert_allclose(grad, a)


def test_max_pool_through_windows_padded_with_minus_infinity():
    """amax over windows that read -inf at padding: the padding never takes gradient."""
    tables = [graphc.tensor(window_table(5, 3, 2, (1, 1), 1)), graphc.tensor(window_table(4, 2, 1, (1, 0), 1))]
    check_against_finite_differences(lambda a: F.amax(window_gather(a, tables, -np.inf), (4, 5)),
                                     [signed(2, 3, 5, 4)])


def test_convolution_gradients_match_finite_differences():
    from graphc.nn.functional_conv import convolution
    for groups, mode in ((1, "zeros"), (2, "circular")):
        check_against_finite_differences(
            lambda x, w, b: convolution(x, w, b, (2, 1), 1, (1, 2), groups, 2, mode),
            [signed(2, 4, 5, 6), signed(4, 4 // groups, 3, 2), signed(4)])


def test_sum_pool_and_its_backward_match_finite_differences():
    check_against_finite_differences(lambda a: pool(a, "sum", **POOL), [signed(2, 3, 5, 6)])
    check_against_finite_differences(lambda g: pool_backward(g, (), "sum", size=(5, 6), **POOL),
                                     [signed(*POOL_OUT.shape)])
