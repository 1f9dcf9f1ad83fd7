"""CompiledGraph: a lowered artifact loaded as native code, called with checked numpy buffers."""
from __future__ import annotations

import ctypes
import threading
import time
from typing import Sequence

import numpy as np

from graphc.arrays import c_contiguous
from graphc.errors import InputError

from . import pool  # noqa: F401  (every load adopts the pool: imported with the executor, not inside the first call)
from .abi import CHECK_ERRORS, Artifact
from .cache import compile_cached
from .jit import NativeModule

_ENTRY = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
ALIGNMENT = 64
# outputs up to this size are written into one block the graph keeps and copied out after the
# call: a copy of a few bytes costs less than a fresh block, its pointers and a view per output
SMALL_OUTPUTS_BYTES = 4096


def _slow_address(arr: np.ndarray) -> int:
    return arr.ctypes.data


def _field_address(arr: np.ndarray) -> int:
    """The `data` field of numpy's PyArrayObject, which follows the object header: 3x cheaper
    than `arr.ctypes.data`, and used only when a probe at import confirms the layout."""
    return _POINTER.from_address(id(arr) + _HEADER).value or 0


_POINTER, _HEADER = ctypes.c_void_p, ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)


def _probe_layout() -> bool:
    base = np.arange(64, dtype=np.float32)
    probes = [base, base[3:], base.reshape(8, 8).T, np.zeros((), np.int64), np.frombuffer(bytes(8), np.uint8)]
    try:
        return all(_field_address(a) == a.ctypes.data for a in probes)
    except (ValueError, OverflowError):
        return False


address = _field_address if _probe_layout() else _slow_address
address.__doc__ = "The data pointer of an array."


def _describe(arr: np.ndarray) -> str:
    order = {">": " (big-endian)", "<": " (little-endian)"}.get(arr.dtype.byteorder, "") if not arr.dtype.isnative else ""
    return f"{arr.dtype.name}{list(arr.shape)}{order}"


def aligned_empty(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    offset = (-address(raw)) % ALIGNMENT
    return raw[offset:offset + nbytes]


class CompiledGraph:
    """Native code for one graph; `run` checks every buffer before entering it."""

    def __init__(self, artifact: Artifact, context: str = "", native: NativeModule | None = None):
        """`native`: the artifact's code already loaded (a disk-cache hit found before lowering)."""
        start = time.perf_counter()
        self.artifact, self.context = artifact, context
        self.native: NativeModule = native or compile_cached(artifact.ir_text, artifact.signature(), artifact.entry,
                                                             artifact.source)
        self._entry = _ENTRY(self.native.address(artifact.entry))
        self.inputs, self.outputs = artifact.inputs, artifact.outputs
        self._workspace = aligned_empty(max(artifact.workspace_bytes, 1))
        self._workspace_ptr = self._workspace.ctypes.data
        self._args = (ctypes.c_void_p * (len(self.inputs) + len(self.outputs)))()
        self._seen: list[tuple | None] = [None] * len(self.inputs)
        self._detail = ctypes.c_int64(0)  # the offending value of a failed check
        self._detail_ptr = ctypes.addressof(self._detail)
        self._updated = artifact.updated
        self.stable_inputs: frozenset[int] = frozenset()  # positions the caller vouches for (see run)
        self._output_offsets, self._output_views, end = [], [], 0
        for spec in self.outputs:  # 64-byte aligned slices of one block, so a call allocates once
            nbytes = int(np.prod(spec.shape, dtype=np.int64)) * spec.dtype.itemsize
            self._output_offsets.append(end)
            self._output_views.append((spec.shape, spec.dtype, end))
            end += -(-max(nbytes, 1) // ALIGNMENT) * ALIGNMENT
        self._output_bytes = max(end, 1) + ALIGNMENT  # room to align the block's start
        self._kept_outputs: list[np.ndarray] | None = None
        if end <= SMALL_OUTPUTS_BYTES:
            self._kept_block = aligned_empty(max(end, 1))
            pointer = self._kept_block.ctypes.data
            for j, offset in enumerate(self._output_offsets):
                self._args[len(self.inputs) + j] = pointer + offset
            self._kept_outputs = [np.ndarray(shape, dtype, self._kept_block, offset)
                                  for shape, dtype, offset in self._output_views]
        self._stable: object = None
        self._recheck: list[int] = []
        self._lock = threading.Lock()
        self.compile_seconds = time.perf_counter() - start

    @property
    def updates_inputs(self) -> bool:
        """Whether a call writes into some of its inputs (parameters, optimizer state, buffers)."""
        return bool(self._updated)

    def check(self, arrays: Sequence[np.ndarray]) -> None:
        """Raise InputError (naming the model and the input) unless every buffer fits."""
        if len(arrays) != len(self.inputs):
            raise InputError(f"{self._where()}expected {len(self.inputs)} inputs, got {len(arrays)}")
        for i, arr in enumerate(arrays):
            self._checked(i, arr)

    def _checked(self, i: int, arr: np.ndarray) -> np.ndarray:
        """Input i as the kernels read it: `arr` itself when it is C-contiguous, aligned and in
        native byte order, else a staged copy. Shape and dtype must be as compiled."""
        spec = self.inputs[i]
        if not isinstance(arr, np.ndarray):
            raise InputError(f"{self._where()}input '{spec.name}' must be an array, got {type(arr).__name__}")
        if arr.shape != spec.shape or arr.dtype.newbyteorder("=") != spec.dtype:
            raise InputError(f"{self._where()}input '{spec.name}' expected {spec.describe()}, "
                             f"got {_describe(arr)}")
        if i in self._updated and not arr.flags.writeable:
            raise InputError(f"{self._where()}input '{spec.name}' is read-only, but this graph updates it")
        flags = arr.flags
        if flags.c_contiguous and flags.aligned and arr.dtype.isnative:
            return arr
        return c_contiguous(arr, spec.dtype)

    def _where(self) -> str:
        return f"{self.context}: " if self.context else ""

    def run(self, arrays: Sequence[np.ndarray], stable: object = None) -> list[np.ndarray]:
        """Call the native entry point on checked inputs; returns freshly allocated outputs.

        Any strided, unaligned or byte-swapped input is copied into a C-contiguous staging array
        first (and, if the graph updates it, copied back after a successful call). An input whose
        data pointer, shape, strides and dtype are those of the previous call was checked then
        and keeps its pointer, so small models pay little per call. A caller may also vouch for
        the inputs at `stable_inputs` (parameters, say): while it passes the same `stable` token
        as last time, those are not looked at, so the cost of a call does not grow with them.
        A failed check inside native code raises its error; nothing is written to the inputs
        then, and outputs are dropped.
        """
        with self._lock:  # one workspace and pointer array per graph: one call at a time
            args, seen = self._args, self._seen
            if len(arrays) != len(seen):
                self.check(arrays)
            full = stable is None or stable != self._stable
            staged: list[tuple[int, np.ndarray]] = []
            for i in range(len(arrays)) if full else self._recheck:
                arr = arrays[i]
                last = seen[i]  # (array, (pointer, shape, strides, dtype)) when args[i] holds its pointer
                if last is not None and last[0] is arr and last[1] == (address(arr), arr.shape, arr.strides, arr.dtype):
                    continue
                ready = self._checked(i, arr)
                args[i] = address(ready)
                if ready is arr:
                    seen[i] = (arr, (args[i], arr.shape, arr.strides, arr.dtype))
                else:  # a fresh copy each call: never cached
                    seen[i] = None
                    staged.append((i, ready))
            if full:  # next time, inputs the caller vouches for are passed over while `stable` holds
                self._stable = stable
                self._recheck = [i for i in range(len(arrays)) if i not in self.stable_inputs or seen[i] is None]
            kept = self._kept_outputs
            if kept is None:
                block = np.empty(self._output_bytes, np.uint8)  # all outputs in one allocation
                pointer = address(block)
                skip, base = -pointer % ALIGNMENT, len(seen)  # outputs start at the first aligned byte
                for j, offset in enumerate(self._output_offsets):
                    args[base + j] = pointer + skip + offset
                outs = [np.ndarray(shape, dtype, block, skip + offset) for shape, dtype, offset in self._output_views]
            status = self._entry(args, self._workspace_ptr, self._detail_ptr)
            if status:
                raise self._failure(status)
            if kept is not None:
                outs = [out.copy() for out in kept]
            for i, copy in staged:
                if i in self._updated:
                    np.copyto(arrays[i], copy)
            return outs

    def _failure(self, status: int) -> Exception:
        """The error of the check that failed (status - 1 indexes the lowered checks)."""
        if not 0 < status <= len(self.artifact.checks):
            return RuntimeError(f"{self._where()}native code returned an unknown status {status}")
        check = self.artifact.checks[status - 1]
        message = check.message.format(value=self._detail.value)
        return CHECK_ERRORS[check.error](f"{check.where}: {message}")

    __call__ = run

    def llvm_ir(self) -> str:
        """The module's IR after LLVM's optimisation."""
        return self.native.optimized_ir()

    def assembly(self) -> str:
        return self.native.assembly()
