"""verify_program: what every Program pass must keep true."""
from __future__ import annotations

import networkx as nx

from .build import computed, is_check
from .records import ALIASES, Program


class ProgramError(ValueError):
    """A kernel program broke an invariant (a pass bug, never a user error)."""


def kernel_dag(program: Program) -> nx.DiGraph:
    """Kernel positions, with an edge from the kernel writing a value to each kernel reading it
    (reads through aliases and checks are reads of the value underneath)."""
    graph = program.graph
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(program.kernels)))
    for k, kernel in enumerate(program.kernels):
        for i in kernel.inputs:
            for source in _sources(graph, i):
                writer = program.kernel_of(source)
                if writer is not None:
                    dag.add_edge(program.position(source), k)
    return dag


def _sources(graph, value: int) -> list[int]:
    """The values a read of `value` depends on: itself, and through an alias or a check its input's."""
    found = [value]
    node = graph.nodes[value]
    while node.op in ALIASES or is_check(node):
        node = graph.nodes[node.inputs[0]]
        found.append(node.id)
    return found


def verify_program(program: Program) -> Program:
    """Every computed node in exactly one kernel; a kernel reads only values computed before it
    or its own members; what is read elsewhere is written; several nodes only in map kernels of
    one shape; a plan, when there is one, gives every written value a location and never the
    same workspace bytes to two values live at once."""
    graph = program.graph
    seen: dict[int, int] = {}
    for k, kernel in enumerate(program.kernels):
        for v in kernel.nodes:
            if v in seen:
                raise ProgramError(f"%{v} is computed by kernels {seen[v]} and {k}")
            seen[v] = k
    missing = [n.id for n in graph.nodes if computed(n) and n.id not in seen]
    if missing:
        raise ProgramError(f"no kernel computes {missing}")
    leaving = set(graph.outputs) | {v for v, _ in graph.updates}
    for k, kernel in enumerate(program.kernels):
        inside = set(kernel.nodes)
        for v in kernel.nodes:
            for i in graph.nodes[v].inputs:
                for source in _sources(graph, i):
                    if source in seen and seen[source] > k or (source in inside and i != source):
                        raise ProgramError(f"{kernel.name} reads %{i} before it is computed")
        if len(kernel.nodes) > 1:
            nodes = [graph.nodes[v] for v in kernel.nodes]
            shapes = {n.shape for n in nodes}
            prologue = (kernel.template == "reduce" and len(nodes) == 2 and nodes[1].inputs == (nodes[0].id,))
            row = (kernel.template == "row" and len(nodes) == 3 and nodes[0].id in nodes[1].inputs
                   and nodes[2].inputs == (nodes[1].id,))
            if not (prologue or row) and (kernel.template != "map" or len(shapes) != 1):
                raise ProgramError(f"{kernel.name}: several nodes only in a map kernel of one shape "
                                   f"or a reduction of its producer")
        for v in kernel.nodes:
            if v in leaving and v not in kernel.outputs and kernel.template != "check":
                raise ProgramError(f"{kernel.name} does not write %{v}, which leaves the graph")
        for other in program.kernels[k + 1:]:
            stale = set(other.inputs) & inside - set(kernel.outputs)
            if stale:
                raise ProgramError(f"{other.name} reads {sorted(stale)} that {kernel.name} keeps in registers")
    if program.buffers is not None:
        _verify_plan(program)
    return program


def _verify_plan(program: Program) -> None:
    locations = program.locations
    graph = program.graph
    workspace = [b for b in program.buffers if b.location.kind == "workspace" and computed(graph.nodes[b.value])
                 and not graph.nodes[b.value].op.startswith("check_")]
    for kernel in program.kernels:
        for v in (*kernel.inputs, *kernel.outputs):
            if v not in locations:
                raise ProgramError(f"{kernel.name}: %{v} has no buffer")
    for j, a in enumerate(workspace):
        for b in workspace[j + 1:]:
            if a.start <= b.end and b.start <= a.end:
                if a.location.index < b.location.index + b.nbytes and b.location.index < a.location.index + a.nbytes:
                    raise ProgramError(f"%{a.value} and %{b.value} are live at once in the same workspace bytes")
