"""Graph -> Program: one kernel per computed node of the kernel graph, in node order."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import networkx as nx

from ..ir import Graph, Node
from ..ops.registry import OPS
from .records import ALIASES, TEMPLATES, Kernel, Program, is_gradient, kernel_name


def computed(node: Node) -> bool:
    """A node some kernel computes: not an input, a constant or an alias."""
    return node.op not in ("input", "constant") and node.op not in ALIASES


def is_check(node: Node) -> bool:
    """A check op: its value is its input's buffer; its kernel reports, it stores nothing."""
    return node.op in OPS and OPS[node.op].kind == "check"


def template(node: Node) -> str:
    """The loop-nest template of `node`'s kernel (an op the table lacks has none: lowering says so)."""
    op = OPS.get(node.op)
    return TEMPLATES.get(op.kind, "unknown") if op is not None else "unknown"


def kernel_program(graph: Graph) -> Program:
    """The unscheduled, ungrouped program: a kernel per computed node, in node order."""
    return Program(graph, tuple(make_kernel(graph, [n]) for n in graph.nodes if computed(n)))


def make_kernel(graph: Graph, members: Iterable[Node]) -> Kernel:
    """The kernel computing `members` (in order): it reads what they read from outside it
    (through aliases, from the aliased buffer), and writes what is read elsewhere or leaves the
    graph (outputs, updates); a single node always writes its value."""
    members = list(members)
    inside = {n.id for n in members}
    reads: list[int] = []
    for node in members:
        for i in node.inputs:
            if i not in inside and i not in reads:
                reads.append(i)
    root = members[-1]
    if len(members) == 1:
        writes = (root.id,)
    else:  # a reduction always stores its result; the members of a map group only when read
        needed = _read_outside(graph, inside) | ({root.id} if template(root) != "map" else set())
        writes = tuple(n.id for n in members if n.id in needed)
    paths = tuple(dict.fromkeys(p for n in members for p in _paths(n)))
    grad = "_grad" if all(is_gradient(n) for n in members) else ""
    kind = template(members[0]) if template(members[0]) == "row" else template(root)
    if len(members) == 1:
        name = kernel_name(root)
    elif kind == "map":
        name = _group_name(root, f"mapx{len(members)}{grad}", paths)
    else:  # a reduction with its producer (k15_sum_of_fused_...), a row kernel's too (k15_sum_of_log_softmax_...)
        name = _group_name(root, f"{root.op}_of_{members[0].op}{grad}", paths)
    return Kernel(name, kind, tuple(n.id for n in members), writes, tuple(reads), paths)


def _read_outside(graph: Graph, inside: set[int]) -> set[int]:
    """The values of `inside` something outside it reads: other kernels, outputs, updates."""
    needed = set(graph.outputs) | {v for v, _ in graph.updates}
    for node in graph.nodes:
        if node.id not in inside:
            needed.update(node.inputs)
    return needed


def _paths(node: Node) -> list[str]:
    """The module paths a node came from (a fused node records its members' as `a+b`)."""
    return ["" if p == "<root>" else p for p in node.module_path.split("+")]


def _group_name(root: Node, what: str, paths: tuple[str, ...]) -> str:
    path = re.sub(r"[^0-9A-Za-z]+", "_", "_".join(p for p in paths if p)).strip("_")
    return f"k{root.id}_{what}" + (f"_{path}" if path else "")


def bases(graph: Graph) -> dict[int, int]:
    """The value whose buffer each node uses: itself, or for aliases and checks their input's."""
    base: dict[int, int] = {}
    for node in graph.nodes:
        shares = node.op in ALIASES or is_check(node)
        base[node.id] = base[node.inputs[0]] if shares else node.id
    return base


def in_dependence_order(graph: Graph, groups: Sequence[Sequence[Node]]) -> list[list[Node]]:
    """Groups of nodes (each to be one kernel) in a topological order of what they read from
    each other (through aliases and checks), ties broken by their order in `groups`."""
    base = bases(graph)
    group_of = {n.id: j for j, group in enumerate(groups) for n in group}
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(groups)))
    for j, group in enumerate(groups):
        for n in group:
            for i in n.inputs:
                source = group_of.get(base[i])
                if source is not None and source != j:
                    dag.add_edge(source, j)
    return [list(groups[j]) for j in nx.lexicographical_topological_sort(dag)]
