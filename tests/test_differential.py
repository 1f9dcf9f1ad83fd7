"""Random op chains: compiled native code against the reference interpreter (hypothesis)."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

import graphc
from graphc.ops import functions as F
from graphc.passes import optimize
from graphc.ir import interpret
from graphc.stages import compile_graph

UNARY = [F.neg, F.exp, F.tanh, F.sigmoid, F.relu, lambda x: F.sqrt(F.add(F.mul(x, x), 1.0)),
         lambda x: F.log(F.add(F.exp(x), 1.0))]
BINARY = [F.add, F.sub, F.mul, lambda a, b: F.div(a, F.add(F.mul(b, b), 1.0)), F.maximum,
          lambda a, b: F.where(F.gt(a, b), a, b)]


def reduce_step(x, choice):
    dims = tuple(d for d in range(x.ndim) if (choice >> d) & 1) or (x.ndim - 1,)
    keep = bool(choice & 8)
    return F.sum(x, dims, keep) if choice & 16 else F.amax(x, dims, keep)


@st.composite
def programs(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    steps = draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 63), st.integers(0, 63)), min_size=1, max_size=8))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    return shape, steps, dtype


def build(steps):
    def f(x, y):
        values = [x, y]
        for kind, i, j in steps:
            a, b = values[i % len(values)], values[j % len(values)]
            if kind == 0:
                values.append(UNARY[j % len(UNARY)](a))
            elif kind == 1 and b.ndim >= 1 and a.ndim >= 1 and b.shape[-1] in (a.shape[-1], 1):
                values.append(BINARY[j % len(BINARY)](a, F.sum(b, tuple(range(b.ndim - 1))) if b.ndim > 1 else b))
            elif kind == 2 and a.ndim >= 1:
                values.append(reduce_step(a, j))
            elif kind == 3 and a.ndim >= 2:
                values.append(F.permute(a, tuple(reversed(range(a.ndim)))))
            elif kind == 4 and a.ndim == 2:
                values.append(F.matmul(a, F.permute(a, (1, 0))))
            else:
                values.append(F.relu(a))
        return values[-1], values[len(values) // 2]
    return f


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_programs_compile_to_the_reference_result(program):
    shape, steps, dtype = program
    rng = np.random.default_rng(len(steps))
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.standard_normal(shape[-1:]).astype(dtype)
    traced = graphc.trace(build(steps), graphc.tensor(x), graphc.tensor(y))
    expected = interpret(traced.graph, [x, y])
    got = compile_graph(optimize(traced.graph)).run([x, y])
    tol = 1e-4 if dtype == "float32" else 1e-10
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_backward_graphs_compile_to_the_reference_result(program):
    from graphc.autodiff import build_backward, with_saved_outputs
    from graphc.compiled import backward_feeds
    shape, steps, dtype = program
    rng = np.random.default_rng(len(steps) + 1)
    x = rng.standard_normal(shape).astype(dtype)
    y = rng.standard_normal(shape[-1:]).astype(dtype)
    forward = optimize(graphc.trace(build(steps), graphc.tensor(x), graphc.tensor(y)).graph)
    backward = build_backward(forward, [n.id for n in forward.inputs])
    fwd = with_saved_outputs(forward, backward.saved)
    outs, sources = interpret(fwd, [x, y]), backward_feeds(fwd, backward).sources
    feed = [[x, y][j] if kind == "input" else outs[j] if kind == "output"
            else rng.standard_normal(n.shape).astype(n.dtype) for (kind, j), n in zip(sources, backward.graph.inputs)]
    expected = interpret(backward.graph, feed)
    got = compile_graph(optimize(backward.graph)).run(feed)
    tol = 1e-4 if dtype == "float32" else 1e-10
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)
