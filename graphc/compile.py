"""graphc.compile and graphc.compile_train_step: trace, differentiate, optimise, lower, run.

Each distinct (input shapes and dtypes, train/eval mode, grad mode) gets its own specialisation,
compiled on first use, as torch.compile does.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import autograd
from .autodiff import build_backward, with_saved_outputs
from .ir import Graph
from .passes import optimize
from .tensor import Tensor, as_tensor
from .trace import Program, _is_static, trace, unflatten


def _log_stages(label: str) -> Callable[[str, Graph, float], None] | None:
    from runtime.executor import debug_level
    if debug_level() < 3:
        return None
    return lambda name, graph, seconds: print(f"[graphc] {label} after {name} ({seconds * 1e3:.2f} ms):\n{graph}")


def optimize_logged(graph: Graph, label: str) -> Graph:
    """The pass pipeline, printing stages as GRAPHC_DEBUG asks."""
    from runtime.executor import debug_level
    if debug_level() >= 2:
        print(f"[graphc] {label} traced:\n{graph}")
    return optimize(graph, after_each=_log_stages(label))


def compiled_graph(graph: Graph, name: str, context: str):
    from runtime.executor import CompiledGraph, debug_level
    compiled = CompiledGraph(graph, name, context)
    if debug_level() >= 4:
        print(f"[graphc] LLVM IR of {name}:\n{compiled.llvm_ir()}")
    if debug_level() >= 5:
        print(f"[graphc] assembly of {name}:\n{compiled.assembly()}")
    return compiled


def _signature(inputs: tuple) -> tuple:
    """What a specialisation depends on: shapes, dtypes and requires_grad of tensors, values of the rest."""
    return tuple((x._shape, x._dtype, x.requires_grad) if isinstance(x, Tensor) else
                 (x.shape, x.dtype.name, False) if isinstance(x, np.ndarray) else ("static", x) for x in inputs)


@dataclass
class _Inference:
    program: Program
    forward: Any

    def __call__(self, inputs: tuple) -> Any:
        outputs = self.forward.run(self.program.input_arrays(*inputs))
        return unflatten(self.program.output_spec, [Tensor._wrap(o) for o in outputs])


@dataclass
class _Differentiable:
    """Compiled forward that saves what the compiled backward needs; outputs carry a GradFn."""

    program: Program
    forward: Any
    backward: Any
    wrt: tuple[str, ...]
    n_outputs: int

    def __call__(self, inputs: tuple) -> Any:
        arrays = self.program.input_arrays(*inputs)
        results = self.forward.run(arrays)
        outputs, saved = results[:self.n_outputs], dict(zip(self.forward.graph.output_names, results))
        by_name = {n.attr("name"): a for n, a in zip(self.forward.graph.inputs, arrays)}
        sources = self._sources(inputs)
        tensors = [Tensor._wrap(o) for o in outputs]
        for k, t in enumerate(tensors):
            if t.dtype.is_floating_point:
                t.requires_grad = True
                t._grad_fn = autograd.GradFn("compiled", [sources[n] for n in self.wrt],
                                             self._backward_fn(k, saved, by_name, outputs))
        return unflatten(self.program.output_spec, tensors)

    def _sources(self, inputs: tuple) -> dict[str, Tensor]:
        user = [as_tensor(x) for x in inputs if not _is_static(x)]
        return dict(zip(self.program.input_names, user)) | self.program.params

    def _backward_fn(self, k: int, saved: dict, by_name: dict, outputs: list) -> Callable:
        def run(grad: Tensor) -> list[Tensor | None]:
            arrays = []
            for node in self.backward.graph.inputs:
                name = node.attr("name")
                if node.attr("kind") == "grad":
                    j = self.program_output_index(name)
                    arrays.append(np.ascontiguousarray(grad._data, dtype=node.dtype) if j == k
                                  else np.zeros(node.shape, node.dtype))
                else:
                    arrays.append(saved[name] if name in saved else by_name[name])
            grads = dict(zip(self.backward.graph.output_names, self.backward.run(arrays)))
            return [Tensor._wrap(grads[f"grad_{n}"]) if f"grad_{n}" in grads else None for n in self.wrt]
        return run

    def program_output_index(self, grad_name: str) -> int:
        return list(self.forward.graph.output_names).index(grad_name.removeprefix("grad_"))


class CompiledModule:
    """What graphc.compile returns: call it like the model; attributes reach the model."""

    def __init__(self, model: Any):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "_params", list(model.named_parameters()))

    def __call__(self, *inputs: Any) -> Any:
        model = self._model
        trainable = tuple(p.requires_grad for _, p in self._params)
        needs_grad = autograd.is_grad_enabled() and (any(trainable) or any(
            getattr(x, "requires_grad", False) for x in inputs))
        key = (_signature(inputs), model.training, needs_grad, trainable if needs_grad else ())
        runner = self._cache.get(key)
        if runner is None:
            object.__setattr__(self, "_params", list(model.named_parameters()))
            params = tuple(n for n, p in self._params if p.requires_grad)
            runner = self._cache[key] = self._build(inputs, needs_grad, params)
        return runner(inputs)

    def _build(self, inputs: tuple, needs_grad: bool, params: tuple[str, ...]) -> Any:
        model = self._model
        context = type(model).__name__
        program = trace(model, *inputs)
        forward = optimize_logged(program.graph, f"{context} forward")
        if not needs_grad:
            return _Inference(program, compiled_graph(forward, "forward", context))
        user_grads = [name for name, x in zip(program.input_names, [x for x in inputs if not _is_static(x)])
                      if getattr(x, "requires_grad", False)]
        present = {n.attr("name") for n in forward.inputs}
        wrt = tuple(n for n in user_grads + list(params) if n in present)
        backward = build_backward(forward, wrt)
        backward_graph = optimize_logged(backward.graph, f"{context} backward")
        n_outputs = len(forward.outputs)
        fwd = compiled_graph(with_saved_outputs(forward, backward.saved), "forward_train", context)
        bwd = compiled_graph(backward_graph, "backward", context)
        return _Differentiable(program, fwd, bwd, wrt, n_outputs)

    def specializations(self) -> int:
        return len(self._cache)

    def train(self, mode: bool = True) -> "CompiledModule":
        self._model.train(mode)
        return self

    def eval(self) -> "CompiledModule":
        return self.train(False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._model, name, value)

    def __repr__(self) -> str:
        return f"CompiledModule({self._model!r})"


def compile(model: Any) -> CompiledModule:  # noqa: A001  (the name PyTorch users expect)
    """Wrap `model` so each call runs native code compiled for the input shapes it sees."""
    return CompiledModule(model)
