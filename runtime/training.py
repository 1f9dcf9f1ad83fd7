"""Running compiled graphs from the user's side: inference, a compiled forward whose outputs
backpropagate through a compiled backward graph, and whole train steps.

The graphs are built by graphc (graphc/compiled.py, graphc/train_step.py); these runners only
gather buffers, call native code and hand results back as graphc tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc import autograd
from graphc.tensor import Tensor
from graphc.trace import Program, unflatten

from .executor import CompiledGraph


@dataclass
class InferenceRunner:
    program: Program
    forward: CompiledGraph

    def __call__(self, inputs: tuple) -> Any:
        outputs = self.forward.run(self.program.input_arrays(*inputs))
        return unflatten(self.program.output_spec, [Tensor._wrap(o) for o in outputs])


@dataclass
class DifferentiableRunner:
    """Compiled forward that also returns what the compiled backward needs; each float output
    carries a GradFn that runs the backward graph, so `loss.backward()` reaches the parameters."""

    program: Program
    forward: CompiledGraph   # outputs: the model's outputs, then the saved values
    backward: CompiledGraph  # inputs: saved values (by name) and one gradient per model output
    wrt: tuple[str, ...]     # graph input names whose gradients the backward returns
    n_outputs: int

    def __call__(self, inputs: tuple) -> Any:
        sources = self.program.named_tensors(*inputs)
        available = {spec.name: sources[spec.name]._data for spec in self.forward.inputs}
        results = self.forward.run(list(available.values()))
        available.update(zip((s.name for s in self.forward.outputs), results))
        tensors = [Tensor._wrap(o) for o in results[:self.n_outputs]]
        for k, t in enumerate(tensors):
            if t.dtype.is_floating_point:
                t.requires_grad = True
                t._grad_fn = autograd.GradFn("compiled", [sources[n] for n in self.wrt], self._backward_fn(k, available))
        return unflatten(self.program.output_spec, tensors)

    def _backward_fn(self, k: int, available: dict[str, np.ndarray]) -> Callable[[Tensor], list]:
        """Backward for output k; gradients are linear in the seeds, so one call per output adds up."""
        seeds = {f"grad_{s.name}": j for j, s in enumerate(self.forward.outputs[:self.n_outputs])}

        def run(grad: Tensor) -> list[Tensor | None]:
            arrays = []
            for spec in self.backward.inputs:
                if spec.name in seeds:
                    arrays.append(np.ascontiguousarray(grad._data, spec.dtype) if seeds[spec.name] == k
                                  else np.zeros(spec.shape, spec.dtype))
                else:
                    arrays.append(available[spec.name])
            grads = dict(zip((s.name for s in self.backward.outputs), self.backward.run(arrays)))
            return [Tensor._wrap(grads[f"grad_{n}"]) if f"grad_{n}" in grads else None for n in self.wrt]
        return run


@dataclass
class Trained:
    """One trainable parameter of a compiled step: its group and its hyperparameter buffers."""

    name: str
    param: Tensor
    group: dict
    hyper: dict[str, np.ndarray]  # 0-d arrays refilled in place, so their pointers stay cached


@dataclass
class TrainStepRunner:
    program: Program
    compiled: CompiledGraph  # inputs: user, params, state and hyper; output: the loss
    trained: list[Trained]

    def __call__(self, optimizer: Any, inputs: tuple) -> Tensor:
        arrays = {name: t._data for name, t in self.program.named_tensors(*inputs).items()}
        for t in self.trained:
            state, hyper = optimizer.begin_step(t.param, t.group)
            arrays.update({f"{t.name}:{s}": state[s]._data for s in optimizer.state_names})
            for h, buffer in t.hyper.items():
                buffer[()] = hyper[h]
                arrays[f"{t.name}:{h}"] = buffer
        (loss,) = self.compiled.run([arrays[spec.name] for spec in self.compiled.inputs])
        return Tensor._wrap(loss)
