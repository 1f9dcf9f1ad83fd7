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
