"""simplify: algebraic identities, one rule a row, applied by `rules.rewrite` to a fixpoint.

For floats only a zero of the right sign is an identity: -0.0 + 0.0 is +0.0 and -0.0 - (-0.0) is
+0.0, as in PyTorch, so x + 0.0 and x - (-0.0) stay. A rule whose result would not have the node's
shape and dtype does not apply (x * 1 that broadcasts x is not x).
"""
from __future__ import annotations

from ..ir import Graph
from .rules import Const, Rule, X, op, rewrite

add, sub, mul, div, neg, reshape = map(op, ("add", "sub", "mul", "div", "neg", "reshape"))

RULES = (
    Rule(add(X, Const(-0.0)), X, "x + (-0) -> x"),
    Rule(add(Const(-0.0), X), X, "(-0) + x -> x"),
    Rule(sub(X, Const(0.0)), X, "x - (+0) -> x"),
    Rule(mul(X, Const(1)), X, "x * 1 -> x"),
    Rule(mul(Const(1), X), X, "1 * x -> x"),
    Rule(div(X, Const(1)), X, "x / 1 -> x"),
    Rule(neg(neg(X)), X, "--x -> x"),
    Rule(reshape(X), X, "reshape(x) to x's own shape -> x"),
    Rule(reshape(reshape(X)), lambda match, X: match.node_with([X]), "reshape(reshape(x)) -> reshape(x)"),
)


def simplify(graph: Graph) -> Graph:
    return rewrite(graph, RULES)
