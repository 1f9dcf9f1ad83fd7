"""Run lowered graphs natively: lower, compile with runtime.jit, call the entry through ctypes."""
from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np

from graphc.ir import Graph, GraphBuilder
from graphc.lower import lower
from graphc.ops import OPS, TensorType
from graphc.program import Program, planned
from runtime.executor import aligned_empty
from runtime.jit import compile_ir

ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class Native:
    """A graph compiled once; call it with input arrays, get output arrays back.

    Inputs are used in place (so `graph.updates` are visible in the caller's arrays) when they
    already have the node's dtype and are C-contiguous.
    """

    def __init__(self, graph: Graph | Program):
        if isinstance(graph, Program) and graph.buffers is None:
            graph = planned(graph)
        self.graph = graph.graph if isinstance(graph, Program) else graph
        self.lowered = lower(graph)
        self.module = compile_ir(self.lowered.ir_text)
        self.entry = ENTRY_TYPE(self.module.address(self.lowered.entry))
        self.workspace = aligned_empty(self.lowered.workspace_bytes)

    def prepare(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray], Any]:
        nodes = self.graph.nodes
        ins = [np.asarray(a, dtype=nodes[i].dtype, order="C") for a, i in zip(inputs, self.lowered.input_ids)]
        assert [a.shape for a in ins] == [nodes[i].shape for i in self.lowered.input_ids]
        outs = [np.full(nodes[i].shape, 77, nodes[i].dtype) for i in self.lowered.output_ids]  # garbage
        pointers = (ctypes.c_void_p * max(1, len(ins) + len(outs)))(*(a.ctypes.data for a in ins + outs))
        return ins, outs, pointers

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        ins, outs, pointers = self.prepare(inputs)
        detail = ctypes.c_int64(0)
        status = self.entry(ctypes.addressof(pointers), self.workspace.ctypes.data, ctypes.addressof(detail))
        assert status == 0, f"a check failed (status {status}, value {detail.value})"
        return outs


def op_graph(op: str, inputs: Sequence[np.ndarray], **attrs: Any) -> Graph:
    """A graph of one `op` node over fresh inputs, shaped by the op's own infer rule."""
    b = GraphBuilder()
    ids = [b.input(f"x{i}", "data", a.shape, str(a.dtype)) for i, a in enumerate(inputs)]
    out = OPS[op].infer(*(TensorType(a.shape, str(a.dtype)) for a in inputs), **attrs)
    node = b.add(op, ids, attrs, out.shape, out.dtype, module_path="test.layer")
    return b.finish([node])


def run_op(op: str, inputs: Sequence[np.ndarray], **attrs: Any) -> tuple[np.ndarray, np.ndarray]:
    """(native result, numpy reference result) of one op."""
    (native,) = Native(op_graph(op, inputs, **attrs))(*inputs)
    with np.errstate(all="ignore"):
        expected = np.asarray(OPS[op].reference(*inputs, **attrs))
    return native, expected.astype(native.dtype).reshape(native.shape)


def tolerance(dtype: Any) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-6} if np.dtype(dtype) == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
