"""IR records: frozen nodes, printing, the verifier and the reference interpreter."""
import dataclasses

import numpy as np
import pytest

from graphc.ir import Graph, GraphBuilder, InterpretError, Verifier, VerifyError, interpret, verify
from graphc.ir.node import Literal


def small_graph():
    b = GraphBuilder()
    x = b.input("x", "user", (2, 3), "float32")
    w = b.input("fc.weight", "param", (4, 3), "float32")
    y = b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": True}, (2, 4), "float32",
              module_path="fc", module_type="Linear", source="mlp.py:14")
    z = b.add("relu", [y], {}, (2, 4), "float32", module_path="act", module_type="ReLU", source="mlp.py:15")
    return b.finish([z], ["out"])


def test_nodes_are_frozen_and_hashable():
    graph = small_graph()
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.nodes[0].op = "relu"
    assert len({graph.nodes[2], graph.nodes[2]}) == 1


def test_printed_form_names_module_and_source():
    lines = str(small_graph()).splitlines()
    assert lines[0] == "graph (2 inputs, 4 nodes):"
    assert lines[1] == "  %0 : f32[2,3] = input x  (user 0)"
    assert lines[3].startswith("  %2 : f32[2,4] = matmul %0, %1  {transpose_a=False, transpose_b=True}")
    assert lines[3].endswith("# fc (Linear)  mlp.py:14")
    assert lines[-1] == "  return %3 out"


def test_verify_accepts_a_good_graph_and_rejects_wrong_shapes():
    graph = verify(small_graph())
    bad_node = dataclasses.replace(graph.nodes[3], shape=(4, 2))
    bad = Graph(graph.nodes[:3] + (bad_node,), graph.outputs, graph.output_names)
    with pytest.raises(VerifyError, match="relu"):
        verify(bad)


def test_a_pipeline_verifier_checks_only_what_a_pass_made(monkeypatch):
    from graphc.ops.registry import OPS
    inferred = []
    for op in ("matmul", "relu"):
        rule = OPS[op].infer
        monkeypatch.setitem(OPS, op, dataclasses.replace(
            OPS[op], infer=lambda *a, _rule=rule, _op=op, **k: inferred.append(_op) or _rule(*a, **k)))
    check, graph = Verifier(), small_graph()
    check(graph)
    assert inferred == ["matmul", "relu"]
    inferred.clear()
    check(graph)  # the same nodes: nothing to infer again
    assert inferred == []
    wider = dataclasses.replace(graph.nodes[2], shape=(2, 5))  # a new matmul node: checked, and so is its reader
    with pytest.raises(VerifyError, match="matmul"):
        check(Graph(graph.nodes[:2] + (wider,) + graph.nodes[3:], graph.outputs, graph.output_names))
    narrowed_input = dataclasses.replace(graph.nodes[1], shape=(4, 2))  # relu and matmul are the same objects
    with pytest.raises(VerifyError, match="matmul"):  # but matmul reads a new node
        check(Graph(graph.nodes[:1] + (narrowed_input,) + graph.nodes[2:], graph.outputs, graph.output_names))


def test_verify_rejects_forward_references_and_unknown_ops():
    graph = small_graph()
    swapped = Graph((graph.nodes[0], dataclasses.replace(graph.nodes[1], inputs=(3,))) + graph.nodes[2:],
                    graph.outputs, graph.output_names)
    with pytest.raises(VerifyError):
        verify(swapped)
    unknown = Graph(graph.nodes[:3] + (dataclasses.replace(graph.nodes[3], op="frobnicate"),),
                    graph.outputs, graph.output_names)
    with pytest.raises(VerifyError, match="unknown op"):
        verify(unknown)


def test_interpreter_runs_and_applies_updates():
    b = GraphBuilder()
    p = b.input("p", "param", (3,), "float32")
    g = b.input("g", "user", (3,), "float32")
    new = b.add("sub", [p, g], {}, (3,), "float32")
    graph = verify(b.finish([new], ["out"], [(new, p)]))
    params = np.ones(3, np.float32)
    (out,) = interpret(graph, [params, np.full(3, 0.25, np.float32)])
    np.testing.assert_allclose(params, 0.75)
    np.testing.assert_allclose(out, 0.75)


def test_interpreter_error_names_the_node():
    graph = small_graph()
    with pytest.raises(InterpretError, match="matmul"):
        interpret(graph, [np.zeros((2, 3), np.float32), np.zeros((5, 5), np.float32)])


def test_literal_round_trips_and_keeps_scalars_zero_dimensional():
    lit = Literal.of(2.5, "float32")
    assert lit.shape == () and lit.array().dtype == np.float32 and float(lit.array()) == 2.5
    assert Literal.of([1, 2]) == Literal.of([1, 2])
