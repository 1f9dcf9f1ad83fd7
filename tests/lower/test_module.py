"""The entry point's ABI: outputs, aliases, constants, updates, workspace, kernel names."""
import numpy as np
import pytest

from graphc.ir import GraphBuilder, interpret
from graphc.lower import LoweringError, lower
from graphc.program.plan import plan_buffers
from harness import Native

rng = np.random.default_rng(5)


def mlp_graph():
    """x [4,8] -> relu(x @ W.T + b) -> sum over features, with a loss-like scalar."""
    g = GraphBuilder()
    x = g.input("x", "data", (4, 8), "float32")
    w = g.input("fc1.weight", "param", (16, 8), "float32")
    bias = g.input("fc1.bias", "param", (16,), "float32")
    h = g.add("matmul", (x, w), {"transpose_a": False, "transpose_b": True}, (4, 16), "float32",
              module_path="fc1", module_type="Linear")
    h = g.add("add", (h, bias), {}, (4, 16), "float32", module_path="fc1", module_type="Linear")
    h = g.add("relu", (h,), {}, (4, 16), "float32", module_path="act", module_type="ReLU")
    flat = g.add("reshape", (h,), {"shape": (64,)}, (64,), "float32")
    total = g.add("sum", (flat,), {"dims": (0,), "keepdim": False}, (), "float32")
    return g.finish([h, total], ["hidden", "total"])


def test_chain_matches_the_reference_interpreter():
    graph = mlp_graph()
    inputs = [rng.standard_normal(n.shape).astype(np.float32) for n in graph.inputs]
    for native, expected in zip(Native(graph)(*inputs), interpret(graph, inputs)):
        np.testing.assert_allclose(native, expected, rtol=1e-5, atol=1e-5)


def test_kernels_are_named_and_tagged_with_their_node():
    text = lower(mlp_graph()).ir_text
    assert 'define internal void @"k3_matmul_fc1"(ptr noalias' in text
    assert '"k5_relu_act"' in text and "reshape" not in text.split("!0 =")[0].replace('"', "")
    assert "%5 : f32[4,16] = relu %4" in text


def test_outputs_that_are_inputs_aliases_duplicates_and_constants():
    g = GraphBuilder()
    x = g.input("x", "data", (2, 3), "float32")
    c = g.constant(np.arange(6, dtype=np.float64).reshape(3, 2) / 7)
    y = g.add("exp", (x,), {}, (2, 3), "float32")
    y_flat = g.add("reshape", (y,), {"shape": (6,)}, (6,), "float32")
    x_flat = g.add("detach", (g.add("reshape", (x,), {"shape": (3, 2)}, (3, 2), "float32"),), {}, (3, 2), "float32")
    c2 = g.add("mul", (c, c), {}, (3, 2), "float64")
    graph = g.finish([x, y, y_flat, x_flat, y, c, c2])
    xs = rng.standard_normal((2, 3)).astype(np.float32)
    for native, expected in zip(Native(graph)(xs), interpret(graph, [xs])):
        assert native.dtype == expected.dtype
        np.testing.assert_allclose(native, expected, rtol=1e-6)


def test_updates_run_last_and_write_into_input_buffers():
    g = GraphBuilder()
    w = g.input("w", "param", (3, 5), "float64")
    grad = g.input("grad", "data", (3, 5), "float64")
    step = g.input("step", "state", (), "int64")
    new_w = g.add("sub", (w, g.add("mul", (grad, g.constant(0.5)), {}, (3, 5), "float64")), {}, (3, 5), "float64")
    new_step = g.add("add", (step, g.constant(np.int64(1))), {}, (), "int64")
    loss = g.add("sum", (new_w,), {"dims": (0, 1), "keepdim": False}, (), "float64")
    graph = g.finish([loss, w], ["loss", "old_w"], updates=[(new_w, w), (new_step, step)])
    weights, grads, steps = rng.standard_normal((3, 5)), rng.standard_normal((3, 5)), np.array(41)
    original_w, expected_w = weights.copy(), weights - 0.5 * grads
    loss_out, old_w = Native(graph)(weights, grads, steps)
    np.testing.assert_allclose(weights, expected_w)  # updated in place
    assert steps == 42
    np.testing.assert_allclose(loss_out, expected_w.sum())
    np.testing.assert_array_equal(old_w, original_w)  # read before the update


def test_workspace_slots_are_aligned_and_disjoint():
    graph = mlp_graph()
    lowered, locations = lower(graph), plan_buffers(graph)
    slots = sorted(loc.index for loc in locations.values() if loc.kind == "workspace")
    assert slots == [0, 256] and all(s % 64 == 0 for s in slots)
    assert lowered.workspace_bytes == 256 + 4 * 16 * 4
    assert lowered.input_ids == (0, 1, 2) and lowered.output_ids == graph.outputs


def test_a_graph_without_intermediates_still_asks_for_a_workspace():
    g = GraphBuilder()
    x = g.input("x", "data", (3,), "float32")
    assert lower(g.finish([x])).workspace_bytes >= 1


def test_errors_name_the_node():
    g = GraphBuilder()
    x = g.input("x", "data", (3,), "float32")
    y = g.add("fancy_op", (x,), {}, (3,), "float32", module_path="block.0")
    with pytest.raises(LoweringError, match="fancy_op.*block.0"):
        lower(g.finish([y]))
    g = GraphBuilder()
    x = g.input("x", "data", (3,), "float32")
    y = g.add("div", (g.add("cast", (x,), {"dtype": "int64"}, (3,), "int64"),) * 2, {}, (3,), "int64", source="m.py:3")
    with pytest.raises(LoweringError, match="(?s)div.*int64.*m.py:3"):
        lower(g.finish([y]))
