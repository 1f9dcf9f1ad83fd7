"""Backward graphs from forward graphs, with the op table's gradient rules.

The rules are written with graphc's op functions, so running them under a Tracer records the
backward computation as graph nodes: the same rules that drive eager autograd.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .ir import Graph
from .ops import functions as F
from .ops.dispatch import recording
from .ops.registry import OPS
from .passes.dead_code import drop_unused_inputs
from .tensor import Tensor
from .trace import Tracer


def _on_path(graph: Graph, sources: set[int], sinks: set[int]) -> set[int]:
    """Nodes that depend on a source and feed a sink: where gradients must flow."""
    reached = set(sources)
    for node in graph.nodes:
        if any(i in reached for i in node.inputs) and OPS.get(node.op) and OPS[node.op].gradient:
            reached.add(node.id)
    feeding = set(sinks)
    for node in reversed(graph.nodes):
        if node.id in feeding:
            feeding.update(node.inputs)
    return reached & feeding


def backprop(graph: Graph, tracer: Tracer, value: Callable[[int], Tensor],
             seeds: dict[int, Tensor], wrt: Sequence[int]) -> dict[int, Tensor | None]:
    """Apply gradient rules in reverse order, recording into `tracer`'s graph.

    `value(i)` gives the tensor standing for forward node i; `seeds` maps forward nodes to their
    incoming gradients. Returns the gradient of each node in `wrt` (None where none flows).
    """
    needed = _on_path(graph, set(wrt), set(seeds))
    grads: dict[int, Tensor] = dict(seeds)
    with recording(tracer):
        for node in reversed(graph.nodes):
            if node.id not in grads or node.id not in needed or node.op in ("input", "constant"):
                continue
            rule = OPS[node.op].gradient
            # the module's path and line, its type marked: the kernel is named `k19_matmul_grad_fc1`
            tracer.provenance = (node.module_path, f"{node.module_type} grad".lstrip(), node.source)
            inputs = tuple(value(i) for i in node.inputs)
            contributions = rule(inputs, value(node.id), grads[node.id], **node.attr_dict)
            for i, g in zip(node.inputs, contributions):
                if g is None or i not in needed:
                    continue
                grads[i] = g if i not in grads else F.add(grads[i], g)
        tracer.provenance = None
    return {w: grads.get(w) for w in wrt}


@dataclass(frozen=True)
class BackwardGraph:
    """The backward graph and how it connects to the forward graph, by role.

    Its inputs are `saved` (key: the forward node id whose value is passed in: a forward input,
    or an intermediate the forward must also output) and `seed` (key k: the gradient of forward
    output k). Output j is the gradient of forward input `wrt[j]`.
    """

    graph: Graph
    saved: tuple[int, ...]  # forward intermediates (not inputs) the forward must output
    wrt: tuple[int, ...]    # forward input id of each output


def seed_inputs(forward: Graph, tracer: Tracer) -> dict[int, Tensor]:
    """A seed input (role seed k) for each float output k of `forward`, recorded by `tracer`:
    the incoming gradient of each output node, summed where a node is output twice."""
    seeds: dict[int, Tensor] = {}
    for k, (out, name) in enumerate(zip(forward.outputs, forward.output_names)):
        node = forward.nodes[out]
        if node.dtype.startswith("float"):  # one seed per output, so a repeated output gets both
            seed = tracer.symbolic_input(f"grad_{name}", "seed", node.shape, node.dtype, key=k)
            with recording(tracer):
                seeds[out] = F.add(seeds[out], seed) if out in seeds else seed
    return seeds


def build_backward(forward: Graph, wrt: Sequence[int]) -> BackwardGraph:
    """The backward graph of `forward` w.r.t. the forward inputs `wrt` (node ids), seeded at
    every float output; inputs that receive no gradient are left out of its outputs."""
    tracer = Tracer()
    placeholders: dict[int, Tensor] = {}

    def value(i: int) -> Tensor:
        if i not in placeholders:
            node = forward.nodes[i]
            if node.op == "constant":
                placeholders[i] = Tensor._symbolic(tracer, tracer.builder.constant(node.attr("value").array()),
                                                   node.shape, node.dtype)
            else:
                label = node.attr("name") if node.op == "input" else f"saved%{node.id}"
                placeholders[i] = tracer.symbolic_input(label, "saved", node.shape, node.dtype, key=node.id)
        return placeholders[i]

    grads = backprop(forward, tracer, value, seed_inputs(forward, tracer), list(wrt))
    outputs, names, received = [], [], []
    with recording(tracer):
        for w in wrt:
            if grads[w] is not None:
                outputs.append(tracer.value_of(grads[w]))
                names.append(f"grad_{forward.nodes[w].attr('name')}")
                received.append(w)
    graph = drop_unused_inputs(tracer.builder.finish(outputs, names), ("saved",))
    saved = tuple(n.role.key for n in graph.inputs
                  if n.role.kind == "saved" and forward.nodes[n.role.key].op != "input")
    return BackwardGraph(graph, saved, tuple(received))


def with_saved_outputs(forward: Graph, saved: Sequence[int]) -> Graph:
    """The forward graph that also returns the intermediates a backward graph needs."""
    return Graph(forward.nodes, forward.outputs + tuple(saved),
                 forward.output_names + tuple(f"saved%{i}" for i in saved), forward.updates)
