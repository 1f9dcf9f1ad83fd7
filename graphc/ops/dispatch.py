"""`apply`: run an op eagerly with its numpy reference, or record it into the active graph."""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Protocol

import numpy as np

from .registry import OPS, ShapeError, TensorType

_RANK = {"bool": 0, "int64": 1, "float32": 2, "float64": 3}


class Recorder(Protocol):
    """What `apply` needs from a tracer: node ids for tensors, and a place to put new nodes."""

    def value_of(self, tensor: Any) -> int: ...
    def record(self, op: str, inputs: tuple[int, ...], attrs: dict, result: TensorType) -> Any: ...
    def fail(self, error: Exception) -> Exception: ...
    def random_key(self) -> Any: ...  # an int64 scalar input the runner fills with a fresh key per call
    def tracks(self, tensor: Any) -> bool: ...          # does an in-place write into it belong in the graph
    def write(self, target: Any, value: Any) -> None: ...  # record `target.copy_(value)`


_local = threading.local()  # tracing in one thread leaves other threads eager


def _stack() -> list[Recorder]:
    if not hasattr(_local, "recorders"):
        _local.recorders = []
    return _local.recorders


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """While active, every op on tensors in this thread records a node instead of computing."""
    _stack().append(recorder)
    try:
        yield recorder
    finally:
        _stack().pop()


def active_recorder() -> Recorder | None:
    recorders = getattr(_local, "recorders", None)
    return recorders[-1] if recorders else None


def is_symbolic(t: Any) -> bool:
    return getattr(t, "_node", None) is not None


def _scalar_dtype(value: Any, like: str) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool" if like == "bool" else like
    if isinstance(value, (int, np.integer)) and like == "bool":
        return "int64"  # bool + 1 is int64, as in PyTorch
    if isinstance(value, (float, np.floating)) and like in ("bool", "int64"):
        return "float32"
    return like


def _operands(args: tuple, promote: bool) -> list:
    """Turn Python scalars into tensors and apply PyTorch's type promotion between operands."""
    from ..tensor import Tensor, as_tensor
    tensors = [a for a in args if isinstance(a, Tensor)]
    like = max((t.dtype for t in tensors), key=_RANK.__getitem__, default="float32")
    if promote:
        scalars = [a for a in args if not isinstance(a, Tensor)]
        for s in scalars:  # a float scalar lifts an integer tensor to float32, an int one a bool tensor to int64
            if _RANK.get(_scalar_dtype(s, like), 0) > _RANK[like]:
                like = _scalar_dtype(s, like)
    out = []
    for i, a in enumerate(args):
        if not isinstance(a, Tensor):
            a = as_tensor(np.asarray(a, dtype=_scalar_dtype(a, like)))
        elif promote and a.dtype != like and not (i == 0 and len(args) == 3):  # where's condition stays bool
            a = apply("cast", a, dtype=like)
        out.append(a)
    return out


def apply(op: str, *args: Any, promote: bool = False, **attrs: Any) -> Any:
    """Apply `op` to tensors (or scalars) with attributes; the only door into the op table."""
    from ..tensor import Tensor
    from .. import autograd
    opdef = OPS[op]
    inputs = _operands(args, promote)
    recorder = active_recorder()
    if recorder is not None:
        ids = tuple(recorder.value_of(t) for t in inputs)
        try:
            result = opdef.infer(*(TensorType(tuple(t.shape), t.dtype) for t in inputs), **attrs)
        except ShapeError as e:
            raise recorder.fail(e) from None
        return recorder.record(op, ids, attrs, result)
    if any(is_symbolic(t) for t in inputs):
        raise RuntimeError(f"{op}: a symbolic tensor was used outside of graphc.trace")
    opdef.infer(*(TensorType(tuple(t.shape), t.dtype) for t in inputs), **attrs)
    data = np.asarray(opdef.reference(*(t._data for t in inputs), **attrs))
    out = Tensor._wrap(data)
    if opdef.gradient is not None and autograd.is_grad_enabled() and any(t.requires_grad for t in inputs):
        autograd.attach(out, opdef, inputs, attrs)
    return out
