"""fold_constants evaluates constant-only nodes at compile time, keeping their provenance."""
import numpy as np
from hypothesis import given, settings

from graphc.ir import GraphBuilder, verify
from graphc.passes import dead_code, fold_constants, simplify
from pass_graphs import assert_same_results, graphs, lines, random_inputs


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


def test_fold_constants_golden_text():
    b = GraphBuilder()
    x = b.input("x", "user", (2,), "float32")
    two = b.constant(np.float32(2.0))
    k = b.add("neg", [two], {}, (), "float32", module_path="head", module_type="Scale", source="model.py:3")
    graph = verify(fold_constants(b.finish([b.add("mul", [x, k], {}, (2,), "float32")])))
    assert str(graph).splitlines() == lines("""
        graph (1 inputs, 4 nodes):
          %0 : f32[2] = input x  (user 0)
          %1 : f32[] = constant 2.
          %2 : f32[] = constant -2.                                     # head (Scale)  model.py:3
          %3 : f32[2] = mul %0, %2
          return %3 out0
        """)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_fold_constants_keeps_results_on_random_graphs(graph):
    assert_same_results(graph, verify(fold_constants(graph)), random_inputs(graph))
