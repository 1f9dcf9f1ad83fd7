"""graph_digest: a digest of everything in a graph that decides its machine code, so a compiled
graph can be found in the disk cache before it is lowered (graphc/stages.py).

Printed graphs abbreviate large constants, so the digest is taken over the nodes' fields
themselves, with constant data hashed in full. It also covers the compiler code that turns a
graph into LLVM IR (the lowering, the op table, the IR, the ABI): a changed emitter never
meets an entry made by the old one.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from .graph import Graph
from .node import Literal

_ROOT = Path(__file__).resolve().parents[2]
_COMPILER_SOURCES = ("graphc/lower", "graphc/program", "graphc/ops", "graphc/ir", "runtime/abi.py")


def _plain(value: Any) -> Any:
    if isinstance(value, Literal):
        return ("literal", hashlib.sha256(value.data).hexdigest(), value.shape, value.dtype)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    steps = getattr(value, "steps", None)  # a fused node's Body
    return ("body", _plain(steps)) if steps is not None else repr(value)


@functools.cache
def compiler_digest() -> str:
    """The sha256 of the lowering's own source files, read once per process."""
    h = hashlib.sha256()
    for entry in _COMPILER_SOURCES:
        path = _ROOT / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(file.relative_to(_ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def graph_digest(graph: Graph, *context: Any) -> str:
    """`graph=sha256:<hex>` over every node (op, inputs, attrs with constant data, type,
    provenance), the outputs and updates, `context` (entry name, thread count) and the
    compiler's sources."""
    h = hashlib.sha256(compiler_digest().encode())
    for node in graph.nodes:
        h.update(repr((node.op, node.inputs, _plain(node.attrs), node.shape, node.dtype,
                       node.module_path, node.module_type, node.source)).encode())
    h.update(repr((graph.outputs, graph.output_names, graph.updates, context)).encode())
    return f"graph=sha256:{h.hexdigest()}"
