"""Optimizer base: PyTorch's param groups and state, with the update written once as op functions.

`update` sees tensors and per-step hyperparameters; eagerly they are arrays and floats, inside a
compiled train step they are graph values, so the same rule runs in both.
"""
from __future__ import annotations

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

    def param_state(self, p: Tensor) -> dict[str, Any]:
        """The state of `p`, created with zero tensors and step 0 on first use."""
        if p not in self.state:
            self.state[p] = {"step": 0, **{n: Tensor._wrap(np.zeros(p.shape, p.dtype)) for n in self.state_names}}
        return self.state[p]

    def step_hyper(self, group: dict[str, Any], step: int) -> dict[str, float]:
        """Scalars for this step (learning rate, bias corrections): floats computed in Python."""
        raise NotImplementedError  # every concrete optimizer defines it

    def update(self, p: Any, g: Any, state: dict[str, Any], hyper: dict[str, Any],
               group: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """New parameter and new state tensors, written with op functions."""
        raise NotImplementedError  # every concrete optimizer defines it

    @no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.param_state(p)
                state["step"] += 1
                hyper = self.step_hyper(group, state["step"])
                tensors = {n: state[n] for n in self.state_names}
                new_p, new_state = self.update(p.detach(), p.grad, tensors, hyper, group)
                p._set(new_p._data)
                for name, value in new_state.items():
                    state[name]._set(value._data)
        return loss

    def state_dict(self) -> dict[str, Any]:
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        return {"state": {index[id(p)]: {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in s.items()}
                          for p, s in self.state.items()},
                "param_groups": [{**{k: v for k, v in g.items() if k != "params"},
                                  "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])
