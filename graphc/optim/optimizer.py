"""Optimizer base: PyTorch's param groups and state, with the update written once as op functions.

`update` sees tensors and per-step hyperparameters; eagerly they are arrays and floats, inside a
compiled train step they are graph values, so the same rule runs in both.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


class Optimizer:
    state_names: tuple[str, ...] = ()  # per-parameter state tensors, zero-initialised

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.lock = threading.RLock()  # a step, eager or compiled, is atomic across threads
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        group = dict(group)
        group["params"] = list(group["params"]) if not isinstance(group["params"], Tensor) else [group["params"]]
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def prepare_step(self, p: Tensor, group: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        """The state `p` has during this step and this step's scalar hyperparameters (learning
        rate, bias corrections). Nothing is stored: `commit_step` stores the state once the step
        succeeded, so a step that fails changes no count and starts no buffer. State tensors start
        at zero when first needed (a momentum buffer switched on later starts then); `fresh`
        names those started at this step."""
        old = self.state.get(p, {"step": 0})
        fresh = [n for n in self.state_names if n not in old]
        state = {**old, **{n: Tensor._wrap(np.zeros(p.shape, p.dtype)) for n in fresh}}
        state["step"], state["fresh"] = old["step"] + 1, frozenset(fresh)
        return state, self.step_hyper(group, state)

    def commit_step(self, p: Tensor, state: dict[str, Any]) -> None:
        self.state[p] = state

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        """Scalars for this step of one parameter (learning rate, bias corrections), as floats."""
        raise NotImplementedError  # every concrete optimizer defines it

    def update(self, p: Any, g: Any, state: dict[str, Any], hyper: dict[str, Any],
               group: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """New parameter and new state tensors, written with op functions."""
        raise NotImplementedError  # every concrete optimizer defines it

    @staticmethod
    def regularized_gradient(p: Any, g: Any, hyper: dict[str, Any], group: dict[str, Any]) -> Any:
        """The gradient after `maximize` and L2 `weight_decay`, as PyTorch's optimizers apply them."""
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + hyper["weight_decay"] * p
        return g

    @no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        with self.lock:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state, hyper = self.prepare_step(p, group)
                    tensors = {n: state[n] for n in self.state_names}
                    new_p, new_state = self.update(p.detach(), p.grad, tensors, hyper, group)
                    p._set(new_p._data)
                    for name, value in new_state.items():
                        state[name]._set(value._data)
                    self.commit_step(p, state)
        return loss

    def state_dict(self) -> dict[str, Any]:
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        return {"state": {index[id(p)]: {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in s.items()
                                         if k != "fresh"} for p, s in self.state.items()},
                "param_groups": [{**{k: v for k, v in g.items() if k != "params"},
                                  "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])
