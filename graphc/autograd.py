"""Eager reverse-mode autodiff: a tape of GradFns, one reverse sweep in topological order.

Gradient rules come from the op table and are the same ones `graphc.autodiff` uses to build
backward graphs.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


class no_grad(contextlib.ContextDecorator):
    """Disable gradient recording, as `torch.no_grad()`."""

    def __enter__(self) -> None:
        self._previous = is_grad_enabled()
        _state.enabled = False

    def __exit__(self, *exc: Any) -> None:
        _state.enabled = self._previous


class enable_grad(no_grad):
    def __enter__(self) -> None:
        self._previous = is_grad_enabled()
        _state.enabled = True


def set_grad_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


class GradFn:
    """A node of the eager tape: maps the output gradient to one gradient per input."""

    def __init__(self, name: str, inputs: Sequence[Any], backward: Callable[[Any], Sequence[Any]]):
        self.name, self.inputs, self._backward = name, tuple(inputs), backward

    def backward(self, grad: Any) -> Sequence[Any]:
        return self._backward(grad)

    def __repr__(self) -> str:
        return f"<{self.name.capitalize()}Backward>"


def attach(out: Any, opdef: Any, inputs: Sequence[Any], attrs: dict) -> None:
    """Record that `out = opdef(inputs)` so backward can apply the op's gradient rule."""
    saved_inputs = tuple(t.detach() for t in inputs)
    saved_out = out.detach()

    def backward(grad: Any) -> Sequence[Any]:
        return opdef.gradient(saved_inputs, saved_out, grad, **attrs)

    out.requires_grad = True
    out._grad_fn = GradFn(opdef.name, inputs, backward)


def _topological(root: Any) -> list[Any]:
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._grad_fn is not None:
            stack.extend((i, False) for i in t._grad_fn.inputs if i.requires_grad)
    return order[::-1]


def backward(root: Any, grad: Any = None) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's `.grad`, as `Tensor.backward`."""
    from .tensor import Tensor
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if grad is None:
        if root.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        grad = Tensor._wrap(np.ones(root.shape, dtype=root.dtype))
    elif not isinstance(grad, Tensor):
        grad = Tensor._wrap(np.asarray(grad, dtype=root.dtype))
    grads: dict[int, Any] = {id(root): grad}
    with _grad_mode(False), np.errstate(divide="ignore", invalid="ignore"):
        for t in _topological(root):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            for hook in t._hooks:
                replaced = hook(g)
                g = g if replaced is None else replaced
            if t._grad_fn is None:
                if t.grad is None:
                    t.grad = Tensor._wrap(np.array(g._data, dtype=t.dtype, copy=True))
                else:
                    t.grad._data += g._data
                continue
            if t._retains_grad:
                t.grad = g.detach()
            for inp, gi in zip(t._grad_fn.inputs, t._grad_fn.backward(g)):
                if gi is None or not inp.requires_grad:
                    continue
                previous = grads.get(id(inp))
                grads[id(inp)] = gi if previous is None else Tensor._wrap(previous._data + gi._data)
