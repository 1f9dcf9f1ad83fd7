"""Graphs the pass tests share: a traced sample program, and random graphs (hypothesis) full of
what the passes rewrite: identities with ±0 and 1, double negations, reshapes, transposes into
matmuls, duplicate nodes, constant-only subexpressions and dead values."""
from __future__ import annotations

from textwrap import dedent

import numpy as np
from hypothesis import strategies as st

import graphc
from graphc.ir import Graph, GraphBuilder, interpret, verify
from graphc.ops import functions as F
from graphc.ops.registry import OPS, ShapeError, TensorType
from graphc.passes.rules import rewrite
from graphc.trace import trace

rng = np.random.default_rng(0)


def sample_program():
    w = graphc.tensor(rng.standard_normal((5, 4)).astype(np.float32))

    def f(x):
        a = F.matmul(x, w.t())
        b = F.matmul(x, w.t())          # duplicate of a: cse
        c = a * 1.0 + 0.0               # identities: simplify
        k = graphc.tensor(np.float32(2.0)) * graphc.tensor(np.float32(3.0))  # constant: fold
        unused = F.exp(x)               # dead
        return F.relu(c + b) * k
    return trace(f, graphc.tensor(rng.standard_normal((3, 4)).astype(np.float32)))


CONSTANTS = (1.0, -0.0, 0.0, 2.0, 0.5)
FLOAT_ONLY = {"div", "exp", "tanh", "relu"}


def emit(b: GraphBuilder, op: str, inputs: list[int], **attrs) -> int | None:
    """Append `op` with the type its rule gives, or nothing (None) if the rule rejects the operands."""
    types = [TensorType(b.nodes[i].shape, b.nodes[i].dtype) for i in inputs]
    if op in FLOAT_ONLY and types[0].dtype == "int64":
        return None
    try:
        out = OPS[op].infer(*types, **attrs)
    except ShapeError:
        return None
    return b.add(op, inputs, attrs, out.shape, out.dtype)


def _step(b: GraphBuilder, values: list[int], kind: int, i: int, j: int, dtype: str) -> int | None:
    a, c = values[i % len(values)], values[j % len(values)]
    shape = b.nodes[a].shape
    if kind == 0:
        return emit(b, ("add", "sub", "mul", "div", "maximum")[j % 5], [a, c])
    if kind in (1, 7):  # with a scalar constant of one element; kind 7: of two constants (folds)
        op = ("add", "sub", "mul", "div")[j % 4]
        value = (-0.0, 0.0, 1.0, 1.0)[j % 4] if j & 4 else CONSTANTS[j // 8 % 5]  # half the time op's identity
        k = b.constant(np.array(value, dtype).reshape(() if i & 2 else (1,)))
        if kind == 7:
            a = emit(b, "neg", [b.constant(np.array(CONSTANTS[i % 5], dtype))])
        return emit(b, op, [k, a] if i & 1 else [a, k])
    if kind == 2:
        return emit(b, ("neg", "exp", "tanh", "relu")[j % 4], [a])
    if kind == 3:
        size = int(np.prod(shape, dtype=np.int64))
        targets = [shape, (size,), (1,) + shape, b.nodes[c].shape]
        return emit(b, "reshape", [a], shape=targets[j % 4])
    if kind == 4 and len(shape) >= 2:
        dims = tuple(range(len(shape) - 2)) + (len(shape) - 1, len(shape) - 2)
        return emit(b, "permute", [a], dims=dims if j & 1 else tuple(reversed(range(len(shape)))))
    if kind == 5 and len(shape) >= 2:  # a matmul reading one or both operands transposed
        swap = tuple(range(len(shape) - 2)) + (len(shape) - 1, len(shape) - 2)
        at = emit(b, "permute", [a], dims=swap)
        left, right = [(a, at), (at, a), (at, c), (c, at)][j % 4]
        return emit(b, "matmul", [left, right], transpose_a=bool(i & 1), transpose_b=bool(i & 2))
    if kind == 6:  # the same node again: cse
        last = b.nodes[values[-1]]
        return None if last.op == "input" else b.copy_node(last, last.inputs)
    return None


@st.composite
def graphs(draw) -> Graph:
    dtype = draw(st.sampled_from(["float32", "float64", "int64"]))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    step = st.tuples(st.integers(0, 7), st.integers(0, 63), st.integers(0, 63))  # kind, operand, variant
    steps = draw(st.lists(step, min_size=1, max_size=12))
    b = GraphBuilder()
    values = [b.input("x", "user", shape, dtype), b.input("y", "user", shape, dtype)]
    for kind, i, j in steps:
        made = _step(b, values, kind, i, j, dtype)
        if made is not None:
            values.append(made)
    return b.finish([values[-1], values[len(values) // 2]])


def joint_kernels(model, shape: tuple[int, ...], wrt_kind: str) -> tuple[Graph, Graph]:
    """The model's joint forward+backward graph w.r.t. its inputs of one role kind ('user':
    the input, 'param': the parameters) after PIPELINE, and that graph after KERNEL_PIPELINE."""
    from graphc.partition import joint_graph
    from graphc.passes import KERNEL_PIPELINE, PIPELINE, optimize
    graphc.manual_seed(3)
    program = trace(model, graphc.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True))
    wrt = [n.id for n in program.graph.inputs if n.role.kind == wrt_kind]
    graph = optimize(joint_graph(program.graph, wrt).graph, PIPELINE)
    return graph, optimize(graph, KERNEL_PIPELINE)


def random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    """Values for the graph's inputs, a quarter of them ±0 (floats) so signs of zero are tested."""
    r = np.random.default_rng(seed)
    arrays = []
    for node in graph.inputs:
        if node.dtype == "int64":
            arrays.append(r.integers(-3, 4, node.shape))
            continue
        a = r.standard_normal(node.shape).astype(node.dtype)
        signed_zeros = np.copysign(np.zeros_like(a), r.standard_normal(node.shape))
        arrays.append(np.where(r.random(node.shape) < 0.25, signed_zeros, a).astype(node.dtype))
    return arrays


def assert_same_results(before: Graph, after: Graph, arrays: list[np.ndarray], exact: bool = True) -> None:
    """The reference interpreter gives `after` the results of `before`: bit for bit (signs of zero
    and NaNs included) when `exact`, else within rounding (a matmul's sums may run in another order)."""
    for got, expected in zip(interpret(after, arrays), interpret(before, arrays), strict=True):
        assert (got.shape, got.dtype) == (expected.shape, expected.dtype)
        if exact:
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
        else:
            tol = 1e-5 if got.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol, equal_nan=True)


def lines(text: str) -> list[str]:
    """A golden text, written indented in a test, as the lines `str(graph)` prints."""
    return dedent(text).strip("\n").splitlines()


def assert_rule_golden(rule, pass_, graph: Graph, before: str, after: str, arrays: list[np.ndarray],
                       exact: bool = True) -> None:
    """`graph` prints as `before`; the rule alone and its whole pass (so no other rule of the table
    applies) turn it into `after`, with the same results on `arrays`."""
    assert str(graph).splitlines() == lines(before)
    rewritten = verify(rewrite(graph, [rule]))
    assert str(rewritten).splitlines() == lines(after)
    assert str(pass_(graph)).splitlines() == lines(after)
    assert_same_results(graph, rewritten, arrays, exact)
