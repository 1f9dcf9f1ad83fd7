"""Readable text form of a graph: one line per node, with module path and source line."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .graph import Graph


def format_graph(graph: "Graph", title: str = "graph") -> str:
    lines = [f"{title} ({len(graph.inputs)} inputs, {len(graph.nodes)} nodes):"]
    lines += [f"  {node}" for node in graph.nodes]
    outs = ", ".join(f"%{i} {name}" for i, name in zip(graph.outputs, graph.output_names))
    lines.append(f"  return {outs}")
    for value, target in graph.updates:
        lines.append(f"  update %{target} <- %{value}")
    return "\n".join(lines)
