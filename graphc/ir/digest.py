"""graph_digest: a digest of everything in a graph that decides its machine code, so a compiled
graph can be found in the disk cache before it is lowered (graphc/stages.py).

Printed graphs abbreviate large constants, so the digest is taken over the nodes' fields
themselves, with constant data hashed in full. It also covers the compiler code that turns a
graph into LLVM IR (the kernel passes, the lowering, the op table, the IR, the ABI): a changed
emitter, fusion rule, graph pass or gradient rule never meets an entry made by the old one.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any, Callable

from .graph import Graph
from .node import Literal

_ROOT = Path(__file__).resolve().parents[2]
# what turns a traced graph into machine code: the disk cache is asked before the graph passes,
# autodiff and the optimizers' update rules run (graphc/stages.py), so all of graphc and runtime
_COMPILER_PACKAGES = ("graphc", "runtime")


def _python_file_identities(folder: str, root: int) -> list[str]:
    """`path:size:mtime_ns` of every .py file under `folder`, from the directory scan's own
    stat (one pass, no second lookup of each path)."""
    found = []
    with os.scandir(folder) as entries:  # scandir, not pathlib: this runs in every process that compiles
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                found += _python_file_identities(entry.path, root)
            elif entry.name.endswith(".py"):
                found.append(_identity(entry.path, root, entry.stat))
    return found


def _identity(path: str, root: int, stat: Callable[[], os.stat_result]) -> str:
    """`path:size:mtime_ns` (the path less its first `root` characters), or the path named missing."""
    try:
        info = stat()
    except OSError:
        return f"{path}:missing"
    return f"{path[root:]}:{info.st_size}:{info.st_mtime_ns}"


def source_identity(files: list[str]) -> bytes:
    """Each file's path, size and modification time in nanoseconds: what Python's import system
    checks before it trusts a cached .pyc (it compares seconds), so code that would run stale
    bytecode is the only code this can mistake for unchanged. Reading and hashing the files
    instead cost 3 ms of every warm start (450 KB of sources on this VM); a stat costs a
    microsecond. A file that cannot be stat'ed is named as missing."""
    root = len(str(_ROOT))
    return "\n".join(_identity(file, root, lambda file=file: os.stat(file)) for file in sorted(files)).encode()


@functools.cache
def compiler_digest() -> str:
    """The sha256 of the compiler's own source files' identities (as source_identity gives
    them), taken once per process."""
    root = len(str(_ROOT))
    identities = [i for package in _COMPILER_PACKAGES for i in _python_file_identities(f"{_ROOT}{os.sep}{package}", root)]
    return hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Literal):
        return ("literal", hashlib.sha256(value.data).hexdigest(), value.shape, value.dtype)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    steps = getattr(value, "steps", None)  # a fused node's Body
    return ("body", _plain(steps)) if steps is not None else repr(value)


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
