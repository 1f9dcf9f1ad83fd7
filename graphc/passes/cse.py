"""cse: one node per distinct (op, inputs, attrs) — identical computations are computed once."""
from __future__ import annotations

from ..ir import Graph, GraphBuilder, Node
from .rewrite import rebuild


def cse(graph: Graph) -> Graph:
    seen: dict[tuple, int] = {}

    def rule(node: Node, inputs: tuple[int, ...], builder: GraphBuilder) -> int | None:
        if node.op == "input":
            return None
        key = (node.op, inputs, node.attrs, node.shape, node.dtype)
        if key in seen:
            return seen[key]
        seen[key] = builder.copy_node(node, inputs)
        return seen[key]

    return rebuild(graph, rule)
