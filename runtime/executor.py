"""CompiledGraph: a graph lowered to one native entry point, called with checked numpy buffers."""
from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from graphc.debug import log
from graphc.errors import InputError
from graphc.ir import Graph
from graphc.lower import lower

from .cache import compile_cached
from .jit import NativeModule

_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
ALIGNMENT = 64


@dataclass(frozen=True)
class BufferSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def describe(self) -> str:
        return f"{self.dtype.name}{list(self.shape)}"


def address(arr: np.ndarray) -> int:
    """The data pointer of an array; c_char.from_buffer is 3x cheaper than arr.ctypes.data."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    except (TypeError, ValueError):  # read-only or empty arrays
        return arr.ctypes.data


def aligned_empty(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    offset = (-raw.ctypes.data) % ALIGNMENT
    return raw[offset:offset + nbytes]


class CompiledGraph:
    """Native code for one graph; `run` checks every buffer before entering it."""

    def __init__(self, graph: Graph, name: str = "graphc_main", context: str = ""):
        start = time.perf_counter()
        self.graph, self.context = graph, context
        lowered = lower(graph, name)
        self.native: NativeModule = compile_cached(
            lowered.ir_text, abi_signature(graph, lowered.entry, lowered.workspace_bytes), lowered.entry)
        self.lowered = lowered
        self._entry = _ENTRY(self.native.address(lowered.entry))
        self.inputs = tuple(BufferSpec(n.attr("name"), n.shape, np.dtype(n.dtype)) for n in graph.inputs)
        self.outputs = tuple(BufferSpec(name, graph.nodes[i].shape, np.dtype(graph.nodes[i].dtype))
                             for i, name in zip(graph.outputs, graph.output_names))
        self._workspace = aligned_empty(max(lowered.workspace_bytes, 1))
        self._workspace_ptr = self._workspace.ctypes.data
        self._args = (ctypes.c_void_p * (len(self.inputs) + len(self.outputs)))()
        self._seen: list[object] = [None] * len(self.inputs)
        self._lock = threading.Lock()
        self.compile_seconds = time.perf_counter() - start
        log(1, f"compiled {name} ({len(graph)} nodes) in {self.compile_seconds * 1e3:.1f} ms")

    def check(self, arrays: Sequence[np.ndarray]) -> None:
        """Raise InputError (naming the model and the input) unless every buffer is as compiled."""
        if len(arrays) != len(self.inputs):
            raise InputError(f"{self._where()}expected {len(self.inputs)} inputs, got {len(arrays)}")
        for spec, arr in zip(self.inputs, arrays):
            self.check_one(spec, arr)

    def check_one(self, spec: BufferSpec, arr: np.ndarray) -> None:
        if not isinstance(arr, np.ndarray):
            raise InputError(f"{self._where()}input '{spec.name}' must be an array, got {type(arr).__name__}")
        if arr.shape != spec.shape or arr.dtype != spec.dtype:
            raise InputError(f"{self._where()}input '{spec.name}' expected {spec.describe()}, "
                             f"got {arr.dtype.name}{list(arr.shape)}")
        if not arr.flags.c_contiguous:
            raise InputError(f"{self._where()}input '{spec.name}' must be C-contiguous")

    def _where(self) -> str:
        return f"{self.context}: " if self.context else ""

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Call the native entry point on checked inputs; returns freshly allocated outputs.

        An input that is the same array object as in the previous call (a parameter, say) was
        checked then and keeps its pointer, so small models pay little per call.
        """
        with self._lock:  # one workspace and pointer array per graph: one call at a time
            args, seen = self._args, self._seen
            if len(arrays) != len(seen):
                self.check(arrays)
            for i, arr in enumerate(arrays):
                if arr is not seen[i]:
                    self.check_one(self.inputs[i], arr)
                    args[i] = address(arr)
                    seen[i] = arr
            outs = [np.empty(s.shape, s.dtype) for s in self.outputs]
            base = len(seen)
            for j, arr in enumerate(outs):
                args[base + j] = address(arr)
            self._entry(args, self._workspace_ptr)
            return outs

    __call__ = run

    def llvm_ir(self) -> str:
        """The module's IR after LLVM's optimisation."""
        return self.native.optimized_ir()

    def assembly(self) -> str:
        return self.native.assembly()


def abi_signature(graph: Graph, entry: str, workspace_bytes: int) -> str:
    """The entry point's calling convention as text, for the compile cache to match exactly:
    its name, each input and output buffer's dtype and shape in argument order, and the
    workspace size, e.g. `abi=1 entry=main in=float32[4,16];float32[3,16] out=float32[4,3] workspace=256`."""
    def buffers(nodes) -> str:
        return ";".join(f"{n.dtype}[{','.join(map(str, n.shape))}]" for n in nodes)
    return (f"abi=1 entry={entry} in={buffers(graph.inputs)} "
            f"out={buffers(graph.nodes[i] for i in graph.outputs)} workspace={workspace_bytes}")
