"""fuse_elementwise: regions of elementwise nodes of one shape become one `fused` node.

A node joins the group of its users when all of them are elementwise nodes of its shape in one
group and it is neither a graph output nor an update: chains, and values read several times
inside the region (`x * x + x`), are computed once per element in registers. The group becomes
one node at its last member's place, reading the group's outside inputs. A broadcast (`expand`)
feeding a group is never materialised: the fused kernel reads the expand's input through
broadcast strides (stride 0 along the broadcast dims). One kernel then does the region in one
pass over memory (an SGD-with-momentum update: five kernels -> two). Runs after autodiff, just
before lowering: fused nodes have no gradient.
"""
from __future__ import annotations

from ..ir import Graph, GraphBuilder, Node
from ..ops.fused import Body
from ..ops.registry import OPS
from .rewrite import finish_like, live_nodes, rebuild


def _fusible(node: Node) -> bool:
    return node.op in OPS and OPS[node.op].kind == "elementwise"


def _broadcast(graph: Graph, i: int, shape: tuple[int, ...]) -> int:
    """What a fused kernel of `shape` reads for operand i: an expand's input (read with stride 0
    along the broadcast dims, as elementwise operands always are) instead of the expand."""
    node = graph.nodes[i]
    while node.op == "expand" and node.shape == shape:
        node = graph.nodes[node.inputs[0]]
    return node.id


def fusion_groups(graph: Graph) -> dict[int, list[Node]]:
    """Groups keyed by their root (the last member, whose value leaves): two or more nodes, or
    one node that reads a broadcast, which fusing stops from being materialised."""
    users = graph.users()
    pinned = set(graph.outputs) | {v for v, _ in graph.updates}
    root: dict[int, int] = {}
    for node in reversed(graph.nodes):
        if not _fusible(node):
            continue
        readers = [graph.nodes[r] for r in users[node.id]]
        roots = {root.get(r.id) for r in readers}
        joins = (node.id not in pinned and readers and None not in roots and len(roots) == 1
                 and all(r.shape == node.shape for r in readers))
        root[node.id] = roots.pop() if joins else node.id
    groups: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if node.id in root:
            groups.setdefault(root[node.id], []).append(node)
    return {r: members for r, members in groups.items() if len(members) > 1 or (
        any(_broadcast(graph, i, members[0].shape) != i for i in members[0].inputs)
        and _reads_full_shape(graph, members))}


def fuse_elementwise(graph: Graph) -> Graph:
    groups = fusion_groups(graph)
    inside = {n.id for members in groups.values() for n in members}
    builder, new = GraphBuilder(), {}
    for node in graph.nodes:
        if node.id in groups:
            new[node.id] = _emit_group(graph, groups[node.id], builder, new)
        elif node.id not in inside:
            new[node.id] = builder.copy_node(node, tuple(new[i] for i in node.inputs))
    fused = finish_like(graph, builder, new)
    return rebuild(fused, keep=live_nodes(fused))  # the expands read through strides are gone


def _reads_full_shape(graph: Graph, group: list[Node]) -> bool:
    """Whether some outside operand of `group`, expands read through, still has the group's shape
    (else nothing in the kernel would give the output its shape, and the expand must stay)."""
    inside = {n.id for n in group}
    shape = group[-1].shape
    return any(graph.nodes[_broadcast(graph, i, shape)].shape == shape for n in group for i in n.inputs
               if i not in inside)


def _emit_group(graph: Graph, group: list[Node], builder: GraphBuilder, new: dict[int, int]) -> int:
    """One fused node for `group` (in topological order), its provenance the root's."""
    read_through = _reads_full_shape(graph, group)
    step_of = {n.id: f"s{i}" for i, n in enumerate(group)}
    outside: list[int] = []
    steps = []
    for n in group:
        args = []
        for i in n.inputs:
            if i not in step_of:
                i = _broadcast(graph, i, n.shape) if read_through else i
                if new[i] not in outside:
                    outside.append(new[i])
            args.append(step_of[i] if i in step_of else f"in{outside.index(new[i])}")
        steps.append((n.op, tuple(args), n.attrs, n.dtype))
    root = group[-1]
    paths = list(dict.fromkeys(n.module_path for n in group))  # the modules the kernel came from
    path = paths[0] if len(paths) == 1 else "+".join(p or "<root>" for p in paths)
    types = "+".join(dict.fromkeys(n.module_type for n in group))
    return builder.add("fused", outside, {"body": Body(tuple(steps))}, root.shape, root.dtype, path, types, root.source)
