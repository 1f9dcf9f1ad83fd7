"""graph_digest: a digest of everything in a graph that decides its machine code, so a compiled
graph can be found in the disk cache before it is lowered (graphc/stages.py).

Printed graphs abbreviate large constants, so the digest is taken over the nodes' fields
themselves, with constant data hashed in full. It also covers the compiler code that turns a
graph into LLVM IR (the kernel passes, the lowering, the op table, the IR, the ABI): a changed
emitter or fusion rule never meets an entry made by the old one.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from .graph import Graph
from .node import Literal

_ROOT = Path(__file__).resolve().parents[2]
# what turns a graph into machine code: the kernel passes and the driver that runs them too,
# since the disk cache is asked before them (graphc/stages.py)
_COMPILER_SOURCES = ("graphc/lower", "graphc/program", "graphc/ops", "graphc/ir", "graphc/passes", "graphc/stages.py", "runtime/abi.py")


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
        top = os.path.join(_ROOT, entry)
        files = ([os.path.join(folder, name) for folder, _, names in os.walk(top) for name in names
                  if name.endswith(".py")] if os.path.isdir(top) else [top])
        for file in sorted(files):  # os.walk, not pathlib: this runs in every process that compiles
            with open(file, "rb") as source:
                h.update(os.path.relpath(file, _ROOT).replace(os.sep, "/").encode() + b"\0" + source.read())
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
