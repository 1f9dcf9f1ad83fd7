"""The reference interpreter: runs a graph with the op table's numpy references."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ops.registry import OPS
from .graph import Graph


class InterpretError(RuntimeError):
    """An op failed while interpreting; the message names the node and its provenance."""


def interpret(graph: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Evaluate `graph` on arrays given in `graph.inputs` order; apply `updates` in place."""
    input_nodes = graph.inputs
    if len(inputs) != len(input_nodes):
        raise InterpretError(f"graph takes {len(input_nodes)} inputs, got {len(inputs)}")
    values: dict[int, np.ndarray] = {n.id: np.asarray(a) for n, a in zip(input_nodes, inputs)}
    last_use = {}
    for node in graph.nodes:
        for i in node.inputs:
            last_use[i] = node.id
    keep = set(graph.outputs) | {v for v, _ in graph.updates}
    for node in graph.nodes:
        if node.op == "input":
            continue
        if node.op == "constant":
            values[node.id] = node.attr("value").array()
            continue
        try:
            with np.errstate(all="ignore"):
                out = OPS[node.op].reference(*(values[i] for i in node.inputs), **node.attr_dict)
        except Exception as e:  # re-raised with the node that failed
            if OPS[node.op].kind == "check":  # a broken precondition: the op's own error, as compiled code raises it
                raise type(e)(f"{node.where()}: {e}") from None
            raise InterpretError(f"while running {node}: {e}") from e
        values[node.id] = np.asarray(out, dtype=node.dtype).reshape(node.shape)
        for i in node.inputs:  # free each value after its last use, as torch.fx does
            if last_use.get(i) == node.id and i not in keep and graph.nodes[i].op != "input":
                values.pop(i, None)
    results = [values[i].copy() if graph.nodes[i].op == "input" else values[i] for i in graph.outputs]
    for value, target in graph.updates:
        np.copyto(values[target], values[value])
    return results
