"""group_kernels, a Program -> Program pass: elementwise kernels of one shape that read each
other's values or share an input become one multi-output map kernel, a single pass over memory.

The graph-level fusion (passes/fuse_elementwise.py) already makes one `fused` node of a region
whose inner values nobody else reads; what it cannot do is let a value leave a region and be
used inside it too. An optimizer update is the case: Adam's new moments are updates (they leave)
and the new parameter reads them, so the graph has three fused nodes per parameter, each
reading the gradient. Grouped, one kernel reads the gradient, both moments and the parameter
once and writes all three, the new moments handed to the parameter's update in registers.

Kernels are visited in schedule order; one joins the first group of its shape it is connected
to (it reads a member's value, or an input a member reads at full shape) unless that would make
a cycle: some other kernel it reads from depends on the group. The groups are then put in a
topological order, each at the place of its first member as far as the dependences allow.
"""
from __future__ import annotations

from ..ir import Graph, Node
from ..ops.registry import OPS
from .build import bases, in_dependence_order, make_kernel
from .records import Program


def groupable(node: Node) -> bool:
    return node.op in OPS and OPS[node.op].kind in ("elementwise", "fused") and node.size > 0


def group_kernels(program: Program) -> Program:
    graph = program.graph
    base = bases(graph)
    group_of: dict[int, int] = {}  # value -> group index
    members: list[list[Node]] = []
    ancestors: list[int] = []  # per group, a bit mask of the groups it depends on
    templates: list[str] = []
    for kernel in program.kernels:
        nodes = [graph.nodes[v] for v in kernel.nodes]
        reads = {group_of[base[i]] for n in nodes for i in n.inputs if base[i] in group_of}
        joined = _joinable(graph, nodes, members, templates, reads, ancestors, base) if len(nodes) == 1 else None
        if joined is None:
            joined = len(members)
            members.append([])
            ancestors.append(0)
            templates.append(kernel.template)
        below = 0
        for r in reads - {joined}:
            below |= (1 << r) | ancestors[r]
        if below & ~ancestors[joined]:
            ancestors[joined] |= below
            for g, mask in enumerate(ancestors):  # whoever depended on the group now depends on these too
                if mask >> joined & 1:
                    ancestors[g] |= below
        members[joined].extend(nodes)
        for n in nodes:
            group_of[n.id] = joined
    if len(members) == len(program.kernels):
        return program
    return Program(graph, tuple(make_kernel(graph, group) for group in in_dependence_order(graph, members)))


def _joinable(graph: Graph, nodes: list[Node], members: list[list[Node]], templates: list[str], reads: set[int],
              ancestors: list[int], base: dict[int, int]) -> int | None:
    """The first map group `nodes` (one groupable node) can join without making a cycle."""
    (node,) = nodes
    if not groupable(node):
        return None
    for j, group in enumerate(members):
        if templates[j] != "map" or not groupable(group[0]) or group[0].shape != node.shape:
            continue
        inside = {m.id for m in group}
        if any(i not in inside and base[i] in inside for i in node.inputs):
            continue  # reads a member through an alias: that buffer is not written yet
        if any(ancestors[r] >> j & 1 for r in reads - {j}):
            continue  # another kernel it reads depends on the group
        shares = any(graph.nodes[i].shape == node.shape and i in m.inputs for m in group for i in node.inputs)
        if shares or any(i in inside for i in node.inputs):
            return j
    return None
