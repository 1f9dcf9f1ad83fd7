"""fuse_matmul_epilogue folds the elementwise user of a matmul into one matmul_epilogue node."""
import numpy as np
import pytest
from hypothesis import given, settings

import graphc
import graphc.nn as nn
from graphc.ir import GraphBuilder, interpret, verify
from graphc.ops.fused import Body
from graphc.passes import PIPELINE, fuse_elementwise, fuse_matmul_epilogue, optimize
from graphc.trace import trace
from pass_graphs import assert_same_results, graphs, lines, random_inputs, rng


def eval_forward(model, *shapes):
    model.eval()
    with graphc.no_grad():
        program = trace(model, *(graphc.tensor(rng.standard_normal(s).astype(np.float32)) for s in shapes))
    return optimize(program.graph, PIPELINE)


def test_linear_relu_becomes_one_node_golden_text():
    graphc.manual_seed(0)
    graph = verify(fuse_elementwise(eval_forward(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4))))
    fused = verify(fuse_matmul_epilogue(graph))
    assert [line.split("  #")[0].rstrip() for line in str(fused).splitlines()] == lines("""
        graph (3 inputs, 4 nodes):
          %0 : f32[2,4] = input input  (user 0)
          %1 : f32[3,4] = input 0.weight  (param)
          %2 : f32[3] = input 0.bias  (param)
          %3 : f32[2,3] = matmul_epilogue %0, %1, %2  {body=relu(add(in0, in1)), transpose_a=False, transpose_b=True}
          return %3 out
    """)
    assert fused.nodes[3].module_path == "0+1" and fused.nodes[3].module_type == "Linear+ReLU"
    arrays = random_inputs(graph)
    assert_same_results(graph, fused, arrays, exact=False)


def _product_and_user(user_op, extra_shape=(5,), product_shape=(3, 5), outputs=lambda mm, user: [user], dot=True):
    b = GraphBuilder()
    x = b.input("x", "user", product_shape[:-1] + (4,), "float32")
    w = b.input("w", "user", (product_shape[-1], 4) if dot else (4, product_shape[-1]), "float32")
    extra = b.input("e", "user", extra_shape, "float32")
    mm = b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": dot}, product_shape, "float32")
    out_shape = np.broadcast_shapes(product_shape, extra_shape)
    user = b.add(user_op, [mm, mm] if user_op == "mul" else [extra, mm], {}, out_shape, "float32")
    return b.finish(outputs(mm, user))


@pytest.mark.parametrize("graph, why", [
    (_product_and_user("sub", (1, 5)), "fuses"),
    (_product_and_user("sub", outputs=lambda mm, user: [user, mm]), "the product is an output"),
    (_product_and_user("mul"), "the product is read twice"),
    (_product_and_user("sub", (2, 3, 5)), "the user is larger than the product"),
    (_product_and_user("sub", (2, 1, 5), (2, 3, 5)), "the operand does not step by output rows"),
    (_product_and_user("sub", (1, 5), dot=False), "the product is not a dot-product tile (x @ w.T)"),
])
def test_fuses_only_what_the_epilogue_can_read(graph, why):
    fused = verify(fuse_matmul_epilogue(graph))
    assert any(n.op == "matmul_epilogue" for n in fused.nodes) == (why == "fuses"), why
    assert_same_results(graph, fused, random_inputs(graph), exact=False)


def test_operands_of_the_body_are_renumbered_after_the_product():
    b = GraphBuilder()
    x, w = b.input("x", "user", (3, 4), "float32"), b.input("w", "user", (5, 4), "float32")
    scale, shift = b.input("scale", "user", (), "float32"), b.input("shift", "user", (3, 1), "float32")
    mm = b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": True}, (3, 5), "float32")
    body = Body((("mul", ("in0", "in2"), (), "float32"), ("sub", ("s0", "in1"), (), "float32")))
    user = b.add("fused", [scale, shift, mm], {"body": body}, (3, 5), "float32")
    graph = b.finish([user])
    (node,) = [n for n in verify(fuse_matmul_epilogue(graph)).nodes if n.op == "matmul_epilogue"]
    assert repr(node.attr("body")) == "sub(mul(in1, in0), in2)" and node.inputs == (0, 1, 2, 3)
    assert_same_results(graph, fuse_matmul_epilogue(graph), random_inputs(graph), exact=False)


def test_the_mlp_forward_has_one_node_per_linear():
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 2))
    graph = eval_forward(model, (3, 6))
    fused = verify(fuse_matmul_epilogue(fuse_elementwise(graph)))
    assert [n.op for n in fused.nodes if n.op not in ("input", "constant")] == ["matmul_epilogue"] * 3
    assert [repr(n.attr("body")) for n in fused.nodes if n.op == "matmul_epilogue"] == [
        "relu(add(in0, in1))", "tanh(add(in0, in1))", "add(in0, in1)"]
    for got, expected in zip(interpret(fused, random_inputs(graph)), interpret(graph, random_inputs(graph))):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_fuse_matmul_epilogue_keeps_results_on_random_graphs(graph):
    before = verify(fuse_elementwise(graph))
    assert_same_results(before, verify(fuse_matmul_epilogue(before)), random_inputs(graph), exact=False)
