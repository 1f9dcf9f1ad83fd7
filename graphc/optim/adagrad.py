"""Adagrad, as torch.optim.Adagrad: per-element rates from the sum of squared gradients."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..ops import functions as F
from ..tensor import Tensor
from .optimizer import Optimizer, check_nonnegative


class Adagrad(Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *, maximize: bool = False):
        check_nonnegative(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                          initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))
        # torch starts every parameter's state at construction (step 0), so state_dict() has it,
        # and from the constructor's initial_accumulator_value even where a group gives its own
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = {"step": 0, "sum": Tensor._wrap(np.full(p.shape, initial_accumulator_value, p.dtype))}

    def group_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def initial_state(self, name: str, p: Tensor, group: dict[str, Any]) -> np.ndarray:
        """For parameters added later (add_param_group), or whose state was cleared."""
        return np.full(p.shape, group["initial_accumulator_value"], p.dtype)

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        return {"clr": group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"]), "eps": group["eps"],
                "weight_decay": group["weight_decay"]}

    def update(self, p, g, state, hyper, group):
        g = self.regularized_gradient(p, g, hyper, group)
        total = state["sum"] + g * g
        return p - hyper["clr"] * (g / (F.sqrt(total) + hyper["eps"])), {"sum": total}
