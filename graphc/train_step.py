"""compile_train_step: forward, loss, backward and optimizer update as one native call.

The joint graph is the optimised forward graph, then the gradient rules (autodiff.backprop),
then the optimizer's own update rule traced on symbolic tensors; new parameter and state values
are graph `updates`, written in place into the model's and optimizer's arrays.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .autodiff import backprop
from .compile import compiled_graph, optimize_logged, _signature
from .ir import Graph, GraphBuilder
from .ops.dispatch import recording
from .optim.optimizer import Optimizer
from .tensor import Tensor
from .tensor import as_tensor
from .trace import Program, Tracer, _is_static, trace


class TrainStep:
    """`step(*inputs, target)` runs one training step natively and returns the loss."""

    def __init__(self, model: Any, loss_fn: Any, optimizer: Optimizer):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self._cache: dict[tuple, tuple[Program, Any, list]] = {}

    def _structure(self) -> tuple:
        keys = ("momentum", "nesterov", "amsgrad", "weight_decay", "maximize", "dampening")
        return tuple(tuple(bool(g.get(k)) for k in keys) for g in self.optimizer.param_groups)

    def __call__(self, *inputs: Any) -> Tensor:
        key = (_signature(inputs), bool(self.model.training), self._structure())
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = self._build(inputs)
        program, compiled, plan = entry
        user = [as_tensor(x)._data for x in inputs if not _is_static(x)]
        arrays = dict(zip(program.input_names, user)) | {n: t._data for n, t in program.params.items()}
        for group_index, group, params in plan:
            step = 0
            for name, p in params:
                state = self.optimizer.param_state(p)
                state["step"] += 1
                step = state["step"]
                arrays.update({f"{name}:{s}": state[s]._data for s in self.optimizer.state_names})
            if params:
                hyper = self.optimizer.step_hyper(group, step)
                arrays.update({f"group{group_index}:{h}": np.asarray(v, params[0][1].dtype) for h, v in hyper.items()})
        names = [spec.name for spec in compiled.inputs]
        (loss,) = compiled.run([arrays[n] for n in names])
        return Tensor._wrap(loss)

    def _build(self, inputs: tuple) -> tuple[Program, Any, list]:
        model, loss_fn = self.model, self.loss_fn

        def forward_and_loss(*args):
            return loss_fn(model(*args[:-1]), args[-1])

        program = trace(forward_and_loss, *inputs, root=model)
        if len(program.graph.outputs) != 1 or program.graph.nodes[program.graph.outputs[0]].shape != ():
            raise ValueError("compile_train_step: the loss function must return one scalar tensor")
        forward = optimize_logged(program.graph, "train step forward")
        tracer = Tracer(builder=GraphBuilder(list(forward.nodes)))
        value = {n.id: Tensor._symbolic(tracer, n.id, n.shape, n.dtype) for n in forward.nodes}
        loss_id = forward.outputs[0]
        with recording(tracer):
            seed = Tensor._symbolic(tracer, tracer.builder.constant(np.ones((), forward.nodes[loss_id].dtype)),
                                    (), forward.nodes[loss_id].dtype)
        inputs_by_name = {n.attr("name"): n for n in forward.inputs}
        trainable = [(i, g, [(n, p) for n, p in program.params.items() if any(p is q for q in g["params"])
                             and p.requires_grad and n in inputs_by_name])
                     for i, g in enumerate(self.optimizer.param_groups)]
        wrt = [inputs_by_name[n].id for _, _, ps in trainable for n, _ in ps]
        grads = backprop(forward, tracer, value.__getitem__, {loss_id: seed}, wrt)
        updates, plan = [], []
        with recording(tracer):
            for group_index, group, params in trainable:
                params = [(n, p) for n, p in params if grads[inputs_by_name[n].id] is not None]
                plan.append((group_index, group, params))
                if not params:
                    continue
                dtype = params[0][1].dtype
                hyper = {h: tracer.symbolic_input(f"group{group_index}:{h}", "hyper", (), dtype)
                         for h in self.optimizer.step_hyper(group, 1)}
                for name, p in params:
                    node = inputs_by_name[name]
                    state = {s: tracer.symbolic_input(f"{name}:{s}", "state", node.shape, node.dtype)
                             for s in self.optimizer.state_names}
                    new_p, new_state = self.optimizer.update(value[node.id], grads[node.id], state, hyper, group)
                    updates.append((tracer.value_of(new_p), node.id))
                    updates += [(tracer.value_of(new_state[s]), state[s]._node) for s in new_state]
        joint = tracer.builder.finish([loss_id], ["loss"], updates)
        compiled = compiled_graph(optimize_logged(joint, "train step"), "train_step", type(model).__name__)
        return program, compiled, plan


def compile_train_step(model: Any, loss_fn: Any, optimizer: Optimizer) -> TrainStep:
    """One native call per step: forward, loss, backward and the optimizer's update."""
    return TrainStep(model, loss_fn, optimizer)
