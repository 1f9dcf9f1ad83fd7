"""fuse_elementwise turns chains of same-shape elementwise nodes into one fused node."""
import numpy as np
from hypothesis import given, settings

import graphc
from graphc.ir import interpret, verify
from graphc.passes import fuse_elementwise
from graphc.trace import trace
from pass_graphs import assert_same_results, graphs, random_inputs, rng


def test_fuse_elementwise_makes_one_kernel_per_chain_golden_text():
    def sgd_momentum(p, g, buf):
        new_buf = 0.9 * buf + g
        return p - 0.1 * new_buf, new_buf

    arrays = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    program = trace(sgd_momentum, *[graphc.tensor(a) for a in arrays])
    fused = verify(fuse_elementwise(program.graph))
    assert [line.split("  #")[0].rstrip() for line in str(fused).splitlines()] == [
        "graph (3 inputs, 7 nodes):",
        "  %0 : f32[2,3] = input p  (user 0)",
        "  %1 : f32[2,3] = input g  (user 1)",
        "  %2 : f32[2,3] = input buf  (user 2)",
        "  %3 : f32[] = constant 0.9",
        "  %4 : f32[2,3] = fused %3, %2, %1  {body=add(mul(in0, in1), in2)}",
        "  %5 : f32[] = constant 0.1",
        "  %6 : f32[2,3] = fused %5, %4, %0  {body=sub(in2, mul(in0, in1))}",
        "  return %6 out0, %4 out1",
    ]
    for got, expected in zip(interpret(fused, arrays), interpret(program.graph, arrays)):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_fuse_elementwise_keeps_results_on_random_graphs(graph):
    assert_same_results(graph, verify(fuse_elementwise(graph)), random_inputs(graph))


def _ops(graph):
    return [line.split("  #")[0].rstrip() for line in str(graph).splitlines()]


def test_a_value_read_twice_inside_the_region_joins_it_golden_text():
    def f(x, y):
        t = x * y
        return t * t + t  # t has three readers, all in the region

    arrays = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2)]
    program = trace(f, *[graphc.tensor(a) for a in arrays])
    fused = verify(fuse_elementwise(program.graph))
    assert _ops(fused) == [
        "graph (2 inputs, 3 nodes):",
        "  %0 : f32[2,3] = input x  (user 0)",
        "  %1 : f32[2,3] = input y  (user 1)",
        "  %2 : f32[2,3] = fused %0, %1  {body=add(mul(mul(in0, in1), mul(in0, in1)), mul(in0, in1))}",
        "  return %2 out",
    ]
    np.testing.assert_allclose(interpret(fused, arrays)[0], interpret(program.graph, arrays)[0], rtol=1e-6)


def test_a_value_also_read_outside_stays_a_kernel_of_its_own():
    def f(x, y):
        t = x * y
        return t + 1.0, t.sum()

    program = trace(f, *[graphc.tensor(rng.standard_normal((2, 3)).astype(np.float32)) for _ in range(2)])
    fused = verify(fuse_elementwise(program.graph))
    assert [n.op for n in fused.nodes if n.op not in ("input", "constant")] == ["mul", "add", "sum"]


def test_broadcasts_are_read_through_strides_not_materialised_golden_text():
    def f(x, b):
        return (x - b.expand(4, 3)) * 2.0

    arrays = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3,)).astype(np.float32)]
    program = trace(f, *[graphc.tensor(a) for a in arrays])
    assert "expand" in str(program.graph)
    fused = verify(fuse_elementwise(program.graph))
    assert _ops(fused) == [
        "graph (2 inputs, 4 nodes):",
        "  %0 : f32[4,3] = input x  (user 0)",
        "  %1 : f32[3] = input b  (user 1)",
        "  %2 : f32[] = constant 2.",
        "  %3 : f32[4,3] = fused %0, %1, %2  {body=mul(sub(in0, in1), in2)}",
        "  return %3 out",
    ]
    np.testing.assert_allclose(interpret(fused, arrays)[0], interpret(program.graph, arrays)[0], rtol=1e-6)


def test_a_broadcast_that_alone_gives_the_shape_is_kept():
    def f(b):
        return -b.expand(4, 3)

    program = trace(f, graphc.tensor(rng.standard_normal((3,)).astype(np.float32)))
    fused = verify(fuse_elementwise(program.graph))
    assert [n.op for n in fused.nodes if n.op not in ("input", "constant")] == ["expand", "neg"]
