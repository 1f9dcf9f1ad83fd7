"""Graph: an immutable DAG of Nodes in topological order, and the builder that makes one."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .node import Literal, Node, Role, freeze_attrs


@dataclass(frozen=True)
class Graph:
    """Nodes are numbered 0..n-1 in topological order; inputs are the `input` nodes in order.

    `updates` pairs (value id, input id): after a run the value is written into that input's
    buffer (parameters and optimizer state updated in place by a train step).
    """

    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    output_names: tuple[str, ...] = ()
    updates: tuple[tuple[int, int], ...] = ()

    @property
    def inputs(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.op == "input")

    def input_with(self, role: Role) -> Node:
        for node in self.inputs:
            if node.role == role:
                return node
        raise KeyError(f"graph has no input {role}")

    def users(self) -> dict[int, list[int]]:
        """Map each node id to the ids of the nodes that read it."""
        result: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for node in self.nodes:
            for i in node.inputs:
                result[i].append(node.id)
        return result

    def __len__(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        from .printer import format_graph
        return format_graph(self)


@dataclass
class GraphBuilder:
    """Appends nodes with fresh sequential ids; used by the tracer, autodiff and passes."""

    nodes: list[Node] = field(default_factory=list)
    _inputs: list[Node] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._inputs = [n for n in self.nodes if n.op == "input"]

    def add(self, op: str, inputs: Iterable[int], attrs: dict[str, Any] | tuple, shape: tuple[int, ...],
            dtype: str, module_path: str = "", module_type: str = "", source: str = "") -> int:
        frozen = attrs if isinstance(attrs, tuple) else freeze_attrs(attrs)
        node = Node(len(self.nodes), op, tuple(inputs), frozen, tuple(int(d) for d in shape), str(dtype),
                    module_path, module_type, source)
        self.nodes.append(node)
        if op == "input":
            self._inputs.append(node)
        return node.id

    def input(self, name: str, kind: str, shape: tuple[int, ...], dtype: str, key: Any = None) -> int:
        """A graph input with role (kind, key); key defaults to its position among inputs of its
        kind (its qualified name for a param or buffer). `name` is a label for printing, made unique here (`x`, `x#1`)."""
        taken = {n.attr("name") for n in self._inputs}
        if key is None:
            key = name if kind in ("param", "buffer") else sum(1 for n in self._inputs if n.role.kind == kind)
        label, suffix = name, 0
        while label in taken:
            suffix += 1
            label = f"{name}#{suffix}"
        return self.add("input", (), {"name": label, "role": Role(kind, key)}, shape, dtype)

    def constant(self, value: Any, dtype: str | None = None, **where: str) -> int:
        lit = Literal.of(value, dtype)
        return self.add("constant", (), {"value": lit}, lit.shape, lit.dtype, **where)

    def copy_node(self, node: Node, inputs: tuple[int, ...]) -> int:
        """Re-emit `node` with remapped inputs, keeping its provenance."""
        return self.add(node.op, inputs, node.attrs, node.shape, node.dtype,
                        node.module_path, node.module_type, node.source)

    def finish(self, outputs: Iterable[int], output_names: Iterable[str] = (),
               updates: Iterable[tuple[int, int]] = ()) -> Graph:
        outputs = tuple(outputs)
        names = tuple(output_names) or tuple(f"out{i}" for i in range(len(outputs)))
        return Graph(tuple(self.nodes), outputs, names, tuple(updates))


def literal_value(node: Node) -> np.ndarray | None:
    """The array of a constant node, or None for any other node."""
    return node.attr("value").array() if node.op == "constant" else None
