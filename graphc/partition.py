"""Joint forward+backward graphs, split by a minimum cut into what the forward saves and what
the backward recomputes.

`build_backward` saves every forward value a gradient rule reads. Many of those are cheap to
rebuild: after `x -> tanh -> sigmoid -> exp`, the three gradient rules read three tensors, but
all three follow from `x` by elementwise ops. `partition` keeps the bytes passed from the
forward to the backward small and recomputes the rest (the idea of AOTAutograd's
rematerialising partitioner).

How the cut is set up. Every forward node n becomes an edge n.in -> n.out whose capacity is
n's size in bytes; each data-flow edge m -> n between forward nodes becomes m.out -> n.in with
infinite capacity; every forward value a backward node reads is joined to the sink by n.out ->
sink, infinitely. The source feeds n.in of each forward input and constant, whose own edge
costs nothing (an input is passed to the backward anyway, a constant is re-emitted), and of
each node the backward must not recompute: ops other than elementwise and shape ones (matmul,
sum, amax, index and check ops), so their edge can only be cut by saving them. A finite cut
separates every value the backward reads from the source, so the backward can rebuild them
from the nodes whose edge n.in -> n.out is cut: those are saved, everything between them and
the backward's reads is recomputed by elementwise and shape ops. Of the cuts of least bytes,
networkx gives the one nearest the sink (its sink side is what still reaches the sink in the
residual network, which lies inside the sink side of every cheapest cut), so what is
recomputed is a subset of what any other cheapest cut would recompute.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np

from .autodiff import BackwardGraph, backprop, seed_inputs, with_saved_outputs
from .ir import Graph, GraphBuilder, Node
from .ops.dispatch import recording
from .ops.registry import OPS
from .passes.dead_code import drop_unused_inputs
from .passes.rewrite import live_nodes, rebuild
from .tensor import Tensor
from .trace import Tracer

RECOMPUTABLE_KINDS = ("elementwise", "shape")


@dataclass(frozen=True)
class JointGraph:
    """One graph computing the forward and its backward.

    Nodes 0..forward_size-1 are the forward graph's nodes with their ids; the nodes after them
    (the seed inputs first) are the backward's. Outputs are the forward's `forward_outputs`
    outputs, then the gradient of forward input `wrt[j]` as output forward_outputs + j.
    """

    graph: Graph
    forward_size: int
    forward_outputs: int
    wrt: tuple[int, ...]  # forward input id of each gradient output (those that receive one)

    @property
    def forward(self) -> Graph:
        """The forward graph the joint graph was built from."""
        g = self.graph
        return Graph(g.nodes[:self.forward_size], g.outputs[:self.forward_outputs],
                     g.output_names[:self.forward_outputs], g.updates)

    def is_forward(self, node_id: int) -> bool:
        return node_id < self.forward_size

    def __str__(self) -> str:
        g = self.graph
        lines = [f"joint graph ({len(g.inputs)} inputs, {self.forward_size} forward nodes, "
                 f"{len(g.nodes) - self.forward_size} backward nodes):", "  -- forward"]
        lines += [f"  {n}" for n in g.nodes[:self.forward_size]]
        lines.append("  -- backward")
        lines += [f"  {n}" for n in g.nodes[self.forward_size:]]
        outs = [f"%{i} {name}" for i, name in zip(g.outputs, g.output_names)]
        lines.append(f"  return {', '.join(outs[:self.forward_outputs])}"
                     f"  | gradients {', '.join(outs[self.forward_outputs:]) or '(none)'}")
        lines += [f"  update %{target} <- %{value}" for value, target in g.updates]
        return "\n".join(lines)


def joint_graph(forward: Graph, wrt: Sequence[int]) -> JointGraph:
    """`forward` followed by its backward w.r.t. the forward inputs `wrt` (node ids), seeded at
    every float output as `build_backward` seeds it; gradient rules read forward values
    directly, so nothing is saved yet."""
    tracer = Tracer(builder=GraphBuilder(list(forward.nodes)))

    def value(i: int) -> Tensor:
        node = forward.nodes[i]
        return Tensor._symbolic(tracer, i, node.shape, node.dtype)

    grads = backprop(forward, tracer, value, seed_inputs(forward, tracer), list(wrt))
    received = tuple(w for w in wrt if grads[w] is not None)
    with recording(tracer):
        outputs = [tracer.value_of(grads[w]) for w in received]
    names = [f"grad_{forward.nodes[w].attr('name')}" for w in received]
    graph = tracer.builder.finish(forward.outputs + tuple(outputs), forward.output_names + tuple(names),
                                  forward.updates)
    # gradient rules also compute contributions nobody asked for: drop those, keep every
    # forward node (ids unchanged) and every input
    keep = live_nodes(graph) | set(range(len(forward.nodes)))
    return JointGraph(rebuild(graph, keep=keep), len(forward.nodes), len(forward.outputs), received)


def nbytes(node: Node) -> int:
    return node.size * np.dtype(node.dtype).itemsize


def _free(node: Node) -> bool:
    return node.op in ("input", "constant")


def read_by_backward(joint: JointGraph) -> set[int]:
    """Forward nodes that backward nodes read or that are gradients themselves."""
    forward_size = joint.forward_size
    read = {i for n in joint.graph.nodes[forward_size:] for i in n.inputs if i < forward_size}
    return read | {i for i in joint.graph.outputs[joint.forward_outputs:] if i < forward_size}


def saved_by_min_cut(joint: JointGraph) -> set[int]:
    """Forward nodes whose values the backward takes from the forward (inputs and constants
    among them cost nothing); see the module docstring for the construction."""
    graph, forward_size, read = joint.graph, joint.forward_size, read_by_backward(joint)
    network = nx.DiGraph()
    network.add_nodes_from(["source", "sink"])
    for node in graph.nodes[:forward_size]:
        network.add_edge((node.id, "in"), (node.id, "out"), capacity=0 if _free(node) else nbytes(node))
        if _free(node) or OPS[node.op].kind not in RECOMPUTABLE_KINDS:
            network.add_edge("source", (node.id, "in"))  # no capacity: infinite
        for i in node.inputs:
            network.add_edge((i, "out"), (node.id, "in"))
        if node.id in read:
            network.add_edge((node.id, "out"), "sink")
    _, (_, sink_side) = nx.minimum_cut(network, "source", "sink")
    return {n.id for n in graph.nodes[:forward_size]
            if (n.id, "in") not in sink_side and (n.id, "out") in sink_side}


def partition(joint: JointGraph) -> tuple[Graph, BackwardGraph]:
    """(forward_train, backward), shaped as `with_saved_outputs` and `build_backward` make
    them: forward_train is the forward returning the saved intermediates after its outputs;
    the backward takes saved values (role saved, forward node id) and seeds, recomputes the
    forward values it reads that are not saved, and returns the gradients in `joint.wrt` order."""
    graph, forward_size = joint.graph, joint.forward_size
    saved = saved_by_min_cut(joint)
    needed = read_by_backward(joint)
    for node in reversed(graph.nodes[:forward_size]):
        if node.id in needed and node.id not in saved:
            needed.update(node.inputs)
    builder = GraphBuilder()
    new: dict[int, int] = {}
    for node in graph.nodes[forward_size:]:
        if node.op == "input":  # a seed
            new[node.id] = builder.input(node.attr("name"), "seed", node.shape, node.dtype, key=node.role.key)
    for node in graph.nodes[:forward_size]:
        if node.id not in needed:
            continue
        if node.op == "input" or (node.id in saved and node.op != "constant"):
            label = node.attr("name") if node.op == "input" else f"saved%{node.id}"
            new[node.id] = builder.input(label, "saved", node.shape, node.dtype, key=node.id)
        else:  # a constant, or recomputed from saved values
            new[node.id] = builder.copy_node(node, tuple(new[i] for i in node.inputs))
    for node in graph.nodes[forward_size:]:
        if node.op != "input":
            new[node.id] = builder.copy_node(node, tuple(new[i] for i in node.inputs))
    gradients = graph.outputs[joint.forward_outputs:]
    names = graph.output_names[joint.forward_outputs:]
    backward = drop_unused_inputs(builder.finish((new[i] for i in gradients), names), ("saved",))
    intermediates = tuple(n.role.key for n in backward.inputs
                          if n.role.kind == "saved" and graph.nodes[n.role.key].op != "input")
    return with_saved_outputs(joint.forward, intermediates), BackwardGraph(backward, intermediates, joint.wrt)


def saved_bytes(forward: Graph, backward: BackwardGraph) -> int:
    """Bytes of the intermediates the forward keeps for the backward (inputs not counted)."""
    return sum(nbytes(forward.nodes[i]) for i in backward.saved)
