"""fuse_reductions, a Program -> Program pass: a reduction and the elementwise kernel computing
its operand become one kernel, which evaluates the elementwise body element by element and
accumulates it (a loss's sum of a fused expression, a bias gradient's column sum of the ReLU
backward): the operand is not written and read back, or, when other kernels read it too, it is
written in the same pass that reduces it.

The pair sits at the elementwise kernel's place: everything it reads is computed by then, and
the reduction reads nothing else.
"""
from __future__ import annotations

from ..ops.registry import OPS
from .build import make_kernel
from .records import Program

FUSIBLE_REDUCTIONS = ("sum", "amax", "prod")


def fuse_reductions(program: Program) -> Program:
    graph = program.graph
    producer = {k.nodes[0]: j for j, k in enumerate(program.kernels) if len(k.nodes) == 1}
    absorbed: dict[int, int] = {}  # reduction kernel position -> producer kernel position
    for j, kernel in enumerate(program.kernels):
        node = graph.nodes[kernel.nodes[-1]]
        if len(kernel.nodes) != 1 or node.op not in FUSIBLE_REDUCTIONS or len(node.inputs) != 1:
            continue
        source = producer.get(node.inputs[0])
        if source is None or source in absorbed.values():
            continue
        operand = graph.nodes[node.inputs[0]]
        if OPS[operand.op].kind in ("elementwise", "fused") and operand.size > 0:
            absorbed[j] = source
    if not absorbed:
        return program
    pairs = {source: j for j, source in absorbed.items()}
    kernels = []
    for j, kernel in enumerate(program.kernels):
        if j in absorbed:
            continue
        if j in pairs:
            reduction = program.kernels[pairs[j]]
            kernel = make_kernel(graph, [graph.nodes[kernel.nodes[0]], graph.nodes[reduction.nodes[0]]])
        kernels.append(kernel)
    return Program(graph, tuple(kernels))
