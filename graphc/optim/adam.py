"""Adam (and AMSGrad), as torch.optim.Adam: L2 weight decay, or decoupled as in AdamW."""
from __future__ import annotations

import math
from typing import Any, Iterable

from ..ops import functions as F
from .optimizer import Optimizer, check_nonnegative


class Adam(Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        check_nonnegative(lr=lr, eps=eps)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        check_nonnegative(weight_decay=weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def group_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        names = ("exp_avg", "exp_avg_sq")
        return names + ("max_exp_avg_sq",) if group["amsgrad"] else names

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        beta1, beta2 = group["betas"]
        step = state["step"]
        hyper = {"beta1": beta1, "beta2": beta2, "eps": group["eps"], "weight_decay": group["weight_decay"],
                 "step_size": group["lr"] / (1 - beta1 ** step), "bias_correction2_sqrt": math.sqrt(1 - beta2 ** step)}
        if group["decoupled_weight_decay"]:  # AdamW: p *= 1 - lr * weight_decay
            hyper["decay"] = 1 - group["lr"] * group["weight_decay"]
        return hyper

    def update(self, p, g, state, hyper, group):
        g = self.regularized_gradient(p, g, hyper, group)
        if group["decoupled_weight_decay"] and group["weight_decay"]:
            p = p * hyper["decay"]
        m = state["exp_avg"] + (1 - hyper["beta1"]) * (g - state["exp_avg"])
        v = hyper["beta2"] * state["exp_avg_sq"] + (1 - hyper["beta2"]) * (g * g)
        new_state = {"exp_avg": m, "exp_avg_sq": v}
        if group["amsgrad"]:
            v = new_state["max_exp_avg_sq"] = F.maximum(state["max_exp_avg_sq"], v)
        denom = F.sqrt(v) / hyper["bias_correction2_sqrt"] + hyper["eps"]
        return p - hyper["step_size"] * (m / denom), new_state


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
