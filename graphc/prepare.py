"""The prepare graph: what an inference graph computes from parameters and buffers alone
(BatchNorm folded into a convolution's weights, a weight transposed into a copy, scale and shift
arithmetic), hoisted out so it runs once, and again only after a parameter or buffer changed.

`hoist(graph)` splits a graph into
- `prepare`: inputs are the parameter and buffer inputs it reads (same roles), outputs the
  hoisted values;
- `main`: the original graph with each hoisted value read from an input of role
  (prepared, k), k its position among prepare's outputs. Its other inputs keep their roles.

Before splitting, a matmul whose b depends only on parameters and which the packed micro-kernel
will run reads b through `pack_panels` (the micro-kernel's layout of it, packed for this host's
register tile): packing is invariant, so it moves into `prepare` and runs once, not on every call.

A node is invariant when every value it depends on is a parameter, a buffer or a constant and
its op has no effect besides its value (no checks, no random numbers). The values hoisted are the
invariant values the rest of the graph reads; a free view (reshape, detach) or a broadcast
(expand: bigger than what it reads) is not worth hoisting itself, so its inputs are hoisted
instead and it stays in `main`. Graphs that update their inputs (train steps, BatchNorm in train
mode) change parameters or buffers on every call and are left whole.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .ir import Graph, GraphBuilder
from .ops import OPS
from .passes.rewrite import rebuild

INVARIANT_ROLES = ("param", "buffer")
NOT_WORTH_HOISTING = ("reshape", "detach", "expand", "constant", "input")


@dataclass(frozen=True)
class Hoisted:
    """The two graphs `hoist` makes; `prepare` is None when nothing was worth hoisting."""

    prepare: Graph | None
    main: Graph

    def __str__(self) -> str:
        if self.prepare is None:
            return f"(nothing to prepare)\n{self.main}"
        return f"prepare:\n{self.prepare}\nmain:\n{self.main}"


def _has_effect(op: str) -> bool:
    return OPS[op].kind in ("check", "random") if op in OPS else False


def invariant_nodes(graph: Graph) -> set[int]:
    """Ids of the nodes whose values depend only on parameters, buffers and constants."""
    invariant: set[int] = set()
    for node in graph.nodes:
        if node.op == "input":
            if node.role.kind in INVARIANT_ROLES:
                invariant.add(node.id)
        elif node.op == "constant" or (not _has_effect(node.op) and all(i in invariant for i in node.inputs)):
            invariant.add(node.id)
    return invariant


def hoisted_values(graph: Graph) -> list[int]:
    """The invariant values `main` reads from `prepare`, in graph order."""
    invariant = invariant_nodes(graph)
    wanted: set[int] = set()

    def want(i: int) -> None:
        node = graph.nodes[i]
        if node.op in NOT_WORTH_HOISTING:
            for j in node.inputs:  # a view or a broadcast is recomputed in main from what it reads
                want(j)
        else:
            wanted.add(i)

    for node in graph.nodes:
        if node.id not in invariant:
            for i in node.inputs:
                if i in invariant:
                    want(i)
    for i in graph.outputs:
        if i in invariant:
            want(i)
    return sorted(wanted)


def prepack(graph: Graph) -> Graph:
    """`graph` with each matmul over an invariant 2-D b that takes the packed micro-kernel
    reading pack_panels(b) (float32 and float64; a's batch folded into rows)."""
    from .lower.linalg import packs_b
    from .lower.microkernel import panel_tile
    from .lower.kernel import llvm_type

    invariant = invariant_nodes(graph)
    chosen = {}
    for node in graph.nodes:
        if node.op != "matmul" or node.dtype not in ("float32", "float64") or node.attr_dict.get("packed_n", 0):
            continue
        a, b = (graph.nodes[i] for i in node.inputs)
        if b.id not in invariant or len(b.shape) != 2 or (node.attr("transpose_a") and len(a.shape) != 2):
            continue
        if _gathered(graph, a):
            continue  # a convolution: the kernel passes choose direct loops or im2col for it
        rows, n = math.prod(node.shape[:-1]), node.shape[-1]
        depth = a.shape[-2] if node.attr("transpose_a") else a.shape[-1]
        if packs_b(rows, n, depth):
            _, nv, lanes = panel_tile(llvm_type(node.dtype))
            chosen[node.id] = nv * lanes
    if not chosen:
        return graph

    def packed(node, inputs: tuple[int, ...], builder: GraphBuilder) -> int | None:
        if node.id not in chosen:
            return None
        b = graph.nodes[node.inputs[1]]
        nr, tb = chosen[node.id], node.attr("transpose_b")
        k, n = (b.shape[1], b.shape[0]) if tb else b.shape
        panels = builder.add("pack_panels", (inputs[1],), {"transpose_b": tb, "nr": nr}, (-(-n // nr), k, nr),
                             b.dtype, node.module_path, node.module_type, node.source)
        attrs = {"transpose_a": node.attr("transpose_a"), "transpose_b": False, "packed_n": n}
        return builder.add("matmul", (inputs[0], panels), attrs, node.shape, node.dtype,
                           node.module_path, node.module_type, node.source)
    return rebuild(graph, packed)


def _gathered(graph: Graph, node) -> bool:
    """Whether `node` is windows gathered from an image (through views): a convolution's columns."""
    while node.op in ("reshape", "detach", "permute"):
        node = graph.nodes[node.inputs[0]]
    return node.op == "window_gather"


def hoist(graph: Graph) -> Hoisted:
    """Split `graph` into its prepare graph and the main graph that reads what prepare made."""
    if not graph.updates:
        graph = prepack(graph)
    values = hoisted_values(graph) if not graph.updates else []
    if not values:
        return Hoisted(None, graph)
    needed = set(values)
    for node in reversed(graph.nodes):
        if node.id in needed:
            needed.update(node.inputs)
    prepare_builder, new = GraphBuilder(), {}
    for node in graph.nodes:
        if node.id in needed:
            if node.op == "input":
                new[node.id] = prepare_builder.input(node.attr("name"), node.role.kind, node.shape, node.dtype,
                                                     key=node.role.key)
            else:
                new[node.id] = prepare_builder.copy_node(node, tuple(new[i] for i in node.inputs))
    prepare = prepare_builder.finish((new[i] for i in values), (f"prepared{k}" for k in range(len(values))))

    position = {v: k for k, v in enumerate(values)}
    main_builder, new = GraphBuilder(), {}
    for node in graph.nodes:  # a graph's inputs are its ABI: they all stay, in order, hoisted or not
        if node.op == "input":
            new[node.id] = main_builder.input(node.attr("name"), node.role.kind, node.shape, node.dtype,
                                              key=node.role.key)
    for node in graph.nodes:
        if node.id in position:
            new[node.id] = main_builder.input(f"prepared{position[node.id]}", "prepared", node.shape, node.dtype,
                                              key=position[node.id])
    used = _used_by_main(graph, set(position))
    for node in graph.nodes:
        if node.op != "input" and node.id not in position and node.id in used:
            new[node.id] = main_builder.copy_node(node, tuple(new[i] for i in node.inputs))
    main = main_builder.finish((new[i] for i in graph.outputs), graph.output_names)
    return Hoisted(prepare, main)


def _used_by_main(graph: Graph, hoisted: set[int]) -> set[int]:
    """Nodes main still computes: those reaching an output without passing through a hoisted value."""
    used = set(graph.outputs)
    for node in reversed(graph.nodes):
        if node.id in used and node.id not in hoisted:
            used.update(node.inputs)
    return used
