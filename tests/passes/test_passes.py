"""Each pass keeps results (reference interpreter before and after) and does what it says."""
import numpy as np
import pytest

import graphc
from graphc.ir import GraphBuilder, interpret, verify
from graphc.ops import functions as F
from graphc.passes import KERNEL_PIPELINE, PIPELINE, cse, dead_code, fold_constants, fold_transpose_into_matmul, optimize, simplify
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


@pytest.mark.parametrize("pass_", PIPELINE + KERNEL_PIPELINE, ids=lambda p: p.__name__)
def test_pass_keeps_results(pass_):
    program = sample_program()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    before = interpret(program.graph, [x])
    after_graph = verify(pass_(program.graph))
    np.testing.assert_allclose(interpret(after_graph, [x])[0], before[0], rtol=1e-6)


def test_pipeline_result_is_small_and_equal():
    program = sample_program()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    optimized = optimize(program.graph)
    np.testing.assert_allclose(interpret(optimized, [x])[0], interpret(program.graph, [x])[0], rtol=1e-6)
    ops = [n.op for n in optimized.nodes]
    assert ops.count("matmul") == 1 and "exp" not in ops and "permute" not in ops
    assert len([n for n in optimized.nodes if n.op == "constant"]) >= 1  # w.t() of a captured tensor folded


def test_dead_code_keeps_inputs_and_drops_unused_nodes():
    program = sample_program()
    graph = dead_code(program.graph)
    assert "exp" not in [n.op for n in graph.nodes]
    assert len(graph.inputs) == len(program.graph.inputs)


def test_cse_merges_identical_nodes():
    b = GraphBuilder()
    x = b.input("x", "user", (4,), "float32")
    e1 = b.add("exp", [x], {}, (4,), "float32")
    e2 = b.add("exp", [x], {}, (4,), "float32")
    s = b.add("add", [e1, e2], {}, (4,), "float32")
    graph = verify(cse(b.finish([s])))
    assert [n.op for n in graph.nodes] == ["input", "exp", "add"]
    assert graph.nodes[2].inputs == (1, 1)


def test_fold_constants_and_simplify_golden_text():
    b = GraphBuilder()
    x = b.input("x", "user", (2,), "float32")
    one = b.constant(np.float32(1.0))
    two = b.constant(np.float32(2.0))
    k = b.add("sub", [two, one], {}, (), "float32")       # folds to 1.0
    y = b.add("mul", [x, k], {}, (2,), "float32")         # x * 1 -> x
    z = b.add("neg", [y], {}, (2,), "float32")
    graph = dead_code(simplify(fold_constants(b.finish([z]))))
    assert str(graph).splitlines() == [
        "graph (1 inputs, 2 nodes):",
        "  %0 : f32[2] = input x  (user 0)",
        "  %1 : f32[2] = neg %0",
        "  return %1 out0",
    ]


def test_fold_transpose_into_matmul_sets_flags():
    b = GraphBuilder()
    a = b.input("a", "user", (4, 3), "float32")
    w = b.input("w", "user", (5, 4), "float32")
    at = b.add("permute", [a], {"dims": (1, 0)}, (3, 4), "float32")
    wt = b.add("permute", [w], {"dims": (1, 0)}, (4, 5), "float32")
    m = b.add("matmul", [at, wt], {"transpose_a": False, "transpose_b": False}, (3, 5), "float32")
    graph = dead_code(fold_transpose_into_matmul(b.finish([m])))
    (mm,) = [n for n in graph.nodes if n.op == "matmul"]
    assert mm.attr("transpose_a") and mm.attr("transpose_b") and mm.inputs == (0, 1)
    arrays = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32)]
    np.testing.assert_allclose(interpret(graph, arrays)[0], arrays[0].T @ arrays[1].T, rtol=1e-5)


def test_fuse_elementwise_makes_one_kernel_per_chain_golden_text():
    from graphc.passes import fuse_elementwise

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


@pytest.mark.parametrize("op, zero, removed", [("add", -0.0, True), ("add", 0.0, False), ("sub", 0.0, True),
                                               ("sub", -0.0, False)])
def test_simplify_drops_only_zeros_that_keep_the_sign_of_zero(op, zero, removed):
    b = GraphBuilder()
    x = b.input("x", "user", (2,), "float32")
    z = b.constant(np.float32(zero))
    graph = dead_code(simplify(b.finish([b.add(op, [x, z], {}, (2,), "float32")])))
    assert (graph.outputs[0] == 0) is removed
    x = np.array([-0.0, 1.0], np.float32)
    expected = x + np.float32(zero) if op == "add" else x - np.float32(zero)
    np.testing.assert_array_equal(np.signbit(interpret(graph, [x])[0]), np.signbit(expected))
