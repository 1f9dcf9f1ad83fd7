"""A graph as JSON-safe data (`to_json`) or as Graphviz DOT text (`to_dot`), for `graphc dump`.

JSON schema of a graph (what `graphc dump --format json` prints for a graph stage):

    {"inputs":  [id, ...],                       # the input nodes' ids, in graph.inputs order
     "nodes":   [{"id": int, "op": str, "inputs": [id, ...],
                  "attrs": {name: value},        # an input's role is lifted out to "role"
                  "shape": [int, ...], "dtype": str,
                  "module_path": str,            # "" at the root; a fused node's "fc1+act"
                  "module_type": str, "source": str,  # "net.py:12", or ""
                  "role": {"kind": str, "key": ...} or null},  # inputs only (see Role)
                 ...],                            # in topological order: id k is nodes[k]
     "outputs": [{"id": int, "name": str}, ...],
     "updates": [{"value": id, "target": id}, ...]}   # value written into input target

`--stage kernels --format json` prints the kernel program instead, one object per kernel
function in schedule order:

    [{"name": str,                 # its symbol in the LLVM module, e.g. "k7_matmul_epilogue_fc1"
      "template": str,             # map, contraction, reduce, row, index, copy or check
      "nodes": [id, ...],          # the kernel graph's nodes it computes (a map kernel may have several)
      "module_paths": [str, ...],  # the modules those nodes came from ("" is the root)
      "writes": [id, ...],         # the values it stores; its other nodes stay in registers
      "reads": [id, ...]}, ...]

Attribute values are made JSON-safe: tuples become lists, a constant's Literal becomes
{"shape", "dtype"} (no data), a fused node's body its printed expression (`relu(add(in0, in1))`),
a non-finite float the string "inf", "-inf" or "nan", anything else its repr.

DOT: one cluster per module path (`subgraph "cluster_fc1"`), nested by path prefix, labelled with
the module's name and type; a parameter or buffer input sits in its owner's cluster and a fused
node in the innermost module holding all the modules it came from. Node labels read
`%id op shape` (inputs add their name), outputs are drawn with a double border and updates as
dashed edges into their target.
"""
from __future__ import annotations

import math
import os
from typing import Any

from .graph import Graph
from .node import Literal, Node, Role


def to_json(graph: Graph) -> dict[str, Any]:
    """The graph as plain data following the schema above (json.dumps takes it as is)."""
    return {
        "inputs": [n.id for n in graph.inputs],
        "nodes": [_node_json(n) for n in graph.nodes],
        "outputs": [{"id": i, "name": name} for i, name in zip(graph.outputs, graph.output_names)],
        "updates": [{"value": value, "target": target} for value, target in graph.updates],
    }


def _node_json(node: Node) -> dict[str, Any]:
    return {
        "id": node.id, "op": node.op, "inputs": list(node.inputs),
        "attrs": {k: json_value(v) for k, v in node.attrs if k != "role"},
        "shape": list(node.shape), "dtype": node.dtype,
        "module_path": node.module_path, "module_type": node.module_type, "source": node.source,
        "role": json_value(node.role) if node.op == "input" else None,
    }


def json_value(value: Any) -> Any:
    """An attribute value as JSON-safe data (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # 'inf', '-inf', 'nan'
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if isinstance(value, Literal):
        return {"shape": list(value.shape), "dtype": value.dtype}
    if isinstance(value, Role):
        return {"kind": value.kind, "key": json_value(value.key)}
    return repr(value)  # a fused Body prints as the expression it computes


def recorded_module_paths(node: Node) -> list[str]:
    """The module paths a node came from: a fusing pass records its members' as `fc1+<root>`
    (a module path is dotted names, so a '+' only ever joins paths)."""
    return ["" if p == "<root>" else p for p in node.module_path.split("+")]


def to_dot(graph: Graph, name: str = "graph", module_types: dict[str, str] | None = None) -> str:
    """Graphviz DOT text of the graph, modules as nested clusters (see the module docstring),
    labelled with `module_types` (path -> type name, as the module tree has them) or else with
    the types the nodes record."""
    members: dict[str, list[Node]] = {}
    for node in graph.nodes:
        members.setdefault(_cluster_of(node), []).append(node)
    types = module_types or {n.module_path: n.module_type for n in graph.nodes
                             if n.module_type and "+" not in n.module_path}
    paths = sorted({prefix for path in members if path for prefix in _prefixes(path)})
    outputs = set(graph.outputs)
    lines = [f"digraph {_quote(name)} {{", "  node [shape=box, fontname=monospace];"]

    def emit_nodes(path: str, indent: str) -> None:
        for node in members.get(path, ()):
            label = f"%{node.id} {node.op}{' ' + node.attr('name') if node.op == 'input' else ''} {node.type_str}"
            style = ", style=rounded" if node.op in ("input", "constant") else ""
            border = ", peripheries=2" if node.id in outputs else ""
            lines.append(f"{indent}n{node.id} [label={_quote(label)}{style}{border}];")

    def emit_cluster(path: str, indent: str) -> None:
        label = path.rsplit(".", 1)[-1] + (f" ({types[path]})" if path in types else "")
        lines.append(f"{indent}subgraph {_quote('cluster_' + path)} {{")
        lines.append(f"{indent}  label={_quote(label)};")
        emit_nodes(path, indent + "  ")
        for child in paths:
            if child.rpartition(".")[0] == path:
                emit_cluster(child, indent + "  ")
        lines.append(f"{indent}}}")

    emit_nodes("", "  ")
    for path in paths:
        if "." not in path:
            emit_cluster(path, "  ")
    for node in graph.nodes:
        lines += [f"  n{i} -> n{node.id};" for i in node.inputs]
    lines += [f"  n{value} -> n{target} [style=dashed, label=update, constraint=false];"
              for value, target in graph.updates]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster_of(node: Node) -> str:
    """The module whose cluster holds the node: a parameter's owner, a fused node's innermost
    module holding all its members."""
    if node.op == "input" and node.role.kind in ("param", "buffer"):
        return node.role.key.rpartition(".")[0]
    return ".".join(os.path.commonprefix([p.split(".") if p else [] for p in recorded_module_paths(node)]))


def _prefixes(path: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b', 'a.b.c']."""
    parts = path.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


def _quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
