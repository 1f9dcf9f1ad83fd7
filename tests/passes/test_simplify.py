"""simplify: one golden-text test per rule of its table, the sign-of-zero and type conditions, and
results kept on random graphs."""
import numpy as np
import pytest
from hypothesis import given, settings

from graphc.ir import GraphBuilder, interpret, verify
from graphc.passes import dead_code, simplify
from graphc.passes.simplify import RULES
from pass_graphs import assert_rule_golden, assert_same_results, graphs, random_inputs

AT = dict(module_path="block.0", module_type="Scale", source="model.py:7")  # the matched node's provenance


def binary(op, value, constant_first=False):
    """x `op` value (or value `op` x) on an f32[2,3] x."""
    def build(b, x):
        k = b.constant(np.float32(value))
        return b.add(op, [k, x] if constant_first else [x, k], {}, (2, 3), "float32", **AT)
    return build


def double_negation(b, x):
    return b.add("neg", [b.add("neg", [x], {}, (2, 3), "float32")], {}, (2, 3), "float32", **AT)


def reshape_to_own_shape(b, x):
    return b.add("reshape", [x], {"shape": (2, 3)}, (2, 3), "float32", **AT)


def reshape_of_reshape(b, x):
    flat = b.add("reshape", [x], {"shape": (6,)}, (6,), "float32")
    return b.add("reshape", [flat], {"shape": (3, 2)}, (3, 2), "float32", **AT)


def identity_golden(op, constant, operands):
    """Before and after of `x op constant` (or `constant op x`): the node goes, x is returned."""
    return (f"""
        graph (1 inputs, 3 nodes):
          %0 : f32[2,3] = input x  (user 0)
          %1 : f32[] = constant {constant}
          {f"%2 : f32[2,3] = {op} {operands}":<60}  # block.0 (Scale)  model.py:7
          return %2 out0
        """, f"""
        graph (1 inputs, 2 nodes):
          %0 : f32[2,3] = input x  (user 0)
          %1 : f32[] = constant {constant}
          return %0 out0
        """)


# rule comment -> (graph builder, printed graph before, printed graph after the rule alone)
GOLDEN = {
    "x + (-0) -> x": (binary("add", -0.0), *identity_golden("add", "-0.", "%0, %1")),
    "(-0) + x -> x": (binary("add", -0.0, constant_first=True), *identity_golden("add", "-0.", "%1, %0")),
    "x - (+0) -> x": (binary("sub", 0.0), *identity_golden("sub", "0.", "%0, %1")),
    "x * 1 -> x": (binary("mul", 1.0), *identity_golden("mul", "1.", "%0, %1")),
    "1 * x -> x": (binary("mul", 1.0, constant_first=True), *identity_golden("mul", "1.", "%1, %0")),
    "x / 1 -> x": (binary("div", 1.0), *identity_golden("div", "1.", "%0, %1")),
    "--x -> x": (double_negation, """
        graph (1 inputs, 3 nodes):
          %0 : f32[2,3] = input x  (user 0)
          %1 : f32[2,3] = neg %0
          %2 : f32[2,3] = neg %1                                        # block.0 (Scale)  model.py:7
          return %2 out0
        """, """
        graph (1 inputs, 2 nodes):
          %0 : f32[2,3] = input x  (user 0)
          %1 : f32[2,3] = neg %0
          return %0 out0
        """),
    "reshape(x) to x's own shape -> x": (reshape_to_own_shape, """
        graph (1 inputs, 2 nodes):
          %0 : f32[2,3] = input x  (user 0)
          %1 : f32[2,3] = reshape %0  {shape=(2, 3)}                    # block.0 (Scale)  model.py:7
          return %1 out0
        """, """
        graph (1 inputs, 1 nodes):
          %0 : f32[2,3] = input x  (user 0)
          return %0 out0
        """),
    "reshape(reshape(x)) -> reshape(x)": (reshape_of_reshape, """
        graph (1 inputs, 3 nodes):
          %0 : f32[2,3] = input x  (user 0)
          %1 : f32[6] = reshape %0  {shape=(6,)}
          %2 : f32[3,2] = reshape %1  {shape=(3, 2)}                    # block.0 (Scale)  model.py:7
          return %2 out0
        """, """
        graph (1 inputs, 3 nodes):
          %0 : f32[2,3] = input x  (user 0)
          %1 : f32[6] = reshape %0  {shape=(6,)}
          %2 : f32[3,2] = reshape %0  {shape=(3, 2)}                    # block.0 (Scale)  model.py:7
          return %2 out0
        """),
}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.comment)
def test_rule_golden_text(rule):
    build, before, after = GOLDEN[rule.comment]
    b = GraphBuilder()
    graph = b.finish([build(b, b.input("x", "user", (2, 3), "float32"))])
    x = np.array([[-0.0, 0.0, 1.5], [-2.0, np.inf, np.nan]], np.float32)
    assert_rule_golden(rule, simplify, graph, before, after, [x])


def test_every_rule_has_a_golden_text():
    assert [rule.comment for rule in RULES] == list(GOLDEN)


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


@pytest.mark.parametrize("op, constant_first", [("add", False), ("add", True), ("sub", False)])
def test_simplify_drops_integer_zeros(op, constant_first):
    b = GraphBuilder()
    x = b.input("x", "user", (2,), "int64")
    z = b.constant(np.int64(0))
    graph = simplify(b.finish([b.add(op, [z, x] if constant_first else [x, z], {}, (2,), "int64")]))
    assert graph.outputs == (0,)


@pytest.mark.parametrize("x_shape, one_shape", [((), (1,)), ((3,), (1, 1))])
def test_simplify_keeps_x_times_one_that_broadcasts_x(x_shape, one_shape):
    b = GraphBuilder()
    x = b.input("x", "user", x_shape, "float32")
    one = b.constant(np.ones(one_shape, np.float32))
    out_shape = np.broadcast_shapes(x_shape, one_shape)
    graph = verify(simplify(b.finish([b.add("mul", [x, one], {}, out_shape, "float32")])))
    assert [n.op for n in graph.nodes] == ["input", "constant", "mul"]


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_simplify_keeps_results_on_random_graphs(graph):
    once = verify(simplify(graph))
    assert_same_results(graph, once, random_inputs(graph))
    assert str(simplify(once)) == str(once)  # a fixpoint: no rule applies any more
