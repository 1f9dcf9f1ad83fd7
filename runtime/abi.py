"""The lowered artifact: all the runtime needs to load and call one compiled graph.

graphc's driver (graphc/stages.py) makes an Artifact from a graph; the runtime loads its object
code and calls its entry point, and imports nothing of the compiler, so it could run a saved
artifact without the model's code. The entry point's ABI is described in graphc/lower/module.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the symbol kernels call to split work across the runtime's thread pool
PARALLEL_ENTRY = "graphc_parallel"

# errors a failed check may raise, by the name the artifact carries
CHECK_ERRORS: dict[str, type[Exception]] = {"IndexError": IndexError, "ValueError": ValueError,
                                            "RuntimeError": RuntimeError}

ABI_VERSION = 2  # i32 entry(ptr args, ptr workspace, ptr status)


@dataclass(frozen=True)
class BufferSpec:
    """One argument buffer of the entry point: a C-contiguous array of this shape and dtype."""

    name: str  # a label for messages
    shape: tuple[int, ...]
    dtype: np.dtype

    def describe(self) -> str:
        return f"{self.dtype.name}{list(self.shape)}"


@dataclass(frozen=True)
class CheckSpec:
    """What the runtime raises when check k fails: `error(f"{where}: {message}")`, with the
    offending value substituted for `{value}` in the message."""

    error: str    # a key of CHECK_ERRORS
    message: str
    where: str    # "in module 'fc1' (Linear) at net.py:12"


@dataclass(frozen=True)
class Artifact:
    """A graph lowered to LLVM IR, with its entry point's calling convention."""

    name: str
    ir_text: str
    entry: str
    workspace_bytes: int
    inputs: tuple[BufferSpec, ...]
    outputs: tuple[BufferSpec, ...]
    updated: frozenset[int]           # positions of the inputs the graph writes (its updates)
    checks: tuple[CheckSpec, ...] = ()  # by status code - 1
    source: str | None = None  # what the code is made from, for the cache (None: the IR text)

    def signature(self) -> str:
        """The calling convention as text, which the compile cache matches exactly, e.g.
        `abi=2 entry=main in=float32[4,16];float32[3,16] out=float32[4,3] workspace=256 checks=0`."""
        def buffers(specs: tuple[BufferSpec, ...]) -> str:
            return ";".join(f"{s.dtype.name}[{','.join(map(str, s.shape))}]" for s in specs)
        return (f"abi={ABI_VERSION} entry={self.entry} in={buffers(self.inputs)} out={buffers(self.outputs)} "
                f"workspace={self.workspace_bytes} checks={len(self.checks)}")
