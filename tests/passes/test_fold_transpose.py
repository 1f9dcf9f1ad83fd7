"""fold_transpose_into_matmul: one golden-text test per rule, the batched case it leaves, and
results kept on random graphs."""
import numpy as np
import pytest
from hypothesis import given, settings

from graphc.ir import GraphBuilder, interpret, verify
from graphc.passes import dead_code, fold_transpose_into_matmul
from graphc.passes.fold_transpose import RULES
from pass_graphs import assert_rule_golden, assert_same_results, graphs, random_inputs, rng

AT = dict(module_path="fc1", module_type="Linear", source="model.py:12")  # the matched node's provenance
FLAGS = {"transpose_a": False, "transpose_b": False}


def transposed_a(b):
    a, w = b.input("a", "user", (4, 3), "float32"), b.input("w", "user", (4, 5), "float32")
    at = b.add("permute", [a], {"dims": (1, 0)}, (3, 4), "float32")
    return b.add("matmul", [at, w], FLAGS, (3, 5), "float32", **AT)


def transposed_b(b):
    x, w = b.input("x", "user", (3, 4), "float32"), b.input("w", "user", (5, 4), "float32")
    wt = b.add("permute", [w], {"dims": (1, 0)}, (4, 5), "float32")
    return b.add("matmul", [x, wt], FLAGS, (3, 5), "float32", **AT)


# rule comment -> (graph builder, printed graph before, printed graph after the rule alone)
GOLDEN = {
    "matmul(xᵀ, y) -> matmul(x, y, not transpose_a)": (transposed_a, """
        graph (2 inputs, 4 nodes):
          %0 : f32[4,3] = input a  (user 0)
          %1 : f32[4,5] = input w  (user 1)
          %2 : f32[3,4] = permute %0  {dims=(1, 0)}
          %3 : f32[3,5] = matmul %2, %1  {transpose_a=False, transpose_b=False}  # fc1 (Linear)  model.py:12
          return %3 out0
        """, """
        graph (2 inputs, 4 nodes):
          %0 : f32[4,3] = input a  (user 0)
          %1 : f32[4,5] = input w  (user 1)
          %2 : f32[3,4] = permute %0  {dims=(1, 0)}
          %3 : f32[3,5] = matmul %0, %1  {transpose_a=True, transpose_b=False}  # fc1 (Linear)  model.py:12
          return %3 out0
        """),
    "matmul(x, yᵀ) -> matmul(x, y, not transpose_b)": (transposed_b, """
        graph (2 inputs, 4 nodes):
          %0 : f32[3,4] = input x  (user 0)
          %1 : f32[5,4] = input w  (user 1)
          %2 : f32[4,5] = permute %1  {dims=(1, 0)}
          %3 : f32[3,5] = matmul %0, %2  {transpose_a=False, transpose_b=False}  # fc1 (Linear)  model.py:12
          return %3 out0
        """, """
        graph (2 inputs, 4 nodes):
          %0 : f32[3,4] = input x  (user 0)
          %1 : f32[5,4] = input w  (user 1)
          %2 : f32[4,5] = permute %1  {dims=(1, 0)}
          %3 : f32[3,5] = matmul %0, %1  {transpose_a=False, transpose_b=True}  # fc1 (Linear)  model.py:12
          return %3 out0
        """),
}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.comment)
def test_rule_golden_text(rule):
    build, before, after = GOLDEN[rule.comment]
    b = GraphBuilder()
    graph = b.finish([build(b)])
    assert_rule_golden(rule, fold_transpose_into_matmul, graph, before, after, random_inputs(graph), exact=False)


def test_every_rule_has_a_golden_text():
    assert [rule.comment for rule in RULES] == list(GOLDEN)


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


@pytest.mark.parametrize("w_shape, folded", [((2, 4, 5), True), ((4, 5), False)])
def test_a_batched_transposed_a_folds_only_against_a_batched_b(w_shape, folded):
    b = GraphBuilder()
    a = b.input("a", "user", (2, 4, 3), "float32")
    w = b.input("w", "user", w_shape, "float32")
    at = b.add("permute", [a], {"dims": (0, 2, 1)}, (2, 3, 4), "float32")
    m = b.add("matmul", [at, w], FLAGS, (2, 3, 5), "float32")
    graph = verify(dead_code(fold_transpose_into_matmul(b.finish([m]))))
    assert ("permute" not in [n.op for n in graph.nodes]) is folded
    assert graph.nodes[graph.outputs[0]].attr("transpose_a") is folded


def test_a_transposed_transpose_folds_twice():
    b = GraphBuilder()
    x, w = b.input("x", "user", (3, 4), "float32"), b.input("w", "user", (4, 5), "float32")
    wt = b.add("permute", [w], {"dims": (1, 0)}, (5, 4), "float32")
    wtt = b.add("permute", [wt], {"dims": (1, 0)}, (4, 5), "float32")
    graph = b.finish([b.add("matmul", [x, wtt], FLAGS, (3, 5), "float32")])
    folded = verify(dead_code(fold_transpose_into_matmul(graph)))
    assert [n.op for n in folded.nodes] == ["input", "input", "matmul"]
    assert folded.nodes[2].inputs == (0, 1) and not folded.nodes[2].attr("transpose_b")


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_fold_transpose_keeps_results_on_random_graphs(graph):
    once = verify(fold_transpose_into_matmul(graph))
    assert_same_results(graph, once, random_inputs(graph), exact=False)
    assert str(fold_transpose_into_matmul(once)) == str(once)  # a fixpoint: no rule applies any more
