"""fuse_reductions, a Program -> Program pass: a reduction and the elementwise kernel computing
its operand become one kernel, which evaluates the elementwise body element by element and
accumulates it (a loss's sum of a fused expression, a bias gradient's column sum of the ReLU
backward): the operand is not written and read back, or, when other kernels read it too, it is
written in the same pass that reduces it.

When that elementwise kernel reads a log_softmax along the last dim and the reduction sums
along it too (cross-entropy: the target's log-probability picked per row), the log_softmax
joins as well: one row kernel finds each row's maximum and log-sum-exp and, in its last pass,
evaluates the pick and accumulates it, so the loss is one pass over the logits.

Kernels are then put in a topological order, as near their old places as the dependences allow.
"""
from __future__ import annotations

import networkx as nx

from ..ir import Node
from ..ops.registry import OPS
from .build import bases, in_dependence_order, make_kernel
from .records import Program
from .verify import kernel_dag

FUSIBLE_REDUCTIONS = ("sum", "amax", "prod")


def fuse_reductions(program: Program) -> Program:
    graph = program.graph
    single = {k.nodes[0]: j for j, k in enumerate(program.kernels) if len(k.nodes) == 1}
    pairs: dict[int, int] = {}  # producer kernel -> reduction kernel
    for j, kernel in enumerate(program.kernels):
        node = graph.nodes[kernel.nodes[-1]]
        if len(kernel.nodes) != 1 or node.op not in FUSIBLE_REDUCTIONS or len(node.inputs) != 1:
            continue
        source = single.get(node.inputs[0])
        operand = graph.nodes[node.inputs[0]]
        if source is not None and source not in pairs and OPS[operand.op].kind in ("elementwise", "fused") \
                and operand.size > 0:
            pairs[source] = j
    if not pairs:
        return program
    rows = _row_heads(program, pairs, single)
    taken = set(pairs.values()) | set(rows.values())
    groups: list[list[Node]] = []
    for j, kernel in enumerate(program.kernels):
        if j in taken:
            continue
        members = [graph.nodes[v] for v in kernel.nodes]
        if j in pairs:
            members = [*([graph.nodes[program.kernels[rows[j]].nodes[0]]] if j in rows else []), *members,
                       graph.nodes[program.kernels[pairs[j]].nodes[0]]]
        groups.append(members)
    return Program(graph, tuple(make_kernel(graph, g) for g in in_dependence_order(graph, groups)))


def _row_heads(program: Program, pairs: dict[int, int], single: dict[int, int]) -> dict[int, int]:
    """producer kernel -> the log_softmax kernel it reads, for the pairs that reduce along that
    log_softmax's rows (its last dim) and read nothing else that depends on it."""
    graph = program.graph
    base = bases(graph)
    heads: dict[int, int] = {}
    dag = None
    for source, j in pairs.items():
        producer, reduction = graph.nodes[program.kernels[source].nodes[0]], graph.nodes[program.kernels[j].nodes[0]]
        last = len(producer.shape) - 1
        if last < 0 or reduction.attr("dims") != (last,):
            continue
        for i in dict.fromkeys(producer.inputs):
            row = graph.nodes[i]
            k = single.get(i)
            if (k is None or k in heads.values() or row.op != "log_softmax" or row.attr("dim") != last
                    or row.shape != producer.shape or row.dtype != producer.dtype):
                continue
            dag = kernel_dag(program) if dag is None else dag
            later = nx.descendants(dag, k)
            others = {base[o] for o in producer.inputs if o != i}
            if not any(program.kernel_of(o) is not None and program.position(o) in later for o in others):
                heads[source] = k
                break
    return heads
