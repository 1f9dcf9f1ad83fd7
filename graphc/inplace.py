"""In-place methods of Tensor (`add_`, `x += y`, `x[i] = v`, ...) as one rule, `_update`.

Eager and untracked, the array is written in place, so whoever holds it (`param.data`, compiled
runners) sees the change; tracked by autograd, the result takes over the tensor (its array and
gradient function); traced, the tensor is rebound to the new graph value, so `out += identity`
in a forward records an add.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import autograd
from . import tensor as _tensor  # partially initialised here: read at call time only
from .errors import TraceError
from .indexing import BasicIndex, basic_index
from .ops import dispatch as _dispatch, functions as _fn

_KIND_RANK = {"bool": 0, "int64": 1, "float32": 2, "float64": 2}  # what an in-place result may be cast down from


class InPlace:
    """The in-place half of Tensor's interface (a mixin: Tensor's slots hold the state)."""

    __slots__ = ()

    def _update(self, compute, name: str, written=None) -> Any:
        """self = compute(self) in place, as PyTorch's `x.add_(y)`: traced, the value is rebound
        (so `out += identity` records an add); eager, the array is written in place so that every
        holder of it (`param.data`, compiled runners) sees the change. Under autograd the result's
        gradient function takes over and the array is replaced instead, so values saved for
        earlier gradients keep what they saved. Traced, a write into a parameter or buffer of the
        traced module is the tracer's to record (a buffer update in the graph, trace.Tracer.write):
        `written(self)` is the value it records (default: compute's)."""
        recorder = _dispatch.active_recorder()
        if recorder is not None and self._node is None and recorder.tracks(self):
            recorder.write(self, (written or compute)(self))
            return self
        tracking = autograd.is_grad_enabled() and self._node is None
        if tracking and self.requires_grad and self._grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        source = self
        if tracking and self.requires_grad:  # the old value, with its own place in the tape
            source = _tensor.Tensor._wrap(self._data)
            source.requires_grad, source._grad_fn = True, self._grad_fn
        out = compute(source)
        if tuple(out.shape) != self._shape:
            raise RuntimeError(f"output with shape {list(self._shape)} doesn't match the broadcast shape "
                               f"{list(out.shape)}")
        if out.dtype != self._dtype:
            if _KIND_RANK[out.dtype] > _KIND_RANK[self._dtype]:  # float into int or int into bool (float64 into float32 is fine)
                raise RuntimeError(f"result type {_fn.torch_type_name(out.dtype)} can't be cast to the desired "
                                   f"output type {_fn.torch_type_name(self._dtype)}")
            out = _fn.cast(out, self._dtype)
        if self._node is not None or out._node is not None:
            if self._node is None:
                raise out._recorder.fail(TraceError(
                    f"{name}: in-place updates of tensors that are not values of the traced graph (a "
                    "parameter, a buffer's running statistics, a constant) cannot be traced yet; return "
                    "the new value from forward instead"))
            self._node, self._recorder = out._node, out._recorder
        elif out.requires_grad:
            self._data, self.requires_grad, self._grad_fn = out._data, True, out._grad_fn
        elif tracking and self.requires_grad:  # overwritten by a constant (fill_, zero_): no gradient passes
            self._data, self._grad_fn = out._data, autograd.GradFn(name, (source,), lambda grad: (None,))
        else:
            np.copyto(self._data, out._data)
            _tensor._Writes.bump()  # a prepare graph reading this array computes again
        return self

    def copy_(self, src: Any) -> Any:
        src = _tensor.as_tensor(src)
        # traced into a buffer: the tracer broadcasts and checks src itself, naming the buffer's shape
        return self._update(lambda x: _fn.expand(_fn.cast(src, self.dtype), self._shape), "copy_",
                            written=lambda x: src)

    def fill_(self, value: Any) -> Any:
        filled = lambda x: _tensor.as_tensor(np.full(self._shape, _tensor._unwrap(value), self._dtype))  # noqa: E731
        return self._update(filled, "fill_")

    def zero_(self) -> Any:
        return self.fill_(0)

    def bernoulli_(self, p: Any = 0.5) -> Any:
        """Fill with 1 (probability p, a number or a tensor) or 0 from graphc's generator."""
        from .random import bernoulli
        with autograd.no_grad():
            return self._set(bernoulli(self, p))

    def add_(self, other: Any, *, alpha: Any = 1) -> Any:
        return self._update(lambda x: _fn.add(x, other if alpha == 1 else _fn.mul(other, alpha)), "add_")

    def sub_(self, other: Any, *, alpha: Any = 1) -> Any:
        return self._update(lambda x: _fn.sub(x, other if alpha == 1 else _fn.mul(other, alpha)), "sub_")

    def mul_(self, other: Any) -> Any:
        return self._update(lambda x: _fn.mul(x, other), "mul_")

    def div_(self, other: Any) -> Any:
        return self._update(lambda x: _fn.div(x, other), "div_")

    def pow_(self, exponent: Any) -> Any:
        return self._update(lambda x: _fn.pow(x, exponent), "pow_")

    def neg_(self) -> Any:
        return self._update(_fn.neg, "neg_")

    def sqrt_(self) -> Any:
        return self._update(_fn.sqrt, "sqrt_")

    def exp_(self) -> Any:
        return self._update(_fn.exp, "exp_")

    def relu_(self) -> Any:
        return self._update(_fn.relu, "relu_")

    def clamp_(self, min: Any = None, max: Any = None) -> Any:  # noqa: A002
        return self._update(lambda x: _fn.clamp(x, min, max), "clamp_")

    clip_ = clamp_

    def __iadd__(self, o): return self.add_(o)
    def __isub__(self, o): return self.sub_(o)
    def __imul__(self, o): return self.mul_(o)
    def __itruediv__(self, o): return self.div_(o)
    def __ipow__(self, o): return self.pow_(o)

    def masked_fill_(self, mask: Any, value: Any) -> Any:
        return self._update(lambda x: _fn.where(_fn.to_bool(mask), value, x), "masked_fill_")

    def __setitem__(self, index: Any, value: Any) -> None:
        """x[index] = value. An untracked eager tensor is written in place (any index); a traced
        value, or one autograd tracks, becomes where(window, value, x) for a basic index, so the
        gradient reaches x outside the window and value inside it."""
        tracked = autograd.is_grad_enabled() and (self.requires_grad or getattr(value, "requires_grad", False))
        if self._node is None and not tracked and not _fn.is_symbolic(value):
            self._data[_tensor._numpy_index(index)] = np.asarray(_tensor._unwrap(value))
            return
        basic = basic_index(index, self._shape)
        if basic is None:
            self._concrete("item assignment with tensors, lists or bools as indices")
            raise RuntimeError("graphc: item assignment with tensors, lists or bools as indices is not differentiated; "
                               "use graphc.where with a mask instead")
        self._update(lambda x: _assign(x, basic, value), "__setitem__")


def _assign(x: Any, index: BasicIndex, value: Any) -> Any:
    """x with `value` (broadcast) in the window of a basic index, elsewhere x."""
    value = _fn.cast(_tensor.as_tensor(value), x.dtype)
    window = _fn.reshape(_fn.expand(value, index.shape), index.window)
    inside = _tensor.as_tensor(np.ones(index.window, bool))
    scatter = lambda t: _fn.slice_scatter(t, index.starts, index.steps, x.shape)  # noqa: E731
    return _fn.where(scatter(inside), scatter(window), x)
