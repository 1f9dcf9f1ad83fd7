"""fold_transpose_into_matmul: matmul(permute(w) swapping the last two dims) -> matmul(w, transpose flag).

`x @ W.t()` (every Linear layer) then reads W in place instead of copying it transposed.
"""
from __future__ import annotations

from ..ir import Graph, GraphBuilder, Node
from .rewrite import rebuild


def _swaps_last_two(node: Node) -> bool:
    if node.op != "permute" or len(node.shape) < 2:
        return False
    dims = node.attr("dims")
    n = len(dims)
    return tuple(dims) == tuple(range(n - 2)) + (n - 1, n - 2)


def fold_transpose_into_matmul(graph: Graph) -> Graph:
    def rule(node: Node, ins: tuple[int, ...], b: GraphBuilder) -> int | None:
        if node.op != "matmul":
            return None
        attrs = node.attr_dict
        a_node, b_node = b.nodes[ins[0]], b.nodes[ins[1]]
        new_ins = list(ins)
        if _swaps_last_two(a_node) and (len(a_node.shape) == 2 or len(b_node.shape) > 2):
            new_ins[0], attrs["transpose_a"] = a_node.inputs[0], not attrs["transpose_a"]
        if _swaps_last_two(b_node):
            new_ins[1], attrs["transpose_b"] = b_node.inputs[0], not attrs["transpose_b"]
        if tuple(new_ins) == ins:
            return None
        return b.add("matmul", new_ins, attrs, node.shape, node.dtype, node.module_path, node.module_type, node.source)

    return rebuild(graph, rule)
