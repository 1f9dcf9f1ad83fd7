"""Rebuilding graphs: the one helper every pass uses to emit a renumbered graph."""
from __future__ import annotations

from typing import Callable

from ..ir import Graph, GraphBuilder, Node

# rule(node, new_inputs, builder) -> id of the replacement in the new graph, or None to copy the node
Rule = Callable[[Node, tuple[int, ...], GraphBuilder], "int | None"]


def rebuild(graph: Graph, rule: Rule | None = None, keep: set[int] | None = None) -> Graph:
    """Emit `graph` again, node by node, letting `rule` replace nodes; drop nodes not in `keep`."""
    builder = GraphBuilder()
    new: dict[int, int] = {}
    for node in graph.nodes:
        if keep is not None and node.id not in keep:
            continue
        inputs = tuple(new[i] for i in node.inputs)
        replaced = rule(node, inputs, builder) if rule is not None else None
        new[node.id] = replaced if replaced is not None else builder.copy_node(node, inputs)
    return finish_like(graph, builder, new)


def finish_like(graph: Graph, builder: GraphBuilder, new: dict[int, int]) -> Graph:
    """The rebuilt graph: `graph`'s outputs, names and updates through the id map `new`."""
    return builder.finish((new[i] for i in graph.outputs), graph.output_names,
                          ((new[v], new[t]) for v, t in graph.updates))


def live_nodes(graph: Graph, keep_input: Callable[[Node], bool] = lambda n: True) -> set[int]:
    """Nodes that reach an output or an update, plus the inputs `keep_input` keeps (the ABI)."""
    live = set(graph.outputs) | {v for v, _ in graph.updates} | {t for _, t in graph.updates}
    for node in reversed(graph.nodes):
        if node.id in live:
            live.update(node.inputs)
    live.update(n.id for n in graph.inputs if keep_input(n))
    return live
