"""simplify: local algebraic rewrites, one rule per line, run by one driver.

    x + (-0) -> x   x - (+0) -> x   x * 1 -> x      1 * x -> x      x / 1 -> x
    (for floats only a zero of that sign is an identity: -0.0 + 0.0 is +0.0, as in PyTorch)
    --x -> x        reshape(reshape(x)) -> reshape(x)        reshape(x) to x's shape -> x
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import Graph, GraphBuilder, Node
from ..ir.graph import literal_value
from .rewrite import rebuild


def _is(builder: GraphBuilder, i: int, scalar: float) -> bool:
    value = literal_value(builder.nodes[i])
    return value is not None and value.size <= 1 and bool(np.all(value == scalar))


def _is_additive_identity(builder: GraphBuilder, i: int, negative: bool) -> bool:
    """A zero that adding (negative=True: -0.0) or subtracting (+0.0) leaves every x unchanged;
    for integers any zero."""
    value = literal_value(builder.nodes[i])
    if value is None or value.size > 1 or not bool(np.all(value == 0)):
        return False
    return value.dtype.kind != "f" or bool(np.all(np.signbit(value) == negative))


def _same_type(builder: GraphBuilder, i: int, node: Node) -> bool:
    src = builder.nodes[i]
    return (src.shape, src.dtype) == (node.shape, node.dtype)


def _identity_operand(node: Node, ins: tuple[int, ...], b: GraphBuilder) -> int | None:
    """The operand `node` passes through unchanged, if one of the identity rules applies."""
    rules: dict[str, Callable[[], int | None]] = {
        "add": lambda: ins[0] if _is_additive_identity(b, ins[1], True)
        else ins[1] if _is_additive_identity(b, ins[0], True) else None,
        "sub": lambda: ins[0] if _is_additive_identity(b, ins[1], False) else None,
        "mul": lambda: ins[0] if _is(b, ins[1], 1) else ins[1] if _is(b, ins[0], 1) else None,
        "div": lambda: ins[0] if _is(b, ins[1], 1) else None,
        "neg": lambda: b.nodes[ins[0]].inputs[0] if b.nodes[ins[0]].op == "neg" else None,
        "reshape": lambda: ins[0],
    }
    found = rules.get(node.op, lambda: None)()
    return found if found is not None and _same_type(b, found, node) else None


def simplify(graph: Graph) -> Graph:
    def rule(node: Node, ins: tuple[int, ...], b: GraphBuilder) -> int | None:
        same = _identity_operand(node, ins, b)
        if same is not None:
            return same
        if node.op == "reshape" and b.nodes[ins[0]].op == "reshape":  # reshape(reshape(x)) -> reshape(x)
            return b.add("reshape", b.nodes[ins[0]].inputs, node.attrs, node.shape, node.dtype,
                         node.module_path, node.module_type, node.source)
        return None

    return rebuild(graph, rule)
