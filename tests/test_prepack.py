"""Weights packed once in the prepare graph: an inference matmul that takes the packed
micro-kernel reads pack_panels(W), made by the prepare graph, instead of packing W every call."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.ir import GraphBuilder, interpret
from graphc.lower.microkernel import panel_tile
from graphc.lower.kernel import llvm_type
from graphc.ops import OPS
from graphc.ops.linalg import unpack_panels
from graphc.prepare import hoist, prepack
from graphc.stages import Driver

rng = np.random.default_rng(11)


@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("n, nr", [(10, 4), (12, 4), (3, 8)])
def test_pack_panels_reference_pads_and_unpacks(transpose_b, n, nr):
    b = rng.standard_normal((n, 5) if transpose_b else (5, n))
    panels = OPS["pack_panels"].reference(b, transpose_b=transpose_b, nr=nr)
    assert panels.shape == (-(-n // nr), 5, nr)
    np.testing.assert_array_equal(unpack_panels(panels, n), b.T if transpose_b else b)
    assert (panels.transpose(1, 0, 2).reshape(5, -1)[:, n:] == 0).all()


def _linear_graph(rows: int, n: int, k: int, dtype: str, transpose_b: bool = True):
    g = GraphBuilder()
    x = g.input("x", "user", (rows, k), dtype)
    w = g.input("w", "param", (n, k) if transpose_b else (k, n), dtype)
    bias = g.input("b", "param", (n,), dtype)
    y = g.add("matmul", (x, w), {"transpose_a": False, "transpose_b": transpose_b}, (rows, n), dtype,
              module_path="fc", module_type="Linear")
    out = g.add("relu", (g.add("add", (y, bias), {}, (rows, n), dtype),), {}, (rows, n), dtype)
    return g.finish([out])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("n", [64, 100, 130])  # a whole number of panels, or a zero-padded last one
def test_packed_products_keep_their_results_compiled(dtype, transpose_b, n):
    graph = _linear_graph(72, n, 70, dtype, transpose_b)
    packed = prepack(graph)
    nr = panel_tile(llvm_type(dtype))[1] * panel_tile(llvm_type(dtype))[2]
    (pack,) = [node for node in packed.nodes if node.op == "pack_panels"]
    assert pack.attr("nr") == nr and pack.shape == (-(-n // nr), 70, nr)
    inputs = [rng.standard_normal(node.shape).astype(dtype) for node in graph.inputs]
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(interpret(packed, inputs)[0], interpret(graph, inputs)[0], **tol)
    split = hoist(graph)
    assert [n.op for n in split.prepare.nodes if n.op != "input"] == ["pack_panels"]
    from graphc.stages import compile_graph
    prepared = compile_graph(split.prepare).run(inputs[1:2])
    got = compile_graph(split.main).run([*inputs, *prepared])[0]
    np.testing.assert_allclose(got, interpret(graph, inputs)[0], **tol)


def test_small_batches_and_trained_weights_are_not_packed():
    assert prepack(_linear_graph(8, 64, 70, "float32")) == _linear_graph(8, 64, 70, "float32")  # too few rows
    g = GraphBuilder()
    x = g.input("x", "user", (72, 70), "float32")
    w = g.input("w", "user", (64, 70), "float32")  # not a parameter
    y = g.add("matmul", (x, w), {"transpose_a": False, "transpose_b": True}, (72, 64), "float32")
    graph = g.finish([y])
    assert prepack(graph) is graph


def test_a_compiled_mlp_packs_its_weights_once_and_sees_new_ones():
    model = nn.Sequential(nn.Linear(96, 80), nn.ReLU(), nn.Linear(80, 24)).eval()
    seen = []
    program = graphc.trace(model, graphc.randn(64, 96))
    from graphc.compiled import build_inference
    build_inference(program, Driver(seen.append), "test")
    prepared = [s.value for s in seen if s.name == "prepared"][-1]
    assert sum(n.op == "pack_panels" for n in prepared.prepare.nodes) == 2
    compiled, x = graphc.compile(model), graphc.randn(64, 96)
    with graphc.no_grad():
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
        model[0].weight.data.mul_(-1.5)  # packed again before the next call
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
        model.load_state_dict(nn.Sequential(nn.Linear(96, 80), nn.ReLU(), nn.Linear(80, 24)).state_dict())
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
