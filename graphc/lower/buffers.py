"""Where each value lives: an entry-point argument, a private constant, or a workspace slot.

`assign_buffers` is deliberately one small function so buffer planning (liveness, reuse)
can replace it. Kernels mark their pointers `noalias`, which holds because no kernel's
output shares memory with its inputs; a planner that reuses slots in place must keep that.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph
from .emitters import ALIASES, CHECKS
from .kernel import itemsize

ALIGNMENT = 64


@dataclass(frozen=True)
class Location:
    """kind 'arg': index into the entry's pointer array (inputs, then outputs);
    'workspace': byte offset into the scratch arena; 'constant': id of the constant node."""

    kind: str
    index: int


def assign_buffers(graph: Graph) -> dict[int, Location]:
    """A location for every node. A computed node that is a graph output is written straight
    into the (first) output buffer listing it; other intermediates get 64-byte aligned slots
    in the workspace, one per value (no reuse yet); aliases take their input's location."""
    input_slot = {node.id: i for i, node in enumerate(graph.inputs)}
    output_slot: dict[int, int] = {}
    for j, node_id in enumerate(graph.outputs):
        output_slot.setdefault(node_id, len(input_slot) + j)
    locations: dict[int, Location] = {}
    offset = 0
    for node in graph.nodes:
        if node.op == "input":
            locations[node.id] = Location("arg", input_slot[node.id])
        elif node.op == "constant":
            locations[node.id] = Location("constant", node.id)
        elif node.op in ALIASES or node.op in CHECKS:
            locations[node.id] = locations[node.inputs[0]]
        elif node.id in output_slot:
            locations[node.id] = Location("arg", output_slot[node.id])
        else:
            locations[node.id] = Location("workspace", offset)
            offset += -(-node.size * itemsize(node.dtype) // ALIGNMENT) * ALIGNMENT
    return locations


def workspace_bytes(graph: Graph, locations: dict[int, Location]) -> int:
    """Bytes of scratch the locations use (at least 1, so callers never allocate nothing)."""
    ends = [loc.index + graph.nodes[i].size * itemsize(graph.nodes[i].dtype)
            for i, loc in locations.items() if loc.kind == "workspace"]
    return max([1, *ends])
