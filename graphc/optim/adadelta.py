"""Adadelta (Zeiler, 2012), as torch.optim.Adadelta: lr scales the step, 1.0 by default."""
from __future__ import annotations

from typing import Any, Iterable

from ..ops import functions as F
from .optimizer import Optimizer, check_nonnegative


class Adadelta(Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False):
        check_nonnegative(lr=lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        check_nonnegative(eps=eps, weight_decay=weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def group_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("square_avg", "acc_delta")

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        return {"lr": group["lr"], "rho": group["rho"], "eps": group["eps"], "weight_decay": group["weight_decay"]}

    def update(self, p, g, state, hyper, group):
        g = self.regularized_gradient(p, g, hyper, group)
        rho = hyper["rho"]
        square_avg = rho * state["square_avg"] + (1 - rho) * (g * g)
        # the step is the gradient scaled by RMS(past steps) / RMS(gradients)
        delta = F.sqrt(state["acc_delta"] + hyper["eps"]) / F.sqrt(square_avg + hyper["eps"]) * g
        acc_delta = rho * state["acc_delta"] + (1 - rho) * (delta * delta)
        return p - hyper["lr"] * delta, {"square_avg": square_avg, "acc_delta": acc_delta}
