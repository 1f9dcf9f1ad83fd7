"""Backward graphs from forward graphs, with the op table's gradient rules.

The rules are written with graphc's op functions, so running them under a Tracer records the
backward computation as graph nodes: the same rules that drive eager autograd.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .ir import Graph, Node
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
            tracer.provenance = (node.module_path, node.module_type, node.source)
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
    """The backward graph and how its inputs connect to the forward graph.

    Inputs of kind 'saved' are named after a forward input (pass the same array) or
    'saved%<id>' (a forward intermediate: the forward graph must output node <id>);
    inputs of kind 'grad' are the gradients of the forward outputs, named 'grad_<output name>'.
    Outputs are named 'grad_<input name>' for each differentiated input that received one.
    """

    graph: Graph
    saved: tuple[int, ...]  # forward node ids of the intermediates the forward must output


def saved_name(node: Node) -> str:
    return node.attr("name") if node.op == "input" else f"saved%{node.id}"


def build_backward(forward: Graph, wrt_names: Sequence[str]) -> BackwardGraph:
    """The backward graph of `forward` w.r.t. the named forward inputs, seeded at every float output."""
    tracer = Tracer()
    placeholders: dict[int, Tensor] = {}

    def value(i: int) -> Tensor:
        if i not in placeholders:
            node = forward.nodes[i]
            if node.op == "constant":
                placeholders[i] = Tensor._symbolic(tracer, tracer.builder.constant(node.attr("value").array()),
                                                   node.shape, node.dtype)
            else:
                placeholders[i] = tracer.symbolic_input(saved_name(node), "saved", node.shape, node.dtype)
        return placeholders[i]

    seeds = {}
    for out, name in zip(forward.outputs, forward.output_names):
        node = forward.nodes[out]
        if node.dtype.startswith("float") and out not in seeds:
            seeds[out] = tracer.symbolic_input(f"grad_{name}", "grad", node.shape, node.dtype)
    wrt = [forward.input_named(n).id for n in wrt_names]
    grads = backprop(forward, tracer, value, seeds, wrt)
    outputs, names = [], []
    with recording(tracer):
        for w, name in zip(wrt, wrt_names):
            if grads[w] is not None:
                outputs.append(tracer.value_of(grads[w]))
                names.append(f"grad_{name}")
    graph = drop_unused_inputs(tracer.builder.finish(outputs, names), ("saved",))
    saved = tuple(int(n.attr("name")[6:]) for n in graph.inputs if n.attr("name").startswith("saved%"))
    return BackwardGraph(graph, saved)


def with_saved_outputs(forward: Graph, saved: Sequence[int]) -> Graph:
    """The forward graph that also returns the intermediates a backward graph needs."""
    return Graph(forward.nodes, forward.outputs + tuple(saved),
                 forward.output_names + tuple(f"saved%{i}" for i in saved), forward.updates)
