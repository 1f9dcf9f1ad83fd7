"""fuse_elementwise: chains of elementwise nodes of one shape become one `fused` node.

A node joins the group of its only user when both are elementwise with the same shape and the
node is neither a graph output nor an update; the group becomes one node at its last member's
place, reading the group's outside inputs. One kernel then does the chain in one pass over
memory (an SGD-with-momentum update: five kernels -> two). Runs after autodiff, just before
lowering: fused nodes have no gradient.
"""
from __future__ import annotations

from ..ir import Graph, GraphBuilder, Node
from ..ops.fused import Body
from ..ops.registry import OPS
from .rewrite import finish_like


def _fusible(node: Node) -> bool:
    return node.op in OPS and OPS[node.op].kind == "elementwise"


def fusion_groups(graph: Graph) -> dict[int, list[Node]]:
    """Groups of two or more nodes, keyed by their root: the last member, whose value leaves."""
    users = graph.users()
    pinned = set(graph.outputs) | {v for v, _ in graph.updates}
    root: dict[int, int] = {}
    for node in reversed(graph.nodes):
        if not _fusible(node):
            continue
        readers = users[node.id]
        only = graph.nodes[readers[0]] if len(readers) == 1 else None
        joins = node.id not in pinned and only is not None and only.id in root and only.shape == node.shape
        root[node.id] = root[only.id] if joins else node.id
    groups: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if node.id in root:
            groups.setdefault(root[node.id], []).append(node)
    return {r: members for r, members in groups.items() if len(members) > 1}


def fuse_elementwise(graph: Graph) -> Graph:
    groups = fusion_groups(graph)
    inside = {n.id for members in groups.values() for n in members}
    builder, new = GraphBuilder(), {}
    for node in graph.nodes:
        if node.id in groups:
            new[node.id] = _emit_group(groups[node.id], builder, new)
        elif node.id not in inside:
            new[node.id] = builder.copy_node(node, tuple(new[i] for i in node.inputs))
    return finish_like(graph, builder, new)


def _emit_group(group: list[Node], builder: GraphBuilder, new: dict[int, int]) -> int:
    """One fused node for `group` (in topological order), its provenance the root's."""
    step_of = {n.id: f"s{i}" for i, n in enumerate(group)}
    outside: list[int] = []
    steps = []
    for n in group:
        args = []
        for i in n.inputs:
            if i not in step_of and new[i] not in outside:
                outside.append(new[i])
            args.append(step_of[i] if i in step_of else f"in{outside.index(new[i])}")
        steps.append((n.op, tuple(args), n.attrs, n.dtype))
    root = group[-1]
    paths = list(dict.fromkeys(n.module_path for n in group))  # the modules the kernel came from
    path = paths[0] if len(paths) == 1 else "+".join(p or "<root>" for p in paths)
    types = "+".join(dict.fromkeys(n.module_type for n in group))
    return builder.add("fused", outside, {"body": Body(tuple(steps))}, root.shape, root.dtype, path, types, root.source)
