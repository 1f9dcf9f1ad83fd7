"""The rule driver: patterns (ops, captures, constants by value and sign, attributes, conditions),
replacements keeping provenance, and rewriting to a fixpoint."""
import numpy as np
import pytest

from graphc.ir import GraphBuilder, verify
from graphc.passes import simplify
from graphc.passes.rules import MAX_ROUNDS, Const, Rule, X, Y, op, rewrite
from pass_graphs import lines

add, mul, neg, maximum, reshape = map(op, ("add", "mul", "neg", "maximum", "reshape"))


def unary_graph(op_name, attrs=None, shape=(2, 3), out_shape=None):
    b = GraphBuilder()
    x = b.input("x", "user", shape, "float32")
    return b.finish([b.add(op_name, [x], attrs or {}, out_shape or shape, "float32")])


def test_chained_rules_collapse_in_one_call():
    b = GraphBuilder()
    x = b.input("x", "user", (2,), "float32")
    one, minus_zero = b.constant(np.float32(1.0)), b.constant(np.float32(-0.0))
    y = b.add("mul", [b.add("mul", [x, one], {}, (2,), "float32"), one], {}, (2,), "float32")
    graph = simplify(b.finish([b.add("add", [y, minus_zero], {}, (2,), "float32")]))  # ((x*1)*1)+(-0.0)
    assert str(graph).splitlines() == lines("""
        graph (1 inputs, 3 nodes):
          %0 : f32[2] = input x  (user 0)
          %1 : f32[] = constant 1.
          %2 : f32[] = constant -0.
          return %0 out0
        """)


def test_a_replacement_that_a_rule_matches_is_rewritten_in_the_next_round():
    b = GraphBuilder()
    x = b.input("x", "user", (2, 3), "float32")
    flat = b.add("reshape", [x], {"shape": (6,)}, (6,), "float32")
    back = b.add("reshape", [flat], {"shape": (2, 3)}, (2, 3), "float32")
    # round 1: reshape(reshape(x)) -> reshape(x) to (2, 3); round 2: that is x's own shape -> x
    assert simplify(b.finish([back])).outputs == (0,)


def test_rules_that_never_settle_raise():
    forever = Rule(neg(X), lambda match, X: match.node_with([X]), "neg(x) -> neg(x)")
    with pytest.raises(RuntimeError, match=f"no fixpoint after {MAX_ROUNDS} rounds.*neg\\(x\\) -> neg\\(x\\)"):
        rewrite(unary_graph("neg"), [forever])


def test_a_capture_named_twice_binds_one_node():
    b = GraphBuilder()
    x, y = b.input("x", "user", (2,), "float32"), b.input("y", "user", (2,), "float32")
    same, other = b.add("maximum", [x, x], {}, (2,), "float32"), b.add("maximum", [x, y], {}, (2,), "float32")
    graph = rewrite(b.finish([same, other]), [Rule(maximum(X, X), X, "max(x, x) -> x")])
    assert graph.outputs == (0, 2)


@pytest.mark.parametrize("literal, pattern, matches", [
    (np.float32(-0.0), -0.0, True), (np.float32(0.0), -0.0, False), (np.float32(0.0), 0.0, True),
    (np.float32(-0.0), 0.0, False), (np.int64(0), -0.0, True), (np.int64(0), 0.0, True),
    (np.float32(1.0), 1, True), (np.float64([1.0]), 1, True), (np.float32([1.0, 1.0]), 1, False),
    (np.float32(2.0), 1, False), (np.int64(1), 1, True)])
def test_constants_match_by_value_and_for_floats_by_sign(literal, pattern, matches):
    b = GraphBuilder()
    x = b.input("x", "user", (2,), str(literal.dtype))
    k = b.constant(literal)
    graph = rewrite(b.finish([b.add("add", [x, k], {}, (2,), str(literal.dtype))]),
                    [Rule(add(X, Const(pattern)), X, "x + k -> x")])
    assert (graph.outputs == (0,)) is matches


def test_attributes_match_by_value_or_predicate():
    graph = unary_graph("reshape", {"shape": (2, 3)})
    for shape, matches in [((2, 3), True), ((3, 2), False), (lambda s: len(s) == 2, True), (lambda s: False, False)]:
        rewritten = rewrite(graph, [Rule(reshape(X, shape=shape), X, "reshape(x) -> x")])
        assert (rewritten.outputs == (0,)) is matches


def test_a_condition_on_the_captures_decides():
    b = GraphBuilder()
    x, y = b.input("x", "user", (2,), "float32"), b.input("y", "user", (2,), "float32")
    graph = b.finish([b.add("mul", [x, y], {}, (2,), "float32")])
    first = Rule(mul(X, Y), X, "x * y -> x when x is the input named x", when=lambda X, Y: X.attr("name") == "x")
    second = Rule(mul(X, Y), X, "x * y -> x when y is the input named x", when=lambda X, Y: Y.attr("name") == "x")
    assert rewrite(graph, [first]).outputs == (0,)
    assert rewrite(graph, [second]).outputs == (2,)


def test_a_constructor_keeps_the_matched_nodes_provenance():
    b = GraphBuilder()
    x = b.input("x", "user", (2,), "float32")
    inner = b.add("neg", [x], {}, (2,), "float32", "a", "A", "a.py:1")
    outer = b.add("exp", [inner], {}, (2,), "float32", "b", "B", "b.py:2")
    graph = verify(rewrite(b.finish([outer]), [Rule(op("exp")(neg(X)), lambda match, X: match.node_with([X]),
                                                    "exp(-x) -> exp(x), for the test")]))
    new = graph.nodes[graph.outputs[0]]
    assert (new.op, new.inputs, new.module_path, new.module_type, new.source) == ("exp", (0,), "b", "B", "b.py:2")
